// Every execution the agent runs (exec/run, exec/start, sandbox/exec, each branch of exec/branch), by
// execId: its state, its output in a replayable log (streams resume from a sequence number), its result
// or error, kept for a while after it ended, and a way to cancel it from any connection or HTTP call.
// Memory is bounded: each log keeps its last 4 MiB, and finished executions are forgotten after the
// retention time or, oldest first, when all of them together hold more than the budget.
// Each execution belongs to who started it (core/access.ts): an API key reaches only its own, by ids
// that are its own (two keys may both run "job-1"); the admin reaches all.
import type { z } from 'zod';
import { ErrorCodes, ProtocolError, errorCodeName } from '../protocol';
import type { ExecResult, Execution } from '../protocol';
import type { ExecutionState } from '../protocol/exec';
import { newExecId, type ExecObserver, type ParsedExecRun } from './exec';
import { StreamLog, type LogReader, type Unsubscribe } from './streamLog';
import { isAdmin, notFound, scopeOf, type Access } from './access';

export type OutputChunk = { stream: 'stdout' | 'stderr'; data: string; seq: number };
type BranchResult = { snapshotId: string; strategy: 'map' | 'race'; results: ExecResult[]; winner: number | null; branchTimeMs: number };

/** Runs an execution in its mode (the agent's mode switch); `p.execId` is always set. */
export type Runner = (p: ParsedExecRun & { execId: string }, observer: ExecObserver, signal: AbortSignal, access: Access) => Promise<ExecResult>;

export interface ExecutionLimits {
  /** Output kept per execution. */
  logBytes: number;
  /** How long a finished execution stays readable. */
  retentionMs: number;
  /** Output and results of finished executions, all together. */
  totalBytes: number;
}

export const DEFAULT_EXECUTION_LIMITS: ExecutionLimits = { logBytes: 4 << 20, retentionMs: 10 * 60_000, totalBytes: 256 << 20 };

interface Entry {
  execId: string;
  /** Whose it is: scopeOf(access). */
  scope: string;
  access: Access;
  state: z.infer<typeof ExecutionState>;
  startedAtMs: number;
  log: StreamLog<OutputChunk, Execution>;
  controller: AbortController;
  done: Promise<void>;
  settle: () => void;
  result?: ExecResult;
  error?: Execution['error'];
}

export class ExecutionService {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  private sweptAtMs = 0;

