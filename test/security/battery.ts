// Shared pieces of the escape and leak battery (test/security/*.test.ts): running Python probes inside
// sandboxes and reading their JSON verdicts, raw-syscall snippets, host-side helpers (an unprivileged host
// user, host keyrings, marker files, deadlines) and cleanup that holds even when a test fails.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ErrorCodes,
  ExecRun,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  type ExecResult,
  type ExecRunParams,
  type ParamsOf,
  type RpcClient,
} from '../../agent/src/protocol';
import { ROOT, sleep, type Stack } from '../integration/stack';

export const unique = (prefix: string): string => `${prefix}-${randomBytes(6).toString('hex')}`;

// ---------------------------------------------------------------------------------------------------
// Python probes inside a sandbox

/** Python prelude for probes: `sc(name, *args)` makes a raw syscall by name and returns
 * `{"ret": r, "errno": "EPERM" | None}`; `res` collects the verdicts; `done()` prints them as the last line. */
export const PY_PRELUDE = String.raw`
import ctypes, errno, json, os, platform, socket, struct, sys, time
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_X86 = {'read': 0, 'ptrace': 101, 'personality': 135, 'syslog': 103, 'keyctl': 250, 'add_key': 248, 'request_key': 249,
  'bpf': 321, 'perf_event_open': 298, 'userfaultfd': 323, 'kexec_load': 246, 'kexec_file_load': 320,
  'init_module': 175, 'finit_module': 313, 'delete_module': 176, 'mount': 165, 'umount2': 166, 'pivot_root': 155,
  'open_tree': 428, 'move_mount': 429, 'fsopen': 430, 'fsconfig': 431, 'fsmount': 432, 'fspick': 433,
  'mount_setattr': 442, 'unshare': 272, 'clone': 56, 'setns': 308, 'io_uring_setup': 425, 'swapon': 167,
  'swapoff': 168, 'reboot': 169, 'settimeofday': 164, 'clock_settime': 227, 'adjtimex': 159, 'acct': 163,
  'quotactl': 179, 'iopl': 172, 'ioperm': 173, 'open_by_handle_at': 304, 'name_to_handle_at': 303,
  'process_vm_readv': 310, 'chroot': 161}
_ARM = {'read': 63, 'ptrace': 117, 'personality': 92, 'syslog': 116, 'keyctl': 219, 'add_key': 217, 'request_key': 218,
  'bpf': 280, 'perf_event_open': 241, 'userfaultfd': 282, 'kexec_load': 104, 'kexec_file_load': 294,
  'init_module': 105, 'finit_module': 273, 'delete_module': 106, 'mount': 40, 'umount2': 39, 'pivot_root': 41,
  'open_tree': 428, 'move_mount': 429, 'fsopen': 430, 'fsconfig': 431, 'fsmount': 432, 'fspick': 433,
  'mount_setattr': 442, 'unshare': 97, 'clone': 220, 'setns': 268, 'io_uring_setup': 425, 'swapon': 224,
  'swapoff': 225, 'reboot': 142, 'settimeofday': 170, 'clock_settime': 112, 'adjtimex': 171, 'acct': 89,
  'quotactl': 60, 'open_by_handle_at': 265, 'name_to_handle_at': 264, 'process_vm_readv': 270, 'chroot': 51}
NR = {'x86_64': _X86, 'aarch64': _ARM}[platform.machine()]
def _arg(a):
    if isinstance(a, int): return ctypes.c_long(a)
    return a
def sc(name, *args):
    if name not in NR: return {'ret': -1, 'errno': 'ENOSYS(no such syscall on this arch)'}
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(NR[name]), *[_arg(a) for a in args])
    e = ctypes.get_errno()
    return {'ret': r, 'errno': (errno.errorcode.get(e, str(e)) if r < 0 else None)}
def oserr(fn, *a, **k):
    try:
        v = fn(*a, **k)
        return {'ok': True, 'value': v if isinstance(v, (int, str, bool, type(None))) else repr(v)[:200]}
    except OSError as e:
        return {'ok': False, 'errno': errno.errorcode.get(e.errno, str(e.errno))}
def cap_eff():
    for l in open('/proc/self/status'):
        if l.startswith('CapEff:'): return int(l.split()[1], 16)
res = {}
def done():
    sys.stdout.flush()
    print('\n' + json.dumps(res, default=str))
`;

