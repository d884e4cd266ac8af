// The Direct HTTP API's route table, derived from the method table: every request with an `http` route
// and every WebSocket stream. Nothing here lists methods by hand. Matching prefers literal segments over
// `{param}` ones (so POST /v1/executions/run is exec/run, not an execution called "run").
import { z } from 'zod';
import { AgentRequests, AgentStreams } from './methods';
import type { HttpRoute, HttpVerb, RequestType, StreamType } from './messages';

export type RouteTarget = RequestType<unknown, unknown, unknown> | StreamType<unknown>;

export interface Route extends HttpRoute {
  readonly target: RouteTarget;
  /** Per path segment: the literal, or null for a `{param}`. */
  readonly segments: readonly (string | null)[];
}

/** How a field of the params arrives as a query-string value. */
export type QueryFieldType = 'string' | 'number' | 'integer' | 'boolean' | 'json';

export interface RouteMatch {
  route: Route;
  /** Decoded `{param}` values. */
  pathParams: Record<string, string>;
}

export function buildRoutes(requests: readonly RequestType<unknown, unknown, unknown>[], streams: readonly StreamType<unknown>[]): Route[] {
  const routes: Route[] = [];
  const targets: RouteTarget[] = [...requests.filter((r) => r.http), ...streams];
  for (const target of targets) {
    const http = target.http as HttpRoute;
    const segments = http.path.split('/').slice(1).map((s) => (s.startsWith('{') ? null : s));
    const shape = fieldsOf(target.kind === 'request' ? target.params : target.query);
    const name = target.kind === 'request' ? target.method : target.name;
    for (const p of http.pathParams) {
      if (target.kind === 'request' && !shape.includes(p)) throw new Error(`${name}: path parameter {${p}} is not a field of its params`);
    }
    const clash = routes.find((r) => r.verb === http.verb && r.segments.join('/') === segments.join('/'));
    if (clash) throw new Error(`${name} and ${clash.target.kind === 'request' ? clash.target.method : clash.target.name} share the route ${http.verb} ${http.path}`);
    routes.push({ ...http, target, segments });
  }
  return routes;
}

export const ROUTES: readonly Route[] = buildRoutes(AgentRequests as unknown as RequestType<unknown, unknown, unknown>[], AgentStreams as unknown as StreamType<unknown>[]);

/** The route for a verb and path; `allow` when the path exists under other verbs only. */
export function matchRoute(routes: readonly Route[], verb: string, pathname: string): RouteMatch | { allow: HttpVerb[] } | undefined {
  const parts = pathname.split('/').slice(1);
  const matches: { route: Route; values: string[]; score: number }[] = [];
  for (const route of routes) {
    if (route.segments.length !== parts.length) continue;
    const values: string[] = [];
    let score = 0;
    let ok = true;
    for (let i = 0; i < parts.length && ok; i++) {
      const seg = route.segments[i];
      if (seg === null) {
        if (parts[i] === '') ok = false;
        else values.push(parts[i]);
      } else if (seg === parts[i]) score += 1 << (parts.length - i);
      else ok = false;
    }
    if (ok) matches.push({ route, values, score });
  }
  if (matches.length === 0) return undefined;
  const best = matches.filter((m) => m.route.verb === verb).sort((a, b) => b.score - a.score)[0];
  if (!best) return { allow: [...new Set(matches.map((m) => m.route.verb))] };
  const pathParams: Record<string, string> = {};
  best.route.pathParams.forEach((p, i) => (pathParams[p] = decodeSegment(best.values[i])));
  return { route: best.route, pathParams };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // left as is: the params' validation names it
  }
}

/** The field names of an object schema (a refined object keeps its shape). */
export function fieldsOf(schema: z.ZodType<unknown, unknown>): string[] {
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

const queryTypeCache = new WeakMap<object, Record<string, QueryFieldType>>();

/** What each field of a params schema is, for reading it from a query string: from its JSON Schema, the
 * same one the OpenAPI document shows. */
export function queryFieldTypes(schema: z.ZodType<unknown, unknown>): Record<string, QueryFieldType> {
  const cached = queryTypeCache.get(schema);
  if (cached) return cached;
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonSchemaLike> };
  const types: Record<string, QueryFieldType> = {};
  for (const [k, v] of Object.entries(json.properties ?? {})) types[k] = scalarType(v);
  queryTypeCache.set(schema, types);
  return types;
}

interface JsonSchemaLike {
  type?: string | string[];
  anyOf?: JsonSchemaLike[];
  enum?: unknown[];
}

function scalarType(s: JsonSchemaLike): QueryFieldType {
  const t = Array.isArray(s.type) ? s.type.filter((x) => x !== 'null') : s.type ? [s.type] : [];
  if (t.length === 1 && ['string', 'number', 'integer', 'boolean'].includes(t[0])) return t[0] as QueryFieldType;
  if (s.anyOf) {
    const inner = s.anyOf.filter((x) => x.type !== 'null');
    if (inner.length === 1) return scalarType(inner[0]);
  }
  return 'json';
}
