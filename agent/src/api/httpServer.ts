// The agent's HTTP listener (127.0.0.1:7812 by default; FORKSPACE_HTTP_HOST/PORT move it): the Direct
// HTTP API under /v1/ (REST routes, WebSocket streams, the OpenAPI document) and named exposures of
// sandbox services under /v1/expose/<name>/. Every request, on every path, needs `Authorization:
// Bearer <key>`: an API key (which reaches only what it made), or the agent's own token (the admin key).
import * as http from 'node:http';
import type * as net from 'node:net';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { Logger } from '../log';
import { accessOf, type Authenticator } from './auth';
import { EXPOSE_PREFIX, proxyRequest, proxyUpgrade, type ExposureLookup } from './exposureProxy';
import type { KeySessions } from './keySessions';
import { errorAnswer, refuseUpgrade, send } from './httpAnswers';
import type { RestApi } from './restApi';
import type { RestStreams } from './restStreams';

export type { ExposureLookup } from './exposureProxy';

export class HttpServer {
  private server: http.Server | undefined;

  constructor(
    private readonly auth: Authenticator,
    private readonly lookup: ExposureLookup,
    private readonly rest: RestApi,
    private readonly streams: RestStreams,
    private readonly sessions: KeySessions,
    private readonly log: Logger,
  ) {}

  get port(): number {
    const a = this.server?.address();
    return a && typeof a !== 'string' ? a.port : 0;
  }

  async listen(host: string, port: number): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as net.Socket, head));
    server.on('clientError', (_e, socket) => {
      if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":{"code":${ErrorCodes.InvalidRequest},"name":"InvalidRequest","message":"malformed HTTP request"}}`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    this.log(`HTTP (Direct API, exposures) on ${host}:${this.port}`);
  }

  close(): Promise<void> {
    this.streams.close();
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const principal = this.auth.authenticate(req);
    if (principal instanceof ProtocolError) {
      req.resume();
      return send(res, errorAnswer(principal, { 'www-authenticate': 'Bearer' }));
    }
    const url = parseUrl(req);
    if (url.pathname.startsWith(EXPOSE_PREFIX)) return proxyRequest(this.lookup, req, res, accessOf(principal), (a, end) => this.sessions.track(a, end));
    void this.rest.handle(req, res, principal, url);
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const principal = this.auth.authenticate(req);
    if (principal instanceof ProtocolError) return refuseUpgrade(socket, principal);
    const url = parseUrl(req);
    const access = accessOf(principal);
    if (url.pathname.startsWith(EXPOSE_PREFIX)) return proxyUpgrade(this.lookup, req, socket, head, access, (a, end) => this.sessions.track(a, end));
    this.streams.upgrade(req, socket, head, url, access);
  }
}

function parseUrl(req: http.IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://agent');
  } catch {
    return new URL('http://agent/');
  }
}
