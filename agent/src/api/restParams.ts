// Turning an HTTP request into a method's params: `{param}` path segments, then the query string (GET,
// DELETE; each value read as its field's JSON Schema type says) or the JSON body (POST, PUT, PATCH).
// Everything wrong with the request itself is a ProtocolError here; the params' own schema (unknown
// fields, wrong types, ranges) is checked by the method, as on JSON-RPC.
import type * as http from 'node:http';
import { ErrorCodes, ProtocolError } from '../protocol';
import { queryFieldTypes, type QueryFieldType, type RouteMatch } from '../protocol/routes';
import type { z } from 'zod';

/** Reads the body up to `maxBytes`; larger ones are refused (PayloadTooLarge) without reading them whole. */
export function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge(declared, maxBytes));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        reject(tooLarge(size, maxBytes));
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => failed || resolve(Buffer.concat(parts)));
    req.on('error', (e) => failed || ((failed = true), reject(new ProtocolError(ErrorCodes.InvalidRequest, `the request body could not be read: ${e.message}`))));
  });
}

function tooLarge(size: number, max: number): ProtocolError {
  return new ProtocolError(
    ErrorCodes.PayloadTooLarge,
    `the request body (${size}${size > max ? '' : '+'} bytes) exceeds the ${max}-byte limit; send files in chunks of at most 8 MiB (files/write with offset)`,
    { limit: max },
  );
}

export function paramsFrom(req: http.IncomingMessage, url: URL, match: RouteMatch, schema: z.ZodType<unknown, unknown>, body: Buffer): Record<string, unknown> {
  const { route, pathParams } = match;
  const inQuery = route.verb === 'GET' || route.verb === 'DELETE';
  let params: Record<string, unknown>;
  if (inQuery) {
    if (body.length > 0) {
      throw new ProtocolError(ErrorCodes.InvalidRequest, `${route.verb} takes its parameters in the query string, not a body; remove the body`);
    }
    params = queryParams(url, queryFieldTypes(schema));
  } else {
    if ([...url.searchParams.keys()].length > 0) {
      throw new ProtocolError(ErrorCodes.InvalidRequest, `${route.verb} takes its parameters in a JSON body, not the query string; move ${[...url.searchParams.keys()].join(', ')} into the body`);
    }
    params = jsonBody(req, body);
  }
  for (const [k, v] of Object.entries(pathParams)) {
    if (k in params) throw new ProtocolError(ErrorCodes.InvalidParams, `\`${k}\` comes from the path (${route.path}); remove it from the ${inQuery ? 'query string' : 'body'}`, { issues: [{ path: [k], message: 'given twice' }] });
    params[k] = v;
  }
  return params;
}

function jsonBody(req: http.IncomingMessage, body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    throw new ProtocolError(ErrorCodes.UnsupportedMediaType, `the body must be JSON with \`Content-Type: application/json\` (got ${type ? `"${type}"` : 'none'})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new ProtocolError(ErrorCodes.ParseError, `the body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(ErrorCodes.InvalidRequest, `the body must be a JSON object of the method's parameters (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value})`);
  }
  return value as Record<string, unknown>;
}

function queryParams(url: URL, types: Record<string, QueryFieldType>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    if (values.length > 1) throw new ProtocolError(ErrorCodes.InvalidParams, `query parameter \`${key}\` is given ${values.length} times; give it once`, { issues: [{ path: [key], message: 'repeated' }] });
    out[key] = typed(values[0], types[key] ?? 'string');
  }
  return out;
}

/** A query value as its field's type; a value that is not of it stays a string, so the schema names it. */
function typed(value: string, type: QueryFieldType): unknown {
  switch (type) {
    case 'number':
    case 'integer':
      return /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value) ? Number(value) : value;
    case 'boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    case 'json':
      try {
        return JSON.parse(value);
      } catch {
        return value;
      }
    default:
      return value;
  }
}

/** `Idempotency-Key`: 1-255 visible ASCII characters. */
export function idempotencyKeyOf(req: http.IncomingMessage): string | undefined {
  const v = req.headers['idempotency-key'];
  if (v === undefined) return undefined;
  const key = Array.isArray(v) ? v[0] : v;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new ProtocolError(ErrorCodes.InvalidRequest, 'Idempotency-Key must be 1-255 visible ASCII characters (a UUID is a good choice)');
  }
  return key;
}
