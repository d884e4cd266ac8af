// Snapshots, restores and branches on real CRIU: processes continue from the snapshot with their files as
// they were, branches diverge independently (files and network), stop/start and pause/resume.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import {
  ErrorCodes,
  FilesRead,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxGet,
  SandboxOutput,
  SandboxPause,
  SandboxResume,
  SandboxStart,
  SandboxStop,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotGet,
  SnapshotRestore,
  type RpcClient,
} from '../../agent/src/protocol';
import { sleep, useStack, waitFor } from './stack';

/** A Python process that counts in memory and appends each value to a file and to its console. */
export const COUNTER = [
  'import time',
  'x = 0',
  'while True:',
  '    x += 1',
  '    with open("/root/count", "a") as f: f.write(f"{x}\\n")',
  '    print(x, flush=True)',
  '    time.sleep(0.05)',
].join('\n');

export async function sh(client: RpcClient, sandboxId: string, command: string): Promise<string> {
  const r = await client.request(SandboxExec, { sandboxId, command });
  assert.equal(r.exitCode, 0, `${command} in ${sandboxId}: ${r.stderr}`);
  return r.stdout;
}

/** The counter file must hold 1..n without gaps or repeats: memory and files come from the same instant. */
export function consecutive(text: string): number {
  const values = text.trim().split('\n').map(Number);
  values.forEach((v, i) => assert.equal(v, i + 1, `line ${i + 1} is ${v}: memory and file state diverged`));
  return values.length;
}

