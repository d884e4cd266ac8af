// The runtime's pre-exec helper: `sandbox/exec` clones a process of the runtime into the sandbox's pid
// namespace, which becomes the command with execve. Until then it is the host's forkspace-rt binary with
// the runtime's memory. A scanner inside the sandbox watches every new pid while the test runs many execs:
// it must never open the host binary through /proc/<pid>/exe (the CVE-2019-5736 pattern), read the
// runtime's memory through /proc/<pid>/mem, or ptrace the helper; and holding a helper stopped must not
// stall the runtime's single spawner, which makes every other sandbox's processes too.
import { strict as assert } from 'node:assert';
import { ExecRun, FilesRead, FilesWrite, SandboxExec, type ExecResult } from '../../agent/src/protocol';
import { useStack } from '../integration/stack';
import { assertNone, parseVerdict, PY_PRELUDE, Sandboxes, until, within } from './battery';

/** Execs issued while the scanner runs; on main it catches the helper in nearly every one of them. */
const EXECS = 40;

const SCANNER = String.raw`
import sys
other = sys.argv[1].encode()
STOP, READY = '/tmp/battery-scan-stop', '/tmp/battery-scan-ready'
def maxpid(): return max(int(p) for p in os.listdir('/proc') if p.isdigit())
def in_sandbox(target, st):
    # The file the link names, as this sandbox sees it, is the same inode the link opens.
    try:
        mine = os.stat(target)
        return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)
    except OSError:
        return False
hits = {'exe': [], 'exe_write': [], 'mem': [], 'ptrace': []}
seen = set(); other_seen = False
nxt = maxpid() + 1
open(READY, 'w').close()
deadline = time.time() + 90
spins = 0
while time.time() < deadline:
    spins += 1
    if spins % 500 == 0 and os.path.exists(STOP): break
    pid = nxt; p = '/proc/%d/' % pid
    try:
        fd = os.open(p + 'exe', os.O_RDONLY)
    except FileNotFoundError:
        if spins % 200 == 0 and maxpid() > nxt: nxt += 1
        continue
    except OSError:
        fd = None
    seen.add(pid)
    try: target = os.readlink(p + 'exe')
    except OSError: target = None
    if fd is not None:
        st = os.fstat(fd); os.close(fd)
        if not in_sandbox(target or '', st) and len(hits['exe']) < 5:
            hits['exe'].append({'pid': pid, 'target': target, 'size': st.st_size})
            try:
                os.close(os.open(p + 'exe', os.O_WRONLY)); hits['exe_write'].append(pid)
            except OSError: pass
    try:
        mfd = os.open(p + 'mem', os.O_RDONLY)
    except OSError:
        mfd = None
    if mfd is not None:
        try:
            with open(p + 'maps') as m: maps = m.read().splitlines()
            host = [l for l in maps if len(l.split()) >= 6 and l.split()[5].startswith('/') and not os.path.exists(l.split()[5])]
            if host and len(hits['mem']) < 5:
                lo = int(host[0].split('-')[0], 16)
                head = os.pread(mfd, 16, lo)
                if head:
                    found_other = False
                    for l in maps:
                        f = l.split()
                        if f[1].startswith('rw') and (len(f) == 5 or f[5] == '[heap]') and not found_other:
                            a, b = [int(x, 16) for x in f[0].split('-')]
                            try: found_other = other in os.pread(mfd, min(b - a, 8 << 20), a)
                            except OSError: pass
                    hits['mem'].append({'pid': pid, 'mapping': host[0].split()[-1], 'bytes': head.hex(), 'otherSandboxIdInMemory': found_other})
        except OSError: pass
        os.close(mfd)
    try:
        with open(p + 'comm') as f: comm = f.read().strip()
    except OSError:
        comm = None
    if comm == 'forkspace-spawn':
        # Still the runtime's code: try to attach. A seized tracee is stopped and released again at once, or
        # the runtime would wait for its exit status behind us.
        t = sc('ptrace', 0x4206, pid, 0, 0)
        if t['ret'] == 0:
            try: now = os.readlink(p + 'exe')
            except OSError: now = ''
            if now and not os.path.exists(now) and len(hits['ptrace']) < 5: hits['ptrace'].append({'pid': pid, 'exe': now})
            sc('ptrace', 0x4207, pid, 0, 0)
            for _ in range(500):
                try: w = os.waitpid(pid, os.WNOHANG | 0x40000000)
                except ChildProcessError: break
                if w[0]:
                    if os.WIFSTOPPED(w[1]): sc('ptrace', 17, pid, 0, 0)
                    break
                time.sleep(0.0005)
    else:
        nxt += 1
res['hits'] = hits
res['seen'] = len(seen)
`;

