// The kernel surface a sandbox can reach: every sandbox process runs under seccomp with no_new_privs and
// without admin capabilities, in whatever way it was started (first process, exec, ephemeral run, warm
// pool, restore, branch, snapshot pool); host keyrings are out of reach; and the syscalls that reach
// host-wide state (keys, bpf, perf, userfaultfd, kexec, modules, mounts, user namespaces, io_uring, vsock,
// packet and raw sockets, swap, reboot, clocks, accounting, port I/O, personality) all fail.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ExecRun,
  PoolConfigure,
  PoolList,
  PoolSnapshot,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotDelete,
  SnapshotRestore,
} from '../../agent/src/protocol';
import { cgroupDirs, useStack } from '../integration/stack';
import {
  assertAllFailed,
  assertNone,
  FORBIDDEN_CAPS,
  hostKeys,
  probe,
  Sandboxes,
  shOk,
  statusFields,
  unique,
  until,
  type Sc,
} from './battery';

/** Errnos that mean "not allowed" (seccomp or a capability check), as opposed to bad arguments. */
const DENIED = ['EPERM', 'EACCES', 'ENOSYS'];

function assertDenied(verdicts: Record<string, Sc>, what: string): void {
  assertAllFailed(verdicts, what);
  const other = Object.entries(verdicts).filter(([, v]) => !DENIED.includes(v.errno ?? ''));
  assertNone(
    other.map(([k, v]) => `${k}: ${v.errno}`),
    `${what}: these calls got past the permission check (they failed only on their arguments, so the sandbox holds the privilege)`,
  );
}

function assertHardened(status: string, where: string): void {
  const s = statusFields(status);
  assert.equal(s.seccomp, '2', `${where}: Seccomp is ${s.seccomp}, not 2 (no seccomp filter)`);
  assert.equal(s.noNewPrivs, '1', `${where}: NoNewPrivs is ${s.noNewPrivs}, not 1`);
  for (const [name, bit] of FORBIDDEN_CAPS) assert.equal((s.capEff >> bit) & 1n, 0n, `${where}: holds ${name}`);
}

