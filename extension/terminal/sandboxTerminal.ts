// An interactive terminal in a running sandbox: the agent's pty (a shell in the sandbox's own devpts),
// with input and resize; it closes when the shell exits.
import * as vscode from 'vscode';
import { TerminalClose, TerminalExit, TerminalInput, TerminalOpen, TerminalOutput, TerminalResize } from '../../agent/src/protocol';
import type { AgentConnection } from '../agent/agentConnection';

export class SandboxTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  private terminalId: string | undefined;
  private disposables: vscode.Disposable[] = [];
  /** Output so far (tests read it). */
  text = '';
  readonly opened: Promise<string>;
  private resolveOpened!: (id: string) => void;

  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;

  constructor(
    private readonly agent: AgentConnection,
    private readonly sandboxId: string,
  ) {
    this.opened = new Promise((r) => (this.resolveOpened = r));
  }

  open(dimensions: vscode.TerminalDimensions | undefined): void {
    void this.start(dimensions);
  }

  private async start(d: vscode.TerminalDimensions | undefined): Promise<void> {
    this.disposables = [
      this.agent.on(TerminalOutput, (p) => {
        if (p.terminalId !== this.terminalId) return;
        this.text += p.data;
        this.writeEmitter.fire(p.data);
      }),
      this.agent.on(TerminalExit, (p) => {
        if (p.terminalId !== this.terminalId) return;
        this.closeEmitter.fire(p.exitCode ?? undefined);
      }),
    ];
    try {
      const r = await this.agent.request(TerminalOpen, { sandboxId: this.sandboxId, cols: d?.columns ?? 80, rows: d?.rows ?? 24 });
      this.terminalId = r.terminalId;
      this.resolveOpened(r.terminalId);
    } catch (e) {
      this.writeEmitter.fire(`\x1b[31mCannot open a terminal in ${this.sandboxId}: ${(e as Error).message}\x1b[0m\r\n`);
    }
  }

  handleInput(data: string): void {
    if (this.terminalId) void this.agent.request(TerminalInput, { terminalId: this.terminalId, data }).catch(() => {});
  }

  setDimensions(d: vscode.TerminalDimensions): void {
    if (this.terminalId) void this.agent.request(TerminalResize, { terminalId: this.terminalId, cols: d.columns, rows: d.rows }).catch(() => {});
  }

  close(): void {
    if (this.terminalId) void this.agent.request(TerminalClose, { terminalId: this.terminalId }).catch(() => {});
    this.disposables.forEach((d) => d.dispose());
  }
}