/** Runs `body` (Python, after PY_PRELUDE) and returns `res` as the probe left it. In `sandboxId` with
 * sandbox/exec, or in a fresh ephemeral python sandbox with exec/run. */
export async function probe<T = Record<string, any>>(
  client: RpcClient,
  body: string,
  options: { sandboxId?: string; run?: Partial<ExecRunParams>; timeoutMs?: number } = {},
): Promise<T> {
  const code = `${PY_PRELUDE}\n${body}\ndone()\n`;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const r: ExecResult = options.sandboxId
    ? await client.request(SandboxExec, { sandboxId: options.sandboxId, code, timeoutMs })
    : await client.request(ExecRun, { environment: 'python', code, timeoutMs, ...options.run });
  return parseVerdict<T>(r);
}

export function parseVerdict<T>(r: ExecResult): T {
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`the probe printed no verdict (exit ${r.exitCode}, signal ${r.signal}):\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  }
}

/** A raw-syscall verdict: did the call succeed? */
export interface Sc {
  ret: number;
  errno: string | null;
}
export const succeeded = (v: Sc): boolean => v.ret >= 0;

/** Asserts that none of the named syscall verdicts succeeded; the message lists the ones that did. */
export function assertAllFailed(verdicts: Record<string, Sc>, what: string): void {
  const worked = Object.entries(verdicts).filter(([, v]) => succeeded(v));
  assert.ok(
    worked.length === 0,
    `${what}: these calls succeeded from inside a sandbox: ${worked.map(([k, v]) => `${k} -> ${v.ret}`).join(', ')} (all: ${JSON.stringify(verdicts)})`,
  );
}

/** Fails with `message` and the list when `list` is not empty (without a diff of the whole list). */
export function assertNone(list: unknown[], message: string): void {
  assert.ok(list.length === 0, `${message}: ${JSON.stringify(list).slice(0, 1500)}`);
}

/** Capability bits the sandbox must never hold. */
export const FORBIDDEN_CAPS: [string, bigint][] = [
  ['CAP_NET_ADMIN', 12n],
  ['CAP_NET_RAW', 13n],
  ['CAP_SYS_MODULE', 16n],
  ['CAP_SYS_RAWIO', 17n],
  ['CAP_SYS_PTRACE', 19n],
  ['CAP_SYS_ADMIN', 21n],
];

/** /proc/<pid>/status fields that show the hardened profile. */
export function statusFields(status: string): { seccomp: string; noNewPrivs: string; capEff: bigint } {
  const field = (name: string) => status.match(new RegExp(`^${name}:\\s*(\\S+)`, 'm'))?.[1] ?? 'missing';
  return { seccomp: field('Seccomp'), noNewPrivs: field('NoNewPrivs'), capEff: BigInt('0x' + (field('CapEff') === 'missing' ? '0' : field('CapEff'))) };
}

// ---------------------------------------------------------------------------------------------------
// Sandboxes that are destroyed even when a test fails

/** Tracks sandboxes a suite makes and destroys the ones still alive (call `destroyAll` in `after`). */
export class Sandboxes {
  private ids = new Set<string>();
  constructor(private readonly client: () => RpcClient) {}

  async create(params: ParamsOf<typeof SandboxCreate> = {}): Promise<string> {
    const { sandbox } = await this.client().request(SandboxCreate, { environment: 'python', ...params });
    this.ids.add(sandbox.id);
    return sandbox.id;
  }

  /** Marks an id made some other way (restore, branch) for cleanup. */
  adopt(id: string): string {
    this.ids.add(id);
    return id;
  }

  async destroy(id: string): Promise<void> {
    this.ids.delete(id);
    await this.client()
      .request(SandboxDestroy, { sandboxId: id })
      .catch(() => {});
  }

  async destroyAll(): Promise<void> {
    for (const id of [...this.ids]) await this.destroy(id);
  }
}

/** Runs a shell command in a sandbox and returns its result (no assertion on the exit code). */
export function sh(client: RpcClient, sandboxId: string, command: string, timeoutMs = 60_000): Promise<ExecResult> {
  return client.request(SandboxExec, { sandboxId, command, timeoutMs });
}

/** Like `sh`, but the command must succeed. */
export async function shOk(client: RpcClient, sandboxId: string, command: string): Promise<string> {
  const r = await sh(client, sandboxId, command);
  assert.equal(r.exitCode, 0, `\`${command}\` failed in ${sandboxId} (exit ${r.exitCode}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------------
// Errors and deadlines

/** The request must be refused with InvalidParams (-32602); anything else (success, another code) fails. */
export async function expectInvalidParams(p: Promise<unknown>, what: string): Promise<ProtocolError> {
  let result: unknown;
  try {
    result = await p;
  } catch (e) {
    assert.ok(e instanceof ProtocolError, `${what}: failed with ${String(e)} instead of an InvalidParams error`);
    assert.equal(e.code, ErrorCodes.InvalidParams, `${what}: got ${e.name} (${e.code}) "${e.message}" instead of InvalidParams (-32602)`);
    return e;
  }
  assert.fail(`${what}: was accepted (${JSON.stringify(result).slice(0, 300)}) instead of refused with InvalidParams`);
}

export type Settled<T> = { settled: true; value?: T; error?: unknown } | { settled: false };

/** Waits for `p` up to `ms`; never rejects. */
export async function within<T>(p: Promise<T>, ms: number): Promise<Settled<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Settled<T>>((r) => (timer = setTimeout(() => r({ settled: false }), ms)));
  const done = p.then(
    (value) => ({ settled: true as const, value }),
    (error) => ({ settled: true as const, error }),
  );
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * Releases a runtime blocked on a FIFO that a sandbox made: until `done` settles (or `maxMs` passes), opens
 * every FIFO under the data dir's sandbox roots and snapshot layers from the host's side, for reading and for
 * writing, without blocking. An `open` blocked in the runtime then returns, so a failing test cannot leave
 * the runtime wedged for the rest of the suite.
 */
export async function releaseFifos(dataDir: string, done: Promise<unknown>, maxMs = 30_000, nameIncludes = 'battery'): Promise<void> {
  let finished = false;
  void done.then(
    () => (finished = true),
    () => (finished = true),
  );
  const deadline = Date.now() + maxMs;
  while (!finished && Date.now() < deadline) {
    for (const fifo of findFifos(dataDir).filter((f) => path.basename(f).includes(nameIncludes))) {
      for (const flags of [fs.constants.O_WRONLY | fs.constants.O_NONBLOCK, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK]) {
        try {
          fs.closeSync(fs.openSync(fifo, flags));
        } catch {
          // no reader yet (ENXIO), or gone
        }
      }
    }
    await sleep(50);
  }
}

export function findFifos(dataDir: string): string[] {
  const out: string[] = [];
  const visit = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isFIFO()) out.push(p);
      else if (e.isDirectory() && !['proc', 'sys', 'usr', 'lib', 'bin', 'sbin', 'etc', 'var', 'criu'].includes(e.name)) visit(p, depth + 1);
    }
  };
  visit(dataDir, 0);
  return out;
}

/** Runs bin/forkspace against the stack, killed (by its pid) if it has not finished after `ms`. */
export function cliWithin(stack: Stack, args: string[], ms: number, input = ''): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(ROOT, 'bin', 'forkspace'), args, { env: { ...stack.env, FORKSPACE_NODE: process.execPath } });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(input);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// The host side

export const HOST_PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Runs a command as the unprivileged host user nobody (uid/gid 65534, no groups). */
export function asNobody(argv: string[], timeoutMs = 30_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', ...argv], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/**
 * The test stack lives in a 0700 mkdtemp directory, which alone would keep other host users out and hide
 * what the runtime itself does. In production the data dir sits in /var/lib (0755), so suites that attack
 * from the host as an unprivileged user open the stack directory the same way for their duration.
 */
export function exposeStackDirLikeVarLib(stack: () => Stack): void {
  let previous: number | undefined;
  // Mocha runs `before` hooks in the order they were added: call this after useStack().
  before(() => {
    previous = fs.statSync(stack().dir).mode & 0o7777;
    fs.chmodSync(stack().dir, 0o755);
  });
  after(() => {
    // useStack's own `after` may already have removed the directory.
    if (previous !== undefined && fs.existsSync(stack().dir)) fs.chmodSync(stack().dir, previous);
  });
}

/** Host mount table rows (from /proc/self/mountinfo) whose mount point is under `prefix`. */
export function hostMountsUnder(prefix: string): { mountPoint: string; fsType: string; options: string[]; superOptions: string[] }[] {
  const rows = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const f = left.split(' ');
    const mountPoint = f[4].replace(/\\040/g, ' ');
    if (!mountPoint.startsWith(prefix)) continue;
    const r = right.split(' ');
    rows.push({ mountPoint, fsType: r[0], options: f[5].split(','), superOptions: (r[2] ?? '').split(',') });
  }
  return rows;
}

/** The overlay upperdir of a sandbox's rootfs as mounted on the host. */
export function upperDirOf(rootfs: string): string {
  const m = hostMountsUnder(rootfs).find((r) => r.mountPoint === rootfs && r.fsType === 'overlay');
  assert.ok(m, `no overlay mounted at ${rootfs} on the host`);
  const upper = m.superOptions.find((o) => o.startsWith('upperdir='));
  assert.ok(upper, `the overlay at ${rootfs} names no upperdir: ${m.superOptions.join(',')}`);
  return upper.slice('upperdir='.length);
}

/** Runs a Python snippet on the host (as root, in this test process's session). */
export function hostPython(code: string, args: string[] = []): any {
  const r = spawnSync(HOST_PYTHON, ['-c', code, ...args], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `host python failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null');
}

