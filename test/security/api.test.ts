// The Direct HTTP API and JSON-RPC over WebSocket as an attacker holding an API key sees them (real agent,
// real runtime, real sandboxes):
//   - one key cannot see or act on another key's sandboxes, snapshots, executions, terminals, forwards
//     or exposures: each attempt is answered exactly as for an id that does not exist; lists leave them
//     out; the admin sees everything; ownership survives an agent restart;
//   - revoking a key closes every socket it opened (JSON-RPC, execution stream, terminal stream,
//     relayed exposure connection) at once;
//   - an exposure has no TCP listener behind it, ends with its sandbox, and is never served by whoever
//     binds a port afterwards;
//   - NUL and other control characters in any path or id are a 400 naming the field, on REST and JSON-RPC.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import WebSocket from 'ws';
import { AgentRequests, ErrorCodes, KEY_REVOKED_CLOSE, ProtocolError, SandboxList, type RpcClient } from '../../agent/src/protocol';
import { useHttpStack, type HttpAnswer } from '../integration/httpStack';
import { waitFor } from '../integration/stack';

/** pid 1 of the fixture sandboxes: an HTTP server on 8000 saying whose it is, and on 8001 a listener that
 * answers every connection with a 101 line and then holds it open (a stand-in WebSocket service). */
const SERVE = (who: string) =>
  `mkdir -p /www && echo "served by ${who}" > /www/index.html && httpd -p 127.0.0.1:8000 -h /www && ` +
  `while true; do (printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n'; sleep 3600) | nc -l -p 8001 >/dev/null; done`;

interface Key {
  id: string;
  secret: string;
}

/** The same id shape with nothing behind it. */
function missingLike(id: string): string {
  return id.replace(/-[0-9a-f]+$/, (m) => '-' + '0'.repeat(m.length - 1));
}

/** Listening TCP sockets (address:port) held by these processes, from /proc/net/tcp{,6}. */
function tcpListeners(pids: number[]): Set<string> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
  }
  const found = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9])) continue;
      found.add(`${f[1].split(':')[0]}:${parseInt(f[1].split(':')[1], 16)}`);
    }
  }
  return found;
}

function portsOf(listeners: Set<string>): number[] {
  return [...listeners].map((l) => Number(l.split(':')[1]));
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Status of a WebSocket upgrade (101 when it opened). */
function upgradeStatus(url: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
    ws.once('unexpected-response', (_req, res) => (res.resume(), resolve(res.statusCode ?? 0)));
    ws.once('open', () => (ws.close(), resolve(101)));
    ws.once('error', (e) => (e.message.includes('Unexpected server response') ? undefined : reject(e)));
  });
}

function openWs(url: string, key: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** A JSON-RPC client over the agent's WebSocket listener, initialized, recording notifications. */
class RpcWs {
  readonly notifications: { method: string; params: Record<string, unknown> }[] = [];
  private nextId = 1;
  private readonly waiting = new Map<number, (m: { result?: unknown; error?: { code: number; message: string } }) => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.method) this.notifications.push(m);
      else this.waiting.get(m.id)?.(m);
    });
  }

  static async open(port: number, key: string): Promise<RpcWs> {
    const c = new RpcWs(await openWs(`ws://127.0.0.1:${port}`, key));
    await c.call('initialize', { protocolVersion: '0.1', clientName: 'security-test' });
    return c;
  }

  call(method: string, params: unknown): Promise<{ result?: any; error?: { code: number; message: string } }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Resolves with the close code and reason, or rejects after `ms`. */
function closedWithin(ws: WebSocket, ms: number): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) return reject(new Error('the socket was closed before the revocation'));
    const t = setTimeout(() => reject(new Error(`the socket stayed open ${ms} ms after the revocation`)), ms);
    ws.once('close', (code, reason) => (clearTimeout(t), resolve({ code, reason: reason.toString() })));
  });
}

