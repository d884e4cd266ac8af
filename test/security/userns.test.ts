// Sandboxes run in user namespaces: root in a sandbox is an unprivileged host id (100000 by default),
// for its first process, an exec, a terminal, a restored snapshot, each branch and a lazily restored one;
// its files are root's inside and that host id's outside; what root in a user namespace cannot do any
// more (bring up lo, bind low ports without CAP_NET_BIND_SERVICE over the host's netns, mknod, setuid
// binaries) is done for it or refused. `--no-userns` gives the old layout back.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ExecRun,
  FilesWrite,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxPause,
  SandboxResume,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotRestore,
  TerminalClose,
  TerminalInput,
  TerminalOpen,
  TerminalOutput,
  type RpcClient,
} from '../../agent/src/protocol';
import { sh } from '../integration/snapshots.test';
import { cgroupDirs, type Stack, useStack, waitFor } from '../integration/stack';

const BASE = 100000;
const SIZE = 65536;

/** Host pids of a sandbox's processes, from its pids cgroup. */
function hostPids(stack: Stack, sandboxId: string): number[] {
  for (const dir of cgroupDirs(stack.cgroupParent)) {
    const procs = path.join(dir, sandboxId, 'cgroup.procs');
    if (fs.existsSync(procs)) return fs.readFileSync(procs, 'utf8').trim().split('\n').filter(Boolean).map(Number);
  }
  throw new Error(`no cgroup of ${sandboxId} under ${stack.cgroupParent}`);
}

/** The four ids of a `Uid:` or `Gid:` line of the host's /proc/PID/status. */
function hostIds(pid: number, field: 'Uid' | 'Gid'): string[] {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line!.split(/\s+/).slice(1, 5);
}

/** Every process of the sandbox runs as host uid and gid BASE, never host root. */
function assertHostIds(stack: Stack, sandboxId: string, atLeast = 1): void {
  const pids = hostPids(stack, sandboxId);
  assert.ok(pids.length >= atLeast, `${sandboxId} has ${pids.length} processes, expected ${atLeast}`);
  for (const pid of pids) {
    assert.deepEqual(hostIds(pid, 'Uid'), Array(4).fill(String(BASE)), `host uids of pid ${pid} in ${sandboxId}`);
    assert.deepEqual(hostIds(pid, 'Gid'), Array(4).fill(String(BASE)), `host gids of pid ${pid} in ${sandboxId}`);
  }
}

const INSIDE = 'cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; grep -E "^(NoNewPrivs|Seccomp|CapEff):" /proc/self/status';

/** What a process inside sees: the map, root, no_new_privs, seccomp, and its capabilities kept. */
function assertInside(out: string, what: string): void {
  const lines = out.trim().split('\n').map((l) => l.trim());
  assert.deepEqual(lines[0].split(/\s+/), ['0', String(BASE), String(SIZE)], `${what}: uid_map`);
  assert.deepEqual(lines[1].split(/\s+/), ['0', String(BASE), String(SIZE)], `${what}: gid_map`);
  assert.deepEqual(lines.slice(2, 4), ['0', '0'], `${what}: root inside`);
  const status = Object.fromEntries(lines.slice(4).map((l) => l.split(/:\s+/)));
  assert.equal(status.NoNewPrivs, '1', `${what}: no_new_privs`);
  assert.equal(status.Seccomp, '2', `${what}: seccomp filter`);
  const caps = BigInt('0x' + status.CapEff);
  for (const [name, bit] of [['CHOWN', 0n], ['DAC_OVERRIDE', 1n], ['SETUID', 7n], ['NET_BIND_SERVICE', 10n]] as const) {
    assert.equal((caps >> bit) & 1n, 1n, `${what}: CAP_${name} is kept`);
  }
  assert.equal((caps >> 21n) & 1n, 0n, `${what}: CAP_SYS_ADMIN is not`);
}

