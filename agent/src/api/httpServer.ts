// The agent's HTTP listener. Today it serves named exposures of sandbox services: every request needs
// the agent's bearer key, then HTTP requests and WebSocket upgrades under /v1/expose/<name>/ are relayed
// to the sandbox port through a runtime port forward (the prefix is stripped, the key is not passed on).
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { Logger } from '../log';

export interface ExposureTarget {
  hostPort: number;
}

export type ExposureLookup = (name: string) => ExposureTarget | undefined;

const PREFIX = '/v1/expose/';

export class HttpServer {
  private server: http.Server | undefined;

  constructor(
    private readonly token: string,
    private readonly lookup: ExposureLookup,
    private readonly log: Logger,
  ) {}

  get port(): number {
    const a = this.server?.address();
    return a && typeof a !== 'string' ? a.port : 0;
  }

  async listen(host: string, port: number): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as net.Socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    this.log(`HTTP on ${host}:${this.port}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private authorized(req: http.IncomingMessage): boolean {
    const expected = Buffer.from(`Bearer ${this.token}`);
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  }

  /** The exposure and the path inside it, or why not. */
  private route(req: http.IncomingMessage): { target: ExposureTarget; path: string } | { status: number; message: string } {
    if (!this.authorized(req)) return { status: 401, message: 'missing or wrong Authorization: Bearer <key> (the agent token)' };
    const url = req.url ?? '/';
    if (!url.startsWith(PREFIX)) return { status: 404, message: `no route ${url}; exposed services are under ${PREFIX}<name>/` };
    const rest = url.slice(PREFIX.length);
    const slash = rest.search(/[/?]/);
    const name = slash < 0 ? rest : rest.slice(0, slash);
    const target = this.lookup(name);
    if (!target) return { status: 404, message: `nothing is exposed as "${name}" (see http/list)` };
    const path = slash < 0 ? '/' : rest[slash] === '?' ? '/' + rest.slice(slash) : rest.slice(slash);
    return { target, path };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const r = this.route(req);
    if ('status' in r) {
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: r.status, message: r.message } }));
      return;
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    headers.host = `127.0.0.1:${r.target.hostPort}`;
    const upstream = http.request({ host: '127.0.0.1', port: r.target.hostPort, method: req.method, path: r.path, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 502, message: `the sandbox service did not answer: ${e.message}` } }));
    });
    req.pipe(upstream);
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const r = this.route(req);
    if ('status' in r) {
      socket.end(`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status]}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: { code: r.status, message: r.message } })}`);
      return;
    }
    const upstream = net.connect(r.target.hostPort, '127.0.0.1', () => {
      const lines = [`${req.method} ${r.path} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = req.rawHeaders[i];
        if (k.toLowerCase() === 'authorization') continue;
        lines.push(`${k}: ${k.toLowerCase() === 'host' ? `127.0.0.1:${r.target.hostPort}` : req.rawHeaders[i + 1]}`);
      }
      upstream.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    const end = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.on('error', end);
    socket.on('error', end);
  }
}
