// FaaSPlatformClient: the Direct HTTP API from TypeScript. Executions in every mode (ephemeral, cached,
// checkpointed, branched map/race, persistent), sandboxes, snapshots, branches, instances, files, ports,
// exposures, terminals, streams; batch and parallel helpers; the fluent builder. Every method of the
// agent is also reachable typed as `client.call(method, params)`.
import type { BranchDiffResult, EnvironmentInfo, ExecBranchResult, ExecResult, MergeResult, MethodName, Methods, TreeNode } from './api.gen';
import { ForkspaceError } from './errors';
import { ExecutionHandle, runToEnd } from './execution';
import { SandboxBuilder } from './fluent';
import { HttpTransport, type CallOptions, type ConnectionOptions } from './http';
import { execParams, filesOf, limitsOf, type RunOptions } from './options';
import { idOf, Instance, Sandbox, Snapshot, type BranchRunOptions, type SandboxRef } from './sandbox';
import { parseDuration } from './units';

export type ClientOptions = ConnectionOptions;

export interface SandboxCreateOptions extends Pick<RunOptions, 'environment' | 'memory' | 'cpus' | 'pids' | 'disk' | 'env' | 'cwd' | 'files'> {
  /** pid 1: a command line or argv; default an idle shell (run commands with sandbox.exec). */
  command?: string | string[];
  labels?: Record<string, string>;
  /** Lifetime from creation (ms or '1h'); idle timeout counts time without activity. */
  ttl?: number | string;
  idleTimeout?: number | string;
  onExpiry?: 'stop' | 'pause' | 'snapshot-then-stop' | 'destroy';
}

export interface InstanceStartOptions extends Omit<SandboxCreateOptions, 'files'> {
  /** Start from this snapshot (id or label) instead of an environment. */
  snapshot?: string;
}

/** Batch results are allSettled-style: each item's value, or the error it failed with. */
export type Settled<T> = T | ForkspaceError | Error;

export class FaaSPlatformClient {
  readonly transport: HttpTransport;

  constructor(options: ClientOptions = {}) {
    this.transport = new HttpTransport(options);
  }

  /** Any method of the agent, typed by the generated method table. */
  call<M extends MethodName>(method: M, params: Methods[M]['params'], options?: CallOptions): Promise<Methods[M]['result']> {
    return this.transport.call(method, params, options);
  }

  // ---- executions ------------------------------------------------------------------------------------

  /** Runs a command line (or argv) and answers with its result (exit code, stdout, stderr, ...). Default:
   * ephemeral (a fresh sandbox, destroyed after); `mode`, `checkpointId`, `sandboxId` pick the others. */
  run(command: string | string[], options: RunOptions = {}): Promise<ExecResult> {
    return runToEnd(this.transport, execParams({ command }, options), options);
  }

  /** Runs source code in the environment's language (Python for python*, sh for busybox). */
  runCode(code: string, options: RunOptions = {}): Promise<ExecResult> {
    return runToEnd(this.transport, execParams({ code }, options), options);
  }

  /** Starts and answers at once: the handle waits, cancels, and streams (callbacks or `for await`). */
  async start(command: string | string[], options: RunOptions = {}): Promise<ExecutionHandle> {
    const { execId } = await this.transport.call('exec/start', execParams({ command }, options), { signal: options.signal });
    return new ExecutionHandle(this.transport, execId);
  }

  /** A handle on an execution started elsewhere (by its execId). */
  execution(execId: string): ExecutionHandle {
    return new ExecutionHandle(this.transport, execId);
  }

  executeEphemeral(command: string | string[], environment?: string, options: RunOptions = {}): Promise<ExecResult> {
    return this.run(command, { ...options, environment, mode: 'ephemeral' });
  }

  executeCached(command: string | string[], environment?: string, options: RunOptions = {}): Promise<ExecResult> {
    return this.run(command, { ...options, environment, mode: 'cached' });
  }

  /** The seed's call: runs `code` (a command line such as 'python train.py') starting from the
   * checkpoint (a snapshot id or unique label; none: a fresh sandbox of `environment`), then checkpoints
   * the result: `result.checkpointId` is the new snapshot. */
  executeCheckpointed(code: string, environment?: string, checkpointId?: string, options: RunOptions = {}): Promise<ExecResult> {
    return this.run(code, { ...options, environment, mode: 'checkpointed', ...(checkpointId ? { checkpointId } : {}) });
  }

