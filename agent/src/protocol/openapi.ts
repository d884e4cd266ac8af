// The OpenAPI 3.1 document of the Direct HTTP API, generated from the route table (and so from the method
// table): one operation per route, its params split into path, query and body, its result as the 200
// answer, errors as `{error:{code,name,message,data}}` with the status from HTTP_STATUS. Shared shapes
// (Sandbox, Snapshot, ExecResult, ...) become named components.
import { z } from 'zod';
import { ErrorCodes, HTTP_STATUS } from './errors';
import { ExecResult, Execution, ExecStreamFrame, FileInput, OutputChunk } from './exec';
import { EnvironmentInfo } from './environments';
import { ApiKey } from './keys';
import { Limits, Policy } from './common';
import { Sandbox } from './sandboxes';
import { Restored, Snapshot, SnapshotTimings } from './snapshots';
import { MergeResult, TreeNode } from './branches';
import { FileEntry } from './files';
import { Exposure, PortForward } from './ports';
import { PoolInfo, SnapshotPoolInfo } from './pools';
import { SshTarget } from './ssh';
import { TerminalClientFrame, TerminalStreamFrame } from './terminals';
import { PROTOCOL_VERSION } from './lifecycle';
import { ROUTES, type Route } from './routes';

type Json = Record<string, unknown>;

/** Named components: what callers send, and what they get back. */
const INPUT_SHAPES: Record<string, z.ZodType<unknown, unknown>> = { Limits, FileInput, TerminalClientFrame };
const OUTPUT_SHAPES: Record<string, z.ZodType<unknown, unknown>> = {
  Sandbox,
  Policy,
  Snapshot,
  SnapshotTimings,
  Restored,
  ExecResult,
  Execution,
  OutputChunk,
  TreeNode,
  MergeResult,
  EnvironmentInfo,
  FileEntry,
  PortForward,
  Exposure,
  PoolInfo,
  SnapshotPoolInfo,
  SshTarget,
  ApiKey,
  ExecStreamFrame,
  TerminalStreamFrame,
};

export function pascal(name: string): string {
  return name
    .split(/[/$_-]/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

const REF = (id: string) => `#/components/schemas/${id}`;

/** Every route's name (method or stream) as the operationId. */
export function operationName(route: Route): string {
  return route.target.kind === 'request' ? route.target.method : route.target.name;
}

export function buildOpenApi(routes: readonly Route[] = ROUTES, info: { version: string; serverUrl?: string } = { version: PROTOCOL_VERSION }): Json {
  // One registry per direction, so defaults show as optional in what is sent and as present in answers.
  const input = z.registry<{ id: string }>();
  const output = z.registry<{ id: string }>();
  const idOf = new Map<unknown, string>();
  const add = (reg: typeof input, schema: z.ZodType<unknown, unknown>, id: string): string => {
    const known = idOf.get(schema);
    if (known) return known;
    reg.add(schema, { id });
    idOf.set(schema, id);
    return id;
  };
  for (const [id, s] of Object.entries(INPUT_SHAPES)) add(input, s, id);
  for (const [id, s] of Object.entries(OUTPUT_SHAPES)) add(output, s, id);
  const ops = routes.map((route) => {
    const name = pascal(operationName(route));
    const t = route.target;
    if (t.kind === 'request') return { route, params: add(input, t.params, `${name}Params`), result: add(output, t.result, `${name}Result`) };
    return { route, params: add(input, t.query, `${name}Query`), result: add(output, t.frame, `${name}Frame`) };
  });
  const uri = (id: string) => REF(id);
  const schemas: Record<string, Json> = {};
  for (const reg of [input, output]) {
    const { schemas: s } = z.toJSONSchema(reg, { io: reg === input ? 'input' : 'output', uri, unrepresentable: 'any' }) as { schemas: Record<string, Json> };
    for (const [id, schema] of Object.entries(s)) {
      const { $schema: _s, $id: _i, ...rest } = schema;
      schemas[id] = rest;
    }
  }
  schemas.Error = {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'name', 'message'],
        properties: {
          code: { type: 'integer', description: 'The protocol error code (agent/src/protocol/errors.ts).' },
          name: { type: 'string', enum: Object.keys(ErrorCodes) },
          message: { type: 'string', description: 'What failed and what to do.' },
          data: { description: 'Details some codes carry (issues, conflicts, candidates, known names).' },
        },
      },
    },
  };

  const paths: Record<string, Record<string, Json>> = {};
  for (const { route, params, result } of ops) {
    const paramSchema = schemas[params] as { properties?: Record<string, Json>; required?: string[] };
    const props = paramSchema.properties ?? {};
    const required = new Set(paramSchema.required ?? []);
    const parameters: Json[] = route.pathParams.map((p) => ({ name: p, in: 'path', required: true, schema: props[p] ?? { type: 'string' } }));
    const rest = Object.keys(props).filter((k) => !route.pathParams.includes(k));
    const inQuery = route.verb === 'GET' || route.verb === 'DELETE';
    let requestBody: Json | undefined;
    if (inQuery) {
      for (const k of rest) parameters.push({ name: k, in: 'query', required: required.has(k), schema: props[k] });
    } else {
      const body: Json = { ...paramSchema, properties: Object.fromEntries(rest.map((k) => [k, props[k]])) };
      const req = [...required].filter((k) => !route.pathParams.includes(k));
      if (req.length) body.required = req;
      else delete body.required;
      requestBody = { required: req.length > 0, content: { 'application/json': { schema: body } } };
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'Retry-safe: a repeated request with the same key gets the stored answer instead of running again (kept 24 h).',
        schema: { type: 'string', maxLength: 255 },
      });
    }
    const t = route.target;
    const isStream = t.kind === 'stream';
    const op: Json = {
      operationId: operationName(route),
      summary: t.description,
      tags: [route.path.split('/')[2]],
      ...(parameters.length ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses: {
        [isStream ? '101' : '200']: isStream
          ? { description: `WebSocket upgrade; the server sends JSON text frames: ${REF(result)}`, content: { 'application/json': { schema: { $ref: REF(result) } } } }
          : { description: 'OK', content: { 'application/json': { schema: { $ref: REF(result) } } } },
        default: { description: 'An error (the status comes from the error code)', content: { 'application/json': { schema: { $ref: REF('Error') } } } },
      },
      ...(route.admin ? { 'x-forkspace-admin': true, description: 'Admin only: needs the agent\'s own token, not an API key.' } : {}),
      ...(isStream ? { 'x-forkspace-websocket': true } : {}),
      /** The component of the method's whole params (path, query and body together), for generators. */
      'x-forkspace-params': REF(params),
    };
    (paths[route.path] ??= {})[route.verb.toLowerCase()] = op;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Forkspace Direct HTTP API',
      version: info.version,
      description:
        'Every route maps 1:1 onto a method of the agent\'s JSON-RPC protocol (operationId is its name). ' +
        'Authenticate with `Authorization: Bearer <key>` (`forkspace keys create`). Errors: ' +
        Object.entries(HTTP_STATUS)
          .map(([n, s]) => `${n} ${s}`)
          .join(', ') +
        '.',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    security: [{ bearer: [] }],
    paths,
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  };
}
