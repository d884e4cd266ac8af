// The Direct HTTP API's request side: each route of the route table (derived from the method table) is
// served by calling its method through the same RpcServer as JSON-RPC, so validation, label resolution,
// errors and handlers are one implementation. POSTs (and PUT/PATCH) with an Idempotency-Key replay the
// stored answer. A request is not cancelled when its client goes away (a retry with the same key then
// gets the answer of the first); executions are cancelled with POST /v1/executions/{execId}/cancel.
import type * as http from 'node:http';
import { ErrorCodes, ProtocolError, httpStatusOf } from '../protocol';
import { buildOpenApi } from '../protocol/openapi';
import { matchRoute, ROUTES, type RouteMatch } from '../protocol/routes';
import type { RequestType } from '../protocol';
import type { Logger } from '../log';
import { fingerprintOf, type IdempotencyStore } from '../core/idempotency';
import { accessOf, type Principal } from './auth';
import { errorAnswer, errorBody, send, type Answer } from './httpAnswers';
import { idempotencyKeyOf, paramsFrom, readBody } from './restParams';
import type { RpcServer } from './rpcServer';

export const OPENAPI_PATH = '/v1/openapi.json';

export class RestApi {
  private openapi: string | undefined;

  constructor(
    private readonly rpc: RpcServer,
    private readonly idempotency: IdempotencyStore,
    private readonly maxBodyBytes: number,
    private readonly version: string,
    private readonly log: Logger,
  ) {}

  async handle(req: http.IncomingMessage, res: http.ServerResponse, principal: Principal, url: URL): Promise<void> {
    try {
      send(res, await this.answer(req, principal, url));
    } catch (e) {
      if (e instanceof ProtocolError) {
        if (e.code === ErrorCodes.PayloadTooLarge) res.setHeader('connection', 'close'); // the rest of the body is not read
        send(res, errorAnswer(e));
        return;
      }
      this.log(`${req.method} ${url.pathname} failed: ${(e as Error)?.stack ?? String(e)}`);
      send(res, { status: 500, body: errorBody(ErrorCodes.InternalError, `the request failed unexpectedly: ${(e as Error)?.message}; the agent log has details`) });
    }
  }

  private async answer(req: http.IncomingMessage, principal: Principal, url: URL): Promise<Answer> {
    const verb = req.method ?? 'GET';
    if (url.pathname === OPENAPI_PATH && verb === 'GET') {
      this.openapi ??= JSON.stringify(buildOpenApi(ROUTES, { version: this.version }));
      return { status: 200, body: this.openapi };
    }
    const match = matchRoute(ROUTES, verb, url.pathname);
    if (!match) {
      throw new ProtocolError(ErrorCodes.MethodNotFound, `no route ${verb} ${url.pathname}; GET ${OPENAPI_PATH} lists every route`);
    }
    if ('allow' in match) {
      return errorAnswer(new ProtocolError(ErrorCodes.VerbNotAllowed, `${url.pathname} takes ${match.allow.join(', ')}, not ${verb}`, { allow: match.allow }), {
        allow: match.allow.join(', '),
      });
    }
    const target = match.route.target;
    if (target.kind === 'stream') {
      throw new ProtocolError(ErrorCodes.InvalidRequest, `${url.pathname} is a WebSocket stream: connect with a WebSocket client (Upgrade: websocket), with ?after=N to resume`);
    }
    if (match.route.admin && principal.kind !== 'admin') {
      throw new ProtocolError(ErrorCodes.Forbidden, `${target.method} is for the agent's admin only: use the agent's own token (the agent.token file), not an API key`);
    }
    const body = verb === 'GET' && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined ? Buffer.alloc(0) : await readBody(req, this.maxBodyBytes);
    const key = verb === 'POST' || verb === 'PUT' || verb === 'PATCH' ? idempotencyKeyOf(req) : undefined;
    const call = () => this.call(req, url, match, target, body, principal);
    if (key === undefined) return call();
    const { answer, replayed } = await this.idempotency.run(principal.id, key, fingerprintOf(verb, url.pathname, url.search, body), call);
    return replayed ? { ...answer, headers: { ...answer.headers, 'idempotency-replayed': 'true' } } : answer;
  }

  private async call(req: http.IncomingMessage, url: URL, match: RouteMatch, target: RequestType<unknown, unknown, unknown>, body: Buffer, principal: Principal): Promise<Answer> {
    let params: Record<string, unknown>;
    try {
      params = paramsFrom(req, url, match, target.params, body);
    } catch (e) {
      if (e instanceof ProtocolError) return errorAnswer(e);
      throw e;
    }
    const response = await this.rpc.call(target.method, params, accessOf(principal));
    if (response.error) {
      return { status: httpStatusOf(response.error.code), body: errorBody(response.error.code, response.error.message, response.error.data) };
    }
    return { status: 200, body: JSON.stringify(response.result) };
  }
}
