// /proc and /sys from inside a sandbox: the host-wide files (keys, physical page maps, timers, the
// physical memory map, kernel memory, the scheduler, firmware, the kernel log) give nothing away, kernel
// settings cannot be written, and no process's root or cwd leads to the host.
import { strict as assert } from 'node:assert';
import { useStack } from '../integration/stack';
import { assertNone, HostMarkers, probe, Sandboxes, succeeded, type Sc } from './battery';

interface FileVerdict {
  readable: boolean;
  bytes: number;
  sample: string;
  error?: string;
}

/** Host-wide files that must be unreadable or empty inside a sandbox, and why each matters. */
const MASKED: [string, string][] = [
  ['/proc/keys', 'every key of the host root user (descriptions, ids, permissions)'],
  ['/proc/key-users', 'key quotas of host users'],
  ['/proc/kpageflags', 'flags of every physical page (a Rowhammer / side-channel aid)'],
  ['/proc/kpagecount', 'mapping counts of every physical page'],
  ['/proc/kpagecgroup', 'the memory cgroup of every physical page'],
  ['/proc/timer_list', 'every pending timer on the host, with process names and pids'],
  ['/proc/iomem', 'the physical memory map'],
  ['/proc/kcore', 'kernel memory'],
  ['/proc/sched_debug', 'every task on the host'],
  ['/sys/firmware', 'firmware tables (ACPI, DMI)'],
  // Beyond the list, found readable on main:
  ['/proc/slabinfo', 'kernel heap state (a heap-exploitation aid)'],
  ['/proc/vmallocinfo', 'kernel virtual memory layout and its callers'],
];