/** Both views of a sandbox: from an exec inside, and its processes from the host. */
async function assertIds(c: RpcClient, stack: Stack, sandboxId: string, what: string): Promise<void> {
  assertInside(await sh(c, sandboxId, INSIDE), what);
  assertHostIds(stack, sandboxId);
}

/** A Python process holding 96 MiB of touched memory (images above 64 MiB restore lazily). */
const BIG = 'import time\nb = bytearray(96 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nwhile True: time.sleep(0.1)';

/** A client and a server in one Python process, talking over one TCP connection on the loopback. */
const PINGPONG = [
  'import socket, threading, time',
  'srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  'srv.bind(("127.0.0.1", 9000)); srv.listen()',
  'def echo():',
  '    conn, _ = srv.accept()',
  '    while True:',
  '        data = conn.recv(64)',
  '        if not data: break',
  '        conn.sendall(data)',
  'threading.Thread(target=echo, daemon=True).start()',
  'c = socket.create_connection(("127.0.0.1", 9000))',
  'n = 0',
  'while True:',
  '    n += 1',
  '    c.sendall(b"%d" % n)',
  '    got = c.recv(64)',
  '    if not got: break',
  '    open("/tmp/tcp", "w").write(got.decode())',
  '    time.sleep(0.05)',
].join('\n');

/** A client that sends "hello" and shuts its side down; the server answers only once /tmp/go exists. */
const HALF_CLOSED = [
  'import os, socket, threading, time',
  'srv = socket.socket(); srv.bind(("127.0.0.1", 9001)); srv.listen()',
  'def serve():',
  '    conn, _ = srv.accept()',
  '    data = b""',
  '    while True:',
  '        chunk = conn.recv(64)',
  '        if not chunk: break',
  '        data += chunk',
  '    open("/tmp/state", "w").write("waiting")',
  '    while not os.path.exists("/tmp/go"): time.sleep(0.02)',
  '    conn.sendall(b"reply to " + data); conn.close()',
  'threading.Thread(target=serve, daemon=True).start()',
  'c = socket.create_connection(("127.0.0.1", 9001))',
  'c.sendall(b"hello"); c.shutdown(socket.SHUT_WR)',
  'answer = b""',
  'while True:',
  '    chunk = c.recv(64)',
  '    if not chunk: break',
  '    answer += chunk',
  'open("/tmp/state", "w").write("got " + answer.decode())',
  'time.sleep(3600)',
].join('\n');

