// A private agent + forkspace-rt pair for integration tests: its own data dir, sockets, logs and cgroup
// parent, sharing only the environment cache with a user's runtime. `leftovers()` lists anything of the
// pair's that still exists on the host: mounts, cgroups, processes.
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AgentStop, connectUnixSocket, Initialize, PROTOCOL_VERSION, RpcClient } from '../../agent/src/protocol';
import { resolveConfig, type AgentConfig } from '../../agent/src/config';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist');
export const SHARED_ENV_DIR = process.env.FORKSPACE_ENV_DIR ?? '/var/lib/forkspace/envs';

/** The read-only rootfs of a built environment in the shared cache: its newest recipe's slot
 * (`python-3.11.r2`; agent-native/src/envs.rs names them). */
export function envRootfs(name: string): string {
  const slug = name.replace(':', '-');
  const slots = fs
    .readdirSync(SHARED_ENV_DIR)
    .filter((d) => d.startsWith(`${slug}.r`) && fs.existsSync(path.join(SHARED_ENV_DIR, d, 'manifest.json')))
    .sort((a, b) => Number(a.slice(slug.length + 2)) - Number(b.slice(slug.length + 2)));
  if (!slots.length) throw new Error(`environment ${name} is not built in ${SHARED_ENV_DIR}: run scripts/setup.sh`);
  return path.join(SHARED_ENV_DIR, slots[slots.length - 1], 'rootfs');
}

