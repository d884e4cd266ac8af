// Instances, TTLs, idle timeouts that understand activity, and orphan reaping, on the real runtime.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AgentStop,
  ErrorCodes,
  ExecRun,
  InstanceDestroy,
  InstanceGet,
  InstanceList,
  InstancePause,
  InstanceResume,
  InstanceStart,
  InstanceStop,
  PortForwardCreate,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxExpired,
  SandboxGet,
  SandboxPolicy,
  SandboxUnwatch,
  SandboxWatch,
  SnapshotCreate,
  SnapshotDelete,
  type RpcClient,
} from '../../agent/src/protocol';
import { ROOT, sleep, useStack, waitFor } from './stack';
import { COUNTER, consecutive, sh } from './snapshots.test';
import * as net from 'node:net';

const GRACE_MS = 1500;

async function state(c: RpcClient, sandboxId: string): Promise<string> {
  return (await c.request(SandboxGet, { sandboxId })).sandbox.state;
}

/** Every sandbox/expired notification the client sees, with when it arrived. */
function expirations(c: RpcClient) {
  const seen: { sandboxId: string; reason: string; action: string; at: number }[] = [];
  const sub = c.onNotification(SandboxExpired, (p) => seen.push({ ...p, at: Date.now() }));
  return { seen, dispose: () => sub.dispose() };
}