const KEYCTL_PY = String.raw`
import ctypes, errno, json, platform, sys
libc = ctypes.CDLL(None, use_errno=True); libc.syscall.restype = ctypes.c_long
NR = {'x86_64': (248, 250), 'aarch64': (217, 219)}[platform.machine()]
def sc(nr, *a):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) if isinstance(x, int) else x for x in a])
    return r if r >= 0 else -ctypes.get_errno()
op = sys.argv[1]
if op == 'add':
    desc, payload = sys.argv[2].encode(), sys.argv[3].encode()
    out = {}
    for name, ring in (('session', -5), ('user', -4)):
        out[name] = sc(NR[0], b'user', desc + b'-' + name.encode(), payload, len(payload), ring)
        # Expires by itself should the test's own removal fail.
        if out[name] > 0: sc(NR[1], 15, out[name], 600)
    print(json.dumps(out))
elif op == 'inspect':
    buf = ctypes.create_string_buffer(512); out = {}
    for k in sys.argv[2:]:
        n = sc(NR[1], 11, int(k), buf, 512); data = buf.raw[:n].decode('latin1') if n >= 0 else None
        d = sc(NR[1], 6, int(k), buf, 512); desc = buf.value.decode('latin1') if d >= 0 else None
        out[k] = {'payload': data, 'description': desc}
    print(json.dumps(out))
elif op == 'find':
    out = {}
    for name, ring in (('session', -5), ('user', -4)):
        out[name] = sc(NR[1], 10, ring, b'user', sys.argv[2].encode(), 0)
    print(json.dumps(out))
elif op == 'remove':
    print(json.dumps([sc(NR[1], 21, int(k)) for k in sys.argv[2:]]))
`;

