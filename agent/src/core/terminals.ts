// Terminals through the runtime, each owned by the connection that opened it: its output goes only
// there, and when that connection closes, the terminal's program is ended.
import { TextDecoder } from 'node:util';
import type { z } from 'zod';
import type { NotificationType } from '../protocol';
import type { TerminalOpen } from '../protocol/terminals';
import { TerminalExit, TerminalOutput } from '../protocol/terminals';
import { RtTerminalClose, RtTerminalExit, RtTerminalInput, RtTerminalOpen, RtTerminalOutput, RtTerminalResize } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { newExecId } from './exec';

export interface TerminalOwner {
  notify<P>(type: NotificationType<P>, params: P): void;
}

export class TerminalService {
  private readonly owners = new Map<string, { owner: TerminalOwner; decoder: TextDecoder; seq: number }>();

  constructor(private readonly runtime: RuntimeClient) {
    runtime.onRuntimeNotification(RtTerminalOutput, (p) => {
      const t = this.owners.get(p.terminalId);
      if (!t) return;
      const data = t.decoder.decode(Buffer.from(p.dataBase64, 'base64'), { stream: true });
      if (data) t.owner.notify(TerminalOutput, { terminalId: p.terminalId, data, seq: ++t.seq });
    });
    runtime.onRuntimeNotification(RtTerminalExit, (p) => {
      const t = this.owners.get(p.terminalId);
      this.owners.delete(p.terminalId);
      t?.owner.notify(TerminalExit, { terminalId: p.terminalId, exitCode: p.exitCode });
    });
  }

  async open(p: z.output<typeof TerminalOpen.params>, owner: TerminalOwner) {
    const terminalId = p.terminalId ?? `term-${newExecId().slice(3)}`;
    this.owners.set(terminalId, { owner, decoder: new TextDecoder('utf-8'), seq: 0 });
    try {
      const r = await this.runtime.request(RtTerminalOpen, { terminalId, sandboxId: p.sandboxId, argv: p.command, cols: p.cols, rows: p.rows, env: p.env, cwd: p.cwd });
      return { terminalId: r.terminalId, sandboxId: r.sandboxId };
    } catch (e) {
      this.owners.delete(terminalId);
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

  /** Ends every terminal of a connection that went away. */
  closeOwnedBy(owner: TerminalOwner): void {
    for (const [id, t] of this.owners) if (t.owner === owner) void this.close(id).catch(() => {});
  }
}