describe('security: /proc and /sys (real runtime)', function () {
  this.timeout(120_000);
  const env = useStack();
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  let box = '';
  let files: Record<string, FileVerdict> = {};

  before(async () => {
    box = await boxes.create({ environment: 'python' });
    files = await probe<Record<string, FileVerdict>>(
      c(),
      `
for f in ${JSON.stringify(MASKED.map(([f]) => f))}:
    try:
        if os.path.isdir(f):
            names = os.listdir(f)
            res[f] = {'readable': bool(names), 'bytes': len(names), 'sample': ' '.join(names[:8])}
            continue
        fd = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
        try:
            data = os.read(fd, 65536)
            text = data[:120].decode('latin1')
            sample = text if text.isprintable() or '\\n' in text else data[:48].hex()
            res[f] = {'readable': len(data) > 0, 'bytes': len(data), 'sample': sample}
        except OSError as e:
            res[f] = {'readable': False, 'bytes': 0, 'sample': '', 'error': errno.errorcode.get(e.errno)}
        os.close(fd)
    except OSError as e:
        res[f] = {'readable': False, 'bytes': 0, 'sample': '', 'error': errno.errorcode.get(e.errno)}
`,
      { sandboxId: box },
    );
  });
  env.beforeStop(() => boxes.destroyAll());

  for (const [file, what] of MASKED) {
    it(`${file} gives nothing away (${what})`, () => {
      const v = files[file];
      assert.ok(v, `the probe did not report ${file}`);
      assert.ok(!v.readable, `${file} is readable inside a sandbox: ${v.bytes} bytes, starting ${JSON.stringify(v.sample)}`);
    });
  }

  it('cannot read the host kernel log (syslog(2), /dev/kmsg, /proc/kmsg)', async () => {
    const r = await probe(
      c(),
      `
buf = ctypes.create_string_buffer(4096)
res['syslog_read_all'] = sc('syslog', 3, buf, 4096)
res['syslog_size'] = sc('syslog', 10, None, 0)
for f in ('/proc/kmsg', '/dev/kmsg'):
    try:
        fd = os.open(f, os.O_RDONLY | os.O_NONBLOCK); data = os.read(fd, 4096); os.close(fd)
        res[f] = len(data)
    except OSError as e:
        res[f] = errno.errorcode.get(e.errno)
`,
      { sandboxId: box },
    );
    assert.ok(!succeeded(r.syslog_read_all as Sc) && !succeeded(r.syslog_size as Sc), `syslog(2) works in a sandbox: ${JSON.stringify(r)}`);
    assert.ok(typeof r['/proc/kmsg'] !== 'number' && typeof r['/dev/kmsg'] !== 'number', `the kernel log is readable: ${JSON.stringify(r)}`);
  });

  it('cannot write kernel settings through /proc/sys, even after trying to remount or unmount it', async () => {
    const r = await probe(
      c(),
      `
targets = ['/proc/sys/kernel/core_pattern', '/proc/sys/kernel/modprobe', '/proc/sys/vm/drop_caches',
           '/proc/sys/kernel/hostname', '/proc/sys/kernel/panic', '/proc/sys/fs/file-max']
res['remount_rw'] = sc('mount', None, b'/proc/sys', None, 0x20 | 0x1000, None)
res['umount'] = sc('umount2', b'/proc/sys', 2)
writable = []
for t in targets:
    # Opening for writing is the attack; nothing is written.
    try:
        os.close(os.open(t, os.O_WRONLY)); writable.append(t)
    except OSError: pass
res['writable'] = writable
`,
      { sandboxId: box },
    );
    assertNone(r.writable, `a sandbox can open host kernel settings for writing (${JSON.stringify(r)})`);
  });

  it('cannot write anything under /sys: uevent_helper, kernel and power knobs, cgroup files', async () => {
    const r = await probe(
      c(),
      `
writable = []
for top in ('/sys/kernel', '/sys/power', '/sys/fs', '/sys/module', '/sys/class', '/sys/devices/system'):
    for dirpath, dirnames, filenames in os.walk(top):
        for n in filenames:
            p = os.path.join(dirpath, n)
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK)); writable.append(p)
            except OSError: pass
        if len(writable) > 20: break
for p in ('/sys/kernel/uevent_helper', '/sys/power/state', '/sys/kernel/mm/transparent_hugepage/enabled'):
    try:
        os.close(os.open(p, os.O_WRONLY)); writable.append(p)
    except OSError: pass
res['writable'] = sorted(set(writable))
`,
      { sandboxId: box },
    );
    assertNone(r.writable, 'files under /sys can be opened for writing inside a sandbox');
  });

  it('/proc/self/cgroup names no host cgroup (a cgroup namespace)', async () => {
    const r = await probe(c(), `res['cgroup'] = open('/proc/self/cgroup').read()`, { sandboxId: box });
    const leaked = (r.cgroup as string).split('\n').filter((l) => l.includes(env.stack().cgroupParent) || l.includes(box));
    assertNone(leaked, 'the sandbox sees its host cgroup paths (the host\'s cgroup layout and its own id)');
  });

  it('cannot write /proc/sysrq-trigger', async () => {
    // Opening for writing is the whole attack; nothing is ever written.
    const r = await probe(c(), `res['open'] = oserr(lambda: os.close(os.open('/proc/sysrq-trigger', os.O_WRONLY)))`, { sandboxId: box });
    assert.equal(r.open.ok, false, `/proc/sysrq-trigger opened for writing inside a sandbox: ${JSON.stringify(r)}`);
  });

  it('no /proc/<pid>/root or /proc/<pid>/cwd leads to the host\'s files', async () => {
    const markers = new HostMarkers(env.stack().dir);
    markers.plant();
    try {
      const names = markers.paths.map((p) => p.split('/').pop());
      const r = await probe(
        c(),
        `
found = []
paths = ${JSON.stringify(markers.paths)}
for pid in [p for p in os.listdir('/proc') if p.isdigit()] + ['self', 'thread-self']:
    for link in ('root', 'cwd'):
        base = '/proc/%s/%s' % (pid, link)
        for p in paths:
            for candidate in (base + p, base + '/..' + p, base + '/../../..' + p):
                try:
                    found.append([candidate, open(candidate).read()])
                except OSError: pass
        try:
            listing = os.listdir(base + '/')
            if any(n in listing for n in ('work', 'vmlinuz', 'initrd.img', 'fs-it', 'forkspace')):
                found.append([base, listing[:20]])
        except OSError: pass
res['found'] = found
`,
        { sandboxId: box },
      );
      markers.assertNotIn(JSON.stringify(r), 'reading host paths through /proc/<pid>/root and cwd');
      assertNone(r.found, `host files seen through /proc links (${names.join(', ')})`);
    } finally {
      markers.remove();
    }
  });
});