/** Keys added on the host to root's user-session keyring (@us, the session keyring of every root process
 * that has none of its own: daemons, and the runtime here) and user keyring (@u, shared by every process
 * of uid 0 in the initial user namespace). */
export const hostKeys = {
  add(description: string, payload: string): { session: number; user: number } {
    const r = hostPython(KEYCTL_PY, ['add', description, payload]);
    assert.ok(r.session > 0 && r.user > 0, `could not add host keys: ${JSON.stringify(r)}`);
    return r;
  },
  /** Payload and description of each key as the host sees them (null: gone or unreadable). */
  inspect(ids: number[]): Record<string, { payload: string | null; description: string | null }> {
    return hostPython(KEYCTL_PY, ['inspect', ...ids.map(String)]);
  },
  /** Ids (or -errno) of a key with this description in the host's session and user keyrings. */
  find(description: string): { session: number; user: number } {
    return hostPython(KEYCTL_PY, ['find', description]);
  },
  remove(ids: number[]): void {
    if (ids.length) hostPython(KEYCTL_PY, ['remove', ...ids.map(String)]);
  },
};

/** Marker files with unique content planted on the host; `changes()` says if any was read back, changed
 * or removed. Paths: the stack directory, /root and /tmp. */
export class HostMarkers {
  readonly content = unique('HOSTMARKER');
  readonly paths: string[];
  constructor(stackDir: string) {
    const name = unique('.battery-marker');
    this.paths = [path.join(stackDir, name), path.join('/root', name), path.join('/tmp', name)];
  }

