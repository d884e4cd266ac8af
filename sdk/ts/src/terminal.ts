// An interactive terminal (pty) in a sandbox: keystrokes in, screen output out, resumable like every
// stream. `await using` closes it.
import type { TerminalStreamFrame } from './api.gen';
import type { HttpTransport } from './http';
import { followTerminal, type JsonSocket } from './stream';

export class Terminal implements AsyncIterable<string> {
  private socket: JsonSocket<TerminalStreamFrame> | undefined;
  exitCode: number | null | undefined;

  constructor(
    private readonly transport: HttpTransport,
    readonly terminalId: string,
    readonly sandboxId: string,
  ) {}

  /** Types into it (control characters as they are: '\u0003' is Ctrl-C). */
  async write(data: string): Promise<void> {
    await this.transport.call('terminal/input', { terminalId: this.terminalId, data });
  }

  async resize(cols: number, rows: number): Promise<void> {
    await this.transport.call('terminal/resize', { terminalId: this.terminalId, cols, rows });
  }

  async close(): Promise<void> {
    await this.transport.call('terminal/close', { terminalId: this.terminalId }).catch(() => {});
  }

  /** What it prints, until its program exits. */
  async *output(options: { after?: number; signal?: AbortSignal } = {}): AsyncGenerator<string, void, undefined> {
    for await (const f of followTerminal(this.transport, this.terminalId, options, (s) => (this.socket = s))) {
      if (f.type === 'output') yield f.data;
      else if (f.type === 'exit') this.exitCode = f.exitCode;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return this.output();
  }

  /** Calls `onData` with everything it prints; resolves with the exit code when its program ends. */
  async onData(onData: (data: string) => void, options: { signal?: AbortSignal } = {}): Promise<number | null> {
    for await (const d of this.output(options)) onData(d);
    return this.exitCode ?? null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.socket?.close();
    await this.close();
  }
}
