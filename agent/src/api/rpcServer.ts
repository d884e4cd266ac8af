// The serving side of the agent's JSON-RPC: one method table (json-rpc-2.0's JSONRPCServer), many
// connections. Each connection is a Peer with its own session state and the AbortControllers of its
// running requests, so `$/cancelRequest` reaches them and a closing connection cancels them.
import { createJSONRPCErrorResponse, JSONRPCServer, type JSONRPCID, type JSONRPCRequest, type JSONRPCResponse } from 'json-rpc-2.0';
import type { z } from 'zod';
import { fieldsOf } from '../protocol/routes';
import { AgentRequests, CancelRequest, ErrorCodes, Exit, Initialize, ProtocolError, Shutdown } from '../protocol';
import type { MessageTransport, NotificationType, RequestType } from '../protocol';
import type { Logger } from '../log';
import { ADMIN, isAdmin, type Access } from '../core/access';

export interface Peer {
  readonly id: number;
  /** A Direct HTTP API request: no connection, so it owns nothing (sandboxes it makes are detached) and
   * gets no notifications (output is read from the execution's stream). */
  readonly stateless?: boolean;
  state: 'new' | 'ready' | 'shutdown';
  /** Who it is: the admin (the unix socket, which is owner-only, and the agent's token) may call every
   * method and sees everything; an API key may not call the admin methods (key management, stopping the
   * agent) and sees only what it made (core/access.ts). */
  readonly access: Access;
  /** Its API key was revoked: nothing more is served (the connection is being closed). */
  revoked?: boolean;
  readonly pending: Map<JSONRPCID, AbortController>;
  notify<P>(type: NotificationType<P>, params: P): void;
  close(): void;
}

export interface CallContext {
  readonly peer: Peer;
  readonly signal: AbortSignal;
}

export type Handler<P, R> = (params: P, ctx: CallContext) => Promise<R> | R;

/** Methods only an admin peer may call: those whose route is marked admin. */
const ADMIN_ONLY = new Set(AgentRequests.filter((r) => r.http?.admin).map((r) => r.method));

/** Methods a connection may call before `initialize`. */
const BEFORE_INIT = new Set([Initialize.method, Exit.method, CancelRequest.method]);

export class RpcServer {
  private readonly server = new JSONRPCServer<Peer>({ errorListener: () => {} });
  private readonly peers = new Set<Peer>();
  private nextPeerId = 1;

  constructor(
    private readonly log: Logger,
    /** Told when a connection closes, to end what it owned. */
    private readonly onPeerClosed: (peer: Peer) => void = () => {},
  ) {
    this.server.applyMiddleware(async (next, request, peer) => {
      if (peer.state === 'new' && !BEFORE_INIT.has(request.method)) {
        return errorFor(request, ErrorCodes.ServerNotInitialized, `send "initialize" before "${request.method}"`);
      }
      if (peer.revoked) {
        return errorFor(request, ErrorCodes.Unauthorized, 'the API key of this connection was revoked; connect again with a valid key');
      }
      if (!isAdmin(peer.access) && ADMIN_ONLY.has(request.method)) {
        return errorFor(request, ErrorCodes.Forbidden, `${request.method} is for the agent's admin only: connect with the agent's own token (the agent.token file), not an API key`);
      }
      if (peer.state === 'shutdown' && request.method !== Exit.method) {
        return errorFor(request, ErrorCodes.ShuttingDown, 'this connection sent "shutdown"; only "exit" is accepted now');
      }
      return next(request, peer);
    });
    this.server.handleMethodNotFound = async (request: JSONRPCRequest) =>
      errorFor(request, ErrorCodes.MethodNotFound, `unknown method "${request.method}"; see the protocol's method table (agent/src/protocol/methods.ts)`);
    this.onNotification(CancelRequest, (params, peer) => peer.pending.get(params.id)?.abort());
    this.onNotification(Exit, (_params, peer) => peer.close());
    this.on(Shutdown, (_params, { peer, signal }) => {
      peer.state = 'shutdown';
      for (const controller of peer.pending.values()) if (controller.signal !== signal) controller.abort();
      return {};
    });
  }

  get connectionCount(): number {
    return this.peers.size;
  }

  /** Registers a request handler. Params are validated against the message's schema first. */
  on<P, R, PIn>(type: RequestType<P, R, PIn>, handler: Handler<P, R>): void {
    this.server.addMethodAdvanced(type.method, async (request, peer) => {
      const id = request.id;
      if (id === undefined) return null; // a request type sent as a notification: nothing to answer
      const params = parseParams(type.params, request.params, type.method);
      if (params instanceof ProtocolError) return errorFor(request, params.code, params.message, params.data);
      const controller = new AbortController();
      peer.pending.set(id, controller);
      try {
        const result = await handler(params, { peer, signal: controller.signal });
        if (controller.signal.aborted) throw cancelled(type.method);
        return { jsonrpc: '2.0', id, result };
      } catch (e) {
        return this.toErrorResponse(id, controller.signal.aborted ? cancelled(type.method) : e, type.method);
      } finally {
        peer.pending.delete(id);
      }
    });
  }