describe('instances and lifecycle (TTL, idle, orphans)', function () {
  this.timeout(300_000);
  const env = useStack({ env: { FORKSPACE_ORPHAN_GRACE_MS: String(GRACE_MS) } });
  const c = () => env.client();

  it('an instance paused and resumed keeps its process state; stopped and resumed continues from its snapshot', async () => {
    const { instance } = await c().request(InstanceStart, { environment: 'python', command: ['python3', '-c', COUNTER] });
    assert.equal(instance.state, 'running');
    assert.equal(instance.policy.instance, true);
    assert.equal(instance.policy.detached, true);
    await sleep(400);
    const pid = (await sh(c(), instance.id, 'cat /proc/1/stat')).split(' ')[0];
    assert.equal((await c().request(InstancePause, { instanceId: instance.id })).instance.state, 'paused');
    await assert.rejects(c().request(SandboxExec, { sandboxId: instance.id, command: 'true' }), (e: ProtocolError) => e.code === ErrorCodes.SandboxState);
    assert.equal((await c().request(InstanceResume, { instanceId: instance.id })).instance.state, 'running');
    await sleep(200);
    const before = consecutive(await sh(c(), instance.id, 'cat /root/count'));
    assert.equal((await sh(c(), instance.id, 'cat /proc/1/stat')).split(' ')[0], pid, 'the same process, not a new one');

    const stopped = await c().request(InstanceStop, { instanceId: instance.id });
    assert.equal(stopped.instance.state, 'stopped');
    assert.ok(stopped.snapshotId.startsWith('snap-'));
    const listed = (await c().request(InstanceList, {})).instances.map((i) => i.id);
    assert.ok(listed.includes(instance.id));
    assert.equal((await c().request(InstanceResume, { instanceId: instance.id })).instance.state, 'running');
    await sleep(300);
    assert.ok(consecutive(await sh(c(), instance.id, 'cat /root/count')) > before, 'counting continues after the stop');

    // The persistent execution mode runs in it, with its state.
    const r = await c().request(ExecRun, { mode: 'persistent', sandboxId: instance.id, command: 'test -s /root/count && echo kept' });
    assert.equal(r.stdout.trim(), 'kept');
    await assert.rejects(c().request(ExecRun, { mode: 'persistent', command: 'true' }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams);
    await c().request(InstanceDestroy, { instanceId: instance.id });
    await assert.rejects(c().request(InstanceGet, { instanceId: instance.id }), (e: ProtocolError) => e.code === ErrorCodes.SandboxNotFound);
  });

  it('an idle instance with an open watch is not stopped; after the watch ends it is, once the idle timeout passes', async () => {
    const idle = 1500;
    const exp = expirations(c());
    const { instance } = await c().request(InstanceStart, { environment: 'busybox', idleTimeoutMs: idle });
    assert.equal(instance.policy.idleTimeoutMs, idle);
    const { watchId } = await c().request(SandboxWatch, { sandboxId: instance.id });
    await sleep(idle * 2.5);
    assert.equal(await state(c(), instance.id), 'running', 'a watched sandbox is active');

    // A running command is activity too: it outlasts the idle timeout.
    await c().request(SandboxUnwatch, { watchId });
    const released = Date.now();
    const r = await c().request(SandboxExec, { sandboxId: instance.id, command: `sleep ${(idle * 2) / 1000}` });
    assert.equal(r.exitCode, 0);
    assert.equal(await state(c(), instance.id), 'running', 'a sandbox running a command is active');
    const commandEnded = Date.now();

    await waitFor(async () => (await state(c(), instance.id)) === 'stopped', 20_000, 'the idle instance to stop');
    const e = exp.seen.find((x) => x.sandboxId === instance.id);
    assert.ok(e, 'a sandbox/expired notification was sent');
    assert.deepEqual([e.reason, e.action], ['idle', 'snapshot-then-stop']);
    assert.ok(e.at - commandEnded >= idle - 50, `stopped ${e.at - commandEnded} ms after the last activity (timeout ${idle})`);
    assert.ok(e.at - released >= idle * 2, 'the command kept it active');
    exp.dispose();
    // It stopped at a snapshot: resuming brings it back.
    assert.equal((await c().request(InstanceResume, { instanceId: instance.id })).instance.state, 'running');
    await c().request(InstanceDestroy, { instanceId: instance.id });
  });

  it('an open forwarded connection is activity; closing it starts the idle time', async () => {
    const idle = 1200;
    const { sandbox } = await c().request(SandboxCreate, {
      environment: 'python',
      command: ['python3', '-c', 'import socket\ns=socket.socket(); s.bind(("127.0.0.1", 9000)); s.listen()\nwhile True:\n  c,_=s.accept(); c.recv(1); c.close()'],
      idleTimeoutMs: idle,
      onExpiry: 'stop',
    });
    await sleep(500);
    const fwd = await c().request(PortForwardCreate, { sandboxId: sandbox.id, port: 9000 });
    const sock = net.connect(fwd.hostPort, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    await sleep(idle * 2.5);
    assert.equal(await state(c(), sandbox.id), 'running', 'an open forwarded connection keeps it active');
    sock.destroy();
    await waitFor(async () => (await state(c(), sandbox.id)) === 'exited', 10_000, 'the idle sandbox to stop');
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
  });

  it('a TTL ends a sandbox even while it is busy, with the chosen action', async () => {
    const exp = expirations(c());
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox', ttlMs: 1500, onExpiry: 'destroy' });
    const t0 = Date.now();
    const run = c().request(SandboxExec, { sandboxId: sandbox.id, command: 'sleep 30' });
    const r = await run;
    assert.ok(Date.now() - t0 < 15_000, 'the TTL cut the command short');
    assert.notEqual(r.exitCode, 0);
    await waitFor(async () => (await state(c(), sandbox.id).catch(() => 'gone')) === 'gone', 10_000, 'the sandbox to be destroyed');
    assert.deepEqual(
      exp.seen.filter((x) => x.sandboxId === sandbox.id).map((x) => [x.reason, x.action]),
      [['ttl', 'destroy']],
    );
    exp.dispose();

    // pause as the action; resuming afterwards is not undone by the spent TTL.
    const { sandbox: p } = await c().request(SandboxCreate, { environment: 'busybox', ttlMs: 800, onExpiry: 'pause' });
    await waitFor(async () => (await state(c(), p.id)) === 'paused', 10_000, 'the TTL to pause it');
    await assert.rejects(c().request(InstanceResume, { instanceId: p.id }), (e: ProtocolError) => e.code === ErrorCodes.SandboxNotFound && /not an instance/.test(e.message));
    await c().request(SandboxPolicy, { sandboxId: p.id, instance: true });
    await c().request(InstanceResume, { instanceId: p.id });
    await sleep(1500);
    assert.equal(await state(c(), p.id), 'running', 'a spent TTL does not pause it again');
    await c().request(SandboxDestroy, { sandboxId: p.id });
  });

  it('rejects bad lifecycle values with a clear error', async () => {
    await assert.rejects(
      c().request(SandboxCreate, { environment: 'busybox', ttlMs: 0 }),
      (e: ProtocolError) => e.code === ErrorCodes.InvalidParams && /ttlMs/.test(e.message),
    );
    await assert.rejects(
      c().request(SandboxCreate, { environment: 'busybox', onExpiry: 'explode' as never }),
      (e: ProtocolError) => e.code === ErrorCodes.InvalidParams,
    );
    await assert.rejects(c().request(SandboxWatch, { sandboxId: 'sbx-nope' }), (e: ProtocolError) => e.code === ErrorCodes.SandboxNotFound);
    await assert.rejects(c().request(SandboxUnwatch, { watchId: 'watch-nope' }), (e: ProtocolError) => /no hold/.test(e.message));
  });

  it('killing the client leaves no orphan after the grace period; detached sandboxes stay', async () => {
    const stack = env.stack();
    // A separate client process: creates one attached and one detached sandbox, prints their ids, waits.
    const script = `
      const { connectUnixSocket, RpcClient, Initialize, SandboxCreate, PROTOCOL_VERSION } = require(${JSON.stringify(path.join(ROOT, 'agent/src/protocol'))});
      (async () => {
        const c = new RpcClient(await connectUnixSocket(${JSON.stringify(stack.config.agentSocket)}));
        await c.request(Initialize, { protocolVersion: PROTOCOL_VERSION, clientName: 'doomed' });
        const a = await c.request(SandboxCreate, { environment: 'busybox' });
        const d = await c.request(SandboxCreate, { environment: 'busybox', detached: true });
        console.log(JSON.stringify([a.sandbox.id, d.sandbox.id]));
        setInterval(() => {}, 1000);
      })();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(d.toString()));
      child.once('exit', (code) => reject(new Error(`client exited ${code}`)));
    });
    const [attached, detached] = JSON.parse(line) as [string, string];
    assert.equal(await state(c(), attached), 'running');
    const killed = Date.now();
    child.kill('SIGKILL');
    await sleep(GRACE_MS / 2);
    assert.equal(await state(c(), attached), 'running', 'the grace period lets a client reconnect');
    await waitFor(async () => (await state(c(), attached).catch(() => 'gone')) === 'gone', 15_000, 'the orphan to be reaped');
    assert.ok(Date.now() - killed >= GRACE_MS);
    assert.equal(await state(c(), detached), 'running');
    const cg = (await stack.leftovers()).filter((l) => l.includes(attached));
    assert.deepEqual(cg, [], 'nothing of the orphan is left on the host');
    await c().request(SandboxDestroy, { sandboxId: detached });
  });

  it('a sandbox owned by a killed agent is reaped too (the runtime sees the agent go)', async () => {
    const stack = env.stack();
    const other = await stack.client();
    const { sandbox } = await other.request(SandboxCreate, { environment: 'busybox' });
    await stack.killAgent();
    await stack.startAgent();
    const fresh = await stack.client();
    await waitFor(async () => (await state(fresh, sandbox.id).catch(() => 'gone')) === 'gone', 15_000, 'the orphan of the dead agent');
  });

  it('instances come back after the agent and runtime restart; a stopped one stays stopped', async () => {
    const stack = env.stack();
    let client = await stack.client();
    const { instance: running } = await client.request(InstanceStart, { environment: 'python', command: ['python3', '-c', COUNTER] });
    const { instance: parked } = await client.request(InstanceStart, { environment: 'busybox' });
    await client.request(InstanceStop, { instanceId: parked.id });
    const { snapshot: base } = await client.request(SnapshotCreate, { sandboxId: running.id });
    await sleep(300);
    await client.request(AgentStop, { stopRuntime: true });
    await waitFor(() => !fs.existsSync(stack.config.runtimeSocket) && !fs.existsSync(stack.config.agentSocket), 30_000, 'agent and runtime to stop');
    await stack.startAgent();
    client = await stack.client();
    await waitFor(async () => (await client.request(InstanceGet, { instanceId: running.id })).instance.state === 'running', 30_000, 'the instance to start again');
    assert.ok(consecutive(await sh(client, running.id, 'cat /root/count')) > 0);
    assert.equal((await client.request(InstanceGet, { instanceId: parked.id })).instance.state, 'stopped');

    // From a snapshot, with a TTL.
    const { instance: fromSnap } = await client.request(InstanceStart, { snapshotId: base.id, ttlMs: 60_000 });
    assert.equal(fromSnap.originSnapshot, base.id);
    assert.equal(fromSnap.policy.ttlMs, 60_000);
    for (const id of [running.id, parked.id, fromSnap.id]) await client.request(InstanceDestroy, { instanceId: id });
    await client.request(SnapshotDelete, { snapshotId: base.id });
  });
});
