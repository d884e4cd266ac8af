// Named exposures of sandbox services: HTTP requests and WebSocket upgrades under /v1/expose/<name>/ are
// relayed, prefix stripped and the caller's key not passed on, to the unix socket the runtime relays into
// the sandbox (core/ports.ts). An exposure is found among the caller's own (the admin's token reaches
// any); one that is not there, or whose socket is gone with its sandbox, is a 404.
import * as http from 'node:http';
import * as net from 'node:net';
import { ErrorCodes, ProtocolError } from '../protocol';
import { notFound, type Access } from '../core/access';
import type { ExposureTarget } from '../core/ports';
import { errorAnswer, refuseUpgrade, send } from './httpAnswers';

export interface ExposureLookup {
  target(name: string, access: Access): ExposureTarget | undefined;
  /** The target's socket no longer answers: forget the exposure. */
  gone(target: ExposureTarget): void;
}

export const EXPOSE_PREFIX = '/v1/expose/';

/** Relayed connections, each ended at once when the key that opened it is revoked. */
export type TrackConnection = (access: Access, end: () => void) => () => void;

/** The exposure and the path inside it, or why not. */
function route(lookup: ExposureLookup, url: string, access: Access): { target: ExposureTarget; path: string } | ProtocolError {
  const rest = url.slice(EXPOSE_PREFIX.length);
  const slash = rest.search(/[/?]/);
  const name = slash < 0 ? rest : rest.slice(0, slash);
  const target = lookup.target(name, access);
  if (!target) return notFound.exposure(name);
  const path = slash < 0 ? '/' : rest[slash] === '?' ? '/' + rest.slice(slash) : rest.slice(slash);
  return { target, path };
}

/** A socket that is not there (its sandbox went, or the runtime restarted) rather than a failing service. */
function socketGone(e: NodeJS.ErrnoException): boolean {
  return e.code === 'ENOENT' || e.code === 'ECONNREFUSED';
}

export function proxyRequest(lookup: ExposureLookup, req: http.IncomingMessage, res: http.ServerResponse, access: Access, track: TrackConnection): void {
  const r = route(lookup, req.url ?? '/', access);
  if (r instanceof ProtocolError) return send(res, errorAnswer(r));
  const headers = { ...req.headers };
  delete headers.authorization;
  headers.host = 'localhost';
  const upstream = http.request({ socketPath: r.target.socketPath, method: req.method, path: r.path, headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  const untrack = track(access, () => {
    upstream.destroy();
    res.destroy();
  });
  res.on('close', untrack);
  upstream.on('error', (e: NodeJS.ErrnoException) => {
    if (res.headersSent) return void res.end();
    if (socketGone(e)) {
      lookup.gone(r.target);
      return send(res, errorAnswer(notFound.exposure(nameOf(req.url))));
    }
    send(res, errorAnswer(new ProtocolError(ErrorCodes.ConnectionClosed, `the sandbox service did not answer: ${e.message}; is it listening on its port?`)));
  });
  req.pipe(upstream);
}

export function proxyUpgrade(lookup: ExposureLookup, req: http.IncomingMessage, socket: net.Socket, head: Buffer, access: Access, track: TrackConnection): void {
  const r = route(lookup, req.url ?? '/', access);
  if (r instanceof ProtocolError) return refuseUpgrade(socket, r);
  let connected = false;
  const upstream = net.connect(r.target.socketPath, () => {
    connected = true;
    const lines = [`${req.method} ${r.path} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i];
      if (k.toLowerCase() === 'authorization') continue;
      lines.push(`${k}: ${k.toLowerCase() === 'host' ? 'localhost' : req.rawHeaders[i + 1]}`);
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
  const untrack = track(access, end);
  socket.on('close', untrack);
  upstream.on('error', (e: NodeJS.ErrnoException) => {
    if (!connected && socketGone(e)) {
      lookup.gone(r.target);
      untrack();
      return refuseUpgrade(socket, notFound.exposure(nameOf(req.url)));
    }
    end();
  });
  socket.on('error', end);
}

function nameOf(url: string | undefined): string {
  return (url ?? '').slice(EXPOSE_PREFIX.length).split(/[/?]/)[0];
}