describe('snapshots and branches (real CRIU)', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();

  it('branches a counting process into 4 that each continue from the snapshot, with its files', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'python', command: ['python3', '-c', COUNTER] });
    await sleep(600);
    const { snapshot, timings } = await c().request(SnapshotCreate, { sandboxId: sandbox.id, label: 'counter' });
    assert.ok(timings.pauseMs > 0 && timings.pauseMs < timings.totalMs + 1);
    const atSnapshot = consecutive(await sh(c(), sandbox.id, 'cat /root/count'));
    await sleep(300);
    const later = consecutive(await sh(c(), sandbox.id, 'cat /root/count'));
    assert.ok(later > atSnapshot, 'the snapshotted sandbox keeps running');

    const firstPrinted = new Map<string, number>();
    const sub = c().onNotification(SandboxOutput, (o) => {
      if (!firstPrinted.has(o.sandboxId)) firstPrinted.set(o.sandboxId, Number(o.data.split('\n')[0]));
    });
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 4 });
    assert.equal(branches.length, 4);
    await sleep(500);
    sub.dispose();
    const ids = branches.map((b) => b.sandboxId);
    const counts: number[] = [];
    for (const id of ids) {
      const n = consecutive(await sh(c(), id, 'cat /root/count'));
      counts.push(n);
      // The branch's first output continues exactly where the snapshot's file ended.
      const first = firstPrinted.get(id);
      assert.ok(first !== undefined, `no console output from ${id}`);
      const text = await sh(c(), id, 'head -n ' + first + ' /root/count | tail -n 1');
      assert.equal(Number(text.trim()), first);
      assert.equal((await sh(c(), id, 'hostname')).trim(), id);
    }
    assert.equal(new Set(ids).size, 4);

    // Writes in one branch are invisible to the others and to the original.
    await sh(c(), ids[0], 'echo only-in-branch-0 > /root/marker');
    for (const id of [...ids.slice(1), sandbox.id]) {
      assert.equal((await sh(c(), id, 'test -e /root/marker && echo seen || echo absent')).trim(), 'absent');
    }
    const { snapshot: got } = await c().request(SnapshotGet, { snapshotId: snapshot.id });
    assert.equal(got.label, 'counter');
    assert.equal(got.sandboxId, sandbox.id);
    for (const id of [...ids, sandbox.id]) await c().request(SandboxDestroy, { sandboxId: id });
  });

  it('branches an HTTP server: every branch serves on its own network namespace', async () => {
    const { sandbox } = await c().request(SandboxCreate, {
      environment: 'python',
      command: ['python3', '-m', 'http.server', '8000', '--bind', '127.0.0.1', '--directory', '/srv'],
      files: [{ path: '/srv/index.html', content: 'served from the snapshot\n' }],
    });
    const fetch = "python3 -c \"import urllib.request,socket; print(socket.gethostname(), urllib.request.urlopen('http://127.0.0.1:8000/').read().decode().strip())\"";
    await waitUntilServing(c(), sandbox.id);
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 3 });
    for (const b of branches) {
      assert.equal((await sh(c(), b.sandboxId, fetch)).trim(), `${b.sandboxId} served from the snapshot`);
      // Each branch's loopback is its own: changing one branch's page changes only that branch.
      await sh(c(), b.sandboxId, `echo ${b.sandboxId} > /srv/index.html`);
    }
    for (const b of branches) assert.equal((await sh(c(), b.sandboxId, fetch)).trim(), `${b.sandboxId} ${b.sandboxId}`);
    assert.equal((await sh(c(), sandbox.id, fetch)).trim(), `${sandbox.id} served from the snapshot`);
    for (const id of [sandbox.id, ...branches.map((b) => b.sandboxId)]) await c().request(SandboxDestroy, { sandboxId: id });
  });

  it('pauses and resumes a sandbox, keeping its process state', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'python', command: ['python3', '-c', COUNTER] });
    await sleep(300);
    assert.equal((await c().request(SandboxPause, { sandboxId: sandbox.id })).state, 'paused');
    await assert.rejects(c().request(SandboxExec, { sandboxId: sandbox.id, command: 'true' }), (e: ProtocolError) => e.code === ErrorCodes.SandboxState);
    const stopped = consecutive(await readLayerFile(c(), sandbox.id));
    await sleep(400);
    assert.equal(consecutive(await readLayerFile(c(), sandbox.id)), stopped, 'a paused sandbox does not advance');
    assert.equal((await c().request(SandboxResume, { sandboxId: sandbox.id })).state, 'running');
    await sleep(300);
    assert.ok(consecutive(await sh(c(), sandbox.id, 'cat /root/count')) > stopped, 'it continues after resume');
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
  });

  it('snapshots, pauses and branches a shell that vforks all the time', async () => {
    // dash runs each command with vfork, and a 300-entry PATH keeps the child searching for a while before
    // its exec, so freezes keep landing while a parent waits on its vfork child: one snapshot in five
    // failed after CRIU's 10 s timeout ("Unseizable non-zombie ... state D") or the freezer never froze.
    const loop = 'PATH=$(seq -f /nonexistent/%g -s : 300):/usr/bin:/bin; i=0; while :; do i=$((i+1)); echo $i > /tmp/n; env >/dev/null; done';
    const { sandbox } = await c().request(SandboxCreate, { environment: 'python', command: ['sh', '-c', loop] });
    const count = async (id: string) => Number((await c().request(FilesRead, { id, path: '/tmp/n', encoding: 'utf8' })).content);
    let last;
    for (let i = 0; i < 20; i++) last = (await c().request(SnapshotCreate, { sandboxId: sandbox.id })).snapshot;
    for (let i = 0; i < 10; i++) {
      assert.equal((await c().request(SandboxPause, { sandboxId: sandbox.id })).state, 'paused');
      const held = await count(sandbox.id);
      await sleep(30);
      assert.equal(await count(sandbox.id), held, 'a paused sandbox does not advance');
      await c().request(SandboxResume, { sandboxId: sandbox.id });
    }
    const atSnapshot = await count(last!.id);
    const { branches } = await c().request(SnapshotBranch, { snapshotId: last!.id, count: 2 });
    try {
      // `echo > /tmp/n` truncates before it writes: a read in between sees nothing, so poll.
      for (const b of branches) await waitFor(async () => (await count(b.sandboxId)) > atSnapshot, 5000, `branch ${b.sandboxId} to run on from the snapshot`);
    } finally {
      for (const id of [sandbox.id, ...branches.map((b) => b.sandboxId)]) await c().request(SandboxDestroy, { sandboxId: id });
    }
  });

  it('refuses at once, and clearly, to snapshot a process stuck in vfork; snapshots it once the child has run', async () => {
    // posix_spawn is a vfork: its child opens the FIFO before its exec, and nobody reads the FIFO yet.
    const spawnBlocked = [
      'import os, time',
      "os.mkfifo('/tmp/f')",
      "os.posix_spawn('/bin/true', ['true'], {}, file_actions=[(os.POSIX_SPAWN_OPEN, 1, '/tmp/f', os.O_WRONLY, 0)])",
      "open('/tmp/spawned', 'w').close()",
      'time.sleep(1e6)',
    ].join('\n');
    const { sandbox } = await c().request(SandboxCreate, { environment: 'python', command: ['python3', '-c', spawnBlocked] });
    await sleep(500);
    const t0 = Date.now();
    await assert.rejects(
      c().request(SnapshotCreate, { sandboxId: sandbox.id }),
      (e: ProtocolError) => e.code === ErrorCodes.SandboxState && /is in vfork, waiting for its child .* to exec/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 8000, `the refusal took ${Date.now() - t0} ms (CRIU's own timeout is 10 s)`);
    assert.equal((await c().request(SandboxGet, { sandboxId: sandbox.id })).sandbox.state, 'running');
    assert.equal(await sh(c(), sandbox.id, 'cat /tmp/f; ls /tmp/spawned'), '/tmp/spawned\n', 'the spawn completes once the FIFO is read');
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 1 });
    assert.match(await sh(c(), branches[0].sandboxId, 'cat /proc/1/cmdline | tr "\\0" " "'), /^python3 -c import os/);
    for (const id of [sandbox.id, branches[0].sandboxId]) await c().request(SandboxDestroy, { sandboxId: id });
  });

  it('destroys a paused sandbox at once, leaving no process, cgroup or mount', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox', command: 'while true; do sleep 1; done' });
    await c().request(SandboxPause, { sandboxId: sandbox.id });
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
    // Frozen (v1 freezer) processes ignore SIGKILL until thawed: a destroy that did not thaw left them.
    assert.deepEqual((await env.stack().leftovers()).filter((l) => l.includes(sandbox.id)), []);
  });

  it('stops a sandbox at a snapshot and starts it again under the same id', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'python', command: ['python3', '-c', COUNTER] });
    await sleep(300);
    const stop = await c().request(SandboxStop, { sandboxId: sandbox.id });
    assert.equal((await c().request(SandboxGet, { sandboxId: sandbox.id })).sandbox.state, 'stopped');
    await assert.rejects(c().request(SandboxExec, { sandboxId: sandbox.id, command: 'true' }), /stopped/);
    const started = await c().request(SandboxStart, { sandboxId: sandbox.id });
    assert.equal(started.sandboxId, sandbox.id);
    assert.equal(started.snapshotId, stop.snapshot.id);
    await sleep(200);
    consecutive(await sh(c(), sandbox.id, 'cat /root/count'));
    assert.equal((await c().request(SandboxGet, { sandboxId: sandbox.id })).sandbox.state, 'running');
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
  });

  it('restores a large process lazily and KSM-merges its branches', async () => {
    const { sandbox } = await c().request(SandboxCreate, {
      environment: 'python',
      limits: { memoryBytes: 1024 * 1024 * 1024 },
      command: ['python3', '-c', 'import os, time\ndata = os.urandom(120 << 20)\nprint("ready", flush=True)\nwhile True: time.sleep(1)'],
    });
    await waitForOutput(c(), sandbox.id, 'ready');
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    assert.ok(snapshot.memoryBytes > 120 * 1024 * 1024);
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 });
    assert.ok(branches.every((b) => b.lazy), 'a 120 MB image restores with lazy pages');
    for (const b of branches) {
      const status = await sh(c(), b.sandboxId, 'grep -E "VmRSS" /proc/1/status; cat /proc/1/ksm_stat | grep merge_any');
      assert.match(status, /ksm_merge_any: yes/);
    }
    const restored = await c().request(SnapshotRestore, { snapshotId: snapshot.id });
    assert.equal(restored.lazy, true);
    for (const id of [sandbox.id, restored.sandboxId, ...branches.map((b) => b.sandboxId)]) await c().request(SandboxDestroy, { sandboxId: id });
  });

  it('refuses to snapshot while a command runs inside, and explains unknown ids', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox' });
    const running = c().request(SandboxExec, { sandboxId: sandbox.id, command: 'sleep 1' });
    await sleep(200);
    await assert.rejects(c().request(SnapshotCreate, { sandboxId: sandbox.id }), (e: ProtocolError) => e.code === ErrorCodes.SandboxState && /running exec/.test(e.message));
    await running;
    await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    await assert.rejects(c().request(SnapshotRestore, { snapshotId: 'snap-000000000000' }), (e: ProtocolError) => e.code === ErrorCodes.SnapshotNotFound);
    await assert.rejects(c().request(SandboxPause, { sandboxId: 'sbx-000000000000' }), (e: ProtocolError) => e.code === ErrorCodes.SandboxNotFound);
    await assert.rejects(c().request(SnapshotBranch, { snapshotId: 'x', count: 0 }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams);
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
  });
});

async function waitUntilServing(client: RpcClient, sandboxId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await client.request(SandboxExec, { sandboxId, command: "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8000))\"" });
    if (r.exitCode === 0) return;
    await sleep(100);
  }
  throw new Error('the HTTP server never came up');
}

async function waitForOutput(client: RpcClient, sandboxId: string, text: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${text}" from ${sandboxId}`)), 30_000);
    const sub = client.onNotification(SandboxOutput, (o) => {
      if (o.sandboxId === sandboxId && o.data.includes(text)) {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      }
    });
  });
}

/** Reads /root/count of a paused sandbox from the host, through its pid 1's root (exec needs it running). */
async function readLayerFile(_client: RpcClient, sandboxId: string): Promise<string> {
  return fs.readFileSync(`/proc/${pid1(sandboxId)}/root/root/count`, 'utf8');
}

function pid1(sandboxId: string): number {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cgroup = fs.readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      const status = fs.readFileSync(`/proc/${entry}/status`, 'utf8');
      if (cgroup.includes(`/${sandboxId}\n`) && /NSpid:\s+\d+\s+1\n/.test(status)) return Number(entry);
    } catch {
      // exited
    }
  }
  throw new Error(`no pid 1 of ${sandboxId}`);
}