  onNotification<P>(type: NotificationType<P>, handler: (params: P, peer: Peer) => void): void {
    this.server.addMethodAdvanced(type.method, async (request, peer) => {
      const params = parseParams(type.params, request.params, type.method);
      if (!(params instanceof ProtocolError)) handler(params, peer);
      return null;
    });
  }

  /** Serves one connection until it closes. */
  attach(transport: MessageTransport, access: Access = ADMIN): Peer {
    const peer: Peer = {
      id: this.nextPeerId++,
      state: 'new',
      access,
      pending: new Map(),
      notify: (type, params) => transport.send({ jsonrpc: '2.0', method: type.method, params }),
      close: () => transport.close(),
    };
    this.peers.add(peer);
    transport.onMessage((message) => {
      if (isResponse(message)) return; // the agent sends no requests to clients
      if (peer.revoked) return; // closing: the middleware's answer would go nowhere useful
      void Promise.resolve(this.server.receive(message as JSONRPCRequest, peer)).then((response) => {
        if (response) transport.send(response);
      });
    });
    transport.onInvalid((error) => transport.send(createJSONRPCErrorResponse(null, error.code, error.message)));
    transport.onClose(() => {
      this.peers.delete(peer);
      for (const controller of peer.pending.values()) controller.abort();
      this.onPeerClosed(peer);
    });
    return peer;
  }

  /** Calls a method for one HTTP request: params validated, errors mapped, exactly as on a connection. */
  async call(method: string, params: unknown, access: Access): Promise<JSONRPCResponse> {
    const peer: Peer = { id: this.nextPeerId++, stateless: true, state: 'ready', access, pending: new Map(), notify: () => {}, close: () => {} };
    const response = await this.server.receive({ jsonrpc: '2.0', id: 1, method, params: params as JSONRPCRequest['params'] }, peer);
    return response ?? createJSONRPCErrorResponse(1, ErrorCodes.InternalError, `${method} gave no answer`);
  }

  /** Sends a notification to every initialized connection whose access `to` admits (default: all). */
  broadcast<P>(type: NotificationType<P>, params: P, to: (access: Access) => boolean = () => true): void {
    for (const peer of this.peers) if (peer.state === 'ready' && !peer.revoked && to(peer.access)) peer.notify(type, params);
  }

  /** Some initialized connection is an API key's (events must then be filtered by owner). */
  get hasKeyPeers(): boolean {
    for (const peer of this.peers) if (!isAdmin(peer.access)) return true;
    return false;
  }

  closeAll(): void {
    for (const peer of [...this.peers]) peer.close();
  }

  private toErrorResponse(id: JSONRPCID, e: unknown, method: string): JSONRPCResponse {
    if (e instanceof ProtocolError) return createJSONRPCErrorResponse(id, e.code, e.message, e.data);
    this.log(`${method} failed: ${(e as Error)?.stack ?? String(e)}`);
    return createJSONRPCErrorResponse(id, ErrorCodes.InternalError, `${method} failed unexpectedly: ${(e as Error)?.message ?? String(e)}; the agent log has details`);
  }
}

function parseParams<P>(schema: z.ZodType<P, unknown>, raw: unknown, method: string): P | ProtocolError {
  const parsed = schema.safeParse(raw === undefined || raw === null ? {} : raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => {
    const where = i.path.length ? i.path.join('.') : 'params';
    if (i.code === 'unrecognized_keys') {
      const known = i.path.length === 0 ? fieldsOf(schema) : [];
      return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `\`${k}\``).join(', ')}${i.path.length ? ` in ${where}` : ''}${known.length ? ` (${method} takes ${known.join(', ')})` : ''}`;
    }
    return `${where}: ${i.message}`;
  });
  return new ProtocolError(ErrorCodes.InvalidParams, `invalid params for ${method}: ${issues.join('; ')}`, {
    issues: parsed.error.issues.map((i) => ({ path: i.path, message: i.message })),
  });
}

function cancelled(method: string): ProtocolError {
  return new ProtocolError(ErrorCodes.RequestCancelled, `${method} was cancelled`);
}

function errorFor(request: JSONRPCRequest, code: number, message: string, data?: unknown): JSONRPCResponse | null {
  return request.id === undefined ? null : createJSONRPCErrorResponse(request.id, code, message, data);
}

function isResponse(m: unknown): boolean {
  return typeof m === 'object' && m !== null && !Array.isArray(m) && !('method' in m) && ('result' in m || 'error' in m);
}
