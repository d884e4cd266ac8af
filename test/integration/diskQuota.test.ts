// Per-sandbox disk limits (limits.diskBytes, btrfs quotas on each sandbox's layer): a write past the
// limit fails inside the sandbox with EDQUOT while other sandboxes and the runtime carry on, deleting
// frees the room, branches get their snapshot's limit (or their own), one-run sandboxes (cold and from a
// warm pool) are bounded too, the default shows in sandbox/get, and the CLI's --disk sets it. A runtime
// without quotas (--fs-store copy) refuses a disk limit instead of ignoring it.
import { strict as assert } from 'node:assert';
import {
  ErrorCodes,
  ExecRun,
  FilesWrite,
  PoolConfigure,
  PoolList,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxGet,
  SandboxList,
  SnapshotBranch,
  SnapshotCreate,
  type RpcClient,
} from '../../agent/src/protocol';
import { useStack } from './stack';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Writes `mib` MiB into `file` inside a sandbox; the shell's view of how it went. */
const WRITE = (file: string, mib: number) => `dd if=/dev/zero of=${file} bs=1M count=${mib} 2>&1; echo "rc=$?"`;

async function write(c: RpcClient, sandboxId: string, file: string, mib: number): Promise<{ ok: boolean; out: string }> {
  const r = await c.request(SandboxExec, { sandboxId, command: WRITE(file, mib) });
  return { ok: /rc=0\s*$/.test(r.stdout), out: r.stdout };
}

function assertQuotaHit(w: { ok: boolean; out: string }, what: string): void {
  assert.ok(!w.ok, `${what}: the write went through: ${w.out}`);
  assert.match(w.out, /Disk quota exceeded|No space left on device/, what);
}

