// A private stack with its Direct HTTP API on a known port, and a small fetch helper for raw requests.
import * as fs from 'node:fs';
import { freePort, useStack, type Stack } from './stack';
import type { RpcClient } from '../../agent/src/protocol';

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body (undefined when it is not JSON). */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RequestOptions {
  /** JSON-encoded unless a string or Buffer. */
  body?: unknown;
  /** Default: the admin token; null sends no Authorization header. */
  key?: string | null;
  headers?: Record<string, string>;
}

export interface HttpStack {
  stack(): Stack;
  client(): RpcClient;
  /** http://127.0.0.1:PORT */
  url(): string;
  adminToken(): string;
  request(verb: string, path: string, options?: RequestOptions): Promise<HttpAnswer>;
  beforeStop(fn: () => Promise<unknown>): void;
}

/** `webSocket`: also the JSON-RPC WebSocket listener (stack().config.wsPort after start). */
export function useHttpStack(env: NodeJS.ProcessEnv = {}, options: { webSocket?: boolean } = {}): HttpStack {
  let port = 0;
  const extra: NodeJS.ProcessEnv = { ...env };
  // Registered before useStack's hook, so the port is in the env when the agent starts.
  before(async () => {
    port = await freePort();
    extra.FORKSPACE_HTTP_PORT = String(port);
  });
  const s = useStack({ env: extra, ...(options.webSocket ? { wsPort: freePort } : {}) });
  const url = () => `http://127.0.0.1:${port}`;
  const adminToken = () => fs.readFileSync(s.stack().config.tokenFile, 'utf8').trim();
  return {
    stack: s.stack,
    client: s.client,
    beforeStop: s.beforeStop,
    url,
    adminToken,
    async request(verb, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const key = options.key === undefined ? adminToken() : options.key;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let body: string | Buffer | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === 'string' || Buffer.isBuffer(options.body) ? options.body : JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const r = await fetch(url() + path, { method: verb, headers, body });
      const text = await r.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: r.status, headers: r.headers, text, json };
    },
  };
}
