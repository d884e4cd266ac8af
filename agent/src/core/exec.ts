// Running commands through the runtime with streamed, decoded output: ephemeral runs (a fresh sandbox,
// destroyed after) and runs inside a persistent sandbox. Builds the environment on first use and turns
// cancellation into a kill of the process.
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { ExecResult } from '../protocol';
import type { ExecRunParams as ExecRunSchema } from '../protocol/exec';
import type { SandboxExecParams as SandboxExecSchema } from '../protocol/sandboxes';
import { RtExecKill, RtSandboxExec, RtSandboxRun, type RtRunParams, type RtRunResult } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import type { EnvironmentService } from './environments';
import { DEFAULT_ENVIRONMENT, invocationFor } from './languages';
import { DEFAULT_MAX_OUTPUT_BYTES, OutputCollector, type StreamName } from './outputCollector';

export type ParsedExecRun = z.output<typeof ExecRunSchema>;
export type ParsedSandboxExec = z.output<typeof SandboxExecSchema>;
type FileList = ParsedExecRun['files'];

export interface ExecObserver {
  started?(info: { execId: string; sandboxId: string; environment: string }): void;
  output?(chunk: { execId: string; stream: StreamName; data: string; seq: number }): void;
  progress?(message: string, environment: string): void;
}

/** Random per agent process, then counted: unique without a random draw per run (which costs more than
 * the rest of the id handling). */
const EXEC_ID_PREFIX = `ex-${randomBytes(4).toString('hex')}`;
let execCounter = 0;

export function newExecId(): string {
  return `${EXEC_ID_PREFIX}${(++execCounter).toString(16).padStart(4, '0')}`;
}

/** What the runtime reports about a finished process, before the agent adds the output. */
interface RuntimeOutcome {
  sandboxId: string;
  environment: string;
  exitCode: number;
  signal: string | null;
  timedOut: boolean;
  killed: boolean;
  durationMs: number;
  oomKilled?: boolean;
  pidsLimitHit?: boolean;
  memoryPeakBytes?: number | null;
  cpuTimeMs?: number | null;
  pooled?: boolean;
}

export class ExecService {
  constructor(
    private readonly runtime: RuntimeClient,
    private readonly environments: EnvironmentService,
  ) {}

  /** Ephemeral mode: a fresh sandbox runs the code or command and is destroyed afterwards. */
  async run(params: ParsedExecRun, observer: ExecObserver = {}, signal?: AbortSignal): Promise<ExecResult> {
    const execId = params.execId ?? newExecId();
    const environment = params.environment ?? DEFAULT_ENVIRONMENT;
    const invocation = invocationFor(environment, params);
    const rt: Omit<RtRunParams, 'execId'> = {
      environment,
      argv: invocation.argv,
      env: params.env,
      cwd: params.cwd,
      limits: params.limits,
      stdin: toBase64(params.stdin),
      files: runtimeFiles(invocation.files, params.files),
      timeoutMs: params.timeoutMs,
      collect: params.collect,
    };
    let collected: RtRunResult['files'] = [];
    const once = () =>
      this.stream(execId, environment, params.maxOutputBytes, observer, signal, undefined, async (runtimeId) => {
        const r = await this.runtime.request(RtSandboxRun, { ...rt, execId: runtimeId });
        collected = r.files;
        return { ...r, environment: r.environment };
      }).then((result) =>
        params.collect === undefined
          ? result
          : { ...result, files: collected.map((f) => ({ path: f.path, content: f.contentBase64, size: f.size, truncated: f.truncated, found: f.found, ...(f.error === undefined ? {} : { error: f.error }) })) },
      );
    try {
      return await once();
    } catch (e) {
      if (!(e instanceof ProtocolError) || e.code !== ErrorCodes.EnvironmentNotBuilt) throw e;
      observer.progress?.(`building environment ${environment} (first use)`, environment);
      await this.environments.build(environment, (m) => observer.progress?.(m, environment));
      return once();
    }
  }

