// The SDK's retry rules against a fake HTTP server (a unit-test seam; the same rules meet the real agent
// in sdk.test.ts): 503 and reset connections are retried with backoff, under one Idempotency-Key for a
// POST; 400 and 500 are not; a POST sent without an idempotency key is never retried.
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { backoffDelay, ConnectionError, DEFAULT_RETRY, FaaSPlatformClient, InternalError, InvalidArgumentError, UnavailableError } from '../../sdk/ts/src';

type Reply = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Seen {
  method: string;
  url: string;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  body: string;
}

/** Answers request i with replies[i] (the last one repeats), recording what it saw. */
async function fakeAgent(replies: Reply[]): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', idempotencyKey: req.headers['idempotency-key'] as string | undefined, authorization: req.headers.authorization, body });
      replies[Math.min(seen.length - 1, replies.length - 1)](req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

const json = (status: number, body: unknown): Reply => (_req, res) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
};
const unavailable = json(503, { error: { code: -33000, name: 'RuntimeUnavailable', message: 'forkspace-rt is restarting; retry' } });
const reset: Reply = (req) => req.socket.destroy();
const status = json(200, { pid: 1, version: '0.1.0', node: 'v24', uptimeMs: 1, connections: 0, runningExecutions: 0, runtime: { connected: true } });
const created = json(200, { sandbox: { id: 'sbx-0123456789ab' } });

describe('SDK retries (fake server seam)', () => {
  let agent: Awaited<ReturnType<typeof fakeAgent>> | undefined;
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });
  const client = (url: string, maxRetries = 4) => new FaaSPlatformClient({ apiKey: 'fsk_test', platformUrl: url, retry: { baseDelayMs: 5, maxDelayMs: 20, maxRetries } });

  it('retries a GET on 503 until it succeeds', async () => {
    agent = await fakeAgent([unavailable, unavailable, status]);
    const r = await client(agent.url).status();
    assert.equal(r.version, '0.1.0');
    assert.equal(agent.seen.length, 3);
    assert.ok(agent.seen.every((s) => s.authorization === 'Bearer fsk_test'));
  });

  it('retries a POST on 503 and on a reset connection under one Idempotency-Key', async () => {
    agent = await fakeAgent([unavailable, reset, created]);
    const sbx = await client(agent.url).sandboxes.create({ environment: 'busybox' });
    assert.equal(sbx.id, 'sbx-0123456789ab');
    assert.equal(agent.seen.length, 3);
    const keys = new Set(agent.seen.map((s) => s.idempotencyKey));
    assert.equal(keys.size, 1, 'every attempt carries the same key');
    assert.match([...keys][0] ?? '', /^[0-9a-f-]{36}$/);
    assert.deepEqual(JSON.parse(agent.seen[2].body), { environment: 'busybox' });
  });

  it('does not retry a 400 and raises its typed error with the agent\'s message', async () => {
    agent = await fakeAgent([json(400, { error: { code: -32602, name: 'InvalidParams', message: 'invalid params for sandbox/create: unknown field `colour`' } }), created]);
    await assert.rejects(client(agent.url).sandboxes.create({}), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && e.status === 400 && /colour/.test(e.message) && e.codeName === 'InvalidParams');
    assert.equal(agent.seen.length, 1);
  });

  it('does not retry a 500', async () => {
    agent = await fakeAgent([json(500, { error: { code: -32603, name: 'InternalError', message: 'boom' } }), status]);
    await assert.rejects(client(agent.url).status(), InternalError);
    assert.equal(agent.seen.length, 1);
  });

  it('never retries a POST sent without an idempotency key', async () => {
    agent = await fakeAgent([unavailable, created]);
    const c = client(agent.url);
    await assert.rejects(c.call('sandbox/create', { environment: 'busybox' }, { idempotencyKey: false }), UnavailableError);
    assert.equal(agent.seen.length, 1);
    assert.equal(agent.seen[0].idempotencyKey, undefined);
  });

  it('gives up after maxRetries with the last transient error', async () => {
    agent = await fakeAgent([unavailable]);
    await assert.rejects(client(agent.url, 2).status(), (e: UnavailableError) => e instanceof UnavailableError && /restarting/.test(e.message));
    assert.equal(agent.seen.length, 3);
  });

  it('retries a refused connection, then reports it as a ConnectionError that says what to check', async () => {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as AddressInfo;
    await new Promise((r) => s.close(r));
    await assert.rejects(client(`http://127.0.0.1:${port}`, 2).status(), (e: ConnectionError) => e instanceof ConnectionError && /ECONNREFUSED/.test(e.message) && /agent status/.test(e.message));
  });

  it('sends the fluent builder\'s options as exec params', async () => {
    agent = await fakeAgent([json(200, { execId: 'ex-1', state: 'running' }), json(200, { execId: 'ex-1', state: 'finished', startedAtMs: 0, endedAtMs: 1, lastSeq: 0, result: { execId: 'ex-1', exitCode: 0, stdout: 'ok' } })]);
    const r = await client(agent.url).sandbox('python:3.11').withMemory('512M').withTimeout(30_000).withEnv({ A: '1' }).run('python train.py');
    assert.equal(r.stdout, 'ok');
    assert.equal(agent.seen[0].method, 'POST');
    assert.equal(agent.seen[0].url, '/v1/executions');
    assert.deepEqual(JSON.parse(agent.seen[0].body), { command: 'python train.py', environment: 'python:3.11', limits: { memoryBytes: 512 * 1024 * 1024 }, timeoutMs: 30_000, env: { A: '1' } });
    assert.match(agent.seen[1].url, /^\/v1\/executions\/ex-1\?waitMs=60000$/);
  });

  it('sends withDisk as limits.diskBytes next to the other limits', async () => {
    agent = await fakeAgent([json(200, { execId: 'ex-2', state: 'running' }), json(200, { execId: 'ex-2', state: 'finished', startedAtMs: 0, endedAtMs: 1, lastSeq: 0, result: { execId: 'ex-2', exitCode: 0, stdout: '' } })]);
    await client(agent.url).sandbox('busybox').withMemory('64M').withDisk('2G').run('true');
    assert.deepEqual(JSON.parse(agent.seen[0].body).limits, { memoryBytes: 64 * 1024 * 1024, diskBytes: 2 * 1024 ** 3 });
  });

  it('backs off exponentially with full jitter, capped', () => {
    const o = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    assert.deepEqual([0, 1, 2, 3, 4].map((n) => backoffDelay(n, o, undefined, () => 1)), [100, 200, 400, 800, 1000]);
    assert.equal(backoffDelay(3, o, undefined, () => 0), 0);
    assert.equal(backoffDelay(0, o, 0.5, () => 0), 500, 'Retry-After is a floor');
  });
});
