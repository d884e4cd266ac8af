// Handles on things the agent keeps: a Sandbox (persistent; `await using` destroys it, also when the
// block throws), a Snapshot (restore, branch, map/race over branches), an Instance (the seed's
// InstanceManager: start/stop/pause/resume, back after restarts). Each carries its transport, so
// `snapshot.branch(3)` or `sandbox.files.write(...)` read as they do.
import type {
  ExecBranchParams,
  ExecBranchResult,
  ExecResult,
  Exposure,
  MergeResult,
  BranchDiffResult,
  PortForward,
  Restored,
  Sandbox as SandboxInfo,
  SandboxPolicyParams,
  Snapshot as SnapshotInfo,
  SnapshotTimings,
  SshTarget,
} from './api.gen';
import { NotFoundError } from './errors';
import { ExecutionHandle, runToEnd } from './execution';
import { Files } from './files';
import type { HttpTransport } from './http';
import { execParams, type RunOptions } from './options';
import { Terminal } from './terminal';
import { parseDuration, parseSize } from './units';

export type SandboxRef = string | { id: string };
export type ExecOptions = Omit<RunOptions, 'environment' | 'mode' | 'checkpointId' | 'sandboxId' | 'cache' | 'memory' | 'cpus' | 'pids' | 'disk' | 'collect'>;

export function idOf(ref: SandboxRef): string {
  return typeof ref === 'string' ? ref : ref.id;
}

export class Sandbox {
  readonly files: Files;

  constructor(
    protected readonly transport: HttpTransport,
    readonly id: string,
    /** As last fetched (refresh() updates it). */
    public info?: SandboxInfo,
  ) {
    this.files = new Files(transport, id);
  }

  /** Runs a command line (or argv) inside it: the persistent mode; state carries over between runs. */
  exec(command: string | string[], options: ExecOptions = {}): Promise<ExecResult> {
    return runToEnd(this.transport, execParams({ command }, { ...options, mode: 'persistent', sandboxId: this.id }), options);
  }

  /** Runs source code in its environment's language (Python, or sh for busybox). */
  runCode(code: string, options: ExecOptions = {}): Promise<ExecResult> {
    return runToEnd(this.transport, execParams({ code }, { ...options, mode: 'persistent', sandboxId: this.id }), options);
  }

  /** Starts a command and answers at once with its handle (wait, cancel, output). */
  async start(command: string | string[], options: ExecOptions = {}): Promise<ExecutionHandle> {
    const { execId } = await this.transport.call('exec/start', execParams({ command }, { ...options, mode: 'persistent', sandboxId: this.id }));
    return new ExecutionHandle(this.transport, execId);
  }

  async refresh(): Promise<SandboxInfo> {
    return (this.info = (await this.transport.call('sandbox/get', { sandboxId: this.id })).sandbox);
  }

  /** Processes, memory and files, while it keeps running (unless leaveRunning: false). */
  async snapshot(options: { label?: string; leaveRunning?: boolean } = {}): Promise<Snapshot & { timings: SnapshotTimings }> {
    const r = await this.transport.call('snapshot/create', { sandboxId: this.id, ...options });
    return Object.assign(new Snapshot(this.transport, r.snapshot.id, r.snapshot), { timings: r.timings });
  }

  async pause(): Promise<void> {
    await this.transport.call('sandbox/pause', { sandboxId: this.id });
  }

  async resume(): Promise<void> {
    await this.transport.call('sandbox/resume', { sandboxId: this.id });
  }

  /** Snapshots it and ends its processes; start() brings it back as it was. */
  async stop(): Promise<Snapshot> {
    const r = await this.transport.call('sandbox/stop', { sandboxId: this.id });
    return new Snapshot(this.transport, r.snapshot.id, r.snapshot);
  }

  /** Starts a stopped sandbox again from its last snapshot, under the same id. */
  async startAgain(): Promise<Restored> {
    return this.transport.call('sandbox/start', { sandboxId: this.id });
  }

  async destroy(): Promise<void> {
    await this.transport.call('sandbox/destroy', { sandboxId: this.id });
  }

  async setPolicy(change: Omit<SandboxPolicyParams, 'sandboxId'> & { ttl?: number | string; idleTimeout?: number | string }): Promise<SandboxInfo['policy']> {
    const { ttl, idleTimeout, ...rest } = change;
    const p: SandboxPolicyParams = { sandboxId: this.id, ...rest };
    if (ttl !== undefined) p.ttlMs = parseDuration(ttl);
    if (idleTimeout !== undefined) p.idleTimeoutMs = parseDuration(idleTimeout);
    return (await this.transport.call('sandbox/policy', p)).policy;
  }

  /** A terminal (pty) in it. */
  async terminal(options: { cols?: number; rows?: number; command?: string[]; env?: Record<string, string>; cwd?: string } = {}): Promise<Terminal> {
    const r = await this.transport.call('terminal/open', { sandboxId: this.id, cols: options.cols ?? 80, rows: options.rows ?? 24, command: options.command, env: options.env, cwd: options.cwd });
    return new Terminal(this.transport, r.terminalId, r.sandboxId);
  }

