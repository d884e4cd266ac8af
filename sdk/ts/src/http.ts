// The Direct HTTP API on the wire: one typed call per method of the route table (ROUTES, generated from
// the agent's protocol). Path parameters fill the path; GET and DELETE send the other params as a query
// string, the rest as a JSON body. Every POST/PUT/PATCH carries an Idempotency-Key (made here unless the
// caller gives one), so a retry after a 503 or a reset connection cannot run the call twice.
import { ROUTES, type MethodName, type Methods, type Route } from './api.gen';
import { CancelledError, ConnectionError, errorFromResponse, ForkspaceError, TimeoutError } from './errors';
import { backoffDelay, DEFAULT_RETRY, shouldRetry, sleep, type RetryOptions } from './retry';

export interface ConnectionOptions {
  /** The API key (`forkspace keys create`), sent as `Authorization: Bearer <key>`. Default: $FORKSPACE_API_KEY. */
  apiKey?: string;
  /** The agent's Direct HTTP API. Default: $FORKSPACE_URL or http://127.0.0.1:7812. */
  platformUrl?: string;
  /** Where executions run and stream (exec/* and their WebSocket streams). Default: platformUrl. */
  executorUrl?: string;
  /** Per HTTP request. Default 120 000 ms (long polls wait up to 60 s inside it). */
  requestTimeoutMs?: number;
  retry?: RetryOptions;
}

export interface CallOptions {
  signal?: AbortSignal;
  requestTimeoutMs?: number;
  /** Sent with POST/PUT/PATCH; default: a fresh UUID per call (reused by its retries). `false` sends
   * none, and then the call is never retried. */
  idempotencyKey?: string | false;
}

const DEFAULT_URL = 'http://127.0.0.1:7812';
const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/** fetch's network failures (undici): the request may not have reached the agent, or its answer was cut. */
const TRANSIENT_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export class HttpTransport {
  readonly apiKey: string;
  readonly platformUrl: string;
  readonly executorUrl: string;
  private readonly requestTimeoutMs: number;
  private readonly retry: Required<RetryOptions>;

  constructor(options: ConnectionOptions = {}) {
    const env = typeof process === 'undefined' ? {} : process.env;
    const apiKey = options.apiKey ?? env.FORKSPACE_API_KEY;
    if (!apiKey) throw new ForkspaceError('no API key: pass { apiKey } or set FORKSPACE_API_KEY (make one with `forkspace keys create`)');
    this.apiKey = apiKey;
    this.platformUrl = trimSlash(options.platformUrl ?? env.FORKSPACE_URL ?? DEFAULT_URL);
    this.executorUrl = trimSlash(options.executorUrl ?? this.platformUrl);
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /** The base URL of a method: executions go to the executor. */
  baseFor(method: string): string {
    return method.startsWith('exec/') ? this.executorUrl : this.platformUrl;
  }

  async call<M extends MethodName>(method: M, params: Methods[M]['params'], options: CallOptions = {}): Promise<Methods[M]['result']> {
    const route: Route = ROUTES[method];
    const { url, body } = encode(this.baseFor(method), route, params as Record<string, unknown>);
    const writes = route.verb === 'POST' || route.verb === 'PUT' || route.verb === 'PATCH';
    const key = writes && options.idempotencyKey !== false ? (options.idempotencyKey ?? crypto.randomUUID()) : undefined;
    // PUT and DELETE are idempotent by their meaning; POST and PATCH only with a key.
    const safeToRepeat = route.verb === 'GET' || route.verb === 'PUT' || route.verb === 'DELETE' || key !== undefined;
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key) headers['idempotency-key'] = key;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.once(method, route.verb, url, headers, body, options)) as Methods[M]['result'];
      } catch (e) {
        if (!shouldRetry(e, attempt, this.retry, safeToRepeat)) throw e;
        const retryAfter = e instanceof ForkspaceError ? (e.data as { retryAfterS?: number } | undefined)?.retryAfterS : undefined;
        await sleep(backoffDelay(attempt, this.retry, retryAfter), options.signal);
      }
    }
  }

  private async once(method: string, verb: string, url: string, headers: Record<string, string>, body: string | undefined, options: CallOptions): Promise<unknown> {
    const timeoutMs = options.requestTimeoutMs ?? this.requestTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: verb, headers, body, signal });
      text = await res.text();
    } catch (e) {
      throw networkError(e, method, url, options.signal, timeout, timeoutMs);
    }
    if (res.ok) return text ? JSON.parse(text) : {};
    const err = errorFromResponse(res.status, text, method);
    const retryAfter = Number(res.headers.get('retry-after'));
    if (Number.isFinite(retryAfter) && retryAfter > 0) Object.assign(err, { data: { ...(err.data as object), retryAfterS: retryAfter } });
    throw err;
  }
}

/** The URL and JSON body of a call, by its route. */
export function encode(base: string, route: Route, params: Record<string, unknown>): { url: string; body: string | undefined } {
  const rest: Record<string, unknown> = { ...params };
  let path = route.path;
  for (const p of route.pathParams) {
    const v = rest[p];
    if (v === undefined || v === null || v === '') throw new ForkspaceError(`${route.verb} ${route.path} needs \`${p}\``);
    path = path.replace(`{${p}}`, encodeURIComponent(String(v)));
    delete rest[p];
  }
  if (route.verb === 'GET' || route.verb === 'DELETE') {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(rest)) {
      if (v === undefined) continue;
      q.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    const qs = q.toString();
    return { url: base + path + (qs ? `?${qs}` : ''), body: undefined };
  }
  return { url: base + path, body: JSON.stringify(rest) };
}

function networkError(e: unknown, method: string, url: string, user: AbortSignal | undefined, timeout: AbortSignal, timeoutMs: number): ForkspaceError {
  if (user?.aborted) return new CancelledError(`${method} was cancelled`, { method, cause: e });
  if (timeout.aborted) return new TimeoutError(`${method} got no answer within ${timeoutMs} ms; pass requestTimeoutMs for longer calls`, { method, cause: e });
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code ?? (e as { code?: string })?.code;
  const what = cause?.message ?? (e as Error)?.message ?? String(e);
  const err = new ConnectionError(`${method}: could not reach the agent at ${new URL(url).origin} (${code ?? what}); is it running (forkspace agent status)?`, { method, cause: e, data: { networkCode: code } });
  if (code && !TRANSIENT_NETWORK.has(code)) Object.defineProperty(err, 'transient', { value: false });
  return err;
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}
