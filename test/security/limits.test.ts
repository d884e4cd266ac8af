// Resource limits as a sandbox attacks them: its writable layer is bounded (explicitly and by default) so
// it cannot fill the pool every sandbox shares; it cannot hold a large share of the host's open files
// across many processes; limits beyond what the host has are refused; and the CPU, memory and process
// limits hold against a busy loop, a large allocation and a fork bomb.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExecRun, SandboxCreate, SandboxGet, type Limits } from '../../agent/src/protocol';
import { useStack } from '../integration/stack';
import { cliWithin, expectInvalidParams, probe, Sandboxes } from './battery';

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

  it('cannot hold 128Ki open files at once by spreading them over many processes', async () => {
    // RLIMIT_NOFILE bounds one process; the attack forks until the sandbox as a whole holds TARGET files.
    const TARGET = 128 * 1024;
    const r = await probe(
      c(),
      `
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
counts_r, counts_w = os.pipe()
hold_r, hold_w = os.pipe()
kids, total = [], 0
while total < ${TARGET} and len(kids) < 512:
    want = min(hard, ${TARGET} - total)
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError): pass
        n = 0
        try:
            while n < want:
                os.open('/dev/null', os.O_RDONLY); n += 1
        except OSError:
            pass
        os.write(counts_w, struct.pack('i', n))
        os.read(hold_r, 1)
        os._exit(0)
    kids.append(pid)
    got = struct.unpack('i', os.read(counts_r, 4))[0]
    total += got
    if got == 0: break
os.write(hold_w, b'x' * len(kids))
for k in kids: os.waitpid(k, 0)
res['total'] = total
res['processes'] = len(kids)
res['rlimit'] = [soft, hard]
`,
      { run: { timeoutMs: 120_000 }, timeoutMs: 120_000 },
    );
    assert.ok(r.total < TARGET, `a sandbox held ${r.total} open files at once across ${r.processes} processes (RLIMIT_NOFILE ${r.rlimit.join('/')} per process)`);
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
