// Terminals through the runtime. Output goes to the connection that opened one (terminal/output
// notifications) and into a replayable log, which the Direct HTTP API's terminal stream reads (resuming
// from a sequence number). A terminal opened over JSON-RPC ends when its connection closes; one opened
// over HTTP (no connection owns it) ends when no stream has been attached to it for the grace period.
import { TextDecoder } from 'node:util';
import type { z } from 'zod';
import { ErrorCodes, ProtocolError, type NotificationType } from '../protocol';
import type { TerminalOpen } from '../protocol/terminals';
import { TerminalExit, TerminalOutput } from '../protocol/terminals';
import { RtTerminalClose, RtTerminalExit, RtTerminalInput, RtTerminalOpen, RtTerminalOutput, RtTerminalResize } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { newExecId } from './exec';
import { StreamLog, type LogReader, type Unsubscribe } from './streamLog';

export interface TerminalOwner {
  notify<P>(type: NotificationType<P>, params: P): void;
  /** An HTTP request: it owns nothing past its answer. */
  readonly stateless?: boolean;
}

export type TerminalChunk = { data: string; seq: number };
export type TerminalEnd = { exitCode: number | null };

interface Terminal {
  owner: TerminalOwner;
  decoder: TextDecoder;
  seq: number;
  log: StreamLog<TerminalChunk, TerminalEnd>;
  /** Stateless owners: since when no stream reads it (null while one does). */
  unreadSince: number | null;
}

const LOG_BYTES = 1 << 20;
const RETENTION_MS = 10 * 60_000;

export class TerminalService {
  private readonly terminals = new Map<string, Terminal>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly runtime: RuntimeClient,
    /** How long a terminal opened over HTTP lives with no stream attached. */
    private readonly unreadGraceMs = 60_000,
  ) {
    runtime.onRuntimeNotification(RtTerminalOutput, (p) => {
      const t = this.terminals.get(p.terminalId);
      if (!t || t.log.ended) return;
      const data = t.decoder.decode(Buffer.from(p.dataBase64, 'base64'), { stream: true });
      if (!data) return;
      const chunk = { data, seq: ++t.seq };
      t.log.push(chunk);
      t.owner.notify(TerminalOutput, { terminalId: p.terminalId, ...chunk });
    });
    runtime.onRuntimeNotification(RtTerminalExit, (p) => {
      const t = this.terminals.get(p.terminalId);
      if (!t) return;
      t.log.end({ exitCode: p.exitCode });
      t.owner.notify(TerminalExit, { terminalId: p.terminalId, exitCode: p.exitCode });
    });
    this.sweeper = setInterval(() => this.sweep(), Math.min(10_000, unreadGraceMs)).unref();
  }

  async open(p: z.output<typeof TerminalOpen.params>, owner: TerminalOwner) {
    const terminalId = p.terminalId ?? `term-${newExecId().slice(3)}`;
    const live = this.terminals.get(terminalId);
    if (live && !live.log.ended) throw new ProtocolError(ErrorCodes.ExecIdInUse, `terminal ${terminalId} is open; choose another terminalId`);
    this.terminals.set(terminalId, {
      owner,
      decoder: new TextDecoder('utf-8'),
      seq: 0,
      log: new StreamLog(LOG_BYTES, (c) => c.data.length),
      unreadSince: owner.stateless ? Date.now() : null,
    });
    try {
      const r = await this.runtime.request(RtTerminalOpen, { terminalId, sandboxId: p.sandboxId, argv: p.command, cols: p.cols, rows: p.rows, env: p.env, cwd: p.cwd });
      return { terminalId: r.terminalId, sandboxId: r.sandboxId };
    } catch (e) {
      this.terminals.delete(terminalId);
      throw e;
    }
  }

  input(terminalId: string, data: string) {
    return this.runtime.request(RtTerminalInput, { terminalId, dataBase64: Buffer.from(data, 'utf8').toString('base64') });
  }

  resize(terminalId: string, cols: number, rows: number) {
    return this.runtime.request(RtTerminalResize, { terminalId, cols, rows });
  }

  close(terminalId: string) {
    return this.runtime.request(RtTerminalClose, { terminalId });
  }

  has(terminalId: string): boolean {
    return this.terminals.has(terminalId);
  }

  /** Output after `after`, live, then the exit (the WebSocket stream). */
  subscribe(terminalId: string, after: number, reader: LogReader<TerminalChunk, TerminalEnd>): Unsubscribe {
    const t = this.terminals.get(terminalId);
    if (!t) throw new ProtocolError(ErrorCodes.ExecNotFound, `no terminal ${terminalId} (closed, or ended more than 10 minutes ago); open one with terminal/open`);
    const unsubscribe = t.log.subscribe(after, reader);
    if (t.owner.stateless) t.unreadSince = null;
    return () => {
      unsubscribe();
      if (t.owner.stateless && t.log.readerCount === 0) t.unreadSince = Date.now();
    };
  }

  /** Ends every terminal of a connection that went away. */
  closeOwnedBy(owner: TerminalOwner): void {
    for (const [id, t] of this.terminals) if (t.owner === owner && !t.log.ended) void this.close(id).catch(() => {});
  }

  dispose(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, t] of this.terminals) {
      if (t.log.ended) {
        if (now - (t.log.endedAtMs ?? now) > RETENTION_MS) this.terminals.delete(id);
      } else if (t.unreadSince !== null && now - t.unreadSince > this.unreadGraceMs) {
        t.unreadSince = null;
        void this.close(id).catch(() => {});
      }
    }
  }
}