describe('security: kernel surface (real runtime)', function () {
  this.timeout(120_000);
  const env = useStack();
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  let box = '';

  before(async () => {
    box = await boxes.create({ environment: 'python' });
  });
  env.beforeStop(() => boxes.destroyAll());

  describe('the hardened profile', () => {
    it('holds in a first process, a sandbox/exec and an ephemeral run: Seccomp 2, NoNewPrivs 1, no admin capabilities', async () => {
      assertHardened(await shOk(c(), box, 'cat /proc/1/status'), 'the first process of a persistent sandbox');
      assertHardened(await shOk(c(), box, 'cat /proc/self/status'), 'a sandbox/exec process');
      const eph = await c().request(ExecRun, { environment: 'busybox', command: 'cat /proc/self/status' });
      assertHardened(eph.stdout, 'the first process of an ephemeral run');
      const py = await c().request(ExecRun, { environment: 'python', code: 'print(open("/proc/self/status").read())' });
      assertHardened(py.stdout, 'an ephemeral python run');
    });

    it('holds in a restored snapshot, each of its branches, and a command run in a branch', async () => {
      const src = await boxes.create({ environment: 'python', command: ['python3', '-c', 'import time\nwhile True: time.sleep(1)'] });
      const { snapshot } = await c().request(SnapshotCreate, { sandboxId: src, label: unique('battery') });
      try {
        const restored = boxes.adopt((await c().request(SnapshotRestore, { snapshotId: snapshot.id })).sandboxId);
        const branches = (await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 })).branches.map((b) => boxes.adopt(b.sandboxId));
        for (const id of [restored, ...branches]) {
          assertHardened(await shOk(c(), id, 'cat /proc/1/status'), `the restored first process of ${id}`);
          assertHardened(await shOk(c(), id, 'cat /proc/self/status'), `a command run in ${id}`);
          await boxes.destroy(id);
        }
      } finally {
        await boxes.destroy(src);
        await c().request(SnapshotDelete, { snapshotId: snapshot.id }).catch(() => {});
      }
    });

    it('holds in a sandbox handed out by a warm pool and in a branch thawed from a snapshot pool', async () => {
      await c().request(PoolConfigure, { environment: 'busybox', min: 1, max: 1 });
      let snapshotId = '';
      try {
        await until(async () => ((await c().request(PoolList, {})).pools.find((p) => p.environment === 'busybox')?.ready ?? 0) > 0 || undefined, 30_000, 'a warm busybox sandbox');
        const warm = await c().request(ExecRun, { environment: 'busybox', command: 'cat /proc/self/status' });
        assert.equal(warm.pooled, true, 'the run did not come from the warm pool, so this checked nothing');
        assertHardened(warm.stdout, 'a warm-pool sandbox');

        const src = await boxes.create({ environment: 'busybox', command: ['sh', '-c', 'while true; do sleep 1; done'] });
        snapshotId = (await c().request(SnapshotCreate, { sandboxId: src })).snapshot.id;
        await boxes.destroy(src);
        await c().request(PoolSnapshot, { snapshotId, size: 1 });
        await until(async () => ((await c().request(PoolList, {})).snapshots.find((p) => p.snapshotId === snapshotId)?.ready ?? 0) > 0 || undefined, 30_000, 'a frozen copy in the snapshot pool');
        const [branch] = (await c().request(SnapshotBranch, { snapshotId, count: 1 })).branches;
        boxes.adopt(branch.sandboxId);
        assert.equal(branch.pooled, true, 'the branch did not come from the snapshot pool, so this checked nothing');
        assertHardened(await shOk(c(), branch.sandboxId, 'cat /proc/1/status'), 'the first process of a snapshot-pool branch');
        assertHardened(await shOk(c(), branch.sandboxId, 'cat /proc/self/status'), 'a command in a snapshot-pool branch');
        await boxes.destroy(branch.sandboxId);
      } finally {
        await c().request(PoolConfigure, { environment: 'busybox', min: 0, max: 0 }).catch(() => {});
        if (snapshotId) {
          await c().request(PoolSnapshot, { snapshotId, size: 0 }).catch(() => {});
          await c().request(SnapshotDelete, { snapshotId }).catch(() => {});
        }
      }
    });
  });

  describe('host keyrings', () => {
    it('cannot read, describe or find a key in host root\'s user-session and user keyrings', async () => {
      const desc = unique('battery-key');
      const payload = unique('KEYSECRET');
      const keys = hostKeys.add(desc, payload);
      try {
        const r = await probe(
          c(),
          `
buf = ctypes.create_string_buffer(4096)
for name, k in (('session', ${keys.session}), ('user', ${keys.user})):
    n = sc('keyctl', 11, k, buf, 4096)
    res['read-' + name] = n
    res['payload-' + name] = buf.raw[:max(n['ret'], 0)].decode('latin1')
    d = sc('keyctl', 6, k, buf, 4096)
    res['describe-' + name] = d
    res['description-' + name] = buf.value.decode('latin1') if d['ret'] >= 0 else ''
    res['search-' + name] = sc('keyctl', 10, -5 if name == 'session' else -4, b'user', ('${desc}-' + name).encode(), 0)
for f in ('/proc/keys', '/proc/key-users'):
    try: res[f] = open(f).read()
    except OSError as e: res[f] = ''
`,
          { sandboxId: box },
        );
        const leaks = JSON.stringify(r);
        assert.ok(!leaks.includes(payload), `a sandbox read the payload of a host root key: ${leaks.slice(0, 600)}`);
        assert.ok(!leaks.includes(desc), `a sandbox saw a host root key (${desc}): ${leaks.slice(0, 600)}`);
        assertAllFailed({ 'read-session': r['read-session'], 'read-user': r['read-user'], 'search-session': r['search-session'], 'search-user': r['search-user'] }, 'reading host keys');
      } finally {
        hostKeys.remove([keys.session, keys.user]);
      }
    });

    it('cannot re-permission, update, expire, revoke or unlink a key in host root\'s keyrings', async () => {
      const desc = unique('battery-key');
      const payload = unique('KEYSECRET');
      const keys = hostKeys.add(desc, payload);
      try {
        const before = hostKeys.inspect([keys.session, keys.user]);
        const r = await probe<Record<string, Sc>>(
          c(),
          `
for name, k, ring in (('session', ${keys.session}, -5), ('user', ${keys.user}, -4)):
    res['setperm-' + name] = sc('keyctl', 5, k, 0x3f3f3f3f)
    res['update-' + name] = sc('keyctl', 2, k, b'owned', 5)
    res['timeout-' + name] = sc('keyctl', 15, k, 3600)
    res['unlink-' + name] = sc('keyctl', 9, k, ring)
    res['revoke-' + name] = sc('keyctl', 3, k)
`,
          { sandboxId: box },
        );
        const after = hostKeys.inspect([keys.session, keys.user]);
        assert.deepEqual(after, before, `a sandbox changed host root keys: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
        assertAllFailed(r, 'modifying host keys');
      } finally {
        hostKeys.remove([keys.session, keys.user]);
      }
    });

    it('cannot use keyctl, add_key or request_key, and adds nothing to host keyrings', async () => {
      const desc = unique('battery-planted');
      const r = await probe<Record<string, Sc>>(
        c(),
        `
res['add_key-session'] = sc('add_key', b'user', b'${desc}', b'planted', 7, -3)
res['add_key-user-session'] = sc('add_key', b'user', b'${desc}', b'planted', 7, -5)
res['add_key-user'] = sc('add_key', b'user', b'${desc}', b'planted', 7, -4)
res['request_key'] = sc('request_key', b'user', b'${desc}-requested', None, -3)
res['keyctl-get-session'] = sc('keyctl', 0, -3, 0)
res['keyctl-get-user'] = sc('keyctl', 0, -4, 0)
res['keyctl-join-session'] = sc('keyctl', 1, None)
`,
        { sandboxId: box },
      );
      const found = hostKeys.find(desc);
      hostKeys.remove([found.session, found.user].filter((k) => k > 0));
      assert.ok(found.session < 0 && found.user < 0, `a sandbox planted key "${desc}" in host root's keyrings: ${JSON.stringify(found)}`);
      assertAllFailed(r, 'the key syscalls');
    });
  });

  describe('syscalls that reach host-wide state', () => {
    it('bpf: cannot create maps or load programs', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `
attr = ctypes.create_string_buffer(128)
struct.pack_into('IIII', attr, 0, 2, 4, 4, 1)
res['map_create'] = sc('bpf', 0, attr, 128)
insns = ctypes.create_string_buffer(struct.pack('<BBhiBBhi', 0xb7, 0, 0, 0, 0x95, 0, 0, 0))
lic = ctypes.create_string_buffer(b'GPL')
pattr = ctypes.create_string_buffer(128)
struct.pack_into('IIQQ', pattr, 0, 1, 2, ctypes.addressof(insns), ctypes.addressof(lic))
res['prog_load'] = sc('bpf', 5, pattr, 128)
`,
        { sandboxId: box },
      );
      assertAllFailed(r, 'bpf');
    });

    it('perf_event_open: cannot open performance counters, even on itself', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `
attr = ctypes.create_string_buffer(128)
struct.pack_into('IIQ', attr, 0, 1, 128, 0)
struct.pack_into('Q', attr, 40, (1 << 0) | (1 << 5) | (1 << 6))
res['self_cpu_clock'] = sc('perf_event_open', attr, 0, -1, -1, 0)
res['any_cpu'] = sc('perf_event_open', attr, -1, 0, -1, 0)
`,
        { sandboxId: box },
      );
      assertAllFailed(r, 'perf_event_open');
    });

    it('userfaultfd: cannot create one, with or without UFFD_USER_MODE_ONLY', async () => {
      const r = await probe<Record<string, Sc>>(c(), `res['plain'] = sc('userfaultfd', 0o2000000)\nres['user_mode_only'] = sc('userfaultfd', 0o2000000 | 1)`, { sandboxId: box });
      assertAllFailed(r, 'userfaultfd');
    });

    it('kexec_load and kexec_file_load are denied', async () => {
      // Arguments that fail after the permission check, so nothing is ever loaded or unloaded.
      const r = await probe<Record<string, Sc>>(
        c(),
        `res['kexec_load'] = sc('kexec_load', 0, 17, None, 0)\nres['kexec_file_load'] = sc('kexec_file_load', -1, -1, 0, None, 0)`,
        { sandboxId: box },
      );
      assertDenied(r, 'kexec');
    });

    it('init_module, finit_module and delete_module are denied', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `res['init_module'] = sc('init_module', None, 0, b'')\nres['finit_module'] = sc('finit_module', -1, b'', 0)\nres['delete_module'] = sc('delete_module', b'battery_no_such_module', 0o4000)`,
        { sandboxId: box },
      );
      assertDenied(r, 'kernel modules');
    });

    it('the mount syscalls all fail: mount, umount2, fsopen, fsconfig, fsmount, move_mount, open_tree, fspick, mount_setattr, pivot_root', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `
os.makedirs('/tmp/battery-mnt', exist_ok=True)
res['mount_tmpfs'] = sc('mount', b'none', b'/tmp/battery-mnt', b'tmpfs', 0, None)
res['mount_bind_root'] = sc('mount', b'/', b'/tmp/battery-mnt', None, 0x1000 | 0x4000, None)
res['remount_root_rw'] = sc('mount', None, b'/', None, 0x20, None)
res['umount2_proc'] = sc('umount2', b'/proc', 2)
res['umount2_proc_sys'] = sc('umount2', b'/proc/sys', 2)
fs_ctx = sc('fsopen', b'tmpfs', 1)
res['fsopen'] = fs_ctx
dirfd = os.open('/tmp', os.O_RDONLY | os.O_DIRECTORY)
ctx = fs_ctx['ret'] if fs_ctx['ret'] >= 0 else dirfd
res['fsconfig'] = sc('fsconfig', ctx, 6, None, None, 0)
res['fsmount'] = sc('fsmount', ctx, 1, 0)
tree = sc('open_tree', -100, b'/', 1 | 0o2000000)
res['open_tree'] = tree
res['move_mount'] = sc('move_mount', tree['ret'] if tree['ret'] >= 0 else dirfd, b'', -100, b'/tmp/battery-mnt', 4)
res['fspick'] = sc('fspick', -100, b'/', 1)
attr = ctypes.create_string_buffer(32)
struct.pack_into('QQQQ', attr, 0, 0, 1, 0, 0)
res['mount_setattr'] = sc('mount_setattr', -100, b'/', 0, attr, 32)
os.chdir('/')
res['pivot_root'] = sc('pivot_root', b'.', b'.')
`,
        { sandboxId: box },
      );
      assertAllFailed(r, 'mount syscalls');
    });

    it('unshare(CLONE_NEWUSER) fails, alone and with new mount and cgroup namespaces', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `res['newuser_ns_cgroup'] = sc('unshare', 0x10000000 | 0x00020000 | 0x02000000)\nres['newuser'] = sc('unshare', 0x10000000)`,
        { run: {} },
      );
      assertAllFailed(r, 'unshare');
    });

    it('clone and clone3 with CLONE_NEWUSER fail', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `
def try_clone(name, *args):
    v = sc(name, *args)
    if v['ret'] == 0:
        os._exit(0)
    if v['ret'] > 0:
        os.waitpid(v['ret'], 0)
    return v
res['clone'] = try_clone('clone', 0x10000000 | 17, 0, 0, 0, 0)
args = ctypes.create_string_buffer(88)
struct.pack_into('QQQQQ', args, 0, 0x10000000, 0, 0, 0, 17)
NR['clone3'] = 435
res['clone3'] = try_clone('clone3', args, 88)
`,
        { run: {} },
      );
      assertAllFailed(r, 'clone with a new user namespace');
    });

    it('cannot reach mounts through a user namespace: no tmpfs or cgroup2 mount, no cgroup left on the host after destroy', async () => {
      const id = await boxes.create({ environment: 'python' });
      const nested = unique('battery-nested');
      try {
        const r = await probe(
          c(),
          `
r = sc('unshare', 0x10000000 | 0x00020000 | 0x02000000)
res['unshare'] = r
if r['ret'] == 0:
    for f, v in (('/proc/self/setgroups', 'deny'), ('/proc/self/uid_map', '0 0 1'), ('/proc/self/gid_map', '0 0 1')):
        try:
            with open(f, 'w') as fh: fh.write(v)
        except OSError: pass
os.makedirs('/tmp/m-tmpfs', exist_ok=True); os.makedirs('/tmp/m-cgroup', exist_ok=True)
res['mount_tmpfs'] = sc('mount', b'none', b'/tmp/m-tmpfs', b'tmpfs', 0, None)
res['mount_cgroup2'] = sc('mount', b'none', b'/tmp/m-cgroup', b'cgroup2', 0, None)
if res['mount_cgroup2']['ret'] == 0:
    res['mkdir_nested'] = oserr(os.mkdir, '/tmp/m-cgroup/${nested}')
`,
          { sandboxId: id },
        );
        await boxes.destroy(id);
        const strays = findCgroupDirs(env.stack().cgroupParent, nested);
        const left = (await env.stack().leftovers()).filter((l) => l.includes(id));
        assertNone(strays, 'a sandbox made cgroup directories on the host through a user namespace, left after destroy');
        assertNone(left, 'destroying the sandbox left things behind');
        assertAllFailed({ unshare: r.unshare, mount_tmpfs: r.mount_tmpfs, mount_cgroup2: r.mount_cgroup2 }, 'the user-namespace mount chain');
      } finally {
        await boxes.destroy(id);
        removeCgroupDirs(env.stack().cgroupParent, nested, id);
      }
    });

    it('setns into any namespace fails', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `
for ns in ('net', 'mnt', 'pid', 'uts', 'ipc', 'user', 'cgroup', 'time'):
    try: fd = os.open('/proc/self/ns/' + ns, os.O_RDONLY)
    except OSError: continue
    res[ns] = sc('setns', fd, 0)
    os.close(fd)
`,
        { sandboxId: box },
      );
      assertAllFailed(r, 'setns');
    });

    it('io_uring_setup fails', async () => {
      const r = await probe<Record<string, Sc>>(c(), `p = ctypes.create_string_buffer(120)\nres['io_uring_setup'] = sc('io_uring_setup', 4, p)`, { sandboxId: box });
      assertAllFailed(r, 'io_uring');
    });

    it('AF_VSOCK sockets cannot be made (the hypervisor transport stays out of reach)', async () => {
      const r = await probe(
        c(),
        `
res['stream'] = oserr(socket.socket, 40, socket.SOCK_STREAM)
res['dgram'] = oserr(socket.socket, 40, socket.SOCK_DGRAM)
if res['stream']['ok']:
    s = socket.socket(40, socket.SOCK_STREAM); s.settimeout(1)
    res['connect_host_cid2'] = oserr(s.connect, (2, 22))
`,
        { sandboxId: box },
      );
      assert.ok(!r.stream.ok && !r.dgram.ok, `a sandbox made AF_VSOCK sockets: ${JSON.stringify(r)}`);
    });

    it('AF_PACKET sockets cannot be made', async () => {
      const r = await probe(c(), `res['raw'] = oserr(socket.socket, 17, socket.SOCK_RAW, 0x0300)\nres['dgram'] = oserr(socket.socket, 17, socket.SOCK_DGRAM, 0x0300)`, { sandboxId: box });
      assert.ok(!r.raw.ok && !r.dgram.ok, `a sandbox made packet sockets: ${JSON.stringify(r)}`);
    });

    it('raw IP sockets cannot be made (IPv4 and IPv6)', async () => {
      const r = await probe(
        c(),
        `res['inet_icmp'] = oserr(socket.socket, socket.AF_INET, socket.SOCK_RAW, 1)\nres['inet_raw'] = oserr(socket.socket, socket.AF_INET, socket.SOCK_RAW, 255)\nres['inet6_icmp'] = oserr(socket.socket, socket.AF_INET6, socket.SOCK_RAW, 58)`,
        { sandboxId: box },
      );
      const made = Object.entries(r).filter(([, v]) => (v as { ok: boolean }).ok);
      assertNone(made.map(([k]) => k), `a sandbox made raw sockets (${JSON.stringify(r)})`);
    });

    it('swapon, swapoff and reboot are denied', async () => {
      // reboot with a wrong magic number and swap on missing files: nothing happens even where allowed.
      const r = await probe<Record<string, Sc>>(
        c(),
        `res['swapon'] = sc('swapon', b'/nonexistent-swap', 0)\nres['swapoff'] = sc('swapoff', b'/nonexistent-swap')\nres['reboot'] = sc('reboot', 0xfee1dead, 1, 0x4321fedc, None)`,
        { sandboxId: box },
      );
      assertDenied(r, 'swap and reboot');
    });

    it('cannot set the host clock (settimeofday, clock_settime)', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `
now = time.time()
tv = ctypes.create_string_buffer(struct.pack('qq', int(now), 0))
ts = ctypes.create_string_buffer(struct.pack('qq', int(now), 0))
res['settimeofday'] = sc('settimeofday', tv, None)
res['clock_settime'] = sc('clock_settime', 0, ts)
`,
        { sandboxId: box },
      );
      assertDenied(r, 'setting the clock');
    });

    it('acct and quotactl fail', async () => {
      const r = await probe<Record<string, Sc>>(
        c(),
        `res['acct_off'] = sc('acct', None)\nres['acct_on'] = sc('acct', b'/tmp/battery-acct')\nres['quotaon'] = sc('quotactl', 0x800002, b'/', 0, b'/tmp/q')`,
        { sandboxId: box },
      );
      assertAllFailed(r, 'accounting and quotas');
    });

    it('iopl and ioperm fail', async () => {
      const r = await probe<Record<string, Sc>>(c(), `res['iopl'] = sc('iopl', 3)\nres['ioperm'] = sc('ioperm', 0x80, 1, 1)`, { sandboxId: box });
      assertAllFailed(r, 'port I/O');
    });

    it('personality cannot switch off address randomisation or make data executable', async () => {
      const r = await probe(
        c(),
        `
res['before'] = open('/proc/self/personality').read().strip()
res['set'] = sc('personality', 0x0040000 | 0x0400000)
res['after'] = open('/proc/self/personality').read().strip()
`,
        { sandboxId: box },
      );
      const after = parseInt(r.after, 16);
      assert.equal(after & (0x0040000 | 0x0400000), 0, `personality took ADDR_NO_RANDOMIZE|READ_IMPLIES_EXEC: ${JSON.stringify(r)}`);
      assertAllFailed({ set: r.set }, 'personality');
    });
  });
});

/** Directories named `name` anywhere below the stack's cgroup parents. */
function findCgroupDirs(parent: string, name: string): string[] {
  const out: string[] = [];
  const visit = (dir: string, depth: number) => {
    if (depth > 4) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name === name) out.push(p);
      visit(p, depth + 1);
    }
  };
  for (const d of cgroupDirs(parent)) visit(d, 0);
  return out;
}

/** Removes what the user-namespace attempt may have left (deepest first), so the suite ends clean. */
function removeCgroupDirs(parent: string, name: string, sandboxId: string): void {
  for (const p of findCgroupDirs(parent, name).sort((a, b) => b.length - a.length)) {
    try {
      fs.rmdirSync(p);
    } catch {
      // busy or gone
    }
  }
  for (const d of cgroupDirs(parent)) {
    try {
      fs.rmdirSync(path.join(d, sandboxId));
    } catch {
      // gone (the normal case) or busy
    }
  }
}
