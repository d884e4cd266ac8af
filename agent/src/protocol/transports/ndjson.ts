// Newline-delimited JSON over a stream socket (unix socket or TCP): the framing of forkspace-rt's
// socket and of the agent's unix socket.
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_MAX_MESSAGE_BYTES, TransportBase, tooLarge } from '../transport';

export class NdjsonTransport extends TransportBase {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of an oversized message being skipped up to its newline. */
  private skipping = 0;

  constructor(
    private readonly stream: Duplex,
    private readonly maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
  ) {
    super();
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('close', () => this.markClosed());
    stream.on('error', () => this.markClosed());
  }

  send(message: unknown): void {
    if (this.closed || this.stream.destroyed) return;
    this.stream.write(JSON.stringify(message) + '\n');
  }

  close(): void {
    this.stream.end();
    this.stream.destroy();
    this.markClosed();
  }

  private receive(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.take(chunk.subarray(start, nl), true);
      start = nl + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start), false);
  }

  private take(part: Buffer, complete: boolean): void {
    if (this.skipping > 0 || this.pendingBytes + part.length > this.maxMessageBytes) {
      this.skipping += this.pendingBytes + part.length;
      this.pending = [];
      this.pendingBytes = 0;
      if (complete) {
        this.reject(tooLarge(this.skipping, this.maxMessageBytes));
        this.skipping = 0;
      }
      return;
    }
    this.pending.push(part);
    this.pendingBytes += part.length;
    if (!complete) return;
    const text = Buffer.concat(this.pending, this.pendingBytes).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    if (text.trim() !== '') this.deliver(text);
  }
}

/** Connects to a unix socket (or resolves the connection error) and frames it as ndjson. */
export function connectUnixSocket(socketPath: string, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): Promise<NdjsonTransport> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(new NdjsonTransport(socket, maxMessageBytes));
    });
    socket.once('error', reject);
  });
}
