// One JSON-RPC message per WebSocket text frame.
import type WebSocket from 'ws';
import { DEFAULT_MAX_MESSAGE_BYTES, TransportBase, tooLarge } from '../transport';

export class WebSocketTransport extends TransportBase {
  constructor(
    private readonly socket: WebSocket,
    private readonly maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
  ) {
    super();
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (buf.length > this.maxMessageBytes) this.reject(tooLarge(buf.length, this.maxMessageBytes));
      else this.deliver(buf.toString('utf8'));
    });
    socket.on('close', () => this.markClosed());
    socket.on('error', () => this.markClosed());
  }

  send(message: unknown): void {
    if (this.closed || this.socket.readyState !== 1 /* OPEN */) return;
    this.socket.send(JSON.stringify(message));
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
    this.markClosed();
  }
}
