// Pure parts of the Direct HTTP API: the route table derived from the method table, the replayable
// stream log, idempotency keys and the API key store.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { ErrorCodes, ProtocolError, request } from '../../agent/src/protocol';
import { parseRoute } from '../../agent/src/protocol/messages';
import { buildRoutes, matchRoute, queryFieldTypes, ROUTES } from '../../agent/src/protocol/routes';
import { operationName } from '../../agent/src/protocol/openapi';
import { StreamLog } from '../../agent/src/core/streamLog';
import { IdempotencyStore } from '../../agent/src/core/idempotency';
import { ApiKeyStore } from '../../agent/src/core/apiKeys';

const name = (m: ReturnType<typeof matchRoute>) => (m && !('allow' in m) ? operationName(m.route) : m);

describe('Direct HTTP API: routes', () => {
  it('prefers literal segments, decodes parameters and lists the verbs a path takes', () => {
    assert.equal(name(matchRoute(ROUTES, 'POST', '/v1/executions/run')), 'exec/run');
    const get = matchRoute(ROUTES, 'GET', '/v1/executions/run');
    assert.ok(get && !('allow' in get));
    assert.equal(operationName(get.route), 'exec/get');
    assert.deepEqual(get.pathParams, { execId: 'run' });
    const label = matchRoute(ROUTES, 'GET', '/v1/snapshots/my%20label');
    assert.ok(label && !('allow' in label) && label.pathParams.snapshotId === 'my label');
    assert.deepEqual(matchRoute(ROUTES, 'PUT', '/v1/sandboxes'), { allow: ['POST', 'GET'] });
    assert.equal(matchRoute(ROUTES, 'GET', '/v1/nope'), undefined);
    assert.equal(matchRoute(ROUTES, 'GET', '/v1/sandboxes/'), undefined);
    assert.equal(name(matchRoute(ROUTES, 'GET', '/v1/executions/ex-1/stream')), 'exec/stream');
  });

  it('refuses malformed routes, path parameters the params lack, and two methods on one route', () => {
    assert.throws(() => parseRoute('FETCH /v1/x', false, 'm'), /VERB \/v1/);
    assert.throws(() => parseRoute('GET /v2/x', false, 'm'), /VERB \/v1/);
    assert.throws(() => parseRoute('GET /v1/x/', false, 'm'));
    const P = z.strictObject({ id: z.string() });
    const a = request('a/get', P, z.object({}), 'a', { http: 'GET /v1/a/{id}' });
    const b = request('b/get', P, z.object({}), 'b', { http: 'GET /v1/a/{id}' });
    const c = request('c/get', P, z.object({}), 'c', { http: 'GET /v1/c/{other}' });
    assert.throws(() => buildRoutes([a, b] as never, []), /b\/get and a\/get share the route GET \/v1\/a\/\{id\}/);
    assert.throws(() => buildRoutes([c] as never, []), /path parameter \{other\} is not a field/);
  });

  it('reads query values as their JSON Schema types say', () => {
    const t = queryFieldTypes(z.strictObject({ n: z.number().int().optional(), b: z.boolean().default(false), s: z.string(), e: z.enum(['x', 'y']), o: z.array(z.string()).optional() }));
    assert.deepEqual(t, { n: 'integer', b: 'boolean', s: 'string', e: 'string', o: 'json' });
  });
});

