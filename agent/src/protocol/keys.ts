// API keys of the Direct HTTP API: made, listed and revoked by the admin (the agent's own token, or the
// unix socket); stored hashed, so a key is shown once, when it is made.
import { z } from 'zod';
import { Ref, Text } from './common';
import { request } from './messages';

export const ApiKey = z.object({
  id: z.string(),
  name: z.string().nullable(),
  /** The first characters of the key, to recognise it by. */
  prefix: z.string(),
  createdAtMs: z.number(),
  lastUsedAtMs: z.number().nullable(),
  /** Set once revoked: the key no longer authenticates, from that moment. */
  revokedAtMs: z.number().nullable(),
});
export type ApiKey = z.infer<typeof ApiKey>;

export const KeyCreate = request(
  'key/create',
  z.strictObject({ name: Text.min(1).max(100).optional() }),
  z.object({ key: ApiKey, secret: z.string() }),
  'Creates an API key; `secret` is the key itself, returned only this once.',
  { http: 'POST /v1/keys', admin: true },
);

export const KeyList = request('key/list', z.strictObject({}), z.object({ keys: z.array(ApiKey) }), 'Lists API keys (revoked ones included), never their secrets.', {
  http: 'GET /v1/keys',
  admin: true,
});

/** The WebSocket close code and reason of every socket the agent closes because its API key was revoked
 * (JSON-RPC, execution and terminal streams); the key no longer authenticates anything. */
export const KEY_REVOKED_CLOSE = { code: 4401, reason: 'the API key of this connection was revoked' } as const;

export const KeyRevoke = request(
  'key/revoke',
  z.strictObject({ keyId: Ref }),
  z.object({ key: ApiKey }),
  'Revokes an API key: requests carrying it are refused from now on, and every WebSocket it opened is closed at once.',
  { http: 'DELETE /v1/keys/{keyId}', admin: true },
);
