// Direct HTTP API executions: async start, long-poll results, cancel, and the output stream. A stream
// cut by closing its socket (twice, mid-run) and reopened with ?after=<last seq> gives every chunk
// exactly once, in order, matching the result; replay after the end, past the end, and across dropped
// output (a gap frame names what is gone) behave as documented.
import { strict as assert } from 'node:assert';
import WebSocket from 'ws';
import { ExecStart, ExecGet, type ExecStreamFrame } from '../../agent/src/protocol';
import { useHttpStack } from './httpStack';

interface Opened {
  ws: WebSocket;
  frames: ExecStreamFrame[];
  closed: Promise<void>;
  /** Resolves when `n` output frames arrived (or the stream ended). */
  outputs(n: number): Promise<void>;
}

describe('Direct HTTP API: executions and resumable streams (real agent)', function () {
  this.timeout(180_000);
  const h = useHttpStack();

  function open(execId: string, after: number): Promise<Opened> {
    const url = `${h.url().replace('http', 'ws')}/v1/executions/${execId}/stream?after=${after}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${h.adminToken()}` } });
      const frames: ExecStreamFrame[] = [];
      const waiters: (() => void)[] = [];
      ws.on('message', (d) => {
        frames.push(JSON.parse(d.toString()) as ExecStreamFrame);
        waiters.forEach((w) => w());
      });
      const closed = new Promise<void>((r) => ws.once('close', () => (waiters.forEach((w) => w()), r())));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
      ws.once('open', () =>
        resolve({
          ws,
          frames,
          closed,
          outputs: (n) =>
            new Promise<void>((r) => {
              const check = () => (frames.filter((f) => f.type === 'output').length >= n || frames.some((f) => f.type === 'end') || ws.readyState === ws.CLOSED ? r() : undefined);
              waiters.push(check);
              check();
            }),
        }),
      );
    });
  }

  const start = async (command: string) => {
    const r = await h.request('POST', '/v1/executions', { body: { environment: 'busybox', command } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.state, 'running');
    return r.json.execId as string;
  };

  it('resumes a stream cut twice mid-run from its last sequence number: no loss, no duplicates', async () => {
    const execId = await start('i=1; while [ $i -le 80 ]; do echo line-$i; i=$((i+1)); sleep 0.02; done; echo done >&2');
    const got: ExecStreamFrame[] = [];
    let after = 0;
    let cuts = 0;
    for (;;) {
      const s = await open(execId, after);
      if (cuts < 2) {
        await s.outputs(5);
        s.ws.terminate(); // the TCP connection is destroyed: no close handshake
        cuts++;
      }
      await s.closed;
      for (const f of s.frames) {
        got.push(f);
        if (f.type === 'output') after = f.seq;
      }
      if (s.frames.some((f) => f.type === 'end')) break;
    }
    assert.equal(cuts, 2);
    const outputs = got.filter((f): f is Extract<ExecStreamFrame, { type: 'output' }> => f.type === 'output');
    assert.deepEqual(
      outputs.map((f) => f.seq),
      outputs.map((_, i) => i + 1),
      'sequence numbers must run 1, 2, 3, ... with none missing or repeated',
    );
    const end = got.find((f): f is Extract<ExecStreamFrame, { type: 'end' }> => f.type === 'end');
    assert.ok(end && end.execution.result, 'no end frame with the result');
    assert.equal(end.execution.state, 'finished');
    assert.equal(end.execution.lastSeq, outputs.length);
    const stdout = outputs.filter((f) => f.stream === 'stdout').map((f) => f.data).join('');
    assert.equal(stdout, end.execution.result.stdout);
    assert.equal(stdout, Array.from({ length: 80 }, (_, i) => `line-${i + 1}\n`).join(''));
    assert.equal(outputs.filter((f) => f.stream === 'stderr').map((f) => f.data).join(''), 'done\n');
    assert.equal(got.filter((f) => f.type === 'gap').length, 0);

    // After the end: a replay from any point, and from past the end (only the end frame).
    const replay = await open(execId, 10);
    await replay.closed;
    assert.deepEqual(
      replay.frames.filter((f) => f.type === 'output').map((f) => (f as { seq: number }).seq),
      outputs.slice(10).map((f) => f.seq),
    );
    const past = await open(execId, outputs.length + 5);
    await past.closed;
    assert.deepEqual(past.frames.map((f) => f.type), ['end']);

    const log = await h.request('GET', `/v1/executions/${execId}/output?after=75&limit=3`);
    assert.equal(log.status, 200, log.text);
    assert.deepEqual(log.json.chunks.map((c: { seq: number }) => c.seq), [76, 77, 78]);
    assert.equal(log.json.done, false, 'more chunks follow 78');
    assert.equal(log.json.lastSeq, outputs.length);
  });

  it('starts at once, answers a long poll when the run ends, and cancels from another request', async () => {
    const slow = await start('sleep 0.5; echo slept');
    const early = await h.request('GET', `/v1/executions/${slow}`);
    assert.equal(early.json.state, 'running');
    const done = await h.request('GET', `/v1/executions/${slow}?waitMs=30000`);
    assert.equal(done.json.state, 'finished');
    assert.equal(done.json.result.stdout, 'slept\n');

    const forever = await start('sleep 60');
    const cancel = await h.request('POST', `/v1/executions/${forever}/cancel`);
    assert.deepEqual(cancel.json, { execId: forever, cancelled: true });
    const after = await h.request('GET', `/v1/executions/${forever}?waitMs=30000`);
    assert.equal(after.json.state, 'cancelled');
    assert.equal(after.json.error.name, 'RequestCancelled');
    const again = await h.request('POST', `/v1/executions/${forever}/cancel`);
    assert.equal(again.json.cancelled, false);

    // The same registry serves JSON-RPC: started there, read here.
    const { execId } = await h.client().request(ExecStart, { environment: 'busybox', command: 'echo from rpc' });
    const viaRpc = await h.client().request(ExecGet, { execId, waitMs: 30_000 });
    assert.equal(viaRpc.result?.stdout, 'from rpc\n');
    const viaHttp = await h.request('GET', `/v1/executions/${execId}`);
    assert.equal(viaHttp.json.result.stdout, 'from rpc\n');
  });

  it('says which output is gone when a reader comes back after more than the buffer', async () => {
    // 6 MB of output: the log keeps the last 4 MiB, the result keeps it all (up to maxOutputBytes).
    const execId = await start('head -c 6000000 /dev/zero | tr "\\0" x');
    const r = await h.request('GET', `/v1/executions/${execId}?waitMs=60000`);
    assert.equal(r.json.result.stdout.length, 6_000_000);
    const s = await open(execId, 0);
    await s.closed;
    const gap = s.frames[0];
    assert.equal(gap.type, 'gap');
    const outputs = s.frames.filter((f): f is Extract<ExecStreamFrame, { type: 'output' }> => f.type === 'output');
    assert.ok(gap.type === 'gap' && gap.from === 1 && gap.to === outputs[0].seq - 1, JSON.stringify(gap));
    outputs.forEach((f, i) => i > 0 && assert.equal(f.seq, outputs[i - 1].seq + 1));
    const kept = outputs.reduce((n, f) => n + f.data.length, 0);
    assert.ok(kept <= 4 * 1024 * 1024 && kept > 3 * 1024 * 1024, `kept ${kept}`);
    assert.equal(s.frames[s.frames.length - 1].type, 'end');
  });

  it('refuses a stream of an unknown execution or with a bad ?after (404/400 before upgrading)', async () => {
    await assert.rejects(open('ex-nope', 0), /HTTP 404/);
    const execId = await start('true');
    await assert.rejects(open(execId, -1), /HTTP 400/);
  });
});
