// Reaching services inside sandboxes: host ports forwarded into a sandbox (plain TCP listeners, like
// `docker -p`), and named HTTP exposures on the agent (HTTP and WebSocket, for the key that made them;
// no TCP listener stands behind one). Both end with their sandbox; both belong to the key of their sandbox.
import { z } from 'zod';
import { Ref } from './common';
import { request } from './messages';

export const PortForward = z.object({
  forwardId: z.string(),
  sandboxId: z.string(),
  port: z.number(),
  hostAddress: z.string(),
  hostPort: z.number(),
  openConnections: z.number(),
});
export type PortForward = z.infer<typeof PortForward>;

const Port = z.number().int().min(1).max(65535);

export const PortForwardCreate = request(
  'port/forward',
  z.strictObject({
    sandboxId: Ref,
    port: Port,
    /** Default: any free port. */
    hostPort: z.number().int().min(0).max(65535).optional(),
    /** Default 127.0.0.1. Anything else makes the sandbox port reachable from other machines. */
    hostAddress: Ref.optional(),
  }),
  PortForward,
  'Forwards a host port (127.0.0.1) to a port inside a sandbox.',
  { http: 'POST /v1/sandboxes/{sandboxId}/ports' },
);

export const PortUnforward = request('port/unforward', z.strictObject({ forwardId: Ref }), z.object({ removed: z.boolean() }), 'Removes a port forward.', {
  http: 'DELETE /v1/ports/{forwardId}',
});

export const PortList = request(
  'port/list',
  z.strictObject({ sandboxId: Ref.optional() }),
  z.object({ forwards: z.array(PortForward) }),
  'Lists port forwards (an API key: those of its own sandboxes).',
  { http: 'GET /v1/ports' },
);

export const Exposure = z.object({
  name: z.string(),
  sandboxId: z.string(),
  port: z.number(),
  /** Requests need `Authorization: Bearer <key>`: the API key that exposed it, or the agent's token. */
  url: z.string(),
});

export const HttpExpose = request(
  'http/expose',
  z.strictObject({
    sandboxId: Ref,
    port: Port,
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'use 1-63 of a-z 0-9 -, starting with a letter or digit'),
  }),
  Exposure,
  'Exposes an HTTP service of a sandbox at a named URL on the agent (WebSocket included) for the calling key only; names are per key; it ends with the sandbox.',
  { http: 'POST /v1/sandboxes/{sandboxId}/exposures' },
);

export const HttpHide = request('http/hide', z.strictObject({ name: Ref }), z.object({ removed: z.boolean() }), 'Removes an exposure.', {
  http: 'DELETE /v1/exposures/{name}',
});
export const HttpList = request('http/list', z.strictObject({}), z.object({ exposures: z.array(Exposure) }), 'Lists exposures (an API key: its own).', { http: 'GET /v1/exposures' });