/** Waits for the helper of the next sandbox/exec, stops it with ptrace and keeps it stopped until told. */
const HOLDER = String.raw`
STOP, READY, HELD = '/tmp/battery-hold-stop', '/tmp/battery-hold-ready', '/tmp/battery-held'
def maxpid(): return max(int(p) for p in os.listdir('/proc') if p.isdigit())
nxt = maxpid() + 1
open(READY, 'w').close()
held = None
deadline = time.time() + 60
spins = 0
while time.time() < deadline and held is None:
    spins += 1
    if spins % 500 == 0 and os.path.exists(STOP): break
    p = '/proc/%d/' % nxt
    try:
        with open(p + 'comm') as f: comm = f.read().strip()
    except OSError:
        if spins % 200 == 0 and maxpid() > nxt: nxt += 1
        continue
    if comm != 'forkspace-spawn':
        nxt += 1; continue
    if sc('ptrace', 0x4206, nxt, 0, 0)['ret'] == 0:
        sc('ptrace', 0x4207, nxt, 0, 0)
        try: w = os.waitpid(nxt, 0x40000000)
        except ChildProcessError: w = (0, 0)
        try: exe = os.readlink(p + 'exe')
        except OSError: exe = ''
        if w[0] and os.WIFSTOPPED(w[1]) and exe and not os.path.exists(exe):
            # Stopped while still the runtime's binary, before its execve.
            held = {'pid': nxt, 'exe': exe}
            open(HELD, 'w').write(json.dumps(held))
        elif w[0] and os.WIFSTOPPED(w[1]):
            sc('ptrace', 17, nxt, 0, 0)
while held and time.time() < deadline and not os.path.exists(STOP):
    time.sleep(0.02)
if held: sc('ptrace', 17, held['pid'], 0, 0)
res['held'] = held
`;

interface ScanResult {
  hits: { exe: { pid: number; target: string }[]; exe_write: number[]; mem: { pid: number; mapping: string; otherSandboxIdInMemory: boolean }[]; ptrace: { pid: number; exe: string }[] };
  seen: number;
}

describe('security: the runtime\'s pre-exec helper (real runtime)', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  let scan: ScanResult;

  before(async () => {
    const box = await boxes.create({ environment: 'python' });
    const other = await boxes.create({ environment: 'busybox' });
    const scanner = c().request(SandboxExec, { sandboxId: box, code: `${PY_PRELUDE}\nsys.argv = ['scan', '${other}']\n${SCANNER}\ndone()\n`, timeoutMs: 120_000 });
    const ready = await within(
      until(() => c().request(FilesRead, { id: box, path: '/tmp/battery-scan-ready' }).then(() => true, () => undefined), 30_000, 'the scanner'),
      31_000,
    );
    assert.ok(ready.settled && !ready.error, 'the scanner did not start');
    for (let i = 0; i < EXECS; i++) {
      await c().request(SandboxExec, { sandboxId: other, command: 'true' });
      const r = await within(c().request(SandboxExec, { sandboxId: box, command: 'true' }), 15_000);
      assert.ok(r.settled, `sandbox/exec ${i + 1} of ${EXECS} did not finish while the scanner ran`);
    }
    await c().request(FilesWrite, { sandboxId: box, path: '/tmp/battery-scan-stop', content: '' });
    const result: ExecResult = await scanner;
    scan = parseVerdict<ScanResult>(result);
    // Otherwise the attempts below were not made and their silence would prove nothing.
    assert.ok(scan.seen >= EXECS / 2, `the scanner saw only ${scan.seen} of the ${EXECS} exec'd processes`);
  });
  env.beforeStop(() => boxes.destroyAll());

  it('never opens the host\'s runtime binary through /proc/<pid>/exe', () => {
    assertNone(
      scan.hits.exe,
      `a sandbox opened a host binary through /proc/<pid>/exe of the runtime's helper` +
        (scan.hits.exe_write.length ? ` (even for writing: pids ${scan.hits.exe_write.join(', ')})` : ' (opening it for writing failed, with ETXTBSY)'),
    );
  });

  it('never reads the runtime\'s memory through /proc/<pid>/mem', () => {
    const other = scan.hits.mem.some((m) => m.otherSandboxIdInMemory);
    assertNone(scan.hits.mem, `a sandbox read the runtime's memory through /proc/<pid>/mem of its helper${other ? ', and found another sandbox\'s id in it' : ''}`);
  });

  it('never attaches to the runtime\'s helper with ptrace', () => {
    assertNone(scan.hits.ptrace, `a sandbox ptrace-attached the runtime's helper while it still ran the host binary`);
  });

  it('cannot stall other sandboxes by holding the runtime\'s helper stopped', async () => {
    const box = await boxes.create({ environment: 'python' });
    const holder = c().request(SandboxExec, { sandboxId: box, code: `${PY_PRELUDE}\n${HOLDER}\ndone()\n`, timeoutMs: 90_000 });
    const pending: Promise<unknown>[] = [holder];
    try {
      await until(() => c().request(FilesRead, { id: box, path: '/tmp/battery-hold-ready' }).then(() => true, () => undefined), 30_000, 'the holder');
      // Execs in the attacker's sandbox until the holder has caught one's helper (on main: the first few).
      let held = false;
      for (let i = 0; i < 10 && !held; i++) {
        let settled = false;
        const exec = c()
          .request(SandboxExec, { sandboxId: box, command: 'true' })
          .catch(() => undefined)
          .finally(() => (settled = true));
        pending.push(exec);
        held = await until(async () => {
          if (await c().request(FilesRead, { id: box, path: '/tmp/battery-held' }).then(() => true, () => false)) return true;
          return settled ? false : undefined;
        }, 15_000, 'the exec to end or its helper to be held');
      }
      // Another tenant runs something meanwhile.
      const other = await within(c().request(ExecRun, { environment: 'busybox', command: 'echo other-tenant' }), 10_000);
      assert.ok(
        other.settled,
        `while a sandbox held the runtime's pre-exec helper stopped under ptrace${held ? '' : ' (not caught this time)'}, another sandbox's exec/run did not answer for 10 s: the runtime's spawner is stalled`,
      );
    } finally {
      await c().request(FilesWrite, { sandboxId: box, path: '/tmp/battery-hold-stop', content: '' }).catch(() => undefined);
      await within(Promise.allSettled(pending), 60_000);
      await boxes.destroy(box);
    }
  });
});