  /** Persistent mode: the code or command runs inside a running sandbox. `stop` kills it without
   * cancelling: the result is its (SIGKILL) outcome. */
  async runIn(params: ParsedSandboxExec, environment: string, observer: ExecObserver = {}, signal?: AbortSignal, stop?: AbortSignal): Promise<ExecResult> {
    const execId = params.execId ?? newExecId();
    const invocation = invocationFor(environment, params);
    return this.stream(execId, environment, params.maxOutputBytes, observer, signal, stop, async (runtimeId) => {
      const r = await this.runtime.request(RtSandboxExec, {
        execId: runtimeId,
        sandboxId: params.sandboxId,
        argv: invocation.argv,
        env: params.env,
        cwd: params.cwd,
        stdin: toBase64(params.stdin),
        timeoutMs: params.timeoutMs,
        files: runtimeFiles(invocation.files, params.files),
      });
      return { ...r, environment };
    });
  }

  /** Runs one runtime call that starts a process, collecting and forwarding its output as `execId`'s.
   * The runtime knows the process by an id of the agent's own making: ids callers choose are theirs
   * (per key, see core/access.ts), so two keys' "job-1" never meet in the runtime. */
  private async stream(
    execId: string,
    environment: string,
    maxOutputBytes: number | undefined,
    observer: ExecObserver,
    signal: AbortSignal | undefined,
    stop: AbortSignal | undefined,
    call: (runtimeId: string) => Promise<RuntimeOutcome>,
  ): Promise<ExecResult> {
    signal?.throwIfAborted();
    const runtimeId = newExecId();
    const output = new OutputCollector(maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES, (stream, data, seq) =>
      observer.output?.({ execId, stream, data, seq }),
    );
    let started = false;
    const kill = (): void => {
      this.runtime.request(RtExecKill, { execId: runtimeId }).catch(() => {
        // Not registered yet: the exec/started handler below kills it as soon as it exists.
      });
    };
    const listener = this.runtime.onExec(runtimeId, {
      started: (p) => {
        started = true;
        if (signal?.aborted || stop?.aborted) kill();
        observer.started?.({ execId, sandboxId: p.sandboxId, environment });
      },
      output: (p) => output.push(p.stream, Buffer.from(p.dataBase64, 'base64')),
    });
    signal?.addEventListener('abort', kill, { once: true });
    stop?.addEventListener('abort', kill, { once: true });
    let result: RuntimeOutcome;
    try {
      result = await call(runtimeId);
    } finally {
      signal?.removeEventListener('abort', kill);
      stop?.removeEventListener('abort', kill);
      listener.dispose();
    }
    const text = output.finish();
    if (signal?.aborted || (result.killed && !started)) {
      throw new ProtocolError(ErrorCodes.RequestCancelled, `execution ${execId} was cancelled`);
    }
    return {
      execId,
      sandboxId: result.sandboxId,
      environment: result.environment,
      exitCode: result.exitCode,
      signal: result.signal,
      ...text,
      durationMs: result.durationMs,
      oomKilled: result.oomKilled ?? false,
      timedOut: result.timedOut,
      pidsLimitHit: result.pidsLimitHit ?? false,
      memoryPeakBytes: result.memoryPeakBytes ?? null,
      cpuTimeMs: result.cpuTimeMs ?? null,
      ...(result.pooled ? { pooled: true } : {}),
    };
  }
}

function toBase64(text: string | undefined): string | undefined {
  return text === undefined ? undefined : Buffer.from(text, 'utf8').toString('base64');
}

function runtimeFiles(generated: { path: string; content: Buffer; mode?: number }[], given: FileList) {
  const files = [
    ...generated.map((f) => ({ path: f.path, contentBase64: f.content.toString('base64'), mode: f.mode })),
    ...(given ?? []).map((f) => ({
      path: f.path,
      contentBase64: f.encoding === 'base64' ? f.content : Buffer.from(f.content, 'utf8').toString('base64'),
      mode: f.mode,
    })),
  ];
  return files.length ? files : undefined;
}
