// The calling side of a connection: typed requests with cancellation, typed notification listeners.
// Used by the CLI, the extension and the agent's link to forkspace-rt.
import { JSONRPCClient, type JSONRPCID, type JSONRPCResponse } from 'json-rpc-2.0';
import { ErrorCodes, ProtocolError } from './errors';
import { CancelRequest } from './lifecycle';
import type { NotificationType, RequestType } from './messages';
import type { MessageTransport } from './transport';

export interface RequestOptions {
  /** Aborting sends `$/cancelRequest` (when `cancelVia` allows) and rejects with RequestCancelled. */
  signal?: AbortSignal;
}

export interface Disposable {
  dispose(): void;
}

export class RpcClient {
  private readonly client: JSONRPCClient;
  private readonly listeners = new Map<string, Set<(params: unknown) => void>>();
  private nextId = 1;

  constructor(
    readonly transport: MessageTransport,
    /** Peers that do not implement `$/cancelRequest` (forkspace-rt) get no cancellation message. */
    private readonly sendCancellation = true,
  ) {
    this.client = new JSONRPCClient((payload) => transport.send(payload));
    transport.onMessage((m) => this.receive(m));
    transport.onClose(() => this.client.rejectAllPendingRequests('connection closed'));
  }

  async request<P, R, PIn>(type: RequestType<P, R, PIn>, params: PIn, options: RequestOptions = {}): Promise<R> {
    if (this.transport.closed) throw closedError(type.method);
    const id = this.nextId++;
    const signal = options.signal;
    signal?.throwIfAborted?.();
    const onAbort = (): void => {
      if (this.sendCancellation) this.notify(CancelRequest, { id });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let response: JSONRPCResponse;
    try {
      response = await this.client.requestAdvanced({ jsonrpc: '2.0', id, method: type.method, params });
    } catch (e) {
      throw closedError(type.method, e);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (response.error) {
      // json-rpc-2.0 settles pending calls with a code-0 error when we reject them on close.
      if (response.error.code === 0 && this.transport.closed) throw closedError(type.method);
      throw new ProtocolError(response.error.code, response.error.message, response.error.data);
    }
    return response.result as R;
  }

  notify<P>(type: NotificationType<P>, params: P): void {
    this.client.notify(type.method, params, undefined);
  }

  onNotification<P>(type: NotificationType<P>, listener: (params: P) => void): Disposable {
    let set = this.listeners.get(type.method);
    if (!set) this.listeners.set(type.method, (set = new Set()));
    const l = listener as (params: unknown) => void;
    set.add(l);
    return { dispose: () => set.delete(l) };
  }

  close(): void {
    this.transport.close();
  }

  private receive(message: unknown): void {
    if (Array.isArray(message)) return message.forEach((m) => this.receive(m));
    if (typeof message !== 'object' || message === null) return;
    const m = message as { method?: unknown; id?: JSONRPCID; params?: unknown };
    if (typeof m.method === 'string') {
      if (m.id === undefined) this.listeners.get(m.method)?.forEach((l) => l(m.params));
      return;
    }
    this.client.receive(message as JSONRPCResponse);
  }
}

function closedError(method: string, cause?: unknown): ProtocolError {
  const why = cause instanceof Error ? `: ${cause.message}` : '';
  return new ProtocolError(ErrorCodes.ConnectionClosed, `the connection closed before ${method} answered${why}`);
}
