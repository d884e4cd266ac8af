// Rules that hold for the whole method table, and the per-key registries, without a runtime:
//   - every field that names something (a path, an id, a label, a working directory; in arrays and in
//     `files` too) refuses NUL and the other control characters, so a new method cannot forget it;
//   - executions are per key: the same execId for two keys is two executions; another key's reads as
//     missing; the admin reaches all;
//   - revoking a key ends exactly its tracked connections.
import { strict as assert } from 'node:assert';
import { z } from 'zod';
import { AgentRequests, type ExecResult } from '../../agent/src/protocol';
import { fieldsOf } from '../../agent/src/protocol/routes';
import { ADMIN, keyAccess } from '../../agent/src/core/access';
import { ExecutionService } from '../../agent/src/core/executions';
import { KeySessions } from '../../agent/src/api/keySessions';

/** Fields that carry data, not names: any character is theirs to carry. */
const DATA_FIELDS = new Set(['content', 'code', 'stdin', 'data']);
const BAD = ['\u0000', '\u0001', '\u001f', '\u007f'];

/** Values a field may take that look like a name, a path or a list of them, with `c` inside. */
function candidates(c: string): unknown[] {
  return [`x${c}y`, `/x${c}y`, [`x${c}y`], [`/x${c}y`], [{ path: `/x${c}y`, content: '' }]];
}

describe('every method refuses control characters in what names something', () => {
  for (const type of AgentRequests) {
    const shape = (type.params as unknown as z.ZodObject).shape as Record<string, z.ZodType> | undefined;
    if (!shape) continue;
    for (const field of fieldsOf(type.params as z.ZodType<unknown, unknown>)) {
      if (DATA_FIELDS.has(field)) continue;
      const schema = shape[field];
      const takesText = candidates('').some((v) => schema.safeParse(v).success);
      if (!takesText) continue;
      it(`${type.method}: ${field}`, () => {
        for (const bad of BAD) {
          // Commands and environment values carry any text but NUL (execve cannot); everything else no control character.
          if (bad !== '\u0000' && (field === 'command' || field === 'inputs')) continue;
          for (const v of candidates(bad)) {
            const clean = JSON.parse(JSON.stringify(v).split(JSON.stringify(bad).slice(1, -1)).join(''));
            if (!schema.safeParse(clean).success) continue;
            assert.equal(schema.safeParse(v).success, false, `${type.method} ${field} took ${JSON.stringify(v)}`);
          }
        }
      });
    }
  }
});

describe('executions are per key', () => {
  const result = (execId: string, stdout: string): ExecResult => ({
    execId, sandboxId: 'sbx-0', environment: 'busybox', exitCode: 0, signal: null, stdout, stderr: '',
    stdoutTruncated: false, stderrTruncated: false, durationMs: 1, oomKilled: false, timedOut: false,
    pidsLimitHit: false, memoryPeakBytes: null, cpuTimeMs: null,
  });
  const A = keyAccess('key-a');
  const B = keyAccess('key-b');

  it('gives each key its own "job-1", hides the other\'s, and lets the admin reach both', async () => {
    const runs = new ExecutionService(async (p, _o, _s, access) => result(p.execId, `ran for ${access.keyId}`));
    try {
      await runs.run({ command: 'x', execId: 'job-1' }, {}, undefined, A);
      await runs.run({ command: 'x', execId: 'job-1' }, {}, undefined, B);
      assert.equal((await runs.get('job-1', 0, A)).result?.stdout, 'ran for key-a');
      assert.equal((await runs.get('job-1', 0, B)).result?.stdout, 'ran for key-b');
      const c = keyAccess('key-c');
      await assert.rejects(runs.get('job-1', 0, c), (e: Error) => e.name === 'ExecNotFound' && /no execution job-1/.test(e.message));
      assert.throws(() => runs.cancel('job-1', c), { name: 'ExecNotFound' });
      assert.throws(() => runs.log('job-1', 0, 10, c), { name: 'ExecNotFound' });
      assert.throws(() => runs.check('job-1', c), { name: 'ExecNotFound' });
      assert.match((await runs.get('job-1', 0, ADMIN)).result?.stdout ?? '', /ran for key-/);
    } finally {
      runs.close();
    }
  });
});

describe('revoking a key', () => {
  it('ends exactly the connections of that key, once', () => {
    const sessions = new KeySessions();
    const ended: string[] = [];
    const untrack = sessions.track(keyAccess('key-a'), () => ended.push('a1'));
    sessions.track(keyAccess('key-a'), () => ended.push('a2'));
    sessions.track(keyAccess('key-b'), () => ended.push('b'));
    sessions.track(ADMIN, () => ended.push('admin'));
    untrack();
    assert.equal(sessions.revoke('key-a'), 1);
    assert.deepEqual(ended, ['a2']);
    assert.equal(sessions.revoke('key-a'), 0);
    assert.deepEqual(ended, ['a2']);
  });
});