describe('per-sandbox disk limits (real btrfs quotas)', function () {
  this.timeout(240_000);
  const env = useStack();
  const c = () => env.client();
  const made: string[] = [];
  const create = async (limits?: { diskBytes?: number }) => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox', limits });
    made.push(sandbox.id);
    return sandbox;
  };
  env.beforeStop(async () => {
    for (const sandboxId of made) await c().request(SandboxDestroy, { sandboxId }).catch(() => {});
  });

  it('shows the default limit (10 GiB) in sandbox/get, and an asked-for one', async () => {
    const plain = await create();
    assert.equal(plain.spec.diskBytes, 10 * GiB);
    assert.equal((await c().request(SandboxGet, { sandboxId: plain.id })).sandbox.spec.diskBytes, 10 * GiB);
    const small = await create({ diskBytes: 64 * MiB });
    assert.equal((await c().request(SandboxGet, { sandboxId: small.id })).sandbox.spec.diskBytes, 64 * MiB);
    await assert.rejects(c().request(SandboxCreate, { environment: 'busybox', limits: { diskBytes: 1 * MiB } }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams && /16 MiB/.test(e.message));
    await assert.rejects(
      c().request(SandboxCreate, { environment: 'busybox', limits: { diskBytes: 1024 * GiB } }),
      (e: ProtocolError) => e.code === ErrorCodes.InvalidParams && /disk pool/.test(e.message),
    );
  });

  it('stops writes past the limit with EDQUOT while another sandbox and the runtime carry on; deleting frees it', async () => {
    const small = await create({ diskBytes: 64 * MiB });
    const other = await create();
    const [hit, fine, listed] = await Promise.all([
      write(c(), small.id, '/root/big', 128),
      write(c(), other.id, '/root/fine', 128),
      c().request(SandboxList, {}),
    ]);
    assertQuotaHit(hit, 'past the limit');
    assert.ok(fine.ok, `the other sandbox could not write: ${fine.out}`);
    assert.ok(listed.sandboxes.length >= 2);
    // The runtime's own writes into it are bounded by the same limit, with an error that says so.
    await assert.rejects(
      c().request(FilesWrite, { sandboxId: small.id, path: '/root/more', content: Buffer.alloc(4 * MiB).toString('base64'), encoding: 'base64' }),
      (e: ProtocolError) => e.code === ErrorCodes.SandboxState && /disk limit is reached/.test(e.message),
    );
    const removed = await c().request(SandboxExec, { sandboxId: small.id, command: 'rm -f /root/big /root/more && echo gone' });
    assert.equal(removed.stdout, 'gone\n');
    assert.ok((await write(c(), small.id, '/root/again', 48)).ok, 'room again after deleting');
  });

  it('gives branches their snapshot sandbox\'s limit, or their own', async () => {
    const parent = await create({ diskBytes: 64 * MiB });
    assert.ok((await write(c(), parent.id, '/root/data', 40)).ok);
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: parent.id });
    const inherited = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 1 });
    const own = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 1, limits: { diskBytes: 256 * MiB } });
    const [a, b] = [inherited.branches[0].sandboxId, own.branches[0].sandboxId];
    made.push(a, b);
    assert.equal((await c().request(SandboxGet, { sandboxId: a })).sandbox.spec.diskBytes, 64 * MiB);
    assert.equal((await c().request(SandboxGet, { sandboxId: b })).sandbox.spec.diskBytes, 256 * MiB);
    assertQuotaHit(await write(c(), a, '/root/more', 96), 'a branch with its snapshot\'s 64 MiB');
    assert.ok((await write(c(), b, '/root/more', 96)).ok, 'a branch with its own 256 MiB');
    assert.equal((await c().request(SandboxExec, { sandboxId: b, command: 'wc -c < /root/data' })).stdout.trim(), String(40 * MiB), 'the snapshot\'s files are there');
  });

  it('bounds one-run sandboxes, cold and from a warm pool', async () => {
    const run = (diskBytes?: number) =>
      c().request(ExecRun, { environment: 'busybox', command: WRITE('/root/f', 64), limits: diskBytes ? { diskBytes } : undefined });
    const cold = await run(32 * MiB);
    assert.notEqual(cold.pooled, true, 'a cold start');
    assert.match(cold.stdout, /Disk quota exceeded|No space left/);
    assert.match(cold.stdout, /rc=1/);
    assert.match((await run()).stdout, /rc=0/, 'the default limit leaves room for 64 MiB');
    await c().request(PoolConfigure, { environment: 'busybox', min: 1, max: 1 });
    try {
      const deadline = Date.now() + 30_000;
      while (!(await c().request(PoolList, {})).pools.some((p) => p.environment === 'busybox' && p.ready > 0)) {
        if (Date.now() > deadline) throw new Error('the busybox pool never filled');
        await new Promise((r) => setTimeout(r, 100));
      }
      const warm = await run(32 * MiB);
      assert.equal(warm.pooled, true, 'taken from the pool');
      assert.match(warm.stdout, /rc=1/, `a pooled sandbox gets the run's disk limit: ${warm.stdout}`);
    } finally {
      await c().request(PoolConfigure, { environment: 'busybox', min: 0, max: 0 });
    }
  });

  it('takes --disk from the CLI for run, sandbox start and branch', async () => {
    const stack = env.stack();
    const run = await stack.cli(['run', '--env', 'busybox', '--disk', '32M', '--', 'sh', '-c', 'dd if=/dev/zero of=/root/f bs=1M count=64']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /Disk quota exceeded|No space left/);
    const started = await stack.cli(['sandbox', 'start', '--env', 'busybox', '--disk', '48M']);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    made.push(id);
    assert.equal((await c().request(SandboxGet, { sandboxId: id })).sandbox.spec.diskBytes, 48 * MiB);
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: id });
    const branched = await stack.cli(['branch', snapshot.id, '-n', '1', '--disk', '80M']);
    assert.equal(branched.code, 0, branched.stderr);
    const branchId = branched.stdout.trim().split(/\s+/)[0];
    made.push(branchId);
    assert.equal((await c().request(SandboxGet, { sandboxId: branchId })).sandbox.spec.diskBytes, 80 * MiB);
    const bad = await stack.cli(['sandbox', 'start', '--env', 'busybox', '--disk', 'lots']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--disk "lots" is not a size/);
  });
});

describe('disk limits without quotas (--fs-store copy)', function () {
  this.timeout(120_000);
  const env = useStack({ env: { FORKSPACE_FS_STORE: 'copy' } });
  const c = () => env.client();

  it('refuses a disk limit it cannot enforce, and reports none by default', async () => {
    const unenforced = (e: ProtocolError) => e.code === ErrorCodes.Unsupported && /cannot be enforced/.test(e.message) && /FORKSPACE_FS_STORE=btrfs/.test(e.message);
    await assert.rejects(c().request(SandboxCreate, { environment: 'busybox', limits: { diskBytes: 64 * MiB } }), unenforced);
    await assert.rejects(c().request(ExecRun, { environment: 'busybox', command: 'true', limits: { diskBytes: 64 * MiB } }), unenforced);
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox' });
    assert.equal(sandbox.spec.diskBytes, null, 'no limit is enforced, and sandbox/get says so');
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
  });
});
