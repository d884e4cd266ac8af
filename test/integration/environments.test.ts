// Every Python environment builds from Debian's mirror on first use (with progress) and holds exactly the
// Python version its name promises. Builds are cached, so only the first CI run on a machine pays for them.
import { strict as assert } from 'node:assert';
import { EnvProgress, ExecRun, EnvList } from '../../agent/src/protocol';
import { useStack } from './stack';

describe('environments (real runtime, Debian mirror)', function () {
  this.timeout(15 * 60_000);
  const env = useStack();

  for (const [name, version] of [['python:3.9', '3.9'], ['python:3.11', '3.11'], ['python:3.13', '3.13'], ['python', '3.11']] as const) {
    it(`${name} runs Python ${version}`, async () => {
      const progress: string[] = [];
      const sub = env.client().onNotification(EnvProgress, (p) => progress.push(p.message));
      const built = (await env.client().request(EnvList, {})).environments.find((e) => e.name === name || e.aliases.includes(name))?.built;
      const r = await env.client().request(ExecRun, { environment: name, code: 'import sys; print("%d.%d" % sys.version_info[:2])' });
      sub.dispose();
      assert.equal(r.stdout, `${version}\n`);
      if (!built) assert.ok(progress.some((m) => /debootstrap/.test(m)), 'a first build shows progress');
    });
  }
});
