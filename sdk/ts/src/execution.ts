// A handle on one execution (E2B's CommandHandle, with resumable streams): wait for its result, cancel
// it, or read its output as it comes, by callbacks or as an async iterator.
import type { ExecResult, ExecRunParams, Execution, OutputChunk } from './api.gen';
import { CancelledError, ConnectionError, errorFromWire, ForkspaceError } from './errors';
import type { HttpTransport } from './http';
import { followExecution, type FollowOptions } from './stream';

export interface OutputCallbacks {
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
}

/** How long each long poll of exec/get waits on the agent. */
const POLL_WAIT_MS = 60_000;

export class ExecutionHandle implements AsyncIterable<OutputChunk> {
  private final: Execution | undefined;

  constructor(
    private readonly transport: HttpTransport,
    readonly execId: string,
  ) {}

  /** The result once it ended: finished runs answer with their exit code (non-zero included); a run that
   * could not run or was cancelled throws its typed error. */
  async wait(options: { signal?: AbortSignal } = {}): Promise<ExecResult> {
    let e = this.final;
    while (!e || e.state === 'running') {
      options.signal?.throwIfAborted();
      e = await this.transport.call('exec/get', { execId: this.execId, waitMs: POLL_WAIT_MS }, { signal: options.signal, requestTimeoutMs: POLL_WAIT_MS + 30_000 });
    }
    this.final = e;
    return outcome(e);
  }

  /** Cancels it (its sandbox is killed); false when it had already ended. */
  async cancel(): Promise<boolean> {
    return (await this.transport.call('exec/cancel', { execId: this.execId })).cancelled;
  }

  /** Its output, chunk by chunk in order, from `after` on; ends when the execution does (reconnecting
   * through dropped connections without loss or duplicates). */
  async *output(options: FollowOptions = {}): AsyncGenerator<OutputChunk, void, undefined> {
    try {
      for await (const f of followExecution(this.transport, this.execId, options)) {
        if (f.type === 'output') yield { stream: f.stream, data: f.data, seq: f.seq };
        else if (f.type === 'end') this.final = f.execution;
      }
    } catch (e) {
      // The stream could not be followed: say why in the execution's terms (e.g. it is unknown).
      if (e instanceof ConnectionError) await this.transport.call('exec/get', { execId: this.execId });
      throw e;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<OutputChunk> {
    return this.output();
  }

  /** Streams output to the callbacks, then answers with the result (as wait()). */
  async stream(callbacks: OutputCallbacks, options: FollowOptions = {}): Promise<ExecResult> {
    for await (const c of this.output(options)) {
      if (c.stream === 'stdout') callbacks.onStdout?.(c.data);
      else callbacks.onStderr?.(c.data);
    }
    return this.wait({ signal: options.signal });
  }
}

function outcome(e: Execution): ExecResult {
  if (e.state === 'finished' && e.result) return e.result;
  if (e.error) throw errorFromWire(e.error, { method: 'exec' });
  if (e.state === 'cancelled') throw new CancelledError(`execution ${e.execId} was cancelled`);
  throw new ForkspaceError(`execution ${e.execId} ended (${e.state}) without a result`);
}

/** Starts an execution (exec/start answers at once) and waits for its result, streaming output to the
 * callbacks when given. Aborting `signal` cancels it on the agent. */
export async function runToEnd(
  transport: HttpTransport,
  params: ExecRunParams,
  options: OutputCallbacks & { signal?: AbortSignal } = {},
): Promise<ExecResult> {
  const { signal } = options;
  const { execId } = await transport.call('exec/start', params, { signal });
  const handle = new ExecutionHandle(transport, execId);
  const cancel = () => void handle.cancel().catch(() => {});
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    if (options.onStdout || options.onStderr) return await handle.stream(options, { signal });
    return await handle.wait({ signal });
  } catch (e) {
    if (signal?.aborted) throw new CancelledError(`execution ${execId} was cancelled`, { cause: e });
    throw e;
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}
