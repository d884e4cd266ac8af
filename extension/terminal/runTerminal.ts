// A run's output in a terminal: stdout as it comes, stderr in red, the exit code at the end; Ctrl-C
// cancels the run. The terminal keeps the text after the run (and tests read it from `text`).
import * as vscode from 'vscode';
import { ExecOutput, ExecStarted, type ExecResult } from '../../agent/src/protocol';
import type { AgentConnection } from '../agent/agentConnection';

const RED = '\x1b[31m';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

/** Starts the run; resolves with its result. `execId` tags its notifications. */
export type Starter = (execId: string, signal: AbortSignal) => Promise<ExecResult & { checkpointId?: string }>;

let counter = 0;

export class RunTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  private readonly abort = new AbortController();
  private readonly execId = `vsc-${process.pid.toString(36)}-${Date.now().toString(36)}-${++counter}`;
  private disposables: vscode.Disposable[] = [];
  /** Everything written, without colours (for tests and copy). */
  text = '';
  readonly result: Promise<(ExecResult & { checkpointId?: string }) | undefined>;
  private resolveResult!: (r: (ExecResult & { checkpointId?: string }) | undefined) => void;
  sandboxId: string | undefined;

  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;

  constructor(
    private readonly agent: AgentConnection,
    private readonly title: string,
    private readonly start: Starter,
  ) {
    this.result = new Promise((r) => (this.resolveResult = r));
  }

  open(): void {
    this.disposables = [
      this.agent.on(ExecStarted, (p) => {
        if (p.execId !== this.execId) return;
        this.sandboxId = p.sandboxId;
        this.write(`${DIM}${this.title} in ${p.sandboxId} (${p.environment})${RESET}\r\n`);
      }),
      this.agent.on(ExecOutput, (p) => {
        if (p.execId !== this.execId) return;
        const text = p.data.replace(/\r?\n/g, '\r\n');
        this.write(p.stream === 'stderr' ? `${RED}${text}${RESET}` : text);
      }),
    ];
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      const r = await this.start(this.execId, this.abort.signal);
      const how = r.timedOut ? 'timed out' : r.oomKilled ? 'out of memory' : r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`;
      const extra = r.checkpointId ? `, checkpoint ${r.checkpointId}` : r.cached ? ', cached result' : '';
      this.write(`\r\n${r.exitCode === 0 ? DIM : RED}[${how}, ${r.durationMs.toFixed(0)} ms${extra}]${RESET}\r\n`);
      this.resolveResult(r);
    } catch (e) {
      const cancelled = this.abort.signal.aborted;
      this.write(`\r\n${RED}[${cancelled ? 'cancelled' : `failed: ${(e as Error).message}`}]${RESET}\r\n`);
      this.resolveResult(undefined);
    } finally {
      this.disposables.forEach((d) => d.dispose());
    }
  }

  handleInput(data: string): void {
    if (data === '\x03') this.abort.abort(); // Ctrl-C
  }

  close(): void {
    this.abort.abort();
  }

  private write(s: string): void {
    // eslint-disable-next-line no-control-regex
    this.text += s.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r\n/g, '\n');
    this.writeEmitter.fire(s);
  }
}