  /** Runs in a running sandbox or instance; state carries over between runs. */
  executePersistent(command: string | string[], sandbox: SandboxRef, options: RunOptions = {}): Promise<ExecResult> {
    return this.run(command, { ...options, mode: 'persistent', sandboxId: idOf(sandbox) });
  }

  /** The branched mode, map: one branch of the snapshot per input. */
  executeBranched(snapshot: string, command: string | string[], inputs: string[], options: BranchRunOptions = {}): Promise<ExecBranchResult> {
    return new Snapshot(this.transport, snapshot).map(inputs, command, options);
  }

  // ---- parallel and batch ------------------------------------------------------------------------------

  /** fn over every input, at most `concurrency` at once (default 8); results in input order. Throws the
   * first error (the others still finish); use batch() to keep every outcome. */
  async map<I, T>(inputs: readonly I[], fn: (input: I, index: number) => Promise<T>, options: { concurrency?: number } = {}): Promise<T[]> {
    const settled = await this.batch(inputs, fn, options);
    const failed = settled.find((r): r is Error => r instanceof Error);
    if (failed) throw failed;
    return settled as T[];
  }

  /** The first of `tasks` to succeed wins (for an ExecResult: exit code 0); the others' signals are
   * aborted, which cancels their executions. Rejects when none succeeds. */
  async race<T>(tasks: readonly ((signal: AbortSignal) => Promise<T>)[]): Promise<{ winner: number; value: T }> {
    const controllers = tasks.map(() => new AbortController());
    const errors: unknown[] = [];
    return new Promise((resolve, reject) => {
      let pending = tasks.length;
      if (pending === 0) return reject(new ForkspaceError('race() needs at least one task'));
      tasks.forEach((task, i) => {
        task(controllers[i].signal).then(
          (value) => {
            if (isExecResult(value) && value.exitCode !== 0) errors[i] = new ForkspaceError(`task ${i} exited ${value.exitCode}`, { data: value });
            else {
              controllers.forEach((c, j) => j !== i && c.abort());
              resolve({ winner: i, value });
            }
            if (--pending === 0) reject(new ForkspaceError('no task of the race succeeded', { data: { errors } }));
          },
          (e) => {
            errors[i] = e;
            if (--pending === 0) reject(new ForkspaceError('no task of the race succeeded', { data: { errors } }));
          },
        );
      });
    });
  }