describe('Direct HTTP API: stream log', () => {
  type C = { seq: number; data: string };
  const chunk = (seq: number, data = 'x'.repeat(10)): C => ({ seq, data });

  it('replays from a sequence number, then follows live, then ends', () => {
    const log = new StreamLog<C, string>(1000, (c) => c.data.length);
    log.push(chunk(1));
    log.push(chunk(2));
    const seen: string[] = [];
    const stop = log.subscribe(1, { item: (c) => seen.push(`item ${c.seq}`), gap: (f, t) => seen.push(`gap ${f}-${t}`), end: (e) => seen.push(`end ${e}`) });
    log.push(chunk(3));
    log.end('done');
    log.push(chunk(4)); // nothing follows the end
    assert.deepEqual(seen, ['item 2', 'item 3', 'end done']);
    stop();
    const late: string[] = [];
    log.subscribe(3, { item: (c) => late.push(`item ${c.seq}`), gap: () => late.push('gap'), end: (e) => late.push(`end ${e}`) });
    assert.deepEqual(late, ['end done']);
  });

  it('drops the oldest chunks over its budget and names the gap to a reader from before them', () => {
    const log = new StreamLog<C, string>(25, (c) => c.data.length);
    for (let i = 1; i <= 5; i++) log.push(chunk(i));
    assert.equal(log.firstSeq, 4);
    assert.deepEqual(log.since(0), { items: [chunk(4), chunk(5)], gap: { from: 1, to: 3 } });
    assert.deepEqual(log.since(3), { items: [chunk(4), chunk(5)] });
    assert.deepEqual(log.since(4, 1).items, [chunk(5)]);
  });
});

describe('Direct HTTP API: idempotency keys', () => {
  it('replays an answer, joins a call in flight, refuses a key reused for another request, forgets 503s', async () => {
    const store = new IdempotencyStore();
    let calls = 0;
    let release = () => {};
    const slow = () => new Promise<{ status: number; body: string }>((r) => (calls++, (release = () => r({ status: 200, body: `answer ${calls}` }))));
    const first = store.run('key-a', 'k1', 'fp', slow);
    const second = store.run('key-a', 'k1', 'fp', slow);
    release();
    assert.deepEqual(await first, { answer: { status: 200, body: 'answer 1' }, replayed: false });
    assert.deepEqual(await second, { answer: { status: 200, body: 'answer 1' }, replayed: true });
    assert.equal(calls, 1);
    await assert.rejects(store.run('key-a', 'k1', 'other', slow), (e: ProtocolError) => e.code === ErrorCodes.IdempotencyKeyReused);
    const other = store.run('key-b', 'k1', 'fp', async () => ({ status: 200, body: 'b' }));
    assert.equal((await other).answer.body, 'b', 'keys are per API key');
    let tries = 0;
    const flaky = async () => ({ status: ++tries === 1 ? 503 : 200, body: String(tries) });
    assert.equal((await store.run('key-a', 'k2', 'fp', flaky)).answer.status, 503);
    assert.deepEqual(await store.run('key-a', 'k2', 'fp', flaky), { answer: { status: 200, body: '2' }, replayed: false });
  });
});

describe('Direct HTTP API: API key store', () => {
  let dir = '';
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-keys-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps sha256 hashes only, in a 0600 file, verifies, revokes at once and reloads', () => {
    const file = path.join(dir, 'sub', 'api-keys.json');
    const store = new ApiKeyStore(file);
    const { key, secret } = store.create('ci');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(file, 'utf8').includes(secret));
    assert.equal(store.verify(secret)?.id, key.id);
    assert.equal(store.verify(secret + 'x'), undefined);
    assert.equal(store.verify('not-a-key'), undefined);
    store.revoke(key.id);
    assert.equal(store.verify(secret), undefined);
    const again = new ApiKeyStore(file);
    assert.equal(again.verify(secret), undefined);
    assert.ok(again.list().keys[0].revokedAtMs);
    assert.throws(() => again.revoke('key-nope'), (e: ProtocolError) => e.code === ErrorCodes.KeyNotFound);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['api-keys.json'], 'no temporary files left');
    store.close();
    again.close();
  });

  it('refuses a damaged key file with what to do', () => {
    const file = path.join(dir, 'api-keys.json');
    fs.writeFileSync(file, '{"version": 1, "keys": ');
    assert.throws(() => new ApiKeyStore(file), /damaged .*move it away/);
  });
});
