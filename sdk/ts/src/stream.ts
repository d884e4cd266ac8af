// The Direct HTTP API's WebSocket streams, followed to their end across reconnects: when a connection
// drops before the last frame, the stream reconnects with ?after=<last sequence number received> and the
// agent replays exactly what came after it (no loss, no duplicates). Node >= 22's global WebSocket.
import { STREAMS, type ExecStreamFrame, type TerminalStreamFrame } from './api.gen';
import { ConnectionError, ForkspaceError } from './errors';
import type { HttpTransport } from './http';
import { backoffDelay, DEFAULT_RETRY, sleep } from './retry';

export interface FollowOptions {
  /** Frames numbered above this one. Default 0 (from the start). */
  after?: number;
  signal?: AbortSignal;
  /** Reconnects in a row without a frame in between before giving up. Default 8. */
  maxReconnects?: number;
  /** Told before each reconnect (for tests and logs). */
  onReconnect?: (after: number, attempt: number) => void;
}

type Frame = { type: string; seq?: number; to?: number };

/** One WebSocket connection as an async queue of parsed JSON frames. */
export class JsonSocket<F> {
  private readonly queue: F[] = [];
  private waiting: (() => void) | undefined;
  private closed: { code: number; reason: string } | undefined;
  private failure: Error | undefined;
  readonly ws: WebSocket;

  constructor(url: string, apiKey: string) {
    this.ws = new WebSocket(url, { headers: { authorization: `Bearer ${apiKey}` } } as unknown as string[]);
    this.ws.onmessage = (ev) => {
      try {
        this.queue.push(JSON.parse(String(ev.data)) as F);
      } catch {
        this.failure = new ForkspaceError(`the stream sent a frame that is not JSON: ${String(ev.data).slice(0, 80)}`);
      }
      this.wake();
    };
    this.ws.onerror = (ev) => {
      this.failure ??= new ConnectionError(`the stream at ${url.replace(/\?.*/, '')} failed: ${(ev as unknown as { message?: string }).message ?? 'connection error'}`);
      this.wake();
    };
    this.ws.onclose = (ev) => {
      this.closed = { code: ev.code, reason: ev.reason };
      this.wake();
    };
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The next frame, or undefined once the socket closed (see `closeInfo`). */
  async next(signal?: AbortSignal): Promise<F | undefined> {
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.closed || this.failure) return undefined;
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  get closeInfo(): { code: number; reason: string; error?: Error } {
    return { ...(this.closed ?? { code: 1006, reason: '' }), ...(this.failure ? { error: this.failure } : {}) };
  }

  close(): void {
    if (this.ws.readyState === this.ws.CONNECTING || this.ws.readyState === this.ws.OPEN) this.ws.close();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}

/** ws:// or wss:// for an http(s) base URL. */
export function wsUrl(base: string, path: string, after: number): string {
  return `${base.replace(/^http/, 'ws')}${path}?after=${after}`;
}

/** Follows a stream to its final frame (`end` or `exit`), resuming after drops. `isFinal` decides. */
export async function* follow<F extends Frame>(
  transport: HttpTransport,
  base: string,
  path: string,
  isFinal: (f: F) => boolean,
  options: FollowOptions = {},
  onSocket?: (s: JsonSocket<F>) => void,
): AsyncGenerator<F, void, undefined> {
  let after = options.after ?? 0;
  let failures = 0;
  const max = options.maxReconnects ?? 8;
  for (;;) {
    const socket = new JsonSocket<F>(wsUrl(base, path, after), transport.apiKey);
    onSocket?.(socket);
    try {
      for (;;) {
        const frame = await socket.next(options.signal);
        if (frame === undefined) break;
        failures = 0;
        if (typeof frame.seq === 'number') after = frame.seq;
        else if (frame.type === 'gap' && typeof frame.to === 'number') after = frame.to;
        yield frame;
        if (isFinal(frame)) return;
      }
    } finally {
      socket.close();
    }
    options.signal?.throwIfAborted();
    if (++failures > max) {
      const info = socket.closeInfo;
      throw new ConnectionError(`the stream ${path} kept dropping (${max} reconnects without a frame; last close ${info.code}${info.reason ? ` "${info.reason}"` : ''})`, { cause: info.error });
    }
    options.onReconnect?.(after, failures);
    await sleep(backoffDelay(failures - 1, { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 2000 }), options.signal);
  }
}

export function followExecution(transport: HttpTransport, execId: string, options: FollowOptions = {}): AsyncGenerator<ExecStreamFrame, void, undefined> {
  const path = STREAMS['exec/stream'].path.replace('{execId}', encodeURIComponent(execId));
  return follow<ExecStreamFrame & Frame>(transport, transport.executorUrl, path, (f) => f.type === 'end', options);
}

export function followTerminal(
  transport: HttpTransport,
  terminalId: string,
  options: FollowOptions = {},
  onSocket?: (s: JsonSocket<TerminalStreamFrame>) => void,
): AsyncGenerator<TerminalStreamFrame, void, undefined> {
  const path = STREAMS['terminal/stream'].path.replace('{terminalId}', encodeURIComponent(terminalId));
  return follow<TerminalStreamFrame & Frame>(transport, transport.platformUrl, path, (f) => f.type === 'exit', options, onSocket as never);
}
