// Ephemeral execution (the seed's `ephemeral` mode): a fresh sandbox per run, destroyed afterwards.
// Translates the public exec/run into the runtime's sandbox/run, builds the environment on first use,
// streams decoded output, and turns cancellation into a kill of the sandbox.
import { randomBytes } from 'node:crypto';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { ExecResult, ExecRunParams } from '../protocol';
import type { z } from 'zod';
import { RtExecKill, RtSandboxRun, type RtRunParams, type RtRunResult } from '../protocol/runtime';
import type { ExecRunParams as ExecRunSchema } from '../protocol/exec';
import type { RuntimeClient } from '../runtime/runtimeClient';
import type { EnvironmentService } from './environments';
import { DEFAULT_ENVIRONMENT, invocationFor } from './languages';
import { DEFAULT_MAX_OUTPUT_BYTES, OutputCollector, type StreamName } from './outputCollector';

export type ParsedExecRun = z.output<typeof ExecRunSchema>;

export interface ExecObserver {
  started?(info: { execId: string; sandboxId: string; environment: string }): void;
  output?(chunk: { execId: string; stream: StreamName; data: string; seq: number }): void;
  progress?(message: string, environment: string): void;
}

export function newExecId(): string {
  return `ex-${randomBytes(6).toString('hex')}`;
}

export class ExecService {
  constructor(
    private readonly runtime: RuntimeClient,
    private readonly environments: EnvironmentService,
  ) {}

  async run(params: ParsedExecRun, observer: ExecObserver = {}, signal?: AbortSignal): Promise<ExecResult> {
    const execId = params.execId ?? newExecId();
    const environment = params.environment ?? DEFAULT_ENVIRONMENT;
    const rt = toRuntimeParams(execId, environment, params);
    try {
      return await this.runOnce(execId, environment, rt, params, observer, signal);
    } catch (e) {
      if (!(e instanceof ProtocolError) || e.code !== ErrorCodes.EnvironmentNotBuilt) throw e;
      observer.progress?.(`building environment ${environment} (first use)`, environment);
      await this.environments.build(environment, (m) => observer.progress?.(m, environment));
      return this.runOnce(execId, environment, rt, params, observer, signal);
    }
  }

  private async runOnce(
    execId: string,
    environment: string,
    rt: RtRunParams,
    params: ParsedExecRun,
    observer: ExecObserver,
    signal?: AbortSignal,
  ): Promise<ExecResult> {
    signal?.throwIfAborted();
    const output = new OutputCollector(params.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES, (stream, data, seq) =>
      observer.output?.({ execId, stream, data, seq }),
    );
    let started = false;
    const kill = (): void => {
      this.runtime.request(RtExecKill, { execId }).catch(() => {
        // Not registered yet: the exec/started handler below kills it as soon as it exists.
      });
    };
    const listener = this.runtime.onExec(execId, {
      started: (p) => {
        started = true;
        if (signal?.aborted) kill();
        observer.started?.({ execId, sandboxId: p.sandboxId, environment });
      },
      output: (p) => output.push(p.stream, Buffer.from(p.dataBase64, 'base64')),
    });
    signal?.addEventListener('abort', kill, { once: true });
    let result: RtRunResult;
    try {
      result = await this.runtime.request(RtSandboxRun, rt);
    } finally {
      signal?.removeEventListener('abort', kill);
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
      oomKilled: result.oomKilled,
      timedOut: result.timedOut,
      pidsLimitHit: result.pidsLimitHit,
      memoryPeakBytes: result.memoryPeakBytes,
      cpuTimeMs: result.cpuTimeMs,
    };
  }
}

function toRuntimeParams(execId: string, environment: string, p: ParsedExecRun): RtRunParams {
  const invocation = invocationFor(environment, p);
  const files = [
    ...invocation.files.map((f) => ({ path: f.path, contentBase64: f.content.toString('base64'), mode: f.mode })),
    ...(p.files ?? []).map((f) => ({
      path: f.path,
      contentBase64: f.encoding === 'base64' ? f.content : Buffer.from(f.content, 'utf8').toString('base64'),
      mode: f.mode,
    })),
  ];
  return {
    execId,
    environment,
    argv: invocation.argv,
    env: p.env,
    cwd: p.cwd,
    limits: p.limits,
    stdin: p.stdin === undefined ? undefined : Buffer.from(p.stdin, 'utf8').toString('base64'),
    files: files.length ? files : undefined,
    timeoutMs: p.timeoutMs,
  };
}

export type { ExecRunParams };
