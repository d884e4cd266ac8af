// Resource limits as a sandbox attacks them: its writable layer is bounded (explicitly and by default) so
// it cannot fill the pool every sandbox shares; it cannot hold a large share of the host's open files
// across many processes; limits beyond what the host has are refused; and the CPU, memory and process
// limits hold against a busy loop, a large allocation and a fork bomb.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExecRun, FilesRead, FilesWrite, SandboxCreate, SandboxGet, type Limits } from '../../agent/src/protocol';
import { useStack } from '../integration/stack';
import { cliWithin, expectInvalidParams, hostPython, probe, Sandboxes, until } from './battery';

const MiB = 1024 * 1024;

/** `limits.diskBytes`: the field the disk limit adds to the protocol's Limits. */
function disk(bytes: number, rest: Limits = {}): Limits {
  return { ...rest, diskBytes: bytes } as Limits;
}

/** Python that writes random 1 MiB blocks to `file` until `maxBytes` or an error; reports both. */
const FILL = (file: string, maxBytes: number) => `
block = os.urandom(1 << 20)
written, err = 0, None
try:
    f = open('${file}', 'wb', buffering=0)
    while written < ${maxBytes}:
        written += f.write(block)
    os.fsync(f.fileno())
    f.close()
except OSError as e:
    err = errno.errorcode.get(e.errno, str(e.errno))
res['written'] = written
res['errno'] = err
`;

/** Bytes of one struct file as the kernel allocates it: the filp slab's object size (192 on 6.x x86_64). */
function filpSize(): number {
  const line = fs.readFileSync('/proc/slabinfo', 'utf8').split('\n').find((l) => l.startsWith('filp '));
  return Number(line?.trim().split(/\s+/)[3] ?? 256) || 256;
}