  constructor(
    private readonly runner: Runner,
    private readonly limits: ExecutionLimits = DEFAULT_EXECUTION_LIMITS,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 30_000).unref();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /** Runs to the end and answers with the result (exec/run, sandbox/exec). */
  async run(p: ParsedExecRun, observer: ExecObserver, signal: AbortSignal | undefined, access: Access): Promise<ExecResult> {
    const entry = this.begin(p.execId ?? newExecId(), access);
    const stop = () => entry.controller.abort();
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    try {
      return await this.drive(entry, p, observer);
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  /** Starts and answers at once (exec/start); the result is read with get() or from the stream. */
  start(p: ParsedExecRun, access: Access): { execId: string; state: 'running' } {
    const entry = this.begin(p.execId ?? newExecId(), access);
    this.drive(entry, p, {}).catch(() => {
      // kept in the entry: exec/get reports it
    });
    return { execId: entry.execId, state: 'running' };
  }

  /** exec/branch: every branch's output and result is recorded under its own execId. */
  async branched(run: (observer: ExecObserver) => Promise<BranchResult>, observer: ExecObserver, access: Access): Promise<BranchResult> {
    const seen = new Map<string, Entry>();
    const entryOf = (execId: string): Entry => {
      let e = seen.get(execId);
      if (!e) seen.set(execId, (e = this.begin(execId, access)));
      return e;
    };
    const recording: ExecObserver = {
      ...observer,
      started: (info) => {
        entryOf(info.execId);
        observer.started?.(info);
      },
      output: (chunk) => {
        entryOf(chunk.execId).log.push({ stream: chunk.stream, data: chunk.data, seq: chunk.seq });
        observer.output?.(chunk);
      },
    };
    try {
      const r = await run(recording);
      for (const res of r.results) this.finish(entryOf(res.execId), res);
      return r;
    } catch (err) {
      for (const e of seen.values()) this.fail(e, err);
      throw err;
    }
  }

  async get(execId: string, waitMs: number, access: Access): Promise<Execution> {
    const entry = this.entry(execId, access);
    if (entry.state === 'running' && waitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([entry.done, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    return this.view(entry);
  }

  cancel(execId: string, access: Access): { execId: string; cancelled: boolean } {
    const entry = this.entry(execId, access);
    if (entry.state !== 'running') return { execId, cancelled: false };
    entry.controller.abort();
    return { execId, cancelled: true };
  }

  log(execId: string, after: number, limit: number, access: Access) {
    const entry = this.entry(execId, access);
    const { items } = entry.log.since(after, limit);
    const done = entry.state !== 'running' && (items.length === 0 || items[items.length - 1].seq === entry.log.lastSeq);
    return { execId, chunks: items, firstSeq: entry.log.firstSeq, lastSeq: entry.log.lastSeq, done };
  }

  /** Output after `after`, live, then the end (the WebSocket stream). */
  subscribe(execId: string, after: number, reader: LogReader<OutputChunk, Execution>, access: Access): Unsubscribe {
    return this.entry(execId, access).log.subscribe(after, reader);
  }

  /** Throws the not-found error unless `access` may read the execution. */
  check(execId: string, access: Access): void {
    this.entry(execId, access);
  }

  get running(): number {
    return [...this.entries.values()].filter((e) => e.state === 'running').length;
  }

  private begin(execId: string, access: Access): Entry {
    const scope = scopeOf(access);
    const key = keyOf(scope, execId);
    const existing = this.entries.get(key);
    if (existing?.state === 'running') {
      throw new ProtocolError(ErrorCodes.ExecIdInUse, `execution ${execId} is still running; choose another execId (or leave it out to get a fresh one)`);
    }
    if (Date.now() - this.sweptAtMs > 1000) this.sweep();
    let settle = () => {};
    const done = new Promise<void>((r) => (settle = r));
    const entry: Entry = {
      execId,
      scope,
      access,
      state: 'running',
      startedAtMs: Date.now(),
      log: new StreamLog<OutputChunk, Execution>(this.limits.logBytes, (c) => c.data.length),
      controller: new AbortController(),
      done,
      settle,
    };
    this.entries.delete(key); // re-inserted last: the map's order is the order of starts
    this.entries.set(key, entry);
    return entry;
  }

  private async drive(entry: Entry, p: ParsedExecRun, observer: ExecObserver): Promise<ExecResult> {
    const recording: ExecObserver = {
      ...observer,
      output: (chunk) => {
        entry.log.push({ stream: chunk.stream, data: chunk.data, seq: chunk.seq });
        observer.output?.(chunk);
      },
    };
    try {
      const result = await this.runner({ ...p, execId: entry.execId }, recording, entry.controller.signal, entry.access);
      this.finish(entry, result);
      return result;
    } catch (e) {
      this.fail(entry, e);
      throw e;
    }
  }

  private finish(entry: Entry, result: ExecResult): void {
    if (entry.state !== 'running') return;
    entry.state = 'finished';
    entry.result = result;
    this.end(entry);
  }

  private fail(entry: Entry, e: unknown): void {
    if (entry.state !== 'running') return;
    const pe = e instanceof ProtocolError ? e : new ProtocolError(ErrorCodes.InternalError, `execution ${entry.execId} failed unexpectedly: ${(e as Error)?.message ?? String(e)}`);
    entry.state = pe.code === ErrorCodes.RequestCancelled ? 'cancelled' : 'failed';
    entry.error = { code: pe.code, name: errorCodeName(pe.code) ?? 'InternalError', message: pe.message, ...(pe.data === undefined ? {} : { data: pe.data }) };
    this.end(entry);
  }

  private end(entry: Entry): void {
    entry.log.end(this.view(entry));
    entry.settle();
  }

  private view(entry: Entry): Execution {
    return {
      execId: entry.execId,
      state: entry.state,
      startedAtMs: entry.startedAtMs,
      endedAtMs: entry.log.endedAtMs,
      lastSeq: entry.log.lastSeq,
      ...(entry.result ? { result: entry.result } : {}),
      ...(entry.error ? { error: entry.error } : {}),
    };
  }

  /** The caller's own execution by that id; for the admin, else anyone's (the latest started). */
  private entry(execId: string, access: Access): Entry {
    let e = this.entries.get(keyOf(scopeOf(access), execId));
    if (!e && isAdmin(access)) for (const x of this.entries.values()) if (x.execId === execId) e = x;
    if (!e) throw notFound.execution(execId, this.limits.retentionMs / 60_000);
    return e;
  }

  /** Forgets finished executions past their retention, then the oldest while over the byte budget. */
  private sweep(): void {
    const now = Date.now();
    this.sweptAtMs = now;
    let total = 0;
    const finished: Entry[] = [];
    for (const e of this.entries.values()) {
      if (e.state === 'running') continue;
      if (now - (e.log.endedAtMs ?? now) > this.limits.retentionMs) {
        this.entries.delete(keyOf(e.scope, e.execId));
        continue;
      }
      finished.push(e);
      total += sizeOf(e);
    }
    for (const e of finished) {
      if (total <= this.limits.totalBytes) break;
      this.entries.delete(keyOf(e.scope, e.execId));
      total -= sizeOf(e);
    }
  }
}

function keyOf(scope: string, execId: string): string {
  return `${scope}\0${execId}`;
}

function sizeOf(e: Entry): number {
  return e.log.sizeBytes + (e.result ? e.result.stdout.length + e.result.stderr.length : 0);
}
