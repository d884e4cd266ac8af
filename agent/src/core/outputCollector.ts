// Turns an execution's raw output chunks into text: decodes UTF-8 per stream without splitting a
// character across chunks, numbers chunks in order, and keeps up to a cap of each stream for the result.

export type StreamName = 'stdout' | 'stderr';

export const DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024 * 1024;

class StreamText {
  private readonly decoder = new TextDecoder('utf-8');
  private readonly parts: string[] = [];
  private kept = 0;
  truncated = false;

  constructor(private readonly maxBytes: number) {}

  /** Decodes a chunk; returns the text it completes ('' when it ends mid-character). */
  push(bytes: Uint8Array, final = false): string {
    const text = this.decoder.decode(bytes, { stream: !final });
    if (text) this.keep(text);
    return text;
  }

  private keep(text: string): void {
    if (this.truncated) return;
    const size = Buffer.byteLength(text);
    if (this.kept + size <= this.maxBytes) {
      this.parts.push(text);
      this.kept += size;
      return;
    }
    const room = this.maxBytes - this.kept;
    this.parts.push(Buffer.from(text).subarray(0, room).toString('utf8').replace(/\uFFFD$/, ''));
    this.kept = this.maxBytes;
    this.truncated = true;
  }

  text(): string {
    return this.parts.join('');
  }
}

export class OutputCollector {
  private readonly streams: Record<StreamName, StreamText>;
  private seq = 0;

  constructor(
    maxBytes: number,
    private readonly emit: (stream: StreamName, data: string, seq: number) => void,
  ) {
    this.streams = { stdout: new StreamText(maxBytes), stderr: new StreamText(maxBytes) };
  }

  push(stream: StreamName, bytes: Uint8Array): void {
    const text = this.streams[stream].push(bytes);
    if (text) this.emit(stream, text, ++this.seq);
  }

  /** Flushes partial characters left at the end of each stream. */
  finish(): { stdout: string; stderr: string; stdoutTruncated: boolean; stderrTruncated: boolean } {
    for (const name of ['stdout', 'stderr'] as const) {
      const tail = this.streams[name].push(new Uint8Array(), true);
      if (tail) this.emit(name, tail, ++this.seq);
    }
    return {
      stdout: this.streams.stdout.text(),
      stderr: this.streams.stderr.text(),
      stdoutTruncated: this.streams.stdout.truncated,
      stderrTruncated: this.streams.stderr.truncated,
    };
  }
}