  /** fn over every item, at most `concurrency` at once; each result or the error it failed with. */
  async batch<I, T>(items: readonly I[], fn: (item: I, index: number) => Promise<T>, options: { concurrency?: number } = {}): Promise<Settled<T>[]> {
    const out: Settled<T>[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < items.length; i = next++) {
        try {
          out[i] = await fn(items[i], i);
        } catch (e) {
          out[i] = e instanceof Error ? e : new ForkspaceError(String(e));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 8, items.length) }, worker));
    return out;
  }

  /** Runs each command in its own fresh sandbox, in parallel; allSettled-style results. */
  runMany(commands: readonly (string | string[])[], options: RunOptions & { concurrency?: number } = {}): Promise<Settled<ExecResult>[]> {
    return this.batch(commands, (c) => this.run(c, options), options);
  }

  // ---- resources -------------------------------------------------------------------------------------------

  /** The fluent form: client.sandbox('python:3.11').withMemory('512M').withTimeout(30_000).run('python train.py'). */
  sandbox(environment?: string): SandboxBuilder {
    return new SandboxBuilder(this, environment ? { environment } : {});
  }

  readonly sandboxes = {
    /** A persistent sandbox (`await using` destroys it when the block ends, by return or throw). */
    create: async (o: SandboxCreateOptions = {}): Promise<Sandbox> => {
      const r = await this.transport.call('sandbox/create', {
        environment: o.environment,
        command: o.command,
        env: o.env,
        cwd: o.cwd,
        limits: limitsOf(o),
        files: filesOf(o.files),
        labels: o.labels,
        ...lifecycle(o),
      });
      return new Sandbox(this.transport, r.sandbox.id, r.sandbox);
    },
    get: async (id: string): Promise<Sandbox> => {
      const { sandbox } = await this.transport.call('sandbox/get', { sandboxId: id });
      return new Sandbox(this.transport, sandbox.id, sandbox);
    },
    /** With filters: state, environment, label ('key=value' or 'key'). Destroyed ones are included unless filtered. */
    list: async (filter: Methods['sandbox/list']['params'] = {}) => (await this.transport.call('sandbox/list', filter)).sandboxes,
    /** Destroys several; allSettled-style. */
    destroyMany: (ids: readonly SandboxRef[]) => this.batch(ids, (s) => this.transport.call('sandbox/destroy', { sandboxId: idOf(s) })),
  };

  readonly snapshots = {
    get: async (idOrLabel: string): Promise<Snapshot> => {
      const { snapshot } = await this.transport.call('snapshot/get', { snapshotId: idOrLabel });
      return new Snapshot(this.transport, snapshot.id, snapshot);
    },
    list: async (filter: Methods['snapshot/list']['params'] = {}) => (await this.transport.call('snapshot/list', filter)).snapshots,
    /** A handle without a round trip (id or unique label). */
    ref: (idOrLabel: string): Snapshot => new Snapshot(this.transport, idOrLabel),
    /** Deletes several; allSettled-style. */
    deleteMany: (ids: readonly string[]) => this.batch(ids, (id) => this.transport.call('snapshot/delete', { snapshotId: id })),
  };

  /** The seed's InstanceManager: start(snapshot) / stop / pause / resume. */
  readonly instances = {
    start: async (from: string | InstanceStartOptions = {}): Promise<Instance> => {
      const o: InstanceStartOptions = typeof from === 'string' ? { snapshot: from } : from;
      const r = await this.transport.call('instance/start', {
        ...(o.snapshot ? { snapshotId: o.snapshot } : { environment: o.environment, command: o.command, limits: limitsOf(o) }),
        env: o.env,
        cwd: o.cwd,
        labels: o.labels,
        ...lifecycle(o),
      });
      return new Instance(this.transport, r.instance.id, r.instance);
    },
    stop: async (id: string) => new Instance(this.transport, id).stop(),
    pause: async (id: string) => new Instance(this.transport, id).pause(),
    resume: async (id: string) => new Instance(this.transport, id).resume(),
    get: async (id: string): Promise<Instance> => {
      const { instance } = await this.transport.call('instance/get', { instanceId: id });
      return new Instance(this.transport, instance.id, instance);
    },
    list: async () => (await this.transport.call('instance/list', {})).instances,
    destroy: async (id: string) => new Instance(this.transport, id).destroy(),
  };

  readonly branches = {
    diff: (a: SandboxRef, b: SandboxRef): Promise<BranchDiffResult> => this.transport.call('branch/diff', { a: idOf(a), b: idOf(b) }),
    merge: (from: SandboxRef, into: SandboxRef, options: { strategy?: 'fail' | 'ours' | 'theirs' } = {}): Promise<MergeResult> =>
      this.transport.call('branch/merge', { from: idOf(from), into: idOf(into), strategy: options.strategy }),
    tree: async (options: { includeDestroyed?: boolean } = {}): Promise<TreeNode[]> => (await this.transport.call('tree/get', options)).roots,
    /** One branch of `snapshot` per input, all run to the end. */
    map: (snapshot: string, inputs: string[], command: string | string[], options?: BranchRunOptions) => new Snapshot(this.transport, snapshot).map(inputs, command, options),
    /** `count` branches; the first to exit 0 wins, the others are stopped. */
    race: (snapshot: string, count: number, command: string | string[], options?: BranchRunOptions) => new Snapshot(this.transport, snapshot).race(count, command, options),
  };

  readonly environments = {
    list: async (): Promise<EnvironmentInfo[]> => (await this.transport.call('env/list', {})).environments,
    build: (name: string) => this.transport.call('env/build', { name }),
  };

  readonly ports = {
    list: async (sandbox?: SandboxRef) => (await this.transport.call('port/list', sandbox ? { sandboxId: idOf(sandbox) } : {})).forwards,
    unforward: async (forwardId: string) => (await this.transport.call('port/unforward', { forwardId })).removed,
  };

  readonly exposures = {
    list: async () => (await this.transport.call('http/list', {})).exposures,
    hide: async (name: string) => (await this.transport.call('http/hide', { name })).removed,
  };

  status() {
    return this.transport.call('agent/status', {});
  }
}

function lifecycle(o: { ttl?: number | string; idleTimeout?: number | string; onExpiry?: SandboxCreateOptions['onExpiry'] }) {
  return {
    ...(o.ttl !== undefined ? { ttlMs: parseDuration(o.ttl) } : {}),
    ...(o.idleTimeout !== undefined ? { idleTimeoutMs: parseDuration(o.idleTimeout) } : {}),
    ...(o.onExpiry ? { onExpiry: o.onExpiry } : {}),
  };
}

function isExecResult(v: unknown): v is ExecResult {
  return typeof v === 'object' && v !== null && 'exitCode' in v && 'stdout' in v && 'execId' in v;
}
