// Warm pools on the real runtime: a pooled run behaves exactly like a cold one (pid 1, stdin, env, cwd,
// files, limits, timeouts, errors), pools refill, grow with demand and shrink back, and nothing of theirs
// is left when the runtime stops. (How much faster a pool hit is: bench/pools.ts.)
import { strict as assert } from 'node:assert';
import { ErrorCodes, ExecRun, PoolConfigure, PoolList, PoolSnapshot, ProtocolError, SandboxCreate, SandboxDestroy, SnapshotBranch, SnapshotCreate, SnapshotDelete, SnapshotRestore, type RpcClient } from '../../agent/src/protocol';
import { COUNTER, consecutive, sh } from './snapshots.test';
import { sleep } from './stack';
import { useStack, waitFor } from './stack';

async function pool(c: RpcClient, environment = 'busybox') {
  const p = (await c.request(PoolList, {})).pools.find((x) => x.environment === environment);
  assert.ok(p, `no pool for ${environment}`);
  return p;
}

describe('warm pools', function () {
  this.timeout(120_000);
  const env = useStack({ env: { FORKSPACE_POOLS: 'busybox=1-3' } });
  const c = () => env.client();
  const ready = (n = 1) => waitFor(async () => (await pool(c())).ready >= n, 20_000, `${n} ready sandbox(es)`);

  it('a pooled run is a run: the command is pid 1 with its stdin, env, cwd and files', async () => {
    await ready();
    const r = await c().request(ExecRun, {
      environment: 'busybox',
      command: 'echo "pid $$"; cat; echo "$GREETING"; pwd; cat data.txt; hostname',
      stdin: 'from stdin\n',
      env: { GREETING: 'hello' },
      cwd: '/work/dir',
      files: [{ path: 'data.txt', content: 'a file\n' }],
    });
    assert.equal(r.pooled, true, 'taken from the pool');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, `pid 1\nfrom stdin\nhello\n/work/dir\na file\n${r.sandboxId}\n`);
    await ready();
    const quiet = await c().request(ExecRun, { environment: 'busybox', command: 'cat; echo done' });
    assert.equal(quiet.pooled, true);
    assert.equal(quiet.stdout, 'done\n', 'no stdin given: stdin is /dev/null, as cold');
  });

  it('limits, timeouts, exit codes and errors are those of a cold run', async () => {
    await ready();
    const pids = await c().request(ExecRun, { environment: 'busybox', command: 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait', limits: { pids: 4 } });
    assert.equal(pids.pooled, true);
    assert.equal(pids.pidsLimitHit, true, 'the run\'s limits are written when the sandbox is taken');
    await ready();
    const roomy = await c().request(ExecRun, { environment: 'busybox', command: 'for i in 1 2 3 4 5 6 7 8; do sleep 0.1 & done; wait' });
    assert.equal(roomy.pooled, true);
    assert.equal(roomy.pidsLimitHit, false, 'and do not carry over to the next run');
    await ready();
    const t = await c().request(ExecRun, { environment: 'busybox', command: 'sleep 10', timeoutMs: 300 });
    assert.equal(t.pooled, true);
    assert.equal(t.timedOut, true);
    await ready();
    assert.equal((await c().request(ExecRun, { environment: 'busybox', command: 'exit 42' })).exitCode, 42);
    await ready();
    await assert.rejects(
      c().request(ExecRun, { environment: 'busybox', command: ['no-such-command'] }),
      (e: ProtocolError) => e.code === ErrorCodes.CommandNotFound && /no-such-command/.test(e.message),
    );
    const after = await c().request(ExecRun, { environment: 'busybox', command: 'echo fine' });
    assert.equal(after.stdout, 'fine\n', 'a failed start leaves the pool working');
  });

  it('refills after a take, grows with demand up to max, and can be turned off', async () => {
    await ready();
    const before = await pool(c());
    await Promise.all(Array.from({ length: 6 }, () => c().request(ExecRun, { environment: 'busybox', command: ['true'] })));
    const grown = await pool(c());
    assert.ok(grown.misses > before.misses, 'concurrent runs found the pool empty');
    assert.ok(grown.target > 1 && grown.target <= 3, `target ${grown.target} within 1..3`);
    await ready(grown.target);
    assert.ok(grown.hits > before.hits);

    await assert.rejects(c().request(PoolConfigure, { environment: 'busybox', min: 3, max: 2 }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams);
    await assert.rejects(c().request(PoolConfigure, { environment: 'nope', min: 0, max: 1 }), (e: ProtocolError) => e.code === ErrorCodes.EnvironmentUnknown);
    const off = await c().request(PoolConfigure, { environment: 'busybox', min: 0, max: 0 });
    assert.equal(off.max, 0);
    await waitFor(async () => (await pool(c())).ready === 0, 10_000, 'the pool to empty');
    const cold = await c().request(ExecRun, { environment: 'busybox', command: ['true'] });
    assert.equal(cold.pooled, undefined, 'with the pool off, runs start cold');
    await waitFor(async () => (await env.stack().leftovers()).length === 0, 10_000, 'the pool\'s sandboxes to be gone');
    await c().request(PoolConfigure, { environment: 'busybox', min: 1, max: 2 });
    await ready();
  });
});

describe('snapshot pools', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();
  const copies = async (snapshotId: string) => (await c().request(PoolList, {})).snapshots.find((p) => p.snapshotId === snapshotId);

  it('branches take restored, frozen copies first; each continues from the snapshot; the pool refills', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'python', command: ['python3', '-c', COUNTER] });
    await sleep(400);
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    await assert.rejects(c().request(PoolSnapshot, { snapshotId: 'snap-nope', size: 1 }), (e: ProtocolError) => e.code === ErrorCodes.SnapshotNotFound);
    assert.equal((await c().request(PoolSnapshot, { snapshotId: snapshot.id, size: 2 })).size, 2);
    await waitFor(async () => (await copies(snapshot.id))?.ready === 2, 60_000, 'two frozen copies');
    await sleep(500);
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 3 });
    assert.deepEqual(branches.map((b) => b.pooled), [true, true, false], 'two from the pool, one restored by CRIU');
    await sleep(300);
    for (const b of branches) {
      // Frozen while they waited: the counter and its file still agree, and it counts on from the snapshot.
      const n = consecutive(await sh(c(), b.sandboxId, 'cat /root/count'));
      assert.ok(n > 0);
      assert.equal((await sh(c(), b.sandboxId, 'hostname')).trim(), b.sandboxId);
    }
    await waitFor(async () => (await copies(snapshot.id))?.ready === 2, 60_000, 'the pool to refill');
    const restored = await c().request(SnapshotRestore, { snapshotId: snapshot.id });
    assert.equal(restored.pooled, true, 'a restore takes a copy too');
    assert.equal((await copies(snapshot.id))?.hits, 3);

    for (const id of [sandbox.id, restored.sandboxId, ...branches.map((b) => b.sandboxId)]) await c().request(SandboxDestroy, { sandboxId: id });
    await c().request(SnapshotDelete, { snapshotId: snapshot.id });
    assert.equal(await copies(snapshot.id), undefined, 'deleting the snapshot removes its pool');
    await waitFor(async () => (await env.stack().leftovers()).length === 0, 20_000, 'the frozen copies to be gone');
  });
});