/** Integration tests need root (namespaces, mounts, cgroups); elsewhere they skip and say why. */
export function requireRoot(ctx: Mocha.Context): void {
  if (process.getuid?.() !== 0) {
    console.log('    (skipped: integration tests need root for namespaces, mounts and cgroups; CI runs them as root)');
    ctx.skip();
  }
  for (const f of ['agent.js', 'cli.js', 'forkspace-rt']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`dist/${f} is missing: run scripts/setup.sh (or npm run build) first`);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Stack {
  readonly env: NodeJS.ProcessEnv;
  readonly config: AgentConfig;
  private agent: ChildProcess | undefined;
  private clients: RpcClient[] = [];

  private constructor(readonly dir: string, readonly cgroupParent: string, wsPort: number, extra: NodeJS.ProcessEnv = {}) {
    this.env = {
      ...process.env,
      // No warm pools unless a suite asks: their ready sandboxes would count as leftovers.
      FORKSPACE_POOLS: '',
      // A free port unless a suite needs to know it (the Direct HTTP API suites choose one).
      FORKSPACE_HTTP_PORT: '0',
      ...extra,
      FORKSPACE_DATA_DIR: path.join(dir, 'data'),
      FORKSPACE_RUN_DIR: path.join(dir, 'run'),
      FORKSPACE_LOG_DIR: path.join(dir, 'logs'),
      FORKSPACE_ENV_DIR: SHARED_ENV_DIR,
      FORKSPACE_CGROUP_PARENT: cgroupParent,
      // A benchmark may run another build of the runtime (bench/isolation.ts compares two).
      FORKSPACE_RT_BIN: extra.FORKSPACE_RT_BIN ?? path.join(DIST, 'forkspace-rt'),
      FORKSPACE_WS_PORT: String(wsPort),
    };
    this.config = resolveConfig(this.env);
  }

  static async start(options: { wsPort?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Stack> {
    const stack = Stack.prepare(options);
    await stack.startAgent();
    return stack;
  }

  /** The stack's directories and environment, with no agent started: for a client that starts the
   * agent itself (the editor extension does). `stop()` stops whatever agent answers on its socket. */
  static prepare(options: { wsPort?: number; env?: NodeJS.ProcessEnv } = {}): Stack {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-it-'));
    return new Stack(dir, `fstest-${process.pid}-${path.basename(dir).slice(6)}`, options.wsPort ?? 0, options.env);
  }

  async startAgent(): Promise<void> {
    fs.mkdirSync(this.config.logDir, { recursive: true });
    const log = fs.openSync(path.join(this.config.logDir, 'forkspace-agent.log'), 'a');
    this.agent = spawn(process.execPath, [path.join(DIST, 'agent.js')], { env: this.env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    await waitFor(() => canConnect(this.config.agentSocket), 15_000, 'the agent socket');
  }

  get agentPid(): number | undefined {
    return this.agent?.pid;
  }

  /** The runtime's pid (from its data-dir lock file). */
  runtimePid(): number {
    return Number(fs.readFileSync(path.join(this.config.dataDir, 'rt.lock'), 'utf8'));
  }

  /** The runtime's pid while this stack's runtime process lives. */
  private livingRuntimePid(): number | undefined {
    try {
      const pid = this.runtimePid();
      return pid > 0 && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.dir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Kills the agent with SIGKILL (crash tests). */
  async killAgent(): Promise<void> {
    const a = this.agent;
    if (!a || a.exitCode !== null) return;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill('SIGKILL');
    await exited;
    fs.rmSync(this.config.agentSocket, { force: true });
  }

  async client(): Promise<RpcClient> {
    const c = new RpcClient(await connectUnixSocket(this.config.agentSocket));
    await c.request(Initialize, { protocolVersion: PROTOCOL_VERSION, clientName: 'integration-test' });
    this.clients.push(c);
    return c;
  }

  /** Runs bin/forkspace against this stack. */
  cli(args: string[], input?: string): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = spawn(path.join(ROOT, 'bin', 'forkspace'), args, { env: { ...this.env, FORKSPACE_NODE: process.execPath } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(input ?? '');
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  /** Stops agent and runtime, checks nothing is left, removes the directory. */
  async stop(): Promise<string[]> {
    this.clients.forEach((c) => c.close());
    try {
      const runtime = this.livingRuntimePid();
      const ours = this.agent && this.agent.exitCode === null;
      if (ours || (await canConnect(this.config.agentSocket))) {
        const c = await this.client();
        const exited = ours ? new Promise((r) => this.agent!.once('exit', r)) : waitFor(async () => !(await canConnect(this.config.agentSocket)), 10_000, 'the agent to stop');
        await c.request(AgentStop, { stopRuntime: true }).catch(() => {});
        await Promise.race([exited.catch(() => {}), sleep(10_000)]);
      }
      // The runtime outlives the agent while it stops its sandboxes (a snapshot each): wait for the process.
      await waitFor(() => runtime === undefined || !fs.existsSync(`/proc/${runtime}`), 20_000, 'the runtime to stop').catch(() => {});
    } finally {
      this.agent?.kill('SIGKILL');
    }
    const left = await this.leftovers({ final: true });
    await this.forceClean();
    fs.rmSync(this.dir, { recursive: true, force: true });
    return left;
  }

  /** Everything of this stack's sandboxes still on the host: mounts under its dir, cgroups, processes.
   * While the runtime runs, its snapshot pool (the btrfs mount and its loop device) and its idmapped
   * environment images (`data/idmap/<env>`) are expected; with `final`, after it stopped, nothing at all
   * may remain. */
  async leftovers(options: { includeParent?: boolean; final?: boolean } = {}): Promise<string[]> {
    const found: string[] = [];
    const pool = path.join(this.config.dataDir, 'fs');
    const idmap = path.join(this.config.dataDir, 'idmap') + '/';
    const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    for (const line of mountinfo.split('\n')) {
      const mp = line.split(' ')[4];
      const runtimes = mp === pool || mp?.startsWith(idmap);
      if (mp && mp.startsWith(this.dir) && (options.final || !runtimes)) found.push(`mount ${mp}`);
    }
    for (const dir of cgroupDirs(this.cgroupParent)) {
      if (!fs.existsSync(dir)) continue;
      const children = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
      for (const c of children) found.push(`cgroup ${path.join(dir, c.name)}`);
      if (options.includeParent) found.push(`cgroup ${dir}`);
    }
    for (const pid of await processesInCgroup(this.cgroupParent)) found.push(`process ${pid}`);
    const loops = await promisify(execFile)('losetup', ['-a']).then((r) => r.stdout, () => '');
    if (options.final) for (const l of loops.split('\n')) if (l.includes(this.dir)) found.push(`loop device ${l.split(':')[0]}`);
    for (const d of ['sandboxes'].map((s) => path.join(this.config.dataDir, s))) {
      if (fs.existsSync(d)) for (const e of fs.readdirSync(d)) found.push(`directory ${path.join(d, e)}`);
    }
    return found;
  }

  /** Last-resort cleanup so one failed test cannot leak into the machine. */
  private async forceClean(): Promise<void> {
    try {
      const pid = this.runtimePid();
      if (pid > 0 && fs.existsSync(`/proc/${pid}`) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.dir)) {
        process.kill(pid, 'SIGKILL');
        await waitFor(() => !fs.existsSync(`/proc/${pid}`), 5000, 'the runtime to die').catch(() => {});
      }
    } catch {
      // no runtime ever started
    }
    for (const pid of await processesInCgroup(this.cgroupParent)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    const loops = await promisify(execFile)('losetup', ['-a']).then((r) => r.stdout, () => '');
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => !!m && m.startsWith(this.dir))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await promisify(execFile)('umount', ['-l', m]).catch(() => {});
    for (const l of loops.split('\n')) {
      if (l.includes(this.dir)) await promisify(execFile)('losetup', ['-d', l.split(':')[0]]).catch(() => {});
    }
    for (const dir of cgroupDirs(this.cgroupParent)) {
      if (!fs.existsSync(dir)) continue;
      for (const c of fs.readdirSync(dir, { withFileTypes: true })) if (c.isDirectory()) rmdirQuiet(path.join(dir, c.name));
      rmdirQuiet(dir);
    }
  }
}

function rmdirQuiet(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // busy or gone
  }
}

export function cgroupDirs(parent: string): string[] {
  const roots = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/freezer', '/sys/fs/cgroup/devices', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
  return roots.filter((r) => fs.existsSync(r)).map((r) => path.join(r, parent));
}

/** Host pids whose cgroup path names `parent`. */
export async function processesInCgroup(parent: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(`/${parent}/`)) pids.push(Number(entry));
    } catch {
      // exited
    }
  }
  return pids;
}

/** Inodes of every network namespace a process is in right now. */
export function netnsInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      inodes.add(fs.statSync(`/proc/${entry}/ns/net`).ino);
    } catch {
      // exited
    }
  }
  return inodes;
}

export function canConnect(socketPath: string): Promise<boolean> {
  return connectUnixSocket(socketPath).then(
    (t) => (t.close(), true),
    () => false,
  );
}

/** Mocha hooks for a suite that runs against one private stack; it must leave nothing behind. */
export function useStack(options: { wsPort?: () => Promise<number>; env?: NodeJS.ProcessEnv } = {}): {
  stack(): Stack;
  client(): RpcClient;
  /** Runs before the stack stops (mocha runs `after` hooks in the order they were added). */
  beforeStop(fn: () => Promise<unknown>): void;
} {
  let stack: Stack | undefined;
  let client: RpcClient | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  before(async function () {
    requireRoot(this);
    stack = await Stack.start({ wsPort: options.wsPort ? await options.wsPort() : 0, env: options.env });
    client = await stack.client();
  });
  after(async () => {
    if (!stack) return;
    for (const fn of cleanups) await fn().catch(() => {});
    const left = await stack.stop();
    if (left.length) throw new Error(`the stack left things behind:\n${left.join('\n')}`);
  });
  return {
    stack: () => stack ?? assertNever('stack used before the suite started'),
    client: () => client ?? assertNever('client used before the suite started'),
    beforeStop: (fn) => cleanups.push(fn),
  };
}

function assertNever(message: string): never {
  throw new Error(message);
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A TCP port free on 127.0.0.1 right now (for a listener a test starts next). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
