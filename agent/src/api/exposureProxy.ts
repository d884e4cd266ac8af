// Named exposures of sandbox services: HTTP requests and WebSocket upgrades under /v1/expose/<name>/ are
// relayed to the sandbox port through a runtime port forward (the prefix is stripped; the caller's key
// is not passed on).
import * as http from 'node:http';
import * as net from 'node:net';
import { ErrorCodes, ProtocolError } from '../protocol';
import { errorAnswer, refuseUpgrade, send } from './httpAnswers';

export interface ExposureTarget {
  hostPort: number;
}

export type ExposureLookup = (name: string) => ExposureTarget | undefined;

export const EXPOSE_PREFIX = '/v1/expose/';

/** The exposure and the path inside it, or why not. */
function route(lookup: ExposureLookup, url: string): { target: ExposureTarget; path: string } | ProtocolError {
  const rest = url.slice(EXPOSE_PREFIX.length);
  const slash = rest.search(/[/?]/);
  const name = slash < 0 ? rest : rest.slice(0, slash);
  const target = lookup(name);
  if (!target) return new ProtocolError(ErrorCodes.MethodNotFound, `nothing is exposed as "${name}" (GET /v1/exposures lists what is)`);
  const path = slash < 0 ? '/' : rest[slash] === '?' ? '/' + rest.slice(slash) : rest.slice(slash);
  return { target, path };
}

export function proxyRequest(lookup: ExposureLookup, req: http.IncomingMessage, res: http.ServerResponse): void {
  const r = route(lookup, req.url ?? '/');
  if (r instanceof ProtocolError) return send(res, errorAnswer(r));
  const headers = { ...req.headers };
  delete headers.authorization;
  headers.host = `127.0.0.1:${r.target.hostPort}`;
  const upstream = http.request({ host: '127.0.0.1', port: r.target.hostPort, method: req.method, path: r.path, headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  upstream.on('error', (e) => {
    if (res.headersSent) return void res.end();
    send(res, errorAnswer(new ProtocolError(ErrorCodes.ConnectionClosed, `the sandbox service did not answer: ${e.message}; is it listening on its port?`)));
  });
  req.pipe(upstream);
}

export function proxyUpgrade(lookup: ExposureLookup, req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
  const r = route(lookup, req.url ?? '/');
  if (r instanceof ProtocolError) return refuseUpgrade(socket, r);
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
