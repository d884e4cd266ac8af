// Snapshots outlive the agent and the runtime: graceful restarts, and SIGKILL at any point of a snapshot
// (the catalog never lists a broken snapshot, and nothing half-made stays on disk).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AgentStop,
  ErrorCodes,
  ProtocolError,
  SandboxCreate,
  SandboxGet,
  SandboxOutput,
  SandboxPause,
  SandboxStart,
  SnapshotCreate,
  SnapshotList,
  SnapshotRestore,
  SandboxDestroy,
  type RpcClient,
} from '../../agent/src/protocol';
import { processesInCgroup, sleep, useStack, waitFor } from './stack';
import { COUNTER, consecutive, sh } from './snapshots.test';

const HOLDER = 'import os, time\ndata = os.urandom(60 << 20)\nprint("ready", flush=True)\nwhile True: time.sleep(1)';

describe('durability of snapshots (real CRIU)', function () {
  this.timeout(300_000);
  const env = useStack();

  async function restartStack(graceful: boolean): Promise<RpcClient> {
    const stack = env.stack();
    if (graceful) {
      const c = await stack.client();
      await c.request(AgentStop, { stopRuntime: true });
      await waitFor(() => !fs.existsSync(stack.config.runtimeSocket) && !fs.existsSync(stack.config.agentSocket), 30_000, 'agent and runtime to stop');
    } else {
      process.kill(stack.runtimePid(), 'SIGKILL');
      await stack.killAgent();
    }
    await stack.startAgent();
    return stack.client();
  }

  it('restores after the agent and the runtime are both restarted', async () => {
    let c = env.client();
    const { sandbox } = await c.request(SandboxCreate, { environment: 'python', command: ['python3', '-c', COUNTER] });
    await sleep(300);
    const { snapshot } = await c.request(SnapshotCreate, { sandboxId: sandbox.id });
    c = await restartStack(true);
    // A graceful stop stops running sandboxes at a fresh snapshot, so they start again as they were.
    assert.equal((await c.request(SandboxGet, { sandboxId: sandbox.id })).sandbox.state, 'stopped');
    const started = await c.request(SandboxStart, { sandboxId: sandbox.id });
    assert.notEqual(started.snapshotId, snapshot.id);
    consecutive(await sh(c, sandbox.id, 'cat /root/count'));
    const restored = await c.request(SnapshotRestore, { snapshotId: snapshot.id });
    await sleep(200);
    consecutive(await sh(c, restored.sandboxId, 'cat /root/count'));

    c = await restartStack(false);
    // After SIGKILL the processes are gone, but every snapshot is still there and restores.
    const after = await c.request(SnapshotRestore, { snapshotId: snapshot.id });
    await sleep(200);
    consecutive(await sh(c, after.sandboxId, 'cat /root/count'));
    assert.equal((await c.request(SandboxGet, { sandboxId: sandbox.id })).sandbox.state, 'stopped');
    for (const id of [sandbox.id, restored.sandboxId, after.sandboxId]) await c.request(SandboxDestroy, { sandboxId: id });
  });

  it('leaves no process of a paused sandbox behind when the runtime is SIGKILLed', async () => {
    const stack = env.stack();
    let c = await stack.client();
    const { sandbox } = await c.request(SandboxCreate, { environment: 'busybox', command: 'while true; do sleep 1; done' });
    await c.request(SandboxPause, { sandboxId: sandbox.id });
    const runtime = stack.runtimePid();
    process.kill(runtime, 'SIGKILL');
    // The spawner, its child, sees the runtime's end close and kills what it started; frozen processes
    // only die once thawed, so without that they (and the spawner waiting for them) stayed for good.
    await waitFor(async () => (await processesInCgroup(stack.cgroupParent)).length === 0, 10_000, "the paused sandbox's processes to die");
    await stack.killAgent();
    await stack.startAgent();
    c = await stack.client();
    assert.ok(['failed', 'stopped'].includes((await c.request(SandboxGet, { sandboxId: sandbox.id })).sandbox.state));
    await c.request(SandboxDestroy, { sandboxId: sandbox.id });
  });

  for (const delayMs of [0, 15, 40, 80, 160]) {
    it(`never lists a broken snapshot when the runtime is SIGKILLed ${delayMs} ms into one`, async () => {
      const stack = env.stack();
      let c = await stack.client();
      const sandboxId = await startHolder(c);
      const pending = c.request(SnapshotCreate, { sandboxId }).then(
        (r) => r.snapshot.id,
        (e: ProtocolError) => {
          assert.equal(e.code, ErrorCodes.ConnectionClosed, e.message);
          return undefined;
        },
      );
      await sleep(delayMs);
      process.kill(stack.runtimePid(), 'SIGKILL');
      const finished = await pending;
      c = await stack.client();
      const { snapshots } = await c.request(SnapshotList, {});
      const listed = new Set(snapshots.map((s) => s.id));
      if (finished) assert.ok(listed.has(finished), 'a snapshot the runtime reported done was lost');
      // Every listed snapshot is whole: it restores and its process runs.
      for (const s of snapshots.filter((x) => x.sandboxId === sandboxId)) {
        const r = await c.request(SnapshotRestore, { snapshotId: s.id });
        assert.match(await sh(c, r.sandboxId, 'cat /proc/1/cmdline'), /python3/);
        await c.request(SandboxDestroy, { sandboxId: r.sandboxId });
      }
      // Nothing half-made is left on disk: images and layers belong to listed snapshots only.
      const data = stack.config.dataDir;
      for (const dir of [path.join(data, 'snapshots'), path.join(data, 'fs', 'snapshots')]) {
        const present = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
        assert.deepEqual(present.filter((id) => !listed.has(id)), [], `orphans in ${dir}`);
      }
      const state = (await c.request(SandboxGet, { sandboxId })).sandbox.state;
      assert.ok(['failed', 'stopped'].includes(state), `the killed sandbox is ${state}`);
      await c.request(SandboxDestroy, { sandboxId });
    });
  }

  it('had at least one of those kills land inside a snapshot, which reconciliation then removed', () => {
    const log = fs.readFileSync(path.join(env.stack().config.logDir, 'forkspace-rt.log'), 'utf8');
    assert.match(log, /snapshots_dropped: [1-9]/, 'no kill interrupted a snapshot: the test did not test what it claims');
  });

  it('completes a snapshot whose agent is SIGKILLed while it is taken', async () => {
    const stack = env.stack();
    let c = await stack.client();
    const sandboxId = await startHolder(c);
    void c.request(SnapshotCreate, { sandboxId, label: 'orphaned-request' }).catch(() => {});
    await sleep(20);
    await stack.killAgent();
    await stack.startAgent();
    c = await stack.client();
    await waitFor(async () => (await c.request(SnapshotList, {})).snapshots.some((s) => s.label === 'orphaned-request'), 20_000, 'the snapshot to complete');
    const snap = (await c.request(SnapshotList, {})).snapshots.find((s) => s.label === 'orphaned-request')!;
    const r = await c.request(SnapshotRestore, { snapshotId: snap.id });
    assert.equal((await c.request(SandboxGet, { sandboxId })).sandbox.state, 'running');
    for (const id of [sandboxId, r.sandboxId]) await c.request(SandboxDestroy, { sandboxId: id });
  });
});

async function startHolder(c: RpcClient): Promise<string> {
  let id = '';
  const ready = new Promise<void>((resolve) => {
    const sub = c.onNotification(SandboxOutput, (o) => {
      if (o.sandboxId === id && o.data.includes('ready')) {
        sub.dispose();
        resolve();
      }
    });
  });
  id = (await c.request(SandboxCreate, { environment: 'python', limits: { memoryBytes: 512 << 20 }, command: ['python3', '-c', HOLDER] })).sandbox.id;
  await ready;
  return id;
}
