// A message transport: one JSON value per message, whatever carries it (ndjson over a socket, WebSocket
// frames, in-memory streams in tests). Framing problems are reported, not thrown, so the receiving side
// can answer them with a JSON-RPC error and keep the connection.
import { ErrorCodes, ProtocolError } from './errors';

export interface MessageTransport {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** A message that could not be framed or parsed (ParseError, PayloadTooLarge). */
  onInvalid(listener: (error: ProtocolError) => void): void;
  onClose(listener: () => void): void;
  /** Closes the connection; a WebSocket sends `code` and `reason` in its close frame. */
  close(code?: number, reason?: string): void;
  readonly closed: boolean;
}

/** Default per-message limit on agent connections; larger payloads belong in files/upload. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export function parseMessage(text: string): unknown | ProtocolError {
  try {
    return JSON.parse(text);
  } catch (e) {
    return new ProtocolError(ErrorCodes.ParseError, `invalid JSON: ${(e as Error).message}`);
  }
}

export function tooLarge(size: number, max: number): ProtocolError {
  return new ProtocolError(
    ErrorCodes.PayloadTooLarge,
    `message of ${size}+ bytes exceeds the ${max}-byte limit of this connection; send large files in parts`,
  );
}

/** Listener bookkeeping shared by the transports. */
export abstract class TransportBase implements MessageTransport {
  private readonly messageListeners: ((m: unknown) => void)[] = [];
  private readonly invalidListeners: ((e: ProtocolError) => void)[] = [];
  private readonly closeListeners: (() => void)[] = [];
  private isClosed = false;

  abstract send(message: unknown): void;
  abstract close(code?: number, reason?: string): void;

  get closed(): boolean {
    return this.isClosed;
  }

  onMessage(listener: (message: unknown) => void): void {
    this.messageListeners.push(listener);
  }

  onInvalid(listener: (error: ProtocolError) => void): void {
    this.invalidListeners.push(listener);
  }

  onClose(listener: () => void): void {
    if (this.isClosed) listener();
    else this.closeListeners.push(listener);
  }

  protected deliver(text: string): void {
    const parsed = parseMessage(text);
    if (parsed instanceof ProtocolError) this.invalidListeners.forEach((l) => l(parsed));
    else this.messageListeners.forEach((l) => l(parsed));
  }

  protected reject(error: ProtocolError): void {
    this.invalidListeners.forEach((l) => l(error));
  }

  protected markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeListeners.splice(0).forEach((l) => l());
  }
}
