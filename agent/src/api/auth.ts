// Who a Direct HTTP API request is: the admin (the agent's own token, as in /run/forkspace/agent.token)
// or the holder of an API key that is not revoked. Anything else is refused with 401.
import * as crypto from 'node:crypto';
import type * as http from 'node:http';
import { ErrorCodes, ProtocolError, type ApiKey } from '../protocol';
import type { ApiKeyStore } from '../core/apiKeys';
import { ADMIN, keyAccess, type Access } from '../core/access';

export type Principal = { kind: 'admin'; id: 'admin' } | { kind: 'key'; id: string; key: ApiKey };

/** What a principal may see and act on (core/access.ts). */
export function accessOf(p: Principal): Access {
  return p.kind === 'admin' ? ADMIN : keyAccess(p.id);
}

export class Authenticator {
  private readonly admin: Buffer;

  constructor(
    adminToken: string,
    private readonly keys: ApiKeyStore,
  ) {
    this.admin = Buffer.from(adminToken);
  }

  /** The principal, or a ProtocolError (Unauthorized) saying what is wrong. */
  authenticate(req: http.IncomingMessage): Principal | ProtocolError {
    const header = req.headers.authorization;
    if (!header) return unauthorized('no Authorization header; send `Authorization: Bearer <key>` (make a key with `forkspace keys create`)');
    const m = /^Bearer +(\S+)\s*$/i.exec(header);
    if (!m) return unauthorized('the Authorization header is not `Bearer <key>`');
    const given = Buffer.from(m[1]);
    if (given.length === this.admin.length && crypto.timingSafeEqual(given, this.admin)) return { kind: 'admin', id: 'admin' };
    const key = this.keys.verify(m[1]);
    if (key) return { kind: 'key', id: key.id, key };
    return unauthorized('the key is unknown or revoked; `forkspace keys list` shows the keys, `forkspace keys create` makes one');
  }
}

function unauthorized(message: string): ProtocolError {
  return new ProtocolError(ErrorCodes.Unauthorized, message);
}