describe('user namespaces (real runtime)', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();
  const made: string[] = [];
  env.beforeStop(async () => {
    for (const sandboxId of made) await c().request(SandboxDestroy, { sandboxId }).catch(() => {});
  });
  const create = async (environment: string, command?: string[]) => {
    const { sandbox } = await c().request(SandboxCreate, { environment, ...(command ? { command } : {}) });
    made.push(sandbox.id);
    return sandbox.id;
  };

  it('runs a sandbox and its execs as host uid 100000, root inside, with no_new_privs, seccomp and its capabilities', async () => {
    const id = await create('busybox');
    await assertIds(c(), env.stack(), id, 'first process and exec');
    // An exec's own process, while it runs, seen from the host.
    const running = c().request(SandboxExec, { sandboxId: id, command: 'sleep 3' });
    await waitFor(() => hostPids(env.stack(), id).length >= 2, 5000, 'the exec to start');
    assertHostIds(env.stack(), id, 2);
    assert.equal((await running).exitCode, 0);
    // Ephemeral runs, cold (no pool in this stack), the same.
    const run = await c().request(ExecRun, { environment: 'busybox', command: INSIDE });
    assertInside(run.stdout, 'ephemeral run');
  });

  it('gives a terminal a pty of its own devpts, owned by root inside, on a host-uid-100000 shell', async () => {
    const id = await create('busybox');
    const terminalId = 'userns-term';
    let text = '';
    c().onNotification(TerminalOutput, (o) => {
      if (o.terminalId === terminalId) text += o.data;
    });
    await c().request(TerminalOpen, { sandboxId: id, terminalId, cols: 80, rows: 24 });
    await c().request(TerminalInput, { terminalId, data: 'echo "map=$(cat /proc/self/uid_map | tr -s " ")"; echo "tty-owner=$(stat -c %u:%g $(tty))"\n' });
    await waitFor(() => /tty-owner=\d+:\d+/.test(text), 10_000, `the terminal's answer:\n${text}`);
    assert.match(text, new RegExp(`map= ?0 ${BASE} ${SIZE}`));
    assert.match(text, /tty-owner=0:0/, 'the pty is root\'s inside (not an unmapped host root\'s)');
    assertHostIds(env.stack(), id, 2);
    await c().request(TerminalClose, { terminalId });
  });

  it('restores a snapshot and each branch in a user namespace with the same map, paused and resumed', async () => {
    const id = await create('busybox', ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done']);
    await new Promise((r) => setTimeout(r, 300));
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: id });
    const restored = await c().request(SnapshotRestore, { snapshotId: snapshot.id });
    made.push(restored.sandboxId);
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 });
    made.push(...branches.map((b) => b.sandboxId));
    for (const b of [restored, ...branches]) {
      assert.equal(b.lazy, false);
      await assertIds(c(), env.stack(), b.sandboxId, `restored ${b.sandboxId}`);
      const n = Number(await sh(c(), b.sandboxId, 'cat /tmp/n'));
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(Number(await sh(c(), b.sandboxId, 'cat /tmp/n')) > n, `${b.sandboxId} runs on`);
    }
    await c().request(SandboxPause, { sandboxId: branches[0].sandboxId });
    await c().request(SandboxResume, { sandboxId: branches[0].sandboxId });
    await assertIds(c(), env.stack(), branches[0].sandboxId, 'resumed branch');
    // A snapshot of a restored sandbox (its cgroup namespace is the restore's) restores too.
    const again = await c().request(SnapshotCreate, { sandboxId: restored.sandboxId });
    const chained = await c().request(SnapshotRestore, { snapshotId: again.snapshot.id });
    made.push(chained.sandboxId);
    await assertIds(c(), env.stack(), chained.sandboxId, 'restored from a restored sandbox');
  });

  it('restores a large snapshot lazily (userfaultfd) in a user namespace', async () => {
    const id = await create('python', ['python3', '-c', BIG]);
    await waitFor(async () => Number(await sh(c(), id, "awk '/^VmRSS/ {print $2}' /proc/1/status")) > 90_000, 20_000, 'the memory');
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: id });
    const lazy = await c().request(SnapshotRestore, { snapshotId: snapshot.id });
    made.push(lazy.sandboxId);
    assert.equal(lazy.lazy, true, 'a 96 MiB image restores lazily');
    await assertIds(c(), env.stack(), lazy.sandboxId, 'lazily restored');
    assert.equal(await sh(c(), lazy.sandboxId, 'python3 -c "print(1 + 1)"'), '2\n');
  });

  it('keeps an established TCP connection between two processes of a sandbox going in its branches', async () => {
    const id = await create('python', ['python3', '-c', PINGPONG]);
    await waitFor(async () => Number(await sh(c(), id, 'cat /tmp/tcp 2>/dev/null || echo 0')) > 5, 20_000, 'the connection');
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: id });
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 });
    made.push(...branches.map((b) => b.sandboxId));
    for (const b of branches) {
      const n = Number(await sh(c(), b.sandboxId, 'cat /tmp/tcp'));
      await waitFor(async () => Number(await sh(c(), b.sandboxId, 'cat /tmp/tcp')) > n + 3, 5000, `${b.sandboxId}'s connection to go on`);
      assertHostIds(env.stack(), b.sandboxId);
    }
  });

  it('restores a half-closed TCP connection (a FIN in its queues) in a user namespace', async () => {
    const id = await create('python', ['python3', '-c', HALF_CLOSED]);
    await waitFor(async () => (await sh(c(), id, 'cat /tmp/state 2>/dev/null || true')).trim() === 'waiting', 20_000, 'the half-closed connection');
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: id });
    const restored = await c().request(SnapshotRestore, { snapshotId: snapshot.id });
    made.push(restored.sandboxId);
    await sh(c(), restored.sandboxId, 'touch /tmp/go');
    await waitFor(async () => (await sh(c(), restored.sandboxId, 'cat /tmp/state')).trim() === 'got reply to hello', 10_000, 'the reply over the half-closed connection');
    assertHostIds(env.stack(), restored.sandboxId);
  });

  it('keeps files root\'s inside and host uid 100000\'s outside; setuid files grant nothing on the host', async () => {
    const id = await create('busybox');
    await c().request(FilesWrite, { sandboxId: id, path: '/root/from-api.txt', content: 'x' });
    const out = await sh(
      c(),
      id,
      'echo data > /root/made.txt; cp /bin/busybox /root/suid; chmod 4755 /root/suid; mkdir -p /root/d; ls -ln /root | awk \'NR>1 {print $3":"$4":"$9}\'',
    );
    assert.deepEqual(out.trim().split('\n').sort(), ['0:0:d', '0:0:from-api.txt', '0:0:made.txt', '0:0:suid']);
    const rootfs = path.join(env.stack().config.dataDir, 'sandboxes', id, 'rootfs');
    for (const f of ['made.txt', 'suid', 'd', 'from-api.txt']) {
      const st = fs.statSync(path.join(rootfs, 'root', f));
      assert.deepEqual([st.uid, st.gid], [BASE, BASE], `${f} seen from the host`);
    }
    assert.equal(fs.statSync(path.join(rootfs, 'root', 'suid')).mode & 0o4000, 0o4000, 'the setuid bit is there, for host uid 100000 only');
    // The environment's files are root's inside too, and stay host root's (and unchanged) outside.
    assert.equal((await sh(c(), id, 'stat -c %u:%g /bin/busybox /etc/passwd')).trim(), '0:0\n0:0');
  });

  it('binds ports below 1024, as root and as any user inside', async () => {
    const id = await create('python');
    const bind = (uid: number) =>
      `python3 -c "import os, socket; os.setgid(${uid}); os.setuid(${uid}); s = socket.socket(); s.bind(('127.0.0.1', 80 + ${uid % 100})); print('bound', os.getuid())"`;
    assert.equal(await sh(c(), id, bind(0)), 'bound 0\n');
    assert.equal(await sh(c(), id, bind(1000)), 'bound 1000\n', 'the host netns sysctl lets sandbox users bind low ports');
    assertInside(await sh(c(), id, INSIDE), 'python sandbox');
  });

  it('uses the environment\'s /dev but cannot make device nodes, and cannot configure its network', async () => {
    const r = await c().request(ExecRun, {
      environment: 'busybox',
      command:
        'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c; ' +
        'mknod /tmp/null c 1 3 2>/dev/null && echo MKNOD || echo mknod-refused; ' +
        'ip link set lo down 2>/dev/null && echo LO-DOWN || echo net-admin-refused; ' +
        'cat /proc/sys/net/ipv4/ip_unprivileged_port_start',
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.trim()), ['4', '4', 'mknod-refused', 'net-admin-refused', '0']);
  });
});

describe('--no-userns (real runtime)', function () {
  this.timeout(60_000);
  const env = useStack({ env: { FORKSPACE_NO_USERNS: 'true' } });

  it('runs sandboxes as host root, as before, and says so in its log', async () => {
    const r = await env.client().request(ExecRun, { environment: 'busybox', command: 'cat /proc/self/uid_map; id -u' });
    const [map, uid] = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    assert.equal(map, '0 0 4294967295');
    assert.equal(uid, '0');
    const log = fs.readFileSync(path.join(env.stack().config.logDir, 'forkspace-rt.log'), 'utf8');
    assert.match(log, /--no-userns: sandboxes run without user namespaces; their root is host root/);
  });
});