describe('security: the Direct HTTP API between API keys (real agent and runtime)', function () {
  this.timeout(180_000);
  const h = useHttpStack({}, { webSocket: true });
  const as = (key: Key | string, verb: string, p: string, body?: unknown) => h.request(verb, p, { key: typeof key === 'string' ? key : key.secret, body });
  const admin = () => h.adminToken();
  const wsPort = () => h.stack().config.wsPort;
  const made: string[] = [];

  let A: Key;
  let B: Key;
  /** Key A's: a running sandbox, a snapshot of it (labelled), an execution, a terminal, a forward, an exposure. */
  let sA: string;
  let snapA: string;
  let execA: string;
  let termA: string;
  let fwdA: string;
  /** Key B's own sandbox and snapshot (for merges, diffs and label clashes). */
  let sB: string;
  /** Key A's instance (made in the lists test). */
  let instA: string;

  async function newKey(name: string): Promise<Key> {
    const r = await as(admin(), 'POST', '/v1/keys', { name });
    assert.equal(r.status, 200, r.text);
    return { id: r.json.key.id, secret: r.json.secret };
  }

  /** Until something listens on `port` inside the sandbox. */
  async function waitListening(key: Key, sandboxId: string, port: number): Promise<void> {
    await waitFor(
      async () => (await as(key, 'POST', `/v1/sandboxes/${sandboxId}/exec`, { command: `netstat -ltn | grep -q ':${port} '` })).json?.exitCode === 0,
      20_000,
      `a listener on port ${port} in ${sandboxId}`,
    );
  }

  async function sandbox(key: Key | string, who: string): Promise<string> {
    const r = await as(key, 'POST', '/v1/sandboxes', { environment: 'busybox', command: SERVE(who), ttlMs: 600_000 });
    assert.equal(r.status, 200, r.text);
    made.push(r.json.sandbox.id);
    return r.json.sandbox.id;
  }

  /** `got` is exactly the answer for an id that does not exist (`missing`, asked as `missingId`), with the
   * real id in its place. */
  function assertAsMissing(got: HttpAnswer, missing: HttpAnswer, id: string, what: string, missingId = missingLike(id)): void {
    assert.ok(missing.status === 404 || missing.status === 400, `${what}: the probe for a missing id answered ${missing.status} ${missing.text}`);
    const expected = missing.text.split(missingId).join(id);
    assert.equal(got.status, missing.status, `${what}: ${got.status} ${got.text}`);
    assert.deepEqual(got.json, JSON.parse(expected), `${what}: answered differently from a missing id`);
  }

  /** Runs `call` for the real id and for a missing one, as key B, and compares. */
  async function refusedAsMissing(id: string, call: (id: string) => Promise<HttpAnswer>, what: string): Promise<HttpAnswer> {
    const got = await call(id);
    assertAsMissing(got, await call(missingLike(id)), id, what);
    return got;
  }

  before(async () => {
    A = await newKey('alice');
    B = await newKey('bob');
    sA = await sandbox(A, 'alice');
    sB = await sandbox(B, 'bob');
    assert.equal((await as(A, 'POST', `/v1/sandboxes/${sA}/files`, { path: '/root/secret.txt', content: 'alice-secret' })).status, 200);
    const snap = await as(A, 'POST', `/v1/sandboxes/${sA}/snapshots`, { label: 'alice-label' });
    assert.equal(snap.status, 200, snap.text);
    snapA = snap.json.snapshot.id;
    const ex = await as(A, 'POST', '/v1/executions', { environment: 'busybox', command: 'echo started; sleep 120' });
    assert.equal(ex.status, 200, ex.text);
    execA = ex.json.execId;
    const t = await as(A, 'POST', `/v1/sandboxes/${sA}/terminals`, { cols: 80, rows: 24 });
    assert.equal(t.status, 200, t.text);
    termA = t.json.terminalId;
    const f = await as(A, 'POST', `/v1/sandboxes/${sA}/ports`, { port: 8000 });
    assert.equal(f.status, 200, f.text);
    fwdA = f.json.forwardId;
    assert.equal((await as(A, 'POST', `/v1/sandboxes/${sA}/exposures`, { port: 8000, name: 'site' })).status, 200);
    await waitFor(async () => (await get(`${h.url()}/v1/expose/site/`, { authorization: `Bearer ${A.secret}` })).status === 200, 20_000, "alice's httpd");
  });

  h.beforeStop(async () => {
    await as(admin(), 'POST', `/v1/executions/${execA}/cancel`).catch(() => {});
    for (const id of made) await as(admin(), 'DELETE', `/v1/sandboxes/${id}`).catch(() => {});
  });

  describe('one key cannot reach another key\'s things', () => {
    it('lists: sandboxes, snapshots, tree, instances, exposures and ports leave out the other key\'s', async () => {
      const ids = (r: HttpAnswer, field: string, key = 'id') => (r.json[field] as Record<string, string>[]).map((x) => x[key]);
      assert.deepEqual(ids(await as(B, 'GET', '/v1/sandboxes'), 'sandboxes'), [sB]);
      assert.deepEqual(ids(await as(A, 'GET', '/v1/sandboxes'), 'sandboxes'), [sA]);
      assert.deepEqual(ids(await as(B, 'GET', '/v1/snapshots'), 'snapshots'), []);
      assert.deepEqual(ids(await as(B, 'GET', `/v1/snapshots?sandboxId=${sA}`), 'snapshots'), []);
      assert.deepEqual(ids(await as(B, 'GET', '/v1/snapshots?label=alice-label'), 'snapshots'), []);
      const tree = JSON.stringify((await as(B, 'GET', '/v1/tree?includeDestroyed=true')).json);
      assert.ok(tree.includes(sB) && !tree.includes(sA) && !tree.includes(snapA), `B's tree: ${tree}`);
      assert.deepEqual(ids(await as(B, 'GET', '/v1/exposures'), 'exposures', 'name'), []);
      assert.deepEqual(ids(await as(B, 'GET', '/v1/ports'), 'forwards', 'forwardId'), []);
      assert.deepEqual(ids(await as(B, 'GET', `/v1/ports?sandboxId=${sA}`), 'forwards', 'forwardId'), []);
      const inst = await as(A, 'POST', '/v1/instances', { environment: 'busybox', ttlMs: 600_000 });
      assert.equal(inst.status, 200, inst.text);
      made.push(inst.json.instance.id);
      instA = inst.json.instance.id;
      assert.deepEqual(ids(await as(B, 'GET', '/v1/instances'), 'instances'), []);
      assert.deepEqual(ids(await as(A, 'GET', '/v1/instances'), 'instances'), [inst.json.instance.id]);
      await refusedAsMissing(inst.json.instance.id, (id) => as(B, 'GET', `/v1/instances/${id}`), 'instance/get');
      await refusedAsMissing(inst.json.instance.id, (id) => as(B, 'DELETE', `/v1/instances/${id}`), 'instance/destroy');
    });

    it('get: a sandbox and a snapshot (by id and by label) read as missing', async () => {
      await refusedAsMissing(sA, (id) => as(B, 'GET', `/v1/sandboxes/${id}`), 'sandbox/get');
      await refusedAsMissing(snapA, (id) => as(B, 'GET', `/v1/snapshots/${id}`), 'snapshot/get');
      const byLabel = await as(B, 'GET', '/v1/snapshots/alice-label');
      assertAsMissing(byLabel, await as(B, 'GET', '/v1/snapshots/nobody-label'), 'alice-label', 'snapshot/get by label', 'nobody-label');
    });

    it('exec: running a command in the sandbox reads as missing, and runs nothing', async () => {
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/exec`, { command: 'touch /root/pwned' }), 'sandbox/exec');
      await refusedAsMissing(sA, (id) => as(B, 'POST', '/v1/executions/run', { mode: 'persistent', sandboxId: id, command: 'touch /root/pwned' }), 'exec/run persistent');
      const ls = await as(A, 'GET', `/v1/files/${sA}/list?path=/root`);
      assert.ok(!ls.text.includes('pwned'), ls.text);
    });

    it('files: reading the sandbox or its snapshot, and listing, read as missing', async () => {
      await refusedAsMissing(sA, (id) => as(B, 'GET', `/v1/files/${id}/content?path=/root/secret.txt&encoding=utf8`), 'files/read sandbox');
      await refusedAsMissing(snapA, (id) => as(B, 'GET', `/v1/files/${id}/content?path=/root/secret.txt&encoding=utf8`), 'files/read snapshot');
      assertAsMissing(
        await as(B, 'GET', '/v1/files/alice-label/content?path=/root/secret.txt'),
        await as(B, 'GET', '/v1/files/nobody-label/content?path=/root/secret.txt'),
        'alice-label',
        'files/read by label',
        'nobody-label',
      );
      await refusedAsMissing(sA, (id) => as(B, 'GET', `/v1/files/${id}/list?path=/root`), 'files/list');
    });

    it('files: writing and removing read as missing and change nothing', async () => {
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/files`, { path: '/root/secret.txt', content: 'bob was here' }), 'files/write');
      await refusedAsMissing(sA, (id) => as(B, 'DELETE', `/v1/sandboxes/${id}/files?path=/root/secret.txt`), 'files/remove');
      const r = await as(A, 'GET', `/v1/files/${sA}/content?path=/root/secret.txt&encoding=utf8`);
      assert.equal(r.json.content, 'alice-secret');
    });

    it('lifecycle: destroy, pause, stop, policy and snapshot read as missing and leave the sandbox running', async () => {
      await refusedAsMissing(sA, (id) => as(B, 'DELETE', `/v1/sandboxes/${id}`), 'sandbox/destroy');
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/pause`), 'sandbox/pause');
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/stop`), 'sandbox/stop');
      await refusedAsMissing(sA, (id) => as(B, 'PATCH', `/v1/sandboxes/${id}/policy`, { ttlMs: 1 }), 'sandbox/policy');
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/snapshots`, {}), 'snapshot/create');
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/ssh`), 'ssh/prepare');
      assert.equal((await as(A, 'GET', `/v1/sandboxes/${sA}`)).json.sandbox.state, 'running');
    });

    it('snapshots: branch, restore, delete and a checkpointed run from it read as missing (id and label)', async () => {
      await refusedAsMissing(snapA, (id) => as(B, 'POST', `/v1/snapshots/${id}/branch`, { count: 1 }), 'snapshot/branch');
      await refusedAsMissing(snapA, (id) => as(B, 'POST', `/v1/snapshots/${id}/restore`, {}), 'snapshot/restore');
      await refusedAsMissing(snapA, (id) => as(B, 'DELETE', `/v1/snapshots/${id}`), 'snapshot/delete');
      await refusedAsMissing(snapA, (id) => as(B, 'POST', `/v1/snapshots/${id}/run`, { command: 'cat /root/secret.txt', count: 1, strategy: 'map' }), 'exec/branch');
      await refusedAsMissing(snapA, (id) => as(B, 'POST', '/v1/executions/run', { mode: 'checkpointed', checkpointId: id, command: 'cat /root/secret.txt' }), 'checkpointed run');
      assertAsMissing(
        await as(B, 'POST', '/v1/snapshots/alice-label/branch', { count: 1 }),
        await as(B, 'POST', '/v1/snapshots/nobody-label/branch', { count: 1 }),
        'alice-label',
        'snapshot/branch by label',
        'nobody-label',
      );
      assertAsMissing(
        await as(B, 'PUT', '/v1/snapshots/alice-label/pool', { size: 1 }),
        await as(B, 'PUT', '/v1/snapshots/nobody-label/pool', { size: 1 }),
        'alice-label',
        'pool/snapshot by label',
        'nobody-label',
      );
      assert.equal((await as(A, 'GET', `/v1/snapshots/${snapA}`)).status, 200, 'the snapshot is still there');
    });

    it('a label resolves among the key\'s own snapshots only', async () => {
      const mine = await as(B, 'POST', `/v1/sandboxes/${sB}/snapshots`, { label: 'alice-label' });
      assert.equal(mine.status, 200, mine.text);
      const r = await as(B, 'GET', '/v1/snapshots/alice-label');
      assert.equal(r.json.snapshot?.id, mine.json.snapshot.id, `not ambiguous, and B's own: ${r.text}`);
      assert.equal((await as(A, 'GET', '/v1/snapshots/alice-label')).json.snapshot?.id, snapA);
    });

    it('merge and diff: only between the key\'s own sandboxes and snapshots', async () => {
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${sB}/merge`, { from: id }), 'merge from another key\'s sandbox');
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/merge`, { from: sB }), 'merge into another key\'s sandbox');
      await refusedAsMissing(snapA, (id) => as(B, 'POST', `/v1/sandboxes/${sB}/merge`, { from: id }), 'merge from another key\'s snapshot');
      await refusedAsMissing(sA, (id) => as(B, 'GET', `/v1/diff?a=${sB}&b=${id}`), 'diff against another key\'s sandbox');
      await refusedAsMissing(snapA, (id) => as(B, 'GET', `/v1/diff?a=${id}&b=${sB}`), 'diff against another key\'s snapshot');
    });

    it('executions: get, output, cancel and the stream read as missing; the same execId is the key\'s own', async () => {
      await refusedAsMissing(execA, (id) => as(B, 'GET', `/v1/executions/${id}`), 'exec/get');
      await refusedAsMissing(execA, (id) => as(B, 'GET', `/v1/executions/${id}/output`), 'exec/log');
      await refusedAsMissing(execA, (id) => as(B, 'POST', `/v1/executions/${id}/cancel`), 'exec/cancel');
      const ws = (id: string) => upgradeStatus(`ws://127.0.0.1:${new URL(h.url()).port}/v1/executions/${id}/stream`, B.secret);
      assert.equal(await ws(execA), 404, "B's stream of A's execution");
      assert.equal(await ws('job-2'), 404);
      assert.equal((await as(A, 'GET', `/v1/executions/${execA}`)).json.state, 'running', 'not cancelled');
      // An id A chose is free for B: B's job-1 is B's, and A's stays A's.
      const chosen = await as(A, 'POST', '/v1/executions', { environment: 'busybox', command: 'sleep 120', execId: 'job-1' });
      assert.equal(chosen.status, 200, chosen.text);
      const mine = await as(B, 'POST', '/v1/executions', { environment: 'busybox', command: 'echo bob', execId: 'job-1' });
      assert.equal(mine.status, 200, mine.text);
      const done = await as(B, 'GET', '/v1/executions/job-1?waitMs=30000');
      assert.equal(done.json.result?.stdout, 'bob\n', done.text);
      assert.equal((await as(A, 'GET', '/v1/executions/job-1')).json.state, 'running', "A's job-1 is A's");
      await as(A, 'POST', '/v1/executions/job-1/cancel');
    });

    it('terminals: input, resize, close and the stream read as missing', async () => {
      await refusedAsMissing(termA, (id) => as(B, 'POST', `/v1/terminals/${id}/input`, { data: 'echo pwned > /root/pwned\n' }), 'terminal/input');
      await refusedAsMissing(termA, (id) => as(B, 'POST', `/v1/terminals/${id}/resize`, { cols: 10, rows: 10 }), 'terminal/resize');
      await refusedAsMissing(termA, (id) => as(B, 'DELETE', `/v1/terminals/${id}`), 'terminal/close');
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${new URL(h.url()).port}/v1/terminals/${termA}/stream`, B.secret), 404);
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/terminals`, { cols: 80, rows: 24 }), 'terminal/open');
    });

    it('ports and exposures: forward, unforward, expose, hide and requests to the exposure read as missing', async () => {
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/ports`, { port: 8000 }), 'port/forward');
      await refusedAsMissing(fwdA, (id) => as(B, 'DELETE', `/v1/ports/${id}`), 'port/unforward');
      await refusedAsMissing(sA, (id) => as(B, 'POST', `/v1/sandboxes/${id}/exposures`, { port: 8000, name: 'bobs' }), 'http/expose');
      assertAsMissing(await as(B, 'DELETE', '/v1/exposures/site'), await as(B, 'DELETE', '/v1/exposures/sitf'), 'site', 'http/hide', 'sitf');
      const viaB = await get(`${h.url()}/v1/expose/site/`, { authorization: `Bearer ${B.secret}` });
      const missing = await get(`${h.url()}/v1/expose/sitf/`, { authorization: `Bearer ${B.secret}` });
      assert.equal(viaB.status, 404, viaB.body);
      assert.equal(viaB.body, missing.body.replace('sitf', 'site'));
      // B may use the same name for its own: names are per key.
      assert.equal((await as(B, 'POST', `/v1/sandboxes/${sB}/exposures`, { port: 8000, name: 'site' })).status, 200);
      await waitFor(async () => (await get(`${h.url()}/v1/expose/site/`, { authorization: `Bearer ${B.secret}` })).status === 200, 20_000, "bob's httpd");
      assert.equal((await get(`${h.url()}/v1/expose/site/`, { authorization: `Bearer ${B.secret}` })).body, 'served by bob\n');
      assert.equal((await get(`${h.url()}/v1/expose/site/`, { authorization: `Bearer ${A.secret}` })).body, 'served by alice\n');
      assert.equal((await as(A, 'GET', '/v1/ports')).json.forwards.length, 1, "A's forward is still there");
    });

    it('cached results are not served across keys', async () => {
      const run = (k: Key) => as(k, 'POST', '/v1/executions/run', { mode: 'cached', environment: 'busybox', command: 'cat /proc/sys/kernel/random/uuid' });
      const a1 = await run(A);
      const a2 = await run(A);
      assert.equal(a2.json.cached, true, 'the cache works for one key');
      assert.equal(a2.json.stdout, a1.json.stdout);
      const b = await run(B);
      assert.equal(b.json.cached, false, `B got A's cached result: ${b.text}`);
      assert.notEqual(b.json.stdout, a1.json.stdout);
    });

    it('an Idempotency-Key does not replay another key\'s answer', async () => {
      const body = { environment: 'busybox', command: 'echo idem', ttlMs: 600_000 };
      const post = (k: Key) => h.request('POST', '/v1/sandboxes', { key: k.secret, body, headers: { 'idempotency-key': 'shared-key-1' } });
      const a = await post(A);
      const b = await post(B);
      made.push(a.json.sandbox.id, b.json.sandbox.id);
      assert.equal(b.headers.get('idempotency-replayed'), null);
      assert.notEqual(b.json.sandbox.id, a.json.sandbox.id);
      assert.equal((await as(B, 'GET', `/v1/sandboxes/${b.json.sandbox.id}`)).status, 200);
    });

    it('ownership cannot be forged: no label, policy or field makes another key\'s sandbox yours', async () => {
      const forged = await as(B, 'POST', '/v1/sandboxes', { environment: 'busybox', labels: { owner: A.id, principal: A.id, 'forkspace.owner': A.id }, ttlMs: 600_000 });
      assert.equal(forged.status, 200, forged.text);
      made.push(forged.json.sandbox.id);
      assert.equal((await as(A, 'GET', `/v1/sandboxes/${forged.json.sandbox.id}`)).status, 404, 'labels do not give it to A');
      const field = await as(B, 'PATCH', `/v1/sandboxes/${sB}/policy`, { principal: A.id });
      assert.equal(field.status, 400, field.text);
      const create = await as(B, 'POST', '/v1/sandboxes', { environment: 'busybox', principal: A.id });
      assert.equal(create.status, 400, create.text);
      assert.deepEqual((await as(A, 'GET', `/v1/sandboxes?label=owner`)).json.sandboxes, []);
    });

    it('JSON-RPC over WebSocket with a key follows the same rules, both ways', async () => {
      const b = await RpcWs.open(wsPort(), B.secret);
      try {
        const got = await b.call('sandbox/get', { sandboxId: sA });
        const missing = await b.call('sandbox/get', { sandboxId: missingLike(sA) });
        assert.equal(got.error?.code, ErrorCodes.SandboxNotFound, JSON.stringify(got));
        assert.equal(got.error?.message, missing.error?.message.replace(missingLike(sA), sA));
        assert.deepEqual(((await b.call('sandbox/list', {})).result.sandboxes as { id: string }[]).map((s) => s.id).includes(sA), false);
        assert.equal((await b.call('files/read', { id: sA, path: '/root/secret.txt' })).error?.code, ErrorCodes.SandboxNotFound);
        const viaWs = await b.call('sandbox/create', { environment: 'busybox', detached: true, ttlMs: 600_000 });
        assert.ok(viaWs.result, JSON.stringify(viaWs));
        made.push(viaWs.result.sandbox.id);
        assert.equal((await as(B, 'GET', `/v1/sandboxes/${viaWs.result.sandbox.id}`)).status, 200, "what B made over WebSocket is B's over REST");
        assert.equal((await as(A, 'GET', `/v1/sandboxes/${viaWs.result.sandbox.id}`)).status, 404, '...and not A\'s');
        assert.equal((await b.call('key/list', {})).error?.code, ErrorCodes.Forbidden);
      } finally {
        b.close();
      }
    });

    it('events over WebSocket (sandbox/changed) reach only the owning key and the admin', async () => {
      const a = await RpcWs.open(wsPort(), A.secret);
      const b = await RpcWs.open(wsPort(), B.secret);
      const adm = await RpcWs.open(wsPort(), admin());
      const about = (c: RpcWs, id: string) => c.notifications.filter((n) => n.params.sandboxId === id);
      try {
        assert.equal((await as(A, 'POST', `/v1/sandboxes/${sA}/pause`)).status, 200);
        assert.equal((await as(A, 'POST', `/v1/sandboxes/${sA}/resume`)).status, 200);
        await waitFor(() => about(a, sA).length >= 2 && about(adm, sA).length >= 2, 10_000, "A's and the admin's events of A's sandbox");
        // B's own event arrives after A's were sent: had B been told of A's, it would have been by now.
        assert.equal((await as(B, 'POST', `/v1/sandboxes/${sB}/pause`)).status, 200);
        assert.equal((await as(B, 'POST', `/v1/sandboxes/${sB}/resume`)).status, 200);
        await waitFor(() => about(b, sB).length >= 2, 10_000, "B's events of its own sandbox");
        assert.deepEqual(about(b, sA), [], 'B heard of A\'s sandbox');
        assert.deepEqual(about(a, sB), [], 'A heard of B\'s sandbox');
        assert.ok(b.notifications.every((n) => JSON.stringify(n).indexOf(sA) < 0 && JSON.stringify(n).indexOf(snapA) < 0));
      } finally {
        a.close();
        b.close();
        adm.close();
      }
    });

    it('the admin sees and reaches everything', async () => {
      const all = ((await as(admin(), 'GET', '/v1/sandboxes')).json.sandboxes as { id: string }[]).map((s) => s.id);
      assert.ok(all.includes(sA) && all.includes(sB), all.join(' '));
      assert.equal((await as(admin(), 'GET', `/v1/sandboxes/${sA}`)).status, 200);
      assert.equal((await as(admin(), 'GET', `/v1/snapshots/${snapA}`)).status, 200);
      assert.equal((await as(admin(), 'GET', `/v1/executions/${execA}`)).json.state, 'running');
      assert.equal((await as(admin(), 'GET', `/v1/files/${sA}/content?path=/root/secret.txt&encoding=utf8`)).json.content, 'alice-secret');
      assert.ok(((await as(admin(), 'GET', '/v1/ports')).json.forwards as { forwardId: string }[]).some((f) => f.forwardId === fwdA));
      assert.equal((await as(admin(), 'GET', '/v1/exposures')).json.exposures.length, 2);
      assert.ok((await h.client().request(SandboxList, {})).sandboxes.some((s) => s.id === sA), 'the unix socket (CLI, extension) sees it');
    });

    it('ownership survives an agent restart, and a stop and start from a snapshot', async () => {
      assert.equal((await as(A, 'POST', `/v1/instances/${instA}/stop`)).status, 200);
      await h.stack().killAgent();
      await h.stack().startAgent();
      assert.equal((await as(A, 'POST', `/v1/instances/${instA}/resume`)).json.instance?.state, 'running');
      await refusedAsMissing(instA, (id) => as(B, 'GET', `/v1/sandboxes/${id}`), 'a restarted instance');
      await refusedAsMissing(sA, (id) => as(B, 'GET', `/v1/sandboxes/${id}`), 'sandbox/get after restart');
      await refusedAsMissing(snapA, (id) => as(B, 'GET', `/v1/snapshots/${id}`), 'snapshot/get after restart');
      assert.deepEqual(((await as(B, 'GET', '/v1/snapshots')).json.snapshots as { sandboxId: string }[]).filter((s) => s.sandboxId === sA), []);
      assert.equal((await as(A, 'GET', `/v1/sandboxes/${sA}`)).status, 200);
      assert.equal((await as(A, 'GET', '/v1/snapshots/alice-label')).json.snapshot?.id, snapA);
    });
  });

  describe('revoking a key', () => {
    it('closes each of its open WebSockets within a second, and the key opens nothing more', async () => {
      const C = await newKey('carol');
      const sC = await sandbox(C, 'carol');
      const port = new URL(h.url()).port;
      const rpc = await RpcWs.open(wsPort(), C.secret);
      const ex = await as(C, 'POST', '/v1/executions', { environment: 'busybox', command: 'echo go; sleep 120' });
      const execStream = await openWs(`ws://127.0.0.1:${port}/v1/executions/${ex.json.execId}/stream`, C.secret);
      const term = await as(C, 'POST', `/v1/sandboxes/${sC}/terminals`, { cols: 80, rows: 24 });
      const termStream = await openWs(`ws://127.0.0.1:${port}/v1/terminals/${term.json.terminalId}/stream`, C.secret);
      assert.equal((await as(C, 'POST', `/v1/sandboxes/${sC}/exposures`, { port: 8001, name: 'hold' })).status, 200);
      await waitListening(C, sC, 8001);
      // A relayed WebSocket connection through the exposure, held open by the sandbox's service.
      const relay = net.connect(Number(port), '127.0.0.1');
      let relayed = '';
      relay.on('data', (d) => (relayed += d.toString()));
      const relayClosed = new Promise<void>((r) => relay.once('close', () => r()));
      relay.write(`GET /v1/expose/hold/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nAuthorization: Bearer ${C.secret}\r\n\r\n`);
      await waitFor(() => relayed.startsWith('HTTP/1.1 101'), 20_000, 'the relayed connection to be up');

      const closes = [rpc.ws, execStream, termStream].map((ws) => closedWithin(ws, 1000));
      const t0 = Date.now();
      assert.equal((await as(admin(), 'DELETE', `/v1/keys/${C.id}`)).status, 200);
      for (const [i, what] of ['JSON-RPC', 'execution stream', 'terminal stream'].entries()) {
        const { code, reason } = await closes[i];
        assert.deepEqual({ code, reason }, { code: KEY_REVOKED_CLOSE.code, reason: KEY_REVOKED_CLOSE.reason }, what);
      }
      await Promise.race([relayClosed, new Promise((_r, reject) => setTimeout(() => reject(new Error('the relayed exposure connection stayed open')), 1000))]);
      assert.ok(Date.now() - t0 < 1500);

      assert.equal((await as(C, 'GET', '/v1/sandboxes')).status, 401);
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${wsPort()}`, C.secret), 401);
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/v1/executions/${ex.json.execId}/stream`, C.secret), 401);
      assert.equal((await get(`${h.url()}/v1/expose/hold/`, { authorization: `Bearer ${C.secret}` })).status, 401);
      await as(admin(), 'POST', `/v1/executions/${ex.json.execId}/cancel`);
    });
  });

  describe('exposures', () => {
    let sD: string;
    let before: Set<string>;
    let exposurePorts: number[] = [];
    const pids = () => [h.stack().agentPid as number, h.stack().runtimePid()];

    it('have no TCP listener behind them: the service is reachable only through the agent, with the key', async () => {
      sD = await sandbox(A, 'dora');
      before = tcpListeners(pids());
      const e = await as(A, 'POST', `/v1/sandboxes/${sD}/exposures`, { port: 8000, name: 'dora' });
      assert.equal(e.status, 200, e.text);
      await waitFor(async () => (await get(`${h.url()}/v1/expose/dora/`, { authorization: `Bearer ${A.secret}` })).status === 200, 20_000, "dora's httpd");
      const after = tcpListeners(pids());
      exposurePorts = portsOf(after).filter((p) => !portsOf(before).includes(p));
      assert.deepEqual([...after].filter((l) => !before.has(l)), [], 'the exposure opened a TCP listener on the host');
      assert.equal((await get(`${h.url()}/v1/expose/dora/`)).status, 401);
      // What stands behind it: a unix socket only root can reach.
      const dir = path.join(path.dirname(h.stack().config.runtimeSocket), 'exposures');
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      const sockets = fs.readdirSync(dir).map((f) => fs.statSync(path.join(dir, f)));
      assert.ok(sockets.length > 0 && sockets.every((s) => s.isSocket() && (s.mode & 0o777) === 0o600));
      // The detection works: an explicit port forward is a TCP listener.
      const f = await as(A, 'POST', `/v1/sandboxes/${sD}/ports`, { port: 8000 });
      assert.ok(portsOf(tcpListeners(pids())).includes(f.json.hostPort));
      await as(A, 'DELETE', `/v1/ports/${f.json.forwardId}`);
    });

    it('end with their sandbox (destroy, stop): a request afterwards is a 404, and the forward is gone too', async () => {
      const f = await as(A, 'POST', `/v1/sandboxes/${sD}/ports`, { port: 8000 });
      assert.equal((await as(A, 'DELETE', `/v1/sandboxes/${sD}`)).status, 200);
      const r = await get(`${h.url()}/v1/expose/dora/`, { authorization: `Bearer ${A.secret}` });
      assert.equal(r.status, 404, r.body);
      assert.equal(JSON.parse(r.body).error.name, 'ExecNotFound');
      assert.ok(!((await as(A, 'GET', '/v1/exposures')).json.exposures as { name: string }[]).some((x) => x.name === 'dora'));
      assert.ok(!portsOf(tcpListeners(pids())).includes(f.json.hostPort), 'the explicit forward outlived its sandbox');
      // A stop (what a TTL's snapshot-then-stop does) ends it the same way.
      const sE = await sandbox(A, 'eve');
      assert.equal((await as(A, 'POST', `/v1/sandboxes/${sE}/exposures`, { port: 8000, name: 'eve' })).status, 200);
      await waitFor(async () => (await get(`${h.url()}/v1/expose/eve/`, { authorization: `Bearer ${A.secret}` })).status === 200, 20_000, "eve's httpd");
      assert.equal((await as(A, 'POST', `/v1/sandboxes/${sE}/stop`)).status, 200);
      assert.equal((await get(`${h.url()}/v1/expose/eve/`, { authorization: `Bearer ${A.secret}` })).status, 404);
      assert.equal((await as(A, 'POST', `/v1/sandboxes/${sE}/start`)).status, 200);
      assert.equal((await get(`${h.url()}/v1/expose/eve/`, { authorization: `Bearer ${A.secret}` })).status, 404, 'a restarted sandbox is not exposed again by itself');
    });

    it('are never served by whoever binds a port the exposure used', async () => {
      // Bind every port the exposure had the agent or runtime listen on (none, by design) and ask again.
      const impostors = await Promise.all(
        exposurePorts.map(
          (p) =>
            new Promise<http.Server>((resolve, reject) => {
              const s = http.createServer((_q, res) => res.end('impostor'));
              s.once('error', reject);
              s.listen(p, '127.0.0.1', () => resolve(s));
            }),
        ),
      );
      try {
        const r = await get(`${h.url()}/v1/expose/dora/`, { authorization: `Bearer ${A.secret}` });
        assert.notEqual(r.body, 'impostor');
        assert.equal(r.status, 404);
      } finally {
        for (const s of impostors) s.close();
      }
      assert.deepEqual(exposurePorts, []);
    });
  });

  describe('control characters in paths and ids', () => {
    // A sandbox and snapshot of their own, so every refusal below is about the characters alone.
    let sP: string;
    let snapP: string;
    before(async () => {
      sP = await sandbox(A, 'paul');
      const r = await as(A, 'POST', `/v1/sandboxes/${sP}/snapshots`, {});
      assert.equal(r.status, 200, r.text);
      snapP = r.json.snapshot.id;
    });
    const BAD = ['\u0000', '\u0001', '\n', '\u001f', '\u007f'];
    const cases: { what: string; field: string; rest: (bad: string) => [string, string, unknown?]; rpc: (bad: string) => [string, unknown] }[] = [
      { what: 'files/write path', field: 'path', rest: (x) => ['POST', `/v1/sandboxes/${sP}/files`, { path: `/root/a${x}b`, content: 'x' }], rpc: (x) => ['files/write', { sandboxId: sP, path: `/root/a${x}b`, content: 'x' }] },
      { what: 'files/read path', field: 'path', rest: (x) => ['GET', `/v1/files/${sP}/content?path=${encodeURIComponent(`/root/a${x}`)}`], rpc: (x) => ['files/read', { id: sP, path: `/root/a${x}` }] },
      { what: 'files/list path', field: 'path', rest: (x) => ['GET', `/v1/files/${sP}/list?path=${encodeURIComponent(`/ro${x}ot`)}`], rpc: (x) => ['files/list', { id: sP, path: `/ro${x}ot` }] },
      { what: 'files/remove path', field: 'path', rest: (x) => ['DELETE', `/v1/sandboxes/${sP}/files?path=${encodeURIComponent(`/root/a${x}`)}`], rpc: (x) => ['files/remove', { sandboxId: sP, path: `/root/a${x}` }] },
      { what: 'files/read id (path segment)', field: 'id', rest: (x) => ['GET', `/v1/files/${encodeURIComponent(`sbx${x}`)}/content?path=/a`], rpc: (x) => ['files/read', { id: `sbx${x}`, path: '/a' }] },
      { what: 'exec collect', field: 'collect.0', rest: (x) => ['POST', '/v1/executions/run', { environment: 'busybox', command: 'true', collect: [`/tmp/a${x}`] }], rpc: (x) => ['exec/run', { environment: 'busybox', command: 'true', collect: [`/tmp/a${x}`] }] },
      { what: 'exec files path', field: 'files.0.path', rest: (x) => ['POST', '/v1/executions/run', { environment: 'busybox', command: 'true', files: [{ path: `a${x}`, content: '' }] }], rpc: (x) => ['exec/run', { environment: 'busybox', command: 'true', files: [{ path: `a${x}`, content: '' }] }] },
      { what: 'exec cwd', field: 'cwd', rest: (x) => ['POST', '/v1/executions', { environment: 'busybox', command: 'true', cwd: `/tmp${x}` }], rpc: (x) => ['exec/start', { environment: 'busybox', command: 'true', cwd: `/tmp${x}` }] },
      { what: 'sandbox/exec cwd', field: 'cwd', rest: (x) => ['POST', `/v1/sandboxes/${sP}/exec`, { command: 'true', cwd: `/tmp${x}` }], rpc: (x) => ['sandbox/exec', { sandboxId: sP, command: 'true', cwd: `/tmp${x}` }] },
      { what: 'sandbox/create cwd', field: 'cwd', rest: (x) => ['POST', '/v1/sandboxes', { environment: 'busybox', cwd: `/a${x}` }], rpc: (x) => ['sandbox/create', { environment: 'busybox', cwd: `/a${x}` }] },
      { what: 'sandbox/create files path', field: 'files.0.path', rest: (x) => ['POST', '/v1/sandboxes', { environment: 'busybox', files: [{ path: `/a${x}`, content: '' }] }], rpc: (x) => ['sandbox/create', { environment: 'busybox', files: [{ path: `/a${x}`, content: '' }] }] },
      { what: 'terminal cwd', field: 'cwd', rest: (x) => ['POST', `/v1/sandboxes/${sP}/terminals`, { cols: 80, rows: 24, cwd: `/a${x}` }], rpc: (x) => ['terminal/open', { sandboxId: sP, cols: 80, rows: 24, cwd: `/a${x}` }] },
      { what: 'exec/branch cwd', field: 'cwd', rest: (x) => ['POST', `/v1/snapshots/${snapP}/run`, { command: 'true', count: 1, strategy: 'map', cwd: `/a${x}` }], rpc: (x) => ['exec/branch', { snapshotId: snapP, command: 'true', count: 1, strategy: 'map', cwd: `/a${x}` }] },
      { what: 'diff a', field: 'a', rest: (x) => ['GET', `/v1/diff?a=${encodeURIComponent(`sbx${x}`)}&b=${sP}`], rpc: (x) => ['branch/diff', { a: `sbx${x}`, b: sP }] },
      { what: 'merge from', field: 'from', rest: (x) => ['POST', `/v1/sandboxes/${sP}/merge`, { from: `sbx${x}` }], rpc: (x) => ['branch/merge', { from: `sbx${x}`, into: sP }] },
      { what: 'merge into (path segment)', field: 'into', rest: (x) => ['POST', `/v1/sandboxes/${encodeURIComponent(`sbx${x}`)}/merge`, { from: sP }], rpc: (x) => ['branch/merge', { from: sP, into: `sbx${x}` }] },
      { what: 'ssh sandboxId', field: 'sandboxId', rest: (x) => ['POST', `/v1/sandboxes/${encodeURIComponent(`sbx${x}`)}/ssh`], rpc: (x) => ['ssh/prepare', { sandboxId: `sbx${x}` }] },
      { what: 'sandbox/get sandboxId', field: 'sandboxId', rest: (x) => ['GET', `/v1/sandboxes/${encodeURIComponent(`sbx${x}`)}`], rpc: (x) => ['sandbox/get', { sandboxId: `sbx${x}` }] },
      { what: 'snapshot label', field: 'label', rest: (x) => ['POST', `/v1/sandboxes/${sP}/snapshots`, { label: `l${x}` }], rpc: (x) => ['snapshot/create', { sandboxId: sP, label: `l${x}` }] },
      { what: 'snapshot/branch snapshotId', field: 'snapshotId', rest: (x) => ['POST', `/v1/snapshots/${encodeURIComponent(`l${x}`)}/branch`, { count: 1 }], rpc: (x) => ['snapshot/branch', { snapshotId: `l${x}`, count: 1 }] },
      { what: 'exec/get execId', field: 'execId', rest: (x) => ['GET', `/v1/executions/${encodeURIComponent(`e${x}`)}`], rpc: (x) => ['exec/get', { execId: `e${x}` }] },
      { what: 'command argv (NUL)', field: 'command', rest: () => ['POST', '/v1/executions/run', { environment: 'busybox', command: ['echo', 'a\u0000b'] }], rpc: () => ['exec/run', { environment: 'busybox', command: ['echo', 'a\u0000b'] }] },
      { what: 'env value (NUL)', field: 'env.X', rest: () => ['POST', '/v1/executions/run', { environment: 'busybox', command: 'true', env: { X: 'a\u0000b' } }], rpc: () => ['exec/run', { environment: 'busybox', command: 'true', env: { X: 'a\u0000b' } }] },
    ];

    it('are refused with 400 InvalidParams naming the field, on every path field of the REST API', async () => {
      for (const c of cases) {
        for (const bad of BAD) {
          const [verb, p, body] = c.rest(bad);
          const r = await as(A, verb, p, body);
          const label = `${c.what} with ${JSON.stringify(bad)}: ${r.status} ${r.text}`;
          assert.equal(r.status, 400, label);
          assert.equal(r.json?.error?.code, ErrorCodes.InvalidParams, label);
          assert.ok(r.json.error.message.includes(c.field), label);
        }
      }
    });

    it('are refused with -32602 naming the field over JSON-RPC (a key\'s WebSocket, the unix socket)', async () => {
      const ws = await RpcWs.open(wsPort(), A.secret);
      const unix: RpcClient = await h.stack().client();
      const overUnix = async (method: string, params: unknown) => {
        const type = AgentRequests.find((r) => r.method === method) as unknown as Parameters<RpcClient['request']>[0];
        try {
          return { result: await unix.request(type, params as never) };
        } catch (e) {
          return { error: e instanceof ProtocolError ? { code: e.code, message: e.message } : { code: 0, message: String(e) } };
        }
      };
      try {
        for (const c of cases) {
          for (const bad of BAD) {
            const [method, params] = c.rpc(bad);
            for (const [who, call] of [['key over WebSocket', (m: string, p: unknown) => ws.call(m, p)], ['unix socket', overUnix]] as const) {
              const r = await call(method, params);
              const label = `${c.what} (${who}) with ${JSON.stringify(bad)}: ${JSON.stringify(r)}`;
              assert.equal(r.error?.code, ErrorCodes.InvalidParams, label);
              assert.ok(r.error?.message.includes(c.field), label);
            }
          }
        }
      } finally {
        ws.close();
        unix.close();
      }
    });

    it('on a stream\'s path segment are a 400 too', async () => {
      const port = new URL(h.url()).port;
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/v1/executions/e%00x/stream`, A.secret), 400);
      assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/v1/terminals/t%01x/stream`, A.secret), 400);
    });
  });
});
