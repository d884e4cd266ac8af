// Where clients reach the agent: a unix socket (0600, newline-delimited JSON-RPC) for local tools, and
// a WebSocket on loopback for editors in other hosts, which must present the agent's bearer token.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { WebSocketServer } from 'ws';
import { DEFAULT_MAX_MESSAGE_BYTES, KEY_REVOKED_CLOSE, NdjsonTransport, ProtocolError, WebSocketTransport } from '../protocol';
import type { Logger } from '../log';
import type { Access } from '../core/access';
import { accessOf, type Authenticator } from './auth';
import type { KeySessions } from './keySessions';
import type { RpcServer } from './rpcServer';
import { makePrivateDir } from '../privateDir';

export async function listenUnix(socketPath: string, rpc: RpcServer, log: Logger): Promise<net.Server> {
  makePrivateDir(path.dirname(socketPath));
  if (fs.existsSync(socketPath)) {
    const live = await new Promise<boolean>((resolve) => {
      const probe = net.connect(socketPath);
      probe.once('connect', () => (probe.destroy(), resolve(true)));
      probe.once('error', () => resolve(false));
    });
    if (live) throw new Error(`another agent is already listening on ${socketPath}; stop it with \`forkspace agent stop\``);
    fs.rmSync(socketPath, { force: true });
  }
  const server = net.createServer((socket) => rpc.attach(new NdjsonTransport(socket, DEFAULT_MAX_MESSAGE_BYTES)));
  // Created owner-only from the start, so no window exists where another user could connect.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(socketPath, 0o600);
  log(`listening on ${socketPath}`);
  return server;
}

/** Reads the bearer token, creating it (0600) on first start. */
export function loadToken(tokenFile: string): string {
  try {
    const existing = fs.readFileSync(tokenFile, 'utf8').trim();
    if (existing.length >= 32) return existing;
  } catch {
    // first start
  }
  makePrivateDir(path.dirname(tokenFile));
  const token = crypto.randomBytes(32).toString('base64url');
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  return token;
}

/** JSON-RPC over WebSocket, for the agent's token (all methods, everything) or an API key (all but the
 * admin methods, on what it made; as on the Direct HTTP API): the same keys, checked by the same
 * Authenticator. Revoking a key closes its connections at once. */
export async function listenWebSocket(host: string, port: number, auth: Authenticator, rpc: RpcServer, sessions: KeySessions, log: Logger): Promise<WebSocketServer> {
  const accesses = new WeakMap<http.IncomingMessage, Access>();
  const wss = new WebSocketServer({
    host,
    port,
    maxPayload: 4 * DEFAULT_MAX_MESSAGE_BYTES,
    verifyClient: (info, done) => {
      const principal = auth.authenticate(info.req);
      if (principal instanceof ProtocolError) return done(false, 401, principal.message);
      accesses.set(info.req, accessOf(principal));
      done(true);
    },
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', () => resolve());
    wss.once('error', reject);
  });
  wss.on('connection', (socket, req) => {
    const access = accesses.get(req);
    if (!access) return socket.terminate();
    const transport = new WebSocketTransport(socket, DEFAULT_MAX_MESSAGE_BYTES);
    const peer = rpc.attach(transport, access);
    const untrack = sessions.track(access, () => {
      peer.revoked = true;
      transport.close(KEY_REVOKED_CLOSE.code, KEY_REVOKED_CLOSE.reason);
    });
    transport.onClose(untrack);
  });
  const addr = wss.address();
  log(`WebSocket JSON-RPC on ${typeof addr === 'string' || addr === null ? String(addr) : `${addr.address}:${addr.port}`}`);
  return wss;
}
