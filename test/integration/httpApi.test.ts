// The Direct HTTP API as a whole: the OpenAPI document covers every route of the method table and
// resolves; a REST flow (sandbox, exec, snapshot by label, restore, branch, diff, merge, files,
// instances) behaves as its JSON-RPC twin; labels work wherever a snapshot id does, on JSON-RPC too;
// idempotency keys replay answers (also to a retry sent while the first is running).
import { strict as assert } from 'node:assert';
import { AgentRequests, SnapshotRestore, SandboxDestroy, ProtocolError, ErrorCodes } from '../../agent/src/protocol';
import { ROUTES } from '../../agent/src/protocol/routes';
import { useHttpStack } from './httpStack';

describe('Direct HTTP API: routes, OpenAPI, labels, idempotency (real agent)', function () {
  this.timeout(180_000);
  const h = useHttpStack();
  const made: string[] = [];
  h.beforeStop(async () => {
    for (const id of made) await h.request('DELETE', `/v1/sandboxes/${id}`);
  });
  const ok = async (verb: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const r = await h.request(verb, path, { body, headers });
    assert.equal(r.status, 200, `${verb} ${path}: ${r.text}`);
    return r.json;
  };

  it('publishes an OpenAPI 3.1 document with one operation per route, every $ref resolving', async () => {
    const doc = await ok('GET', '/v1/openapi.json');
    assert.equal(doc.openapi, '3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, { operationId: string }>>).flatMap(([p, byVerb]) =>
      Object.entries(byVerb).map(([verb, op]) => ({ key: `${verb.toUpperCase()} ${p}`, id: op.operationId })),
    );
    assert.deepEqual(ops.map((o) => o.key).sort(), ROUTES.map((r) => `${r.verb} ${r.path}`).sort());
    const routed = AgentRequests.filter((r) => 'http' in r && r.http).map((r) => r.method);
    for (const m of routed) assert.ok(ops.some((o) => o.id === m), `no operation for ${m}`);
    // Connection-bound methods only: initialize, shutdown, watches.
    assert.deepEqual(AgentRequests.filter((r) => !('http' in r && r.http)).map((r) => r.method).sort(), ['initialize', 'sandbox/unwatch', 'sandbox/watch', 'shutdown']);
    const refs = JSON.stringify(doc).match(/"\$ref":"#\/components\/schemas\/[^"]+"/g) ?? [];
    assert.ok(refs.length > 50);
    for (const ref of new Set(refs)) {
      const name = ref.slice('"$ref":"#/components/schemas/'.length, -1);
      assert.ok(doc.components.schemas[name], `unresolved ${ref}`);
    }
    assert.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' });
    const create = doc.paths['/v1/sandboxes'].post;
    assert.ok(create.requestBody.content['application/json'].schema.properties.environment);
    assert.ok(create.parameters.some((p: { name: string }) => p.name === 'Idempotency-Key'));
    const get = doc.paths['/v1/executions/{execId}'].get;
    assert.deepEqual(get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`), ['path:execId', 'query:waitMs']);
  });

  it('runs a whole flow over REST: sandbox, exec, snapshot by label, restore, branch, diff, merge, files', async () => {
    const { sandbox } = await ok('POST', '/v1/sandboxes', { environment: 'busybox', labels: { suite: 'http' } });
    made.push(sandbox.id);
    assert.equal(sandbox.policy.detached, true, 'REST has no connection to own what it makes: detached');
    const e = await ok('POST', `/v1/sandboxes/${sandbox.id}/exec`, { command: 'echo base > /root/f; cat /root/f' });
    assert.equal(e.stdout, 'base\n');
    const snap = await ok('POST', `/v1/sandboxes/${sandbox.id}/snapshots`, { label: 'http-base' });
    assert.equal(snap.snapshot.label, 'http-base');
    assert.equal((await ok('GET', '/v1/snapshots/http-base')).snapshot.id, snap.snapshot.id);
    assert.equal((await ok('GET', `/v1/snapshots?label=http-base`)).snapshots.length, 1);
    assert.equal((await ok('GET', `/v1/sandboxes?label=suite=http&state=running`)).sandboxes.length, 1);

    const restored = await ok('POST', '/v1/snapshots/http-base/restore', {});
    made.push(restored.sandboxId);
    assert.equal(restored.snapshotId, snap.snapshot.id);
    const branched = await ok('POST', '/v1/snapshots/http-base/branch', { count: 2 });
    const [a, b] = branched.branches.map((x: { sandboxId: string }) => x.sandboxId);
    made.push(a, b);
    await ok('POST', `/v1/sandboxes/${a}/files`, { path: '/root/a', content: 'from-a\n' });
    await ok('POST', `/v1/sandboxes/${b}/exec`, { command: 'echo from-b > /root/b' });
    const diff = await ok('GET', `/v1/diff?a=${a}&b=${b}`);
    assert.equal(diff.base, snap.snapshot.id);
    assert.deepEqual(diff.changes.map((c: { path: string }) => c.path).sort(), ['/root/a', '/root/b']);
    const merge = await ok('POST', `/v1/sandboxes/${a}/merge`, { from: b });
    assert.deepEqual(merge.applied, ['/root/b']);
    const read = await ok('GET', `/v1/files/${a}/content?path=/root/b&encoding=utf8`);
    assert.equal(read.content, 'from-b\n');
    const fromSnapshot = await ok('GET', '/v1/files/http-base/content?path=/root/f&encoding=utf8');
    assert.equal(fromSnapshot.content, 'base\n');
    const ls = await ok('GET', `/v1/files/${a}/list?path=/root`);
    assert.deepEqual(ls.entries.map((x: { name: string }) => x.name).sort(), ['a', 'b', 'f']);
    assert.deepEqual(await ok('DELETE', `/v1/sandboxes/${a}/files?path=/root/a`), { removed: true });

    const checkpointed = await ok('POST', '/v1/executions/run', { mode: 'checkpointed', checkpointId: 'http-base', command: 'cat /root/f; echo more >> /root/f' });
    assert.equal(checkpointed.stdout, 'base\n');
    assert.match(checkpointed.checkpointId, /^snap-/);
    const next = await ok('GET', `/v1/files/${checkpointed.checkpointId}/content?path=/root/f&encoding=utf8`);
    assert.equal(next.content, 'base\nmore\n');

    const tree = await ok('GET', '/v1/tree');
    assert.ok(JSON.stringify(tree).includes(snap.snapshot.id));
    for (const id of [a, b, restored.sandboxId]) assert.equal((await ok('DELETE', `/v1/sandboxes/${id}`)).state, 'destroyed');
  });

  it('resolves snapshot labels on JSON-RPC too (one place in the core)', async () => {
    const r = await h.client().request(SnapshotRestore, { snapshotId: 'http-base' });
    assert.match(r.sandboxId, /^sbx-/);
    await h.client().request(SandboxDestroy, { sandboxId: r.sandboxId });
    await assert.rejects(h.client().request(SnapshotRestore, { snapshotId: 'no-such-label' }), (e: ProtocolError) => e.code === ErrorCodes.SnapshotNotFound && /no-such-label/.test(e.message));
  });

  it('replays the stored answer for a repeated Idempotency-Key, also to a retry sent while the first runs', async () => {
    const before = (await ok('GET', '/v1/sandboxes?state=running')).sandboxes.length;
    const headers = { 'idempotency-key': 'create-once' };
    const [x, y] = await Promise.all([
      h.request('POST', '/v1/sandboxes', { body: { environment: 'busybox' }, headers }),
      h.request('POST', '/v1/sandboxes', { body: { environment: 'busybox' }, headers }),
    ]);
    const z = await h.request('POST', '/v1/sandboxes', { body: { environment: 'busybox' }, headers });
    assert.equal(x.status, 200, x.text);
    assert.equal(x.json.sandbox.id, y.json.sandbox.id);
    assert.equal(x.json.sandbox.id, z.json.sandbox.id);
    assert.equal(z.headers.get('idempotency-replayed'), 'true');
    made.push(x.json.sandbox.id);
    assert.equal((await ok('GET', '/v1/sandboxes?state=running')).sandboxes.length, before + 1, 'one sandbox, not three');
    // Keys are per API key: another key's identical request runs.
    const key = (await ok('POST', '/v1/keys', { name: 'other' })).secret as string;
    const other = await h.request('POST', '/v1/sandboxes', { body: { environment: 'busybox' }, headers, key });
    assert.notEqual(other.json.sandbox.id, x.json.sandbox.id);
    made.push(other.json.sandbox.id);
  });
});