describe('security: resource limits (real runtime)', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  env.beforeStop(() => boxes.destroyAll());

  it('limits.diskBytes bounds a sandbox\'s writable layer (ENOSPC/EDQUOT inside), and another sandbox can still write', async () => {
    const limit = 32 * MiB;
    const id = await boxes.create({ environment: 'python', limits: disk(limit) }).catch((e) => assert.fail(`a sandbox with limits.diskBytes could not be made (${String(e)}): there is no disk limit`));
    const r = await probe(c(), FILL('/root/fill', 4 * limit), { sandboxId: id });
    assert.ok(r.errno === 'ENOSPC' || r.errno === 'EDQUOT', `a sandbox limited to ${limit / MiB} MiB wrote ${r.written / MiB} MiB without ENOSPC or EDQUOT (errno ${r.errno})`);
    assert.ok(r.written <= limit + 8 * MiB, `a sandbox limited to ${limit / MiB} MiB wrote ${r.written / MiB} MiB before the limit stopped it`);
    const other = await boxes.create({ environment: 'python' });
    const o = await probe(c(), FILL('/root/fill', 16 * MiB), { sandboxId: other });
    assert.equal(o.errno, null, `another sandbox could not write 16 MiB while the first sat at its limit: ${o.errno}`);
    await boxes.destroy(id);
    await boxes.destroy(other);
  });

  it('a sandbox has a default disk limit (shown by sandbox/get) that holds', async () => {
    const id = await boxes.create({ environment: 'python' });
    const { sandbox } = await c().request(SandboxGet, { sandboxId: id });
    const s = sandbox as unknown as { spec: Record<string, unknown>; limits?: Record<string, unknown> };
    const limit = Number(s.limits?.diskBytes ?? s.spec.diskBytes);
    assert.ok(limit > 0, `sandbox/get shows no default disk limit: ${JSON.stringify(sandbox.spec)}`);
    const pool = fs.statfsSync(fs.existsSync(path.join(env.stack().config.dataDir, 'fs')) ? path.join(env.stack().config.dataDir, 'fs') : env.stack().config.dataDir);
    assert.ok(limit < pool.blocks * pool.bsize, `the default disk limit (${limit} bytes) is not below the pool's size (${pool.blocks * pool.bsize}): it limits nothing`);
    const r = await probe(
      c(),
      `
fd = os.open('/root/big', os.O_WRONLY | os.O_CREAT, 0o600)
res['fallocate'] = oserr(os.posix_fallocate, fd, 0, ${limit + 64 * MiB})
os.close(fd)
os.unlink('/root/big')
`,
      { sandboxId: id },
    );
    assert.ok(
      !r.fallocate.ok && ['ENOSPC', 'EDQUOT'].includes(r.fallocate.errno),
      `a sandbox allocated ${(limit + 64 * MiB) / MiB} MiB past its default disk limit of ${limit / MiB} MiB: ${JSON.stringify(r.fallocate)}`,
    );
    await boxes.destroy(id);
  });

  it('forkspace run --disk bounds what the command can write', async () => {
    const r = await cliWithin(env.stack(), ['run', '--env', 'busybox', '--disk', '16M', '--', 'sh', '-c', 'dd if=/dev/urandom of=/tmp/fill bs=1M count=64 2>&1; sync; ls -l /tmp/fill'], 60_000);
    const out = r.stdout + r.stderr;
    assert.match(out, /No space left on device|Disk quota exceeded/, `forkspace run --disk 16M did not stop a 64 MiB write: exit ${r.code}: ${out.slice(0, 600)}`);
    const size = Number(/\s(\d+)\s+\w+\s+\d+\s+[\d:]+\s+\/tmp\/fill/.exec(out)?.[1] ?? NaN);
    if (!Number.isNaN(size)) assert.ok(size <= 24 * MiB, `forkspace run --disk 16M let the command write ${size} bytes`);
  });

  it('a pids limit above the host\'s pid_max is refused', async () => {
    const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    await expectInvalidParams(c().request(ExecRun, { environment: 'busybox', command: 'true', limits: { pids: pidMax + 1 } }), `exec/run with limits.pids ${pidMax + 1} (pid_max ${pidMax})`);
    await expectInvalidParams(
      c()
        .request(SandboxCreate, { environment: 'busybox', limits: { pids: pidMax + 1 } })
        .then((r) => (boxes.adopt(r.sandbox.id), r)),
      `sandbox/create with limits.pids ${pidMax + 1}`,
    );
  });

  it('cannot exhaust the host\'s open files: what a sandbox holds is paid by its memory limit, and file-max is above what memory can hold', async () => {
    // RLIMIT_NOFILE bounds one process only: the attack forks until the sandbox as a whole can open no more.
    const memory = 64 * MiB;
    // The least an open file costs: its struct file (charged to the memory cgroup) and an fd slot.
    const perFile = filpSize() + 8;
    const bound = Math.floor(memory / perFile);
    const r = await probe(
      c(),
      `
import resource, select
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
prog_r, prog_w = os.pipe()
hold_r, hold_w = os.pipe()
kids, counts = [], {}
def drain(timeout):
    while select.select([prog_r], [], [], timeout)[0]:
        data = os.read(prog_r, 4096)
        for i in range(0, len(data) - len(data) % 8, 8):
            pid, n = struct.unpack('ii', data[i:i + 8])
            counts[pid] = n
        timeout = 0
while sum(counts.values()) < ${Math.ceil(bound * 1.2)} and len(kids) < 900:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            with open('/proc/self/oom_score_adj', 'w') as f: f.write('1000')
        except OSError: pass
        try: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError): pass
        me, n = os.getpid(), 0
        try:
            while n < hard:
                os.open('/dev/null', os.O_RDONLY); n += 1
                if n % 512 == 0: os.write(prog_w, struct.pack('ii', me, n))
        except OSError:
            pass
        os.write(prog_w, struct.pack('ii', me, n)); os.write(prog_w, struct.pack('ii', -me, 0))
        os.read(hold_r, 1)
        os._exit(0)
    kids.append(pid)
    # Until this child is done (or was killed for memory, which closes its files), tally its progress.
    died = False
    while -pid not in counts:
        drain(0.05)
        if os.waitpid(pid, os.WNOHANG)[0]:
            died = True; break
    drain(0)
    if died:
        counts.pop(pid, None); kids.pop(); break
    if counts.get(pid, 0) < 16: break
# Only files still held count: a child the kernel killed has none.
alive = [k for k in kids if os.waitpid(k, os.WNOHANG)[0] == 0]
res['total'] = sum(counts.get(k, 0) for k in alive)
res['processes'] = len(alive)
res['rlimit'] = [soft, hard]
os.write(hold_w, b'x' * len(kids))
for k in alive:
    try: os.waitpid(k, 0)
    except ChildProcessError: pass
`,
      { run: { limits: { memoryBytes: memory }, timeoutMs: 120_000 }, timeoutMs: 120_000 },
    );
    assert.ok(r.total <= bound, `a sandbox limited to ${memory / MiB} MiB held ${r.total} open files across ${r.processes} processes (RLIMIT_NOFILE ${r.rlimit.join('/')}): its open files are not paid by its memory`);
    const fileMax = Number(fs.readFileSync('/proc/sys/fs/file-max', 'utf8'));
    const memTotal = Number(/MemTotal:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
    assert.ok(
      fileMax >= memTotal / perFile,
      `the host's file-max (${fileMax}) is below what its memory holds in open files (${Math.floor(memTotal / perFile)} of ${perFile} bytes each): sandboxes together exhaust the open files of every host process before they run out of memory`,
    );
  });

  it('cannot use up host root\'s inotify instances (the kernel charges a sandbox\'s use to its creator, root)', async () => {
    const id = await boxes.create();
    // 8 processes each make inotify instances up to their open-files limit, say how many, and hold them
    // until the host has tried to make one of its own.
    const holding = probe(
      c(),
      `
import resource, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
libc = ctypes.CDLL(None, use_errno=True)
libc.inotify_init1.restype = ctypes.c_int
r, w = os.pipe()
kids = []
for i in range(8):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError): pass
        n = 0
        while libc.inotify_init1(0) >= 0: n += 1
        os.write(w, b'%d\\n' % n); os.close(w)
        while not os.path.exists('/tmp/inotify-release'): time.sleep(0.05)
        os._exit(0)
    kids.append(pid)
os.close(w)
counts = [int(l) for l in os.fdopen(r).read().split()]
open('/tmp/inotify-ready', 'w').write(str(sum(counts)))
for k in kids: os.waitpid(k, 0)
res['made'] = sum(counts)
`,
      { sandboxId: id, timeoutMs: 90_000 },
    );
    try {
      await until(() => c().request(FilesRead, { id, path: '/tmp/inotify-ready' }).then(() => true, () => undefined), 60_000, 'the holders');
      const host = hostPython('import ctypes, json\nfd = ctypes.CDLL(None, use_errno=True).inotify_init1(0)\nprint(json.dumps({"fd": fd, "errno": ctypes.get_errno()}))');
      assert.ok(host.fd >= 0, `host root could not make an inotify instance while a sandbox held its own (errno ${host.errno})`);
    } finally {
      await c().request(FilesWrite, { sandboxId: id, path: '/tmp/inotify-release', content: '' }).catch(() => {});
    }
    const { made } = await holding;
    assert.ok(made > 128, `the sandbox made only ${made} instances: the test did not reach the old host-wide limit of 128`);
  });

  it('the pids limit holds against a fork bomb', async () => {
    const r = await c().request(ExecRun, {
      environment: 'python',
      limits: { pids: 32 },
      timeoutMs: 60_000,
      code: [
        'import os, time',
        'n = 0',
        'for i in range(200):',
        '    try:',
        '        if os.fork() == 0:',
        '            time.sleep(30); os._exit(0)',
        '        n += 1',
        '    except OSError:',
        '        break',
        'print(n)',
      ].join('\n'),
    });
    const n = Number(r.stdout.trim());
    assert.ok(n < 32, `a sandbox limited to 32 processes forked ${n}`);
    assert.equal(r.pidsLimitHit, true, 'the result does not report the pids limit');
  });

  it('the memory limit holds against a large allocation', async () => {
    const r = await c().request(ExecRun, { environment: 'python', limits: { memoryBytes: 64 * MiB }, code: 'b = bytearray(512 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint("allocated")' });
    assert.ok(!r.stdout.includes('allocated'), 'a sandbox limited to 64 MiB touched 512 MiB');
    assert.equal(r.oomKilled, true, `the allocation was not OOM-killed: exit ${r.exitCode}, ${r.stderr}`);
  });

  it('the CPU limit holds against busy threads', async () => {
    const r = await c().request(ExecRun, {
      environment: 'python',
      limits: { cpus: 0.25 },
      code: 'import os, time\nend = time.time() + 2\nfor _ in range(3):\n    if os.fork() == 0:\n        while time.time() < end: pass\n        os._exit(0)\nwhile time.time() < end: pass\nfor _ in range(3): os.wait()',
    });
    assert.ok(r.cpuTimeMs !== null, 'the result has no CPU time');
    const share = r.cpuTimeMs! / r.durationMs;
    assert.ok(share < 0.25 * 1.6, `a sandbox limited to 0.25 CPUs used ${share.toFixed(2)} CPUs (${r.cpuTimeMs} ms in ${r.durationMs} ms)`);
  });
});
