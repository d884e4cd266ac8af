// Terminals through the runtime. Output goes to the connection that opened one (terminal/output
// notifications) and into a replayable log, which the Direct HTTP API's terminal stream reads (resuming
// from a sequence number). A terminal opened over JSON-RPC ends when its connection closes; one opened
// over HTTP (no connection owns it) ends when no stream has been attached to it for the grace period.
// A terminal belongs to the key that opened it (core/access.ts); its id is that key's (two keys may
// both open "main"), and the runtime knows it by an id of the agent's own making.
import { TextDecoder } from 'node:util';
import type { z } from 'zod';
import { ErrorCodes, ProtocolError, type NotificationType } from '../protocol';
import type { TerminalOpen } from '../protocol/terminals';
import { TerminalExit, TerminalOutput } from '../protocol/terminals';
import { RtTerminalClose, RtTerminalExit, RtTerminalInput, RtTerminalOpen, RtTerminalOutput, RtTerminalResize } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { newExecId } from './exec';
import { StreamLog, type LogReader, type Unsubscribe } from './streamLog';
import { isAdmin, normalizingNotFound, notFound, scopeOf, type Access } from './access';

export interface TerminalOwner {
  notify<P>(type: NotificationType<P>, params: P): void;
  /** An HTTP request: it owns nothing past its answer. */
  readonly stateless?: boolean;
}

export type TerminalChunk = { data: string; seq: number };
export type TerminalEnd = { exitCode: number | null };

interface Terminal {
  /** The id its opener knows it by. */
  terminalId: string;
  /** The id the runtime knows it by. */
  runtimeId: string;
  scope: string;
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
  /** By scope and terminalId. */
  private readonly terminals = new Map<string, Terminal>();
  private readonly byRuntimeId = new Map<string, Terminal>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly runtime: RuntimeClient,
    /** How long a terminal opened over HTTP lives with no stream attached. */
    private readonly unreadGraceMs = 60_000,
  ) {
    runtime.onRuntimeNotification(RtTerminalOutput, (p) => {
      const t = this.byRuntimeId.get(p.terminalId);
      if (!t || t.log.ended) return;
      const data = t.decoder.decode(Buffer.from(p.dataBase64, 'base64'), { stream: true });
      if (!data) return;
      const chunk = { data, seq: ++t.seq };
      t.log.push(chunk);
      t.owner.notify(TerminalOutput, { terminalId: t.terminalId, ...chunk });
    });
    runtime.onRuntimeNotification(RtTerminalExit, (p) => {
      const t = this.byRuntimeId.get(p.terminalId);
      if (!t) return;
      t.log.end({ exitCode: p.exitCode });
      t.owner.notify(TerminalExit, { terminalId: t.terminalId, exitCode: p.exitCode });
    });
    this.sweeper = setInterval(() => this.sweep(), Math.min(10_000, unreadGraceMs)).unref();
  }

  /** Opens a terminal in a sandbox `access` was allowed to use (the caller checks). */
  async open(p: z.output<typeof TerminalOpen.params>, owner: TerminalOwner, access: Access) {
    const terminalId = p.terminalId ?? newTerminalId();
    const scope = scopeOf(access);
    const key = keyOf(scope, terminalId);
    const live = this.terminals.get(key);
    if (live && !live.log.ended) throw new ProtocolError(ErrorCodes.ExecIdInUse, `terminal ${terminalId} is open; choose another terminalId`);
    if (live) this.byRuntimeId.delete(live.runtimeId);
    const runtimeId = newTerminalId();
    const t: Terminal = {
      terminalId,
      runtimeId,
      scope,
      owner,
      decoder: new TextDecoder('utf-8'),
      seq: 0,
      log: new StreamLog(LOG_BYTES, (c) => c.data.length),
      unreadSince: owner.stateless ? Date.now() : null,
    };
    this.terminals.set(key, t);
    this.byRuntimeId.set(runtimeId, t);
    try {
      const r = await this.runtime.request(RtTerminalOpen, { terminalId: runtimeId, sandboxId: p.sandboxId, argv: p.command, cols: p.cols, rows: p.rows, env: p.env, cwd: p.cwd });
      return { terminalId, sandboxId: r.sandboxId };
    } catch (e) {
      this.forget(t);
      throw e;
    }
  }

  input(terminalId: string, data: string, access: Access) {
    const t = this.find(terminalId, access);
    return this.ended(t, this.runtime.request(RtTerminalInput, { terminalId: t.runtimeId, dataBase64: Buffer.from(data, 'utf8').toString('base64') }));
  }

  resize(terminalId: string, cols: number, rows: number, access: Access) {
    const t = this.find(terminalId, access);
    return this.ended(t, this.runtime.request(RtTerminalResize, { terminalId: t.runtimeId, cols, rows }));
  }

  async close(terminalId: string, access: Access) {
    const t = this.find(terminalId, access);
    return this.ended(t, this.closeRuntime(t));
  }

  /** Throws the not-found error unless `access` may use the terminal. */
  check(terminalId: string, access: Access): void {
    this.find(terminalId, access);
  }

  /** Output after `after`, live, then the exit (the WebSocket stream). */
  subscribe(terminalId: string, after: number, reader: LogReader<TerminalChunk, TerminalEnd>, access: Access): Unsubscribe {
    const t = this.find(terminalId, access);
    const unsubscribe = t.log.subscribe(after, reader);
    if (t.owner.stateless) t.unreadSince = null;
    return () => {
      unsubscribe();
      if (t.owner.stateless && t.log.readerCount === 0) t.unreadSince = Date.now();
    };
  }

  /** Ends every terminal of a connection that went away. */
  closeOwnedBy(owner: TerminalOwner): void {
    for (const t of this.terminals.values()) if (t.owner === owner && !t.log.ended) void this.closeRuntime(t).catch(() => {});
  }

  dispose(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = Date.now();
    for (const t of [...this.terminals.values()]) {
      if (t.log.ended) {
        if (now - (t.log.endedAtMs ?? now) > RETENTION_MS) this.forget(t);
      } else if (t.unreadSince !== null && now - t.unreadSince > this.unreadGraceMs) {
        t.unreadSince = null;
        void this.closeRuntime(t).catch(() => {});
      }
    }
  }

  /** The runtime's answer for a terminal whose program ended names the caller's id, not the runtime's. */
  private ended<T>(t: Terminal, call: Promise<T>): Promise<T> {
    return normalizingNotFound(call, ErrorCodes.ExecNotFound, () => notFound.terminal(t.terminalId));
  }

  private closeRuntime(t: Terminal) {
    return this.runtime.request(RtTerminalClose, { terminalId: t.runtimeId });
  }

  /** The caller's own terminal by that id; for the admin, else anyone's. */
  private find(terminalId: string, access: Access): Terminal {
    let t = this.terminals.get(keyOf(scopeOf(access), terminalId));
    if (!t && isAdmin(access)) for (const x of this.terminals.values()) if (x.terminalId === terminalId) t = x;
    if (!t) throw notFound.terminal(terminalId);
    return t;
  }

  private forget(t: Terminal): void {
    if (this.terminals.get(keyOf(t.scope, t.terminalId)) === t) this.terminals.delete(keyOf(t.scope, t.terminalId));
    if (this.byRuntimeId.get(t.runtimeId) === t) this.byRuntimeId.delete(t.runtimeId);
  }
}

function keyOf(scope: string, terminalId: string): string {
  return `${scope}\0${terminalId}`;
}

function newTerminalId(): string {
  return `term-${newExecId().slice(3)}`;
}