  plant(): void {
    for (const p of this.paths) fs.writeFileSync(p, this.content + '\n', { mode: 0o644 });
  }

  /** What happened to the markers (empty: nothing). */
  changes(): string[] {
    const out: string[] = [];
    for (const p of this.paths) {
      try {
        if (fs.readFileSync(p, 'utf8') !== this.content + '\n') out.push(`${p} was modified`);
      } catch {
        out.push(`${p} was removed`);
      }
    }
    return out;
  }

  /** Fails when `text` carries a marker's content (a host file came back). */
  assertNotIn(text: string, where: string): void {
    assert.ok(!text.includes(this.content), `${where} returned the content of a host file (${this.content})`);
  }

  remove(): void {
    for (const p of this.paths) fs.rmSync(p, { force: true });
  }
}

/** Every directory and file under `root` that is the runtime's own (not sandbox content), with its mode:
 * mount points other than `root`'s own filesystem pool are not entered, nor directories holding
 * `contentMarker` (a sandbox's root as stored on the host) or their sibling `work` dirs. */
export function runtimeFiles(root: string, contentMarker: string, pool: string): { path: string; mode: number; dir: boolean }[] {
  const mountPoints = new Set(hostMountsUnder(root).map((m) => m.mountPoint));
  const out: { path: string; mode: number; dir: boolean }[] = [];
  const visit = (dir: string) => {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      return;
    }
    const contentRoot = entries.includes(contentMarker);
    if (contentRoot) return;
    const siblingsHoldContent = entries.some((e) => {
      try {
        return fs.readdirSync(path.join(dir, e)).includes(contentMarker);
      } catch {
        return false;
      }
    });
    for (const e of entries) {
      const p = path.join(dir, e);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) {
        if (siblingsHoldContent && e === 'work') continue;
        if (mountPoints.has(p) && p !== pool) continue;
        if (fs.existsSync(path.join(p, contentMarker))) continue;
        out.push({ path: p, mode: st.mode & 0o7777, dir: true });
        visit(p);
      } else if (st.isFile()) {
        out.push({ path: p, mode: st.mode & 0o7777, dir: false });
      }
    }
  };
  out.push({ path: root, mode: fs.statSync(root).mode & 0o7777, dir: true });
  visit(root);
  return out;
}

export const octal = (mode: number): string => '0' + mode.toString(8).padStart(3, '0');
