// The fluent form: client.sandbox('python:3.11').withMemory('512M').withTimeout(30_000).run('python train.py').
// Each with… returns a new builder (a builder can be kept and reused); run/runCode/start execute,
// create() makes a persistent sandbox (`await using` destroys it).
import type { ExecResult } from './api.gen';
import type { ExecutionHandle } from './execution';
import type { FaaSPlatformClient } from './client';
import type { ExecutionMode, RunOptions } from './options';
import type { Sandbox } from './sandbox';

export class SandboxBuilder {
  constructor(
    private readonly client: FaaSPlatformClient,
    private readonly options: RunOptions,
  ) {}

  private with(change: Partial<RunOptions>): SandboxBuilder {
    return new SandboxBuilder(this.client, { ...this.options, ...change });
  }

  /** '512M', '1G', or bytes. */
  withMemory(memory: string | number): SandboxBuilder {
    return this.with({ memory });
  }

  withCpus(cpus: number): SandboxBuilder {
    return this.with({ cpus });
  }

  withPids(pids: number): SandboxBuilder {
    return this.with({ pids });
  }

  /** Disk limit of the sandbox's files: '512M', '20G', or bytes (default 10G). */
  withDisk(disk: string | number): SandboxBuilder {
    return this.with({ disk });
  }

  /** Milliseconds, or '30s'. */
  withTimeout(timeout: number | string): SandboxBuilder {
    return this.with({ timeout });
  }

  withEnv(env: Record<string, string>): SandboxBuilder {
    return this.with({ env: { ...this.options.env, ...env } });
  }

  withCwd(cwd: string): SandboxBuilder {
    return this.with({ cwd });
  }

  /** path → text or bytes, put in the sandbox before the command runs. */
  withFiles(files: Record<string, string | Uint8Array>): SandboxBuilder {
    const before = this.options.files && !Array.isArray(this.options.files) ? this.options.files : {};
    return this.with({ files: { ...before, ...files } });
  }

  withStdin(stdin: string): SandboxBuilder {
    return this.with({ stdin });
  }

  withMode(mode: ExecutionMode): SandboxBuilder {
    return this.with({ mode });
  }

  /** Results stored by content hash: the same run again returns without running. */
  cached(cache: RunOptions['cache'] = 'use'): SandboxBuilder {
    return this.with({ mode: 'cached', cache });
  }

  /** Start from a checkpoint (or fresh) and checkpoint the result: result.checkpointId. */
  checkpointed(checkpointId?: string): SandboxBuilder {
    return this.with({ mode: 'checkpointed', ...(checkpointId ? { checkpointId } : {}) });
  }

  onStdout(onStdout: (data: string) => void): SandboxBuilder {
    return this.with({ onStdout });
  }

  onStderr(onStderr: (data: string) => void): SandboxBuilder {
    return this.with({ onStderr });
  }

  withSignal(signal: AbortSignal): SandboxBuilder {
    return this.with({ signal });
  }

  /** Runs a command line in a fresh sandbox (or as the mode says) and answers with its result. */
  run(command: string | string[]): Promise<ExecResult> {
    return this.client.run(command, this.options);
  }

  runCode(code: string): Promise<ExecResult> {
    return this.client.runCode(code, this.options);
  }

  start(command: string | string[]): Promise<ExecutionHandle> {
    return this.client.start(command, this.options);
  }

  /** A persistent sandbox with these limits, env, cwd and files. */
  create(options: { command?: string | string[]; labels?: Record<string, string>; ttl?: number | string; idleTimeout?: number | string } = {}): Promise<Sandbox> {
    return this.client.sandboxes.create({ ...this.options, ...options });
  }
}
