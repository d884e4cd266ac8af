// Direct HTTP API authentication: every route (taken from the route table, so a new route is covered
// without editing this file), the OpenAPI document, exposures and streams refuse a missing, wrong or
// revoked key with 401; API keys made by `forkspace keys` work, are stored hashed in a 0600 file, survive
// an agent restart, and stop working the moment they are revoked.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import WebSocket from 'ws';
import { ErrorCodes } from '../../agent/src/protocol';
import { operationName } from '../../agent/src/protocol/openapi';
import { ROUTES } from '../../agent/src/protocol/routes';
import { useHttpStack } from './httpStack';

function upgradeStatus(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.once('error', (e) => (e.message.includes('Unexpected server response') ? undefined : reject(e)));
  });
}

/** The route's path with every {param} filled. */
function concrete(path: string): string {
  return path.replace(/\{[A-Za-z]+\}/g, 'sbx-000000000000');
}

describe('Direct HTTP API: keys and authentication (real agent)', function () {
  this.timeout(120_000);
  const h = useHttpStack();
  const cli = async (...args: string[]) => {
    const r = await h.stack().cli(args);
    assert.equal(r.code, 0, `forkspace ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  it('refuses every route, the OpenAPI document, exposures and streams without a valid key (401, JSON)', async () => {
    const wrongKeys: (string | null)[] = [null, 'nope', 'fsk_' + 'A'.repeat(43), `${h.adminToken()}x`];
    const targets = [
      ...ROUTES.filter((r) => r.target.kind === 'request').map((r) => ({ verb: r.verb, path: concrete(r.path), name: operationName(r) })),
      { verb: 'GET', path: '/v1/openapi.json', name: 'openapi' },
      { verb: 'GET', path: '/v1/expose/anything/', name: 'expose' },
      { verb: 'GET', path: '/v1/no/such/route', name: 'unknown route' },
    ];
    assert.ok(targets.length > 55, `only ${targets.length} routes`);
    for (const t of targets) {
      for (const key of wrongKeys) {
        const r = await h.request(t.verb, t.path, { key, body: t.verb === 'GET' || t.verb === 'DELETE' ? undefined : {} });
        assert.equal(r.status, 401, `${t.name} (${t.verb} ${t.path}) with key ${key}: ${r.status} ${r.text}`);
        assert.equal(r.json?.error?.code, ErrorCodes.Unauthorized, `${t.name}: ${r.text}`);
        assert.match(r.json.error.message, /forkspace keys|Authorization/);
      }
    }
    for (const r of ROUTES.filter((x) => x.target.kind === 'stream')) {
      const url = h.url().replace('http', 'ws') + concrete(r.path);
      for (const headers of [{}, { authorization: 'Bearer nope' }] as Record<string, string>[]) {
        const a = await upgradeStatus(url, headers);
        assert.equal(a.status, 401, `${operationName(r)}: ${a.status} ${a.body}`);
        assert.equal(JSON.parse(a.body).error.code, ErrorCodes.Unauthorized);
      }
    }
    // ...and it still serves, with the admin key.
    assert.equal((await h.request('GET', '/v1/agent/status')).status, 200);
  });

  it('makes, lists and revokes keys with the CLI; revocation holds from the next request on', async () => {
    const secret = (await cli('keys', 'create', '--name', 'ci')).trim();
    assert.match(secret, /^fsk_[A-Za-z0-9_-]{43}$/);
    const list = await cli('keys', 'list');
    const id = /^(key-[0-9a-f]{12}) /m.exec(list)?.[1];
    assert.ok(id, list);
    assert.match(list, new RegExp(`${id} +${secret.slice(0, 10)}… +ci `));
    assert.ok(!list.includes(secret), 'keys list must never show a secret');

    const file = h.stack().config.apiKeysFile;
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const stored = fs.readFileSync(file, 'utf8');
    assert.ok(!stored.includes(secret), 'the key file must hold hashes only');
    assert.ok(stored.includes(id as string));

    assert.equal((await h.request('GET', '/v1/sandboxes', { key: secret })).status, 200);
    const admin = await h.request('GET', '/v1/keys', { key: secret });
    assert.equal(admin.status, 403);
    assert.equal(admin.json.error.name, 'Forbidden');
    assert.equal((await h.request('POST', '/v1/agent/stop', { key: secret, body: {} })).status, 403);

    assert.match(await cli('keys', 'revoke', id as string), /revoked/);
    const after = await h.request('GET', '/v1/sandboxes', { key: secret });
    assert.equal(after.status, 401, after.text);
    assert.equal(after.json.error.name, 'Unauthorized');
    const again = await h.stack().cli(['keys', 'revoke', 'key-000000000000']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /no API key key-000000000000/);
  });

  it('keeps keys (and revocations) across an agent restart', async () => {
    const keep = (await cli('keys', 'create', '--name', 'kept')).trim();
    const gone = (await cli('keys', 'create')).trim();
    const goneId = JSON.parse(await cli('keys', 'list', '--json')).find((k: { prefix: string }) => gone.startsWith(k.prefix)).id;
    await cli('keys', 'revoke', goneId);
    await h.stack().killAgent();
    await h.stack().startAgent();
    assert.equal((await h.request('GET', '/v1/environments', { key: keep })).status, 200);
    assert.equal((await h.request('GET', '/v1/environments', { key: gone })).status, 401);
    const keys = JSON.parse(await cli('keys', 'list', '--json')) as { id: string; name: string | null; revokedAtMs: number | null; lastUsedAtMs: number | null }[];
    assert.ok(keys.find((k) => k.id === goneId)?.revokedAtMs);
    assert.ok(keys.some((k) => k.name === 'kept' && k.revokedAtMs === null));
  });
});
