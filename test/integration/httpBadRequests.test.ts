// Direct HTTP API input handling: a list of bad requests (malformed JSON, wrong content types, unknown
// fields, wrong types, out-of-range values, unknown ids, oversized bodies, misused verbs, reused
// idempotency keys, ambiguous labels), each checked for its 4xx JSON answer (status, code, a message
// that says what to do), the agent still serving after each, and nothing half-made.
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import { ErrorCodes, HTTP_STATUS, type ErrorCodeName } from '../../agent/src/protocol';
import { useHttpStack } from './httpStack';

interface Bad {
  what: string;
  verb: string;
  path: string;
  /** An object is sent as JSON; a string as it is. */
  body?: unknown;
  headers?: Record<string, string>;
  error: ErrorCodeName;
  message?: RegExp;
}

const MAX_BODY = 1024 * 1024;
const NO_SBX = 'sbx-000000000000';
const NO_SNAP = 'snap-000000000000';

describe('Direct HTTP API: bad requests get 4xx JSON errors (real agent)', function () {
  this.timeout(300_000);
  const h = useHttpStack({ FORKSPACE_HTTP_MAX_BODY_BYTES: String(MAX_BODY) });
  let sbx = '';
  let busyboxSnap = '';

  before(async () => {
    const r = await h.request('POST', '/v1/sandboxes', { body: { environment: 'busybox' } });
    assert.equal(r.status, 200, r.text);
    sbx = r.json.sandbox.id;
    for (let i = 0; i < 2; i++) {
      const s = await h.request('POST', `/v1/sandboxes/${sbx}/snapshots`, { body: { label: 'dup' } });
      assert.equal(s.status, 200, s.text);
      busyboxSnap = s.json.snapshot.id;
    }
  });

  // Built when the test runs: the sandbox and snapshots of `before` exist by then.
  const list = (): Bad[] => [
    { what: 'malformed JSON', verb: 'POST', path: '/v1/sandboxes', body: '{bad', error: 'ParseError', message: /not valid JSON/ },
    { what: 'truncated JSON', verb: 'POST', path: '/v1/executions/run', body: '{"command": "true"', error: 'ParseError' },
    { what: 'an array body', verb: 'POST', path: '/v1/sandboxes', body: '[]', error: 'InvalidRequest', message: /JSON object/ },
    { what: 'a null body', verb: 'POST', path: '/v1/sandboxes', body: 'null', error: 'InvalidRequest' },
    { what: 'a string body', verb: 'POST', path: '/v1/sandboxes', body: '"busybox"', error: 'InvalidRequest' },
    { what: 'a number body', verb: 'POST', path: '/v1/sandboxes', body: '42', error: 'InvalidRequest' },
    { what: 'a text/plain body', verb: 'POST', path: '/v1/sandboxes', body: '{}', headers: { 'content-type': 'text/plain' }, error: 'UnsupportedMediaType', message: /application\/json/ },
    { what: 'a form body', verb: 'POST', path: '/v1/executions/run', body: 'command=true', headers: { 'content-type': 'application/x-www-form-urlencoded' }, error: 'UnsupportedMediaType' },
    { what: 'an unknown field', verb: 'POST', path: '/v1/sandboxes', body: { colour: 'red' }, error: 'InvalidParams', message: /unknown field `colour` \(sandbox\/create takes environment, / },
    { what: 'a wrongly typed field', verb: 'POST', path: '/v1/sandboxes', body: { environment: 5 }, error: 'InvalidParams', message: /environment/ },
    { what: 'an unknown environment', verb: 'POST', path: '/v1/sandboxes', body: { environment: 'nope' }, error: 'EnvironmentUnknown', message: /known environments: .*busybox/ },
    { what: 'memory below the minimum', verb: 'POST', path: '/v1/sandboxes', body: { limits: { memoryBytes: 1 } }, error: 'InvalidParams', message: /at least 8 MiB/ },
    { what: 'an unknown limit', verb: 'POST', path: '/v1/sandboxes', body: { limits: { gpus: 1 } }, error: 'InvalidParams', message: /`gpus` in limits/ },
    { what: 'a relative cwd', verb: 'POST', path: '/v1/sandboxes', body: { cwd: 'app' }, error: 'InvalidParams', message: /absolute path/ },
    { what: 'a file without a path', verb: 'POST', path: '/v1/sandboxes', body: { files: [{ path: '', content: '' }] }, error: 'InvalidParams', message: /files\.0\.path/ },
    { what: 'a negative TTL', verb: 'POST', path: '/v1/sandboxes', body: { ttlMs: -1 }, error: 'InvalidParams', message: /ttlMs/ },
    { what: 'an unknown expiry action', verb: 'POST', path: '/v1/sandboxes', body: { onExpiry: 'explode' }, error: 'InvalidParams', message: /onExpiry/ },
    { what: 'neither code nor command', verb: 'POST', path: '/v1/executions/run', body: {}, error: 'InvalidParams', message: /exactly one of `code` or `command`/ },
    { what: 'both code and command', verb: 'POST', path: '/v1/executions/run', body: { code: 'x', command: 'y' }, error: 'InvalidParams', message: /exactly one/ },
    { what: 'an unknown mode', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', mode: 'warp' }, error: 'InvalidParams', message: /mode/ },
    { what: 'a checkpoint outside checkpointed mode', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', checkpointId: 'x' }, error: 'InvalidParams', message: /needs mode "checkpointed"/ },
    { what: 'persistent mode without a sandbox', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', mode: 'persistent' }, error: 'InvalidParams', message: /needs `sandboxId`/ },
    { what: 'a zero timeout', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', timeoutMs: 0 }, error: 'InvalidParams', message: /timeoutMs/ },
    { what: 'an execId with spaces', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', execId: 'bad id!' }, error: 'InvalidParams', message: /execId: use 1-64 characters/ },
    { what: 'an unknown checkpoint label', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', mode: 'checkpointed', checkpointId: 'no-such-label' }, error: 'SnapshotNotFound', message: /no snapshot with id or label "no-such-label"/ },
    { what: 'a checkpoint of another environment', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', environment: 'python:3.13', mode: 'checkpointed', checkpointId: busyboxSnap }, error: 'InvalidParams', message: /is of environment busybox, not python:3\.13; leave environment out or give busybox/ },
    { what: 'an empty argv', verb: 'POST', path: '/v1/executions', body: { command: [] }, error: 'InvalidParams', message: /command/ },
    { what: 'an unknown execution', verb: 'GET', path: '/v1/executions/ex-nope', error: 'ExecNotFound', message: /no execution ex-nope/ },
    { what: 'a non-numeric wait', verb: 'GET', path: '/v1/executions/ex-nope?waitMs=abc', error: 'InvalidParams', message: /waitMs/ },
    { what: 'a wait over the maximum', verb: 'GET', path: '/v1/executions/ex-nope?waitMs=999999', error: 'InvalidParams', message: /at most 120000/ },
    { what: 'an unknown query parameter', verb: 'GET', path: '/v1/executions/ex-nope?bogus=1', error: 'InvalidParams', message: /unknown field `bogus`/ },
    { what: 'a negative output position', verb: 'GET', path: '/v1/executions/ex-nope/output?after=-1', error: 'InvalidParams', message: /after/ },
    { what: 'cancelling an unknown execution', verb: 'POST', path: '/v1/executions/ex-nope/cancel', error: 'ExecNotFound' },
    { what: 'an unknown sandbox', verb: 'GET', path: `/v1/sandboxes/${NO_SBX}`, error: 'SandboxNotFound', message: new RegExp(NO_SBX) },
    { what: 'pausing an unknown sandbox', verb: 'POST', path: `/v1/sandboxes/${NO_SBX}/pause`, error: 'SandboxNotFound' },
    { what: 'destroying an unknown sandbox', verb: 'DELETE', path: `/v1/sandboxes/${NO_SBX}`, error: 'SandboxNotFound' },
    { what: 'exec in an unknown sandbox', verb: 'POST', path: `/v1/sandboxes/${NO_SBX}/exec`, body: { command: 'true' }, error: 'SandboxNotFound' },
    { what: 'an unknown snapshot', verb: 'GET', path: `/v1/snapshots/${NO_SNAP}`, error: 'SnapshotNotFound' },
    { what: 'restoring an unknown snapshot', verb: 'POST', path: `/v1/snapshots/${NO_SNAP}/restore`, error: 'SnapshotNotFound' },
    { what: 'branching an unknown snapshot', verb: 'POST', path: `/v1/snapshots/${NO_SNAP}/branch`, body: { count: 2 }, error: 'SnapshotNotFound' },
    { what: 'zero branches', verb: 'POST', path: `/v1/snapshots/${NO_SNAP}/branch`, body: { count: 0 }, error: 'InvalidParams', message: /count/ },
    { what: 'too many branches', verb: 'POST', path: `/v1/snapshots/${NO_SNAP}/branch`, body: { count: 1000 }, error: 'InvalidParams', message: /count/ },
    { what: 'a branch without a count', verb: 'POST', path: `/v1/snapshots/${NO_SNAP}/branch`, body: {}, error: 'InvalidParams', message: /count/ },
    { what: 'deleting an unknown snapshot', verb: 'DELETE', path: `/v1/snapshots/${NO_SNAP}`, error: 'SnapshotNotFound' },
    { what: 'an ambiguous label', verb: 'GET', path: '/v1/snapshots/dup', error: 'AmbiguousReference', message: /2 snapshots are labelled "dup" \(snap-\w+, snap-\w+\); give one of their ids/ },
    { what: 'restoring an ambiguous label', verb: 'POST', path: '/v1/snapshots/dup/restore', error: 'AmbiguousReference' },
    { what: 'a diff without b', verb: 'GET', path: `/v1/diff?a=${NO_SBX}`, error: 'InvalidParams', message: /b:/ },
    { what: 'a repeated query parameter', verb: 'GET', path: '/v1/diff?a=x&a=y&b=z', error: 'InvalidParams', message: /given 2 times/ },
    { what: 'merging from an unknown sandbox', verb: 'POST', path: `/v1/sandboxes/${sbx}/merge`, body: { from: NO_SBX }, error: 'SandboxNotFound' },
    { what: 'an unknown merge strategy', verb: 'POST', path: `/v1/sandboxes/${sbx}/merge`, body: { from: NO_SBX, strategy: 'yolo' }, error: 'InvalidParams', message: /strategy/ },
    { what: 'an unknown file encoding', verb: 'POST', path: `/v1/sandboxes/${sbx}/files`, body: { path: '/root/x', content: 'x', encoding: 'hex' }, error: 'InvalidParams', message: /encoding/ },
    { what: 'reading a missing file', verb: 'GET', path: `/v1/files/${sbx}/content?path=/no/such/file`, error: 'FileNotFound' },
    { what: 'reading more than a chunk', verb: 'GET', path: `/v1/files/${sbx}/content?path=/etc/hostname&length=99999999999`, error: 'InvalidParams', message: /length/ },
    { what: 'listing files of an unknown label', verb: 'GET', path: '/v1/files/no-such-label/list?path=/', error: 'SnapshotNotFound' },
    { what: 'a zero-column terminal', verb: 'POST', path: `/v1/sandboxes/${sbx}/terminals`, body: { cols: 0, rows: 10 }, error: 'InvalidParams', message: /cols/ },
    { what: 'typing into an unknown terminal', verb: 'POST', path: '/v1/terminals/term-nope/input', body: { data: 'x' }, error: 'ExecNotFound' },
    { what: 'a port out of range', verb: 'POST', path: `/v1/sandboxes/${sbx}/ports`, body: { port: 70000 }, error: 'InvalidParams', message: /port/ },
    { what: 'an exposure name with spaces', verb: 'POST', path: `/v1/sandboxes/${sbx}/exposures`, body: { port: 80, name: 'Bad Name' }, error: 'InvalidParams', message: /use 1-63 of a-z 0-9/ },
    { what: 'a pool with min over max', verb: 'PUT', path: '/v1/pools/busybox', body: { min: 3, max: 1 }, error: 'InvalidParams', message: /min must not exceed max/ },
    { what: 'an instance from a snapshot and an environment', verb: 'POST', path: '/v1/instances', body: { snapshotId: 'x', environment: 'busybox' }, error: 'InvalidParams', message: /takes its environment/ },
    { what: 'an unknown instance', verb: 'GET', path: `/v1/instances/${NO_SBX}`, error: 'SandboxNotFound' },
    { what: 'a label over 200 characters', verb: 'POST', path: `/v1/sandboxes/${sbx}/snapshots`, body: { label: 'x'.repeat(300) }, error: 'InvalidParams', message: /label/ },
    { what: 'a TTL that is a word', verb: 'PATCH', path: `/v1/sandboxes/${sbx}/policy`, body: { ttlMs: 'soon' }, error: 'InvalidParams', message: /ttlMs/ },
    { what: 'a verb the path does not take', verb: 'PUT', path: '/v1/sandboxes', error: 'VerbNotAllowed', message: /takes POST, GET, not PUT/ },
    { what: 'an unknown route', verb: 'GET', path: '/v1/nope', error: 'MethodNotFound', message: /GET \/v1\/openapi\.json lists every route/ },
    { what: 'a route outside /v1', verb: 'GET', path: '/', error: 'MethodNotFound' },
    { what: 'a stream fetched without WebSocket', verb: 'GET', path: '/v1/executions/ex-nope/stream', error: 'InvalidRequest', message: /WebSocket/ },
    { what: 'a path parameter repeated in the body', verb: 'POST', path: `/v1/sandboxes/${sbx}/pause`, body: { sandboxId: NO_SBX }, error: 'InvalidParams', message: /`sandboxId` comes from the path/ },
    { what: 'a query string on a POST', verb: 'POST', path: '/v1/sandboxes?environment=busybox', body: {}, error: 'InvalidRequest', message: /JSON body, not the query string/ },
    { what: 'a body on a DELETE', verb: 'DELETE', path: `/v1/sandboxes/${NO_SBX}`, body: { force: true }, error: 'InvalidRequest', message: /query string, not a body/ },
    { what: 'an oversized body', verb: 'POST', path: '/v1/executions/run', body: { command: 'true', stdin: 'x'.repeat(MAX_BODY + 10) }, error: 'PayloadTooLarge', message: /exceeds the 1048576-byte limit/ },
    { what: 'an Idempotency-Key that is too long', verb: 'POST', path: '/v1/sandboxes', body: {}, headers: { 'idempotency-key': 'k'.repeat(300) }, error: 'InvalidRequest', message: /Idempotency-Key/ },
    { what: 'an admin route for a key holder', verb: 'POST', path: '/v1/keys', body: {}, headers: { 'x-as-key': '1' }, error: 'Forbidden', message: /agent's own token/ },
  ];

  it('answers each with its 4xx JSON error and keeps serving, and leaves nothing half-made', async () => {
    const key = (await h.request('POST', '/v1/keys', { body: { name: 'bad-requests' } })).json.secret as string;
    const before = await counts();
    const cases = list();
    assert.ok(cases.length >= 50, `only ${cases.length} bad requests`);
    const failures: string[] = [];
    for (const c of cases) {
      const path = c.path;
      const asKey = c.headers?.['x-as-key'] !== undefined;
      const r = await h.request(c.verb, path, { body: c.body, headers: c.headers, ...(asKey ? { key } : {}) });
      const want = HTTP_STATUS[c.error];
      const problems: string[] = [];
      if (r.status !== want) problems.push(`status ${r.status}, want ${want}`);
      if (r.status < 400 || r.status > 499) problems.push('not a 4xx');
      if (!r.json?.error) problems.push('not a JSON error');
      else {
        if (r.json.error.code !== ErrorCodes[c.error]) problems.push(`code ${r.json.error.code} (${r.json.error.name}), want ${c.error}`);
        if (typeof r.json.error.message !== 'string' || r.json.error.message.length < 10) problems.push('no message');
        if (c.message && !c.message.test(r.json.error.message)) problems.push(`message "${r.json.error.message}" does not match ${c.message}`);
      }
      if (!(r.headers.get('content-type') ?? '').startsWith('application/json')) problems.push(`content-type ${r.headers.get('content-type')}`);
      const alive = await h.request('GET', '/v1/agent/status');
      if (alive.status !== 200) problems.push(`the agent stopped serving (${alive.status})`);
      if (problems.length) failures.push(`${c.what} (${c.verb} ${path}): ${problems.join('; ')}\n    ${r.text.slice(0, 300)}`);
    }
    assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
    assert.deepEqual(await counts(), before, 'a refused request changed something');
  });

  it('refuses a chunked body over the limit, a reused idempotency key and a malformed HTTP request', async () => {
    const url = new URL(h.url());
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, path: '/v1/executions/run', method: 'POST', headers: { authorization: `Bearer ${h.adminToken()}`, 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = (): void => {
        while (sent <= MAX_BODY + chunk.length) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    }).catch((e: Error) => ({ status: -1, body: e.message }));
    // The agent answers as soon as the limit is passed; the client may see the answer or a reset.
    if (chunked.status !== -1) {
      assert.equal(chunked.status, 413, chunked.body);
      assert.equal(JSON.parse(chunked.body).error.name, 'PayloadTooLarge');
    }

    const headers = { 'idempotency-key': 'bad-requests-reuse' };
    const first = await h.request('POST', '/v1/executions/run', { body: { environment: 'busybox', command: 'echo once' }, headers });
    assert.equal(first.status, 200, first.text);
    const reused = await h.request('POST', '/v1/executions/run', { body: { environment: 'busybox', command: 'echo twice' }, headers });
    assert.equal(reused.status, 422, reused.text);
    assert.equal(reused.json.error.name, 'IdempotencyKeyReused');
    assert.match(reused.json.error.message, /use a new key/);

    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(Number(url.port), url.hostname, () => s.write('THIS IS NOT HTTP\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    assert.match(raw, /^HTTP\/1\.1 400/);
    assert.equal((await h.request('GET', '/v1/agent/status')).status, 200);
    const ok = await h.request('POST', '/v1/executions/run', { body: { environment: 'busybox', command: 'echo still serving' } });
    assert.equal(ok.json.stdout, 'still serving\n');
  });

  async function counts() {
    const sandboxes = (await h.request('GET', '/v1/sandboxes')).json.sandboxes.length as number;
    const snapshots = (await h.request('GET', '/v1/snapshots')).json.snapshots.length as number;
    const instances = (await h.request('GET', '/v1/instances')).json.instances.length as number;
    const keys = (await h.request('GET', '/v1/keys')).json.keys.length as number;
    return { sandboxes, snapshots, instances, keys };
  }

  h.beforeStop(async () => {
    if (sbx) await h.request('DELETE', `/v1/sandboxes/${sbx}`);
  });
});