  /** Forwards a port of the agent's host (127.0.0.1) to `port` inside it. */
  forwardPort(port: number, options: { hostPort?: number } = {}): Promise<PortForward> {
    return this.transport.call('port/forward', { sandboxId: this.id, port, ...options });
  }

  /** Serves `port` at a named URL on the agent (needs the same Authorization header). */
  expose(port: number, name: string): Promise<Exposure> {
    return this.transport.call('http/expose', { sandboxId: this.id, port, name });
  }

  /** sshd in it, and what ssh needs to log in (usable on the agent's host). */
  ssh(): Promise<SshTarget> {
    return this.transport.call('ssh/prepare', { sandboxId: this.id });
  }

  /** What it and `other` changed in their files since their common snapshot. */
  diff(other: SandboxRef): Promise<BranchDiffResult> {
    return this.transport.call('branch/diff', { a: this.id, b: idOf(other) });
  }

  /** Merges `from`'s file changes into this one (processes are not merged). */
  merge(from: SandboxRef, options: { strategy?: 'fail' | 'ours' | 'theirs' } = {}): Promise<MergeResult> {
    return this.transport.call('branch/merge', { from: idOf(from), into: this.id, strategy: options.strategy });
  }

  /** `await using sandbox = ...`: destroyed when the block ends, by return or by throw. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.destroy();
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
}

export class Snapshot {
  readonly files: Files;

  constructor(
    private readonly transport: HttpTransport,
    readonly id: string,
    public info?: SnapshotInfo,
  ) {
    this.files = new Files(transport, id);
  }

  /** A new running sandbox from it (processes continue where they were). */
  /** `disk`: the new sandbox's own disk limit ('20G' or bytes); by default the snapshot's sandbox's. */
  async restore(options: { ttlMs?: number; idleTimeoutMs?: number; detached?: boolean; disk?: string | number } = {}): Promise<Sandbox> {
    const { disk, ...rest } = options;
    const r = await this.transport.call('snapshot/restore', { snapshotId: this.id, ...rest, ...restoreLimits(disk) });
    return new Sandbox(this.transport, r.sandboxId);
  }

  /** N running copies at once (all or nothing). */
  async branch(count: number, options: { ttlMs?: number; idleTimeoutMs?: number; disk?: string | number } = {}): Promise<Sandbox[]> {
    const { disk, ...rest } = options;
    const r = await this.transport.call('snapshot/branch', { snapshotId: this.id, count, ...rest, ...restoreLimits(disk) });
    return r.branches.map((b) => new Sandbox(this.transport, b.sandboxId));
  }

  /** A command in one branch per input (on stdin and in $FORKSPACE_INPUT), all to the end. */
  map(inputs: string[], command: string | string[], options: BranchRunOptions = {}): Promise<ExecBranchResult> {
    return this.transport.call('exec/branch', { snapshotId: this.id, command, inputs, strategy: 'map', ...branchOptions(options) });
  }

  /** A command in `count` branches; the first to exit 0 wins and the others are stopped. */
  race(count: number, command: string | string[], options: BranchRunOptions = {}): Promise<ExecBranchResult> {
    return this.transport.call('exec/branch', { snapshotId: this.id, command, count, strategy: 'race', ...branchOptions(options) });
  }

  /** Runs a command from it and checkpoints the result (the checkpointed mode). */
  run(command: string | string[], options: Omit<RunOptions, 'mode' | 'checkpointId'> = {}): Promise<ExecResult> {
    return runToEnd(this.transport, execParams({ command }, { ...options, mode: 'checkpointed', checkpointId: this.id }), options);
  }

  async delete(): Promise<boolean> {
    return (await this.transport.call('snapshot/delete', { snapshotId: this.id })).deleted;
  }
}

export type BranchRunOptions = Pick<ExecBranchParams, 'env' | 'cwd' | 'timeoutMs' | 'maxOutputBytes' | 'keep'>;

function restoreLimits(disk: string | number | undefined): { limits?: { diskBytes: number } } {
  return disk === undefined ? {} : { limits: { diskBytes: parseSize(disk) } };
}

function branchOptions(o: BranchRunOptions): BranchRunOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as BranchRunOptions;
}

/** A persistent instance: detached, started again after runtime restarts; stop snapshots first. */
export class Instance extends Sandbox {
  override async stop(): Promise<Snapshot> {
    const r = await this.transport.call('instance/stop', { instanceId: this.id });
    this.info = r.instance;
    return new Snapshot(this.transport, r.snapshotId);
  }

  override async pause(): Promise<void> {
    this.info = (await this.transport.call('instance/pause', { instanceId: this.id })).instance;
  }

  /** Thaws a paused instance or starts a stopped one from its snapshot. */
  override async resume(): Promise<void> {
    this.info = (await this.transport.call('instance/resume', { instanceId: this.id })).instance;
  }

  override async destroy(): Promise<void> {
    await this.transport.call('instance/destroy', { instanceId: this.id });
  }
}
