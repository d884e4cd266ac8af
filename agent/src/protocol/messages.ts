// Message types are values: each carries its method name, direction and the zod schemas of its params
// and result, so a method string is written exactly once and handlers and callers are typed by it. A
// request of the public API may also carry its REST route (`http`), so the Direct HTTP API, its OpenAPI
// document and the SDKs' route tables are all derived from this one definition.
import type { z } from 'zod';

export type Direction = 'clientToServer' | 'serverToClient';

export const HTTP_VERBS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpVerb = (typeof HTTP_VERBS)[number];

/** Where a method lives in the Direct HTTP API. `{name}` segments are params fields taken from the path;
 * GET and DELETE take the other params from the query string, the rest from a JSON body. */
export interface HttpRoute {
  readonly verb: HttpVerb;
  /** e.g. `/v1/sandboxes/{sandboxId}/pause` */
  readonly path: string;
  /** The names of the `{…}` segments, in order. */
  readonly pathParams: readonly string[];
  /** Only the agent's own token (the local admin key) may call it: key management, stopping the agent. */
  readonly admin: boolean;
}

/** `P` is what a handler receives (defaults applied), `PIn` what a caller may send. */
export interface RequestType<P, R, PIn = P> {
  readonly kind: 'request';
  readonly method: string;
  readonly direction: Direction;
  readonly params: z.ZodType<P, PIn>;
  readonly result: z.ZodType<R>;
  /** One line for docs and the generated API description. */
  readonly description: string;
  /** Its REST route; absent for methods that only make sense on a connection (initialize, watches). */
  readonly http?: HttpRoute;
}

export interface NotificationType<P> {
  readonly kind: 'notification';
  readonly method: string;
  readonly direction: Direction;
  readonly params: z.ZodType<P>;
  readonly description: string;
}

/** A WebSocket stream of the Direct HTTP API: frames the server sends, resumable by sequence number. */
export interface StreamType<F> {
  readonly kind: 'stream';
  readonly name: string;
  readonly http: HttpRoute;
  /** Query parameters it takes (e.g. `after`), as a schema of strings. */
  readonly query: z.ZodType<unknown>;
  readonly frame: z.ZodType<F>;
  readonly description: string;
}

export interface RequestSpec {
  direction?: Direction;
  /** `'VERB /v1/path/{param}'` */
  http?: string;
  admin?: boolean;
}

export function request<P, R, PIn = P>(
  method: string,
  params: z.ZodType<P, PIn>,
  result: z.ZodType<R>,
  description: string,
  spec: RequestSpec | Direction = {},
): RequestType<P, R, PIn> {
  const s: RequestSpec = typeof spec === 'string' ? { direction: spec } : spec;
  const http = s.http === undefined ? undefined : parseRoute(s.http, s.admin ?? false, method);
  return { kind: 'request', method, direction: s.direction ?? 'clientToServer', params, result, description, ...(http ? { http } : {}) };
}

export function notification<P>(
  method: string,
  params: z.ZodType<P>,
  description: string,
  direction: Direction = 'serverToClient',
): NotificationType<P> {
  return { kind: 'notification', method, direction, params, description };
}

export function stream<F>(name: string, route: string, query: z.ZodType<unknown>, frame: z.ZodType<F>, description: string): StreamType<F> {
  return { kind: 'stream', name, http: parseRoute(route, false, name), query, frame, description };
}

/** `'POST /v1/sandboxes/{sandboxId}/pause'` → its parts; a malformed route is a bug, caught at load. */
export function parseRoute(route: string, admin: boolean, owner: string): HttpRoute {
  const m = /^([A-Z]+) (\/v1(?:\/(?:[a-z0-9-]+|\{[A-Za-z]+\}))+)$/.exec(route);
  if (!m || !(HTTP_VERBS as readonly string[]).includes(m[1])) {
    throw new Error(`${owner}: route "${route}" is not "VERB /v1/segment/{param}" with VERB one of ${HTTP_VERBS.join(', ')}`);
  }
  const pathParams = [...m[2].matchAll(/\{([A-Za-z]+)\}/g)].map((x) => x[1]);
  return { verb: m[1] as HttpVerb, path: m[2], pathParams, admin };
}

/** What a caller sends. */
export type ParamsOf<T> = T extends RequestType<unknown, unknown, infer PIn> ? PIn : T extends NotificationType<infer P> ? P : never;
export type ResultOf<T> = T extends RequestType<unknown, infer R, unknown> ? R : never;
