// The cached mode: a hit returns the stored result without running anything; the key follows the
// environment's content and every input; the cache is bounded (LRU) and survives restarts.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { AgentStop, ExecRun, ExecStarted, type ExecRunParams } from '../../agent/src/protocol';
import { useStack, waitFor } from './stack';

const RANDOM = 'import os, time\ntime.sleep(1)\nv = os.urandom(8).hex()\nopen("/root/out.txt", "w").write(v)\nprint(v)';

describe('cached execution (real runtime)', function () {
  this.timeout(180_000);
  const env = useStack({ env: { FORKSPACE_CACHE_MAX_BYTES: String(64 * 1024) } });
  const c = () => env.client();

  async function run(p: ExecRunParams) {
    const started: string[] = [];
    const sub = c().onNotification(ExecStarted, (s) => started.push(s.sandboxId));
    const t0 = Date.now();
    const r = await c().request(ExecRun, { environment: 'python', mode: 'cached', ...p });
    sub.dispose();
    return { r, ms: Date.now() - t0, ran: started.length > 0 };
  }

  it('returns a stored result without running the code', async () => {
    const first = await run({ code: RANDOM, collect: ['/root/out.txt'] });
    assert.equal(first.r.cached, false);
    assert.ok(first.ran, 'a miss runs a sandbox');
    const value = first.r.stdout.trim();
    assert.match(value, /^[0-9a-f]{16}$/);
    assert.equal(Buffer.from(first.r.files![0].content, 'base64').toString(), value);
    const hit = await run({ code: RANDOM, collect: ['/root/out.txt'] });
    assert.equal(hit.r.cached, true);
    assert.equal(hit.ran, false, 'a hit must not start a sandbox');
    assert.equal(hit.r.stdout.trim(), value, 'a rerun would have printed a new random value');
    assert.equal(Buffer.from(hit.r.files![0].content, 'base64').toString(), value);
    assert.ok(hit.ms < 900, `a hit took ${hit.ms} ms; the code alone sleeps 1 s`);
    assert.notEqual(hit.r.execId, first.r.execId);
  });

  it('misses when any input differs, and refreshes or bypasses on request', async () => {
    const base: ExecRunParams = { code: 'import sys, os\nprint(os.environ.get("X"), sys.stdin.read(), open("/in").read(), os.urandom(4).hex())', files: [{ path: '/in', content: 'file' }], env: { X: '1' }, stdin: 'in' };
    const a = (await run(base)).r;
    assert.equal((await run(base)).r.cached, true);
    for (const variant of [{ env: { X: '2' } }, { stdin: 'other' }, { files: [{ path: '/in', content: 'changed' }] }, { limits: { memoryBytes: 300 * 1024 * 1024 } }, { cwd: '/tmp' }]) {
      const r = (await run({ ...base, ...variant })).r;
      assert.equal(r.cached, false, `a change of ${Object.keys(variant)[0]} must miss`);
    }
    const refreshed = (await run({ ...base, cache: 'refresh' })).r;
    assert.equal(refreshed.cached, false);
    assert.notEqual(refreshed.stdout, a.stdout);
    assert.equal((await run(base)).r.stdout, refreshed.stdout, 'refresh replaced the stored result');
    const off = await run({ ...base, cache: 'off' });
    assert.ok(off.ran && off.r.cached === false);
    assert.equal((await run(base)).r.stdout, refreshed.stdout, 'off stored nothing');
  });

  it('keys on the environment content, not on its name', async () => {
    const code = 'import sys; print(sys.version_info[:2])';
    const old = (await run({ code, environment: 'python:3.11' })).r;
    const alias = await run({ code, environment: 'python' });
    assert.equal(alias.r.cached, true, 'python is python:3.11: same content, same key');
    const other = (await run({ code, environment: 'python:3.13' })).r;
    assert.equal(other.cached, false);
    assert.notEqual(other.stdout, old.stdout);
  });

  it('does not store runs cut short by a timeout', async () => {
    const p: ExecRunParams = { code: 'import time; time.sleep(5)', timeoutMs: 300 };
    assert.equal((await run(p)).r.timedOut, true);
    const again = await run(p);
    assert.ok(again.ran && again.r.cached === false);
  });

  it('evicts the least recently used results past its size, and survives a restart', async () => {
    const big = (i: number) => ({ code: `print("${String(i)}" * 30000)` });
    await run(big(1));
    await run(big(2));
    await run(big(3)); // 3 × 30 KB with a 64 KiB bound: the oldest goes
    assert.equal((await run(big(3))).r.cached, true);
    assert.equal((await run(big(1))).r.cached, false, 'the least recently used result was evicted');
    const stack = env.stack();
    await (await stack.client()).request(AgentStop, { stopRuntime: true });
    await waitFor(() => !fs.existsSync(stack.config.runtimeSocket), 30_000, 'the runtime to stop');
    await stack.startAgent();
    const afterRestart = await (await stack.client()).request(ExecRun, { environment: 'python', mode: 'cached', ...big(1) });
    assert.equal(afterRestart.cached, true, 'the cache lives in the catalog');
  });
});
