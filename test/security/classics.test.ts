// The classic container escapes and cross-tenant leaks, tried from inside a sandbox: host-backed mounts,
// device nodes, kill -1, the host's network (loopback TCP/UDP, abstract unix sockets, its own addresses,
// the cloud metadata service), the chroot breakout, the shocker (open_by_handle_at), leaving its cgroups,
// and what one sandbox can see of another (files in /tmp and /dev/shm, SysV IPC, processes).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { SandboxExec } from '../../agent/src/protocol';
import { useStack } from '../integration/stack';
import { assertAllFailed, assertNone, HostMarkers, probe, Sandboxes, shOk, unique, until, type Sc } from './battery';

describe('security: classic escapes and cross-sandbox leaks (real runtime)', function () {
  this.timeout(120_000);
  const env = useStack();
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  let box = '';

  before(async () => {
    box = await boxes.create({ environment: 'python' });
  });
  env.beforeStop(() => boxes.destroyAll());

  it('cannot mount host-backed filesystems: proc, sysfs, devtmpfs, cgroup v1, debugfs, a bind of /, a read-write remount of /', async () => {
    const r = await probe<Record<string, Sc>>(
      c(),
      `
for d in ('p', 's', 'd', 'c', 'g', 'b'): os.makedirs('/tmp/mnt-' + d, exist_ok=True)
res['proc'] = sc('mount', b'proc', b'/tmp/mnt-p', b'proc', 0, None)
res['sysfs'] = sc('mount', b'sysfs', b'/tmp/mnt-s', b'sysfs', 0, None)
res['devtmpfs'] = sc('mount', b'devtmpfs', b'/tmp/mnt-d', b'devtmpfs', 0, None)
res['cgroup_memory'] = sc('mount', b'cgroup', b'/tmp/mnt-c', b'cgroup', 0, b'memory')
res['debugfs'] = sc('mount', b'debugfs', b'/tmp/mnt-g', b'debugfs', 0, None)
res['bind_root'] = sc('mount', b'/', b'/tmp/mnt-b', None, 0x1000 | 0x4000, None)
res['remount_root_rw'] = sc('mount', None, b'/', None, 0x20 | 0x1000, None)
`,
      { sandboxId: box },
    );
    assertAllFailed(r, 'mounting host-backed filesystems');
  });

  it('cannot make host device nodes and read them: memory, kernel log, I/O ports, the host disk, loop and fuse control', async () => {
    const dev = fs.statSync('/').dev;
    const [major, minor] = [(dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)];
    const r = await probe(
      c(),
      `
nodes = {'mem': (0o20000, 1, 1), 'kmem': (0o20000, 1, 2), 'port': (0o20000, 1, 4), 'kmsg': (0o20000, 1, 11),
         'disk': (0o60000, ${major}, ${minor}), 'loop-control': (0o20000, 10, 237), 'fuse': (0o20000, 10, 229)}
read = []
for name, (kind, ma, mi) in nodes.items():
    p = '/tmp/dev-' + name
    try: os.mknod(p, kind | 0o600, os.makedev(ma, mi))
    except OSError: continue
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        try: read.append([name, len(os.read(fd, 512))])
        except OSError: read.append([name, 'opened'])
        os.close(fd)
    except OSError: pass
res['read'] = read
`,
      { sandboxId: box },
    );
    assertNone(r.read, 'a sandbox opened host devices through nodes it made');
  });

  it('kill -9 -1 reaches nothing outside the sandbox: host processes, other sandboxes and the runtime survive', async () => {
    const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    const other = await boxes.create({ environment: 'busybox' });
    const killer = await boxes.create({ environment: 'python' });
    const runtime = env.stack().runtimePid();
    try {
      await c().request(SandboxExec, { sandboxId: killer, code: 'import os, signal\nos.kill(-1, signal.SIGKILL)' }).catch(() => undefined);
      await c().request(SandboxExec, { sandboxId: killer, command: 'kill -9 -1' }).catch(() => undefined);
      const dead: string[] = [];
      if (sleeper.exitCode !== null || sleeper.signalCode !== null) dead.push(`host process ${sleeper.pid}`);
      if (!fs.existsSync(`/proc/${runtime}`)) dead.push(`the runtime (${runtime})`);
      const alive = await shOk(c(), other, 'echo alive').catch((e) => String(e));
      if (alive.trim() !== 'alive') dead.push(`sandbox ${other}: ${alive}`);
      assertNone(dead, 'kill -9 -1 inside a sandbox killed');
    } finally {
      sleeper.kill('SIGKILL');
      await boxes.destroy(other);
      await boxes.destroy(killer);
    }
  });

  it('cannot reach the host\'s network: loopback TCP and UDP, IPv6 loopback, abstract unix sockets, the host\'s own addresses, the metadata service', async () => {
    const banner = unique('HOSTSERVICE');
    const tcp = net.createServer((s) => s.end(banner));
    const tcp6 = net.createServer((s) => s.end(banner));
    const abstract = net.createServer((s) => s.end(banner));
    const udp = dgram.createSocket('udp4');
    udp.on('message', (_m, from) => udp.send(banner, from.port, from.address));
    const abstractName = unique('battery-abstract');
    await new Promise<void>((r) => tcp.listen(0, '0.0.0.0', r));
    const v6 = await new Promise<boolean>((r) => tcp6.once('error', () => r(false)).listen(0, '::1', () => r(true)));
    await new Promise<void>((r) => abstract.listen(`\0${abstractName}`, r));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const hostAddrs = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    try {
      const port = (tcp.address() as net.AddressInfo).port;
      const targets = [['127.0.0.1', port], ...hostAddrs.map((a) => [a, port]), ['169.254.169.254', 80]];
      const r = await probe(
        c(),
        `
got = []
def tcp(host, port, family=socket.AF_INET):
    try:
        s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(1); s.connect((host, port))
        got.append(['tcp', host, port, s.recv(100).decode('latin1')])
    except OSError: pass
for host, port in ${JSON.stringify(targets)}: tcp(host, port)
${v6 ? `tcp('::1', ${(tcp6.address() as net.AddressInfo).port}, socket.AF_INET6)` : ''}
try:
    s = socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect('\\0${abstractName}')
    got.append(['abstract', s.recv(100).decode('latin1')])
except OSError: pass
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    s.sendto(b'x', ('127.0.0.1', ${(udp.address() as net.AddressInfo).port}))
    got.append(['udp', s.recv(100).decode('latin1')])
except OSError: pass
res['got'] = got
`,
        { sandboxId: box },
      );
      assertNone(r.got, 'a sandbox reached host network services');
    } finally {
      tcp.close();
      tcp6.close();
      abstract.close();
      udp.close();
    }
  });

  it('the chroot breakout dance leaves the sandbox inside its own root', async () => {
    const markers = new HostMarkers(env.stack().dir);
    markers.plant();
    try {
      const r = await probe(
        c(),
        `
before = sorted(os.listdir('/'))
os.makedirs('/tmp/jail/inner', exist_ok=True)
fd = os.open('/', os.O_RDONLY)
os.chroot('/tmp/jail')
os.fchdir(fd)
for _ in range(64): os.chdir('..')
os.chroot('.')
res['after'] = sorted(os.listdir('/'))
res['same'] = res['after'] == before
res['markers'] = [p for p in ${JSON.stringify(markers.paths)} if os.path.exists(p)]
`,
        { sandboxId: box },
      );
      assert.ok(r.same, `after the chroot dance / lists ${JSON.stringify(r.after)}, not the sandbox's root`);
      assertNone(r.markers, 'after the chroot dance the host\'s files are visible');
    } finally {
      markers.remove();
    }
  });

  it('open_by_handle_at (the shocker attack) cannot open the host\'s files by handle', async () => {
    const r = await probe(
      c(),
      `
opened = []
root = os.open('/', os.O_RDONLY | os.O_DIRECTORY)
for ino in (2, 11, 12, 128, 256):
    for htype in (1, 2, 0x81):
        h = ctypes.create_string_buffer(struct.pack('IiII', 8, htype, ino, 0))
        v = sc('open_by_handle_at', root, h, os.O_RDONLY)
        if v['ret'] >= 0:
            opened.append([ino, htype, os.readlink('/proc/self/fd/%d' % v['ret'])]); os.close(v['ret'])
        res['errno'] = v['errno']
res['opened'] = opened
`,
      { sandboxId: box },
    );
    assertNone(r.opened, 'open_by_handle_at opened files by handle from inside a sandbox');
  });

  it('cannot leave its cgroups or raise its own limits', async () => {
    const id = await boxes.create({ environment: 'python', limits: { memoryBytes: 128 * 1024 * 1024, pids: 64 } });
    try {
      const before = await shOk(c(), id, 'cat /proc/self/cgroup');
      const r = await probe(
        c(),
        `
wrote = []
for d in ('/tmp/cg1', '/tmp/cg2'): os.makedirs(d, exist_ok=True)
res['mount_v1'] = sc('mount', b'cgroup', b'/tmp/cg1', b'cgroup', 0, b'memory,pids')
res['mount_v2'] = sc('mount', b'cgroup2', b'/tmp/cg2', b'cgroup2', 0, None)
cgroup_mounts = [l.split(' ')[4] for l in open('/proc/self/mountinfo') if ' - cgroup' in l]
res['cgroup_mounts'] = cgroup_mounts
for base in cgroup_mounts:
    for rel in ('cgroup.procs', 'memory.limit_in_bytes', 'memory.max', 'pids.max', 'cpu.cfs_quota_us', 'devices.allow'):
        p = os.path.join(base, rel)
        try:
            with open(p, 'w') as f: f.write({'cgroup.procs': str(os.getpid()), 'devices.allow': 'a'}.get(rel, '-1' if 'quota' in rel else 'max'))
            wrote.append(p)
        except OSError: pass
res['wrote'] = wrote
`,
        { sandboxId: id },
      );
      const after = await shOk(c(), id, 'cat /proc/self/cgroup');
      assert.equal(after.replace(/\s+$/, ''), before.replace(/\s+$/, ''), 'the sandbox moved its processes to other cgroups');
      assertNone(r.wrote, 'a sandbox wrote cgroup files');
      const limit = `/sys/fs/cgroup/memory/${env.stack().cgroupParent}/${id}/memory.limit_in_bytes`;
      if (fs.existsSync(limit)) assert.equal(Number(fs.readFileSync(limit, 'utf8')), 128 * 1024 * 1024, 'the sandbox changed its memory limit');
    } finally {
      await boxes.destroy(id);
    }
  });

  it('/tmp and /dev/shm (and POSIX shared memory) are not shared between sandboxes', async () => {
    const a = await boxes.create({ environment: 'python' });
    const b = await boxes.create({ environment: 'python' });
    const name = unique('battery-shared');
    try {
      await probe(c(), `open('/tmp/${name}', 'w').write('a')\nopen('/dev/shm/${name}', 'w').write('a')\nfrom multiprocessing import shared_memory\nm = shared_memory.SharedMemory('${name}-posix', create=True, size=4096)\nm.buf[:1] = b'a'`, { sandboxId: a });
      const r = await probe(c(), `res['seen'] = [p for p in ('/tmp/${name}', '/dev/shm/${name}', '/dev/shm/${name}-posix') if os.path.exists(p)]`, { sandboxId: b });
      assertNone(r.seen, 'one sandbox saw another\'s files');
    } finally {
      await boxes.destroy(a);
      await boxes.destroy(b);
    }
  });

  it('SysV IPC objects are not shared between sandboxes or with the host', async () => {
    const a = await boxes.create({ environment: 'python' });
    const b = await boxes.create({ environment: 'python' });
    const key = 0x4261_7474;
    try {
      const made = await probe(c(), `_libc.shmget.restype = ctypes.c_int\nres['shm'] = _libc.shmget(${key}, 4096, 0o1000 | 0o666)\nres['msg'] = _libc.msgget(${key}, 0o1000 | 0o666)`, { sandboxId: a });
      assert.ok(made.shm >= 0 && made.msg >= 0, `the first sandbox could not make IPC objects: ${JSON.stringify(made)}`);
      const r = await probe(c(), `res['shm'] = _libc.shmget(${key}, 0, 0)\nres['msg'] = _libc.msgget(${key}, 0)`, { sandboxId: b });
      const host = ['/proc/sysvipc/shm', '/proc/sysvipc/msg'].filter((f) => fs.readFileSync(f, 'utf8').split('\n').some((l) => l.trim().split(/\s+/)[0] === String(key)));
      assert.ok(r.shm < 0 && r.msg < 0, `one sandbox opened another's SysV IPC objects: ${JSON.stringify(r)}`);
      assertNone(host, 'a sandbox\'s SysV IPC objects are visible on the host');
    } finally {
      await boxes.destroy(a);
      await boxes.destroy(b);
    }
  });

  it('another sandbox\'s processes and files are invisible', async () => {
    const tag = unique('battery-tenant');
    const a = await boxes.create({ environment: 'python', command: ['python3', '-c', `import time\nopen('/root/${tag}', 'w').write('x')\nwhile True: time.sleep(1)`, tag] });
    const b = await boxes.create({ environment: 'python' });
    try {
      await until(async () => ((await c().request(SandboxExec, { sandboxId: a, command: `test -e /root/${tag} && echo yes` })).stdout.trim() === 'yes' ? true : undefined), 10_000, 'the first sandbox to start');
      const r = await probe(
        c(),
        `
seen = []
for pid in [p for p in os.listdir('/proc') if p.isdigit()]:
    try:
        if b'${tag}' in open('/proc/%s/cmdline' % pid, 'rb').read(): seen.append('process ' + pid)
    except OSError: pass
for top in ('/root', '/tmp', '/proc/1/root/root', '/home', '/var/tmp'):
    for dirpath, dirnames, filenames in os.walk(top):
        if '${tag}' in filenames: seen.append(os.path.join(dirpath, '${tag}'))
res['seen'] = seen
`,
        { sandboxId: b },
      );
      assertNone(r.seen, 'one sandbox saw another\'s processes or files');
    } finally {
      await boxes.destroy(a);
      await boxes.destroy(b);
    }
  });
});

