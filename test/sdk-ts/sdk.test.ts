// The TypeScript SDK against the real agent and runtime: every execution mode, streaming by callbacks
// and by async iterators, `await using` (the sandbox is destroyed when the block throws), files,
// snapshots and branches, map/race, instances, terminals, ports and exposures, typed errors, batches,
// and a retry through a real agent restart.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  AmbiguousReferenceError,
  CancelledError,
  EnvironmentError,
  MergeConflictError,
  SandboxNotFoundError,
  SnapshotNotFoundError,
  UnifiedFaaSClient,
  type ExecResult,
} from '../../sdk/ts/src';
import { sleep } from '../integration/stack';
import { useSdkStack } from './sdkStack';

describe('TypeScript SDK (real agent)', function () {
  this.timeout(180_000);
  const s = useSdkStack();
  const leftovers: string[] = [];
  s.beforeStop(async () => {
    for (const id of leftovers) await s.sdk().call('sandbox/destroy', { sandboxId: id }).catch(() => {});
  });

  it('destroys a sandbox made with `await using` when the block throws', async () => {
    const c = s.sdk();
    let id = '';
    await assert.rejects(
      (async () => {
        await using sbx = await c.sandboxes.create({ environment: 'busybox' });
        id = sbx.id;
        assert.equal((await sbx.exec('echo inside')).stdout, 'inside\n');
        throw new Error('the body failed');
      })(),
      /the body failed/,
    );
    assert.match(id, /^sbx-/);
    assert.ok(await destroyed(id), `${id} outlived its block`);
    {
      await using sbx = await c.sandboxes.create({ environment: 'busybox' });
      id = sbx.id;
      assert.ok(!(await destroyed(id)));
    }
    assert.ok(await destroyed(id), 'and when it ends normally');
  });

  /** Destroyed (or gone from the catalog altogether, as a sandbox with no snapshots is). */
  async function destroyed(id: string): Promise<boolean> {
    try {
      return (await s.sdk().sandboxes.get(id)).info?.state === 'destroyed';
    } catch (e) {
      if (e instanceof SandboxNotFoundError) return true;
      throw e;
    }
  }

  it('runs in every mode: ephemeral, cached, checkpointed, branched (map, race), persistent', async () => {
    const c = s.sdk();
    const eph = await c.executeEphemeral('echo $((6*7)); exit 3', 'busybox');
    assert.equal(eph.stdout, '42\n');
    assert.equal(eph.exitCode, 3);

    const cmd = 'echo cached-$RANDOM';
    const first = await c.executeCached(cmd, 'busybox');
    const second = await c.executeCached(cmd, 'busybox');
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.equal(second.stdout, first.stdout);

    const cp1 = await c.executeCheckpointed('echo 1 > /root/n; cat /root/n', 'busybox');
    assert.match(cp1.checkpointId ?? '', /^snap-/);
    const cp2 = await c.executeCheckpointed('echo $(( $(cat /root/n) + 1 )) > /root/n; cat /root/n', 'busybox', cp1.checkpointId);
    assert.equal(cp2.stdout, '2\n');

    const snap = c.snapshots.ref(cp2.checkpointId as string);
    const map = await snap.map(['a', 'b', 'c'], 'echo $(cat /root/n)-$FORKSPACE_INPUT');
    assert.deepEqual(map.results.map((r) => r.stdout), ['2-a\n', '2-b\n', '2-c\n']);
    const race = await c.branches.race(snap.id, 3, 'test "$(cat /root/n)" = 2');
    assert.equal(race.strategy, 'race');
    assert.equal(race.results.length, 3);
    assert.notEqual(race.winner, null);
    assert.equal(race.results[race.winner as number].exitCode, 0);

    const inst = await c.instances.start({ environment: 'busybox' });
    leftovers.push(inst.id);
    await c.executePersistent('echo kept > /root/state', inst);
    assert.equal((await inst.exec('cat /root/state')).stdout, 'kept\n');
    assert.equal((await inst.runCode('echo from code')).stdout, 'from code\n');
    await inst.destroy();
  });

  it('streams output to callbacks and as an async iterator, and resumes from a sequence number', async () => {
    const c = s.sdk();
    const out: string[] = [];
    const err: string[] = [];
    const r = await c.run('for i in 1 2 3; do echo out-$i; echo err-$i >&2; sleep 0.05; done', { environment: 'busybox', onStdout: (d) => out.push(d), onStderr: (d) => err.push(d) });
    assert.equal(out.join(''), 'out-1\nout-2\nout-3\n');
    assert.equal(err.join(''), 'err-1\nerr-2\nerr-3\n');
    assert.equal(r.stdout, out.join(''));

    const handle = await c.start('for i in 1 2 3 4 5; do echo $i; sleep 0.05; done', { environment: 'busybox' });
    const seqs: number[] = [];
    let text = '';
    for await (const chunk of handle) {
      seqs.push(chunk.seq);
      text += chunk.data;
    }
    assert.equal(text, '1\n2\n3\n4\n5\n');
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    const tail: number[] = [];
    for await (const chunk of handle.output({ after: 2 })) tail.push(chunk.seq);
    assert.deepEqual(tail, seqs.slice(2));
    assert.equal((await c.execution(handle.execId).wait()).stdout, text);
  });

  it('chains fluently and applies the limits (64M of memory: OOM-killed)', async () => {
    const c = s.sdk();
    const r = await c.sandbox('python:3.11').withMemory('64M').withTimeout(30_000).run(['python3', '-c', 'b = bytearray(256 << 20); print("survived")']);
    assert.equal(r.oomKilled, true, JSON.stringify(r));
    const t = await c.sandbox('busybox').withTimeout('1s').run('sleep 10');
    assert.equal(t.timedOut, true);
    const f = await c.sandbox('busybox').withFiles({ '/root/in.txt': 'payload' }).withEnv({ WHO: 'fluent' }).withCwd('/root').run('cat in.txt; echo " $WHO"');
    assert.equal(f.stdout, 'payload fluent\n');
  });

  it('moves files in chunks, snapshots, restores, branches, diffs and merges through handles', async () => {
    const c = s.sdk();
    await using sbx = await c.sandboxes.create({ environment: 'busybox' });
    const big = new Uint8Array(9 * 1024 * 1024).map((_, i) => (i * 7) % 251);
    assert.equal((await sbx.files.write('/root/big.bin', big)).size, big.length);
    const back = await sbx.files.read('/root/big.bin');
    assert.equal(back.length, big.length);
    assert.ok(Buffer.from(back).equals(Buffer.from(big)), 'the file came back different');
    await sbx.files.write('/root/f', 'base\n');
    assert.ok((await sbx.files.list('/root')).some((e) => e.name === 'big.bin' && e.size === big.length));
    assert.equal(await sbx.files.remove('/root/big.bin'), true);

    const snap = await sbx.snapshot({ label: 'sdk-base' });
    assert.ok(snap.timings.pauseMs >= 0);
    assert.equal(await snap.files.readText('/root/f'), 'base\n');
    assert.equal((await c.snapshots.get('sdk-base')).id, snap.id);
    const [a, b] = await snap.branch(2);
    leftovers.push(a.id, b.id);
    await a.files.write('/root/a', 'A\n');
    await b.exec('echo changed > /root/f');
    const diff = await a.diff(b);
    assert.equal(diff.base, snap.id);
    assert.deepEqual(diff.changes.map((x) => `${x.path}:${x.a}:${x.b}`).sort(), ['/root/a:added:unchanged', '/root/f:unchanged:modified']);
    const merged = await a.merge(b);
    assert.deepEqual(merged.applied, ['/root/f']);
    assert.equal(await a.files.readText('/root/f'), 'changed\n');
    await a.exec('echo mine > /root/f');
    await b.exec('echo theirs > /root/f');
    await assert.rejects(a.merge(b), (e: MergeConflictError) => e instanceof MergeConflictError && e.conflicts[0]?.path === '/root/f');
    const restored = await snap.restore();
    leftovers.push(restored.id);
    assert.equal((await restored.exec('cat /root/f')).stdout, 'base\n');
    for (const x of [a, b, restored]) await x.destroy();
  });

  it('manages instances: start from a snapshot, stop, resume, pause', async () => {
    const c = s.sdk();
    const base = await c.instances.start({ environment: 'busybox' });
    leftovers.push(base.id);
    await base.exec('echo 7 > /root/v');
    const snap = await base.snapshot({ label: 'sdk-inst' });
    const inst = await c.instances.start(snap.id);
    leftovers.push(inst.id);
    assert.equal((await inst.exec('cat /root/v')).stdout, '7\n');
    const stopped = await inst.stop();
    assert.match(stopped.id, /^snap-/);
    assert.equal((await c.instances.get(inst.id)).info?.state, 'stopped');
    await inst.resume();
    assert.equal((await inst.exec('cat /root/v')).stdout, '7\n');
    await c.instances.pause(inst.id);
    assert.equal((await c.instances.get(inst.id)).info?.state, 'paused');
    await c.instances.resume(inst.id);
    assert.ok((await c.instances.list()).some((i) => i.id === inst.id && i.state === 'running'));
    await c.instances.destroy(inst.id);
    await base.destroy();
  });

  it('opens terminals, forwards ports and exposes HTTP services', async () => {
    const c = s.sdk();
    await using sbx = await c.sandboxes.create({ environment: 'python', command: ['python3', '-m', 'http.server', '8000', '--directory', '/root'] });
    await sbx.files.write('/root/index.html', 'served from a sandbox\n');
    {
      await using term = await sbx.terminal({ cols: 100, rows: 30 });
      const seen: string[] = [];
      const done = term.onData((d) => seen.push(d));
      await term.write('echo term-$((40+2))\n');
      await term.write('exit\n');
      assert.equal(await done, 0);
      assert.match(seen.join(''), /term-42/);
    }
    let body = '';
    for (let i = 0; i < 50 && !body; i++) {
      const fwd = await sbx.forwardPort(8000).catch(() => undefined);
      if (fwd) {
        body = await fetch(`http://127.0.0.1:${fwd.hostPort}/index.html`).then((r) => (r.ok ? r.text() : ''), () => '');
        await c.ports.unforward(fwd.forwardId);
      }
      if (!body) await sleep(100);
    }
    assert.equal(body, 'served from a sandbox\n');
    const exposure = await sbx.expose(8000, 'sdk-web');
    const unauth = await fetch(exposure.url + 'index.html');
    assert.equal(unauth.status, 401);
    const viaAgent = await fetch(exposure.url + 'index.html', { headers: { authorization: `Bearer ${s.apiKey()}` } });
    assert.equal(await viaAgent.text(), 'served from a sandbox\n');
    assert.ok((await c.exposures.list()).some((e) => e.name === 'sdk-web'));
    assert.equal(await c.exposures.hide('sdk-web'), true);
  });

  it('raises typed errors that say what to do', async () => {
    const c = s.sdk();
    await assert.rejects(c.sandboxes.get('sbx-000000000000'), SandboxNotFoundError);
    await assert.rejects(c.run('true', { environment: 'nope' }), (e: EnvironmentError) => e instanceof EnvironmentError && /known environments/.test(e.message));
    await assert.rejects(c.executeCheckpointed('true', undefined, 'no-such-snapshot'), (e: Error) => e instanceof SnapshotNotFoundError && /no-such-snapshot/.test(e.message));
    const sbx = await c.sandboxes.create({ environment: 'busybox' });
    leftovers.push(sbx.id);
    await sbx.snapshot({ label: 'twice' });
    await sbx.snapshot({ label: 'twice' });
    await assert.rejects(c.snapshots.get('twice'), (e: AmbiguousReferenceError) => e instanceof AmbiguousReferenceError && e.candidates.length === 2);
    await sbx.destroy();
  });

  it('batches, maps and races (the losers are cancelled)', async () => {
    const c = s.sdk();
    const settled = await c.runMany(['echo a', 'echo b', 'exit 4'], { environment: 'busybox' });
    assert.deepEqual(settled.map((r) => (r as ExecResult).exitCode), [0, 0, 4]);
    const mixed = await c.batch(['busybox', 'nope'], (env) => c.run('echo x', { environment: env }));
    assert.equal((mixed[0] as ExecResult).stdout, 'x\n');
    assert.ok(mixed[1] instanceof EnvironmentError);
    const squares = await c.map([1, 2, 3, 4], (n) => c.run(`echo $((${n}*${n}))`, { environment: 'busybox' }).then((r) => Number(r.stdout)), { concurrency: 2 });
    assert.deepEqual(squares, [1, 4, 9, 16]);
    let loserError: unknown;
    const race = await c.race([
      (signal) => c.run('sleep 0.2; exit 1', { environment: 'busybox', signal }),
      (signal) => c.run('sleep 0.3; echo winner', { environment: 'busybox', signal }),
      (signal) => c.run('sleep 60', { environment: 'busybox', signal }).catch((e) => ((loserError = e), Promise.reject(e))),
    ]);
    assert.equal(race.winner, 1);
    assert.equal((race.value as ExecResult).stdout, 'winner\n');
    for (let i = 0; i < 100 && !loserError; i++) await sleep(50);
    assert.ok(loserError instanceof CancelledError, `the loser ended with ${loserError}`);
    const snaps = await Promise.all([1, 2].map(async () => (await c.executeCheckpointed('true', 'busybox')).checkpointId as string));
    const deleted = await c.snapshots.deleteMany([...snaps, 'snap-000000000000']);
    assert.deepEqual(deleted.slice(0, 2).map((d) => (d as { deleted: boolean }).deleted), [true, true]);
    assert.ok(deleted[2] instanceof SnapshotNotFoundError);
  });

  it('retries through an agent restart (connection refused, then served)', async () => {
    const c = s.sdk({ retry: { baseDelayMs: 100, maxDelayMs: 500, maxRetries: 20 } });
    await s.stack().killAgent();
    const pending = c.environments.list();
    await sleep(300);
    await s.stack().startAgent();
    const envs = await pending;
    assert.ok(envs.some((e) => e.name === 'busybox'));
  });

  it('runs the README\'s example (sdk/ts/examples/quickstart.ts)', async () => {
    const example = path.resolve(__dirname, '..', '..', 'sdk', 'ts', 'examples', 'quickstart.ts');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', example], {
      env: { ...process.env, FORKSPACE_API_KEY: s.apiKey(), FORKSPACE_URL: s.url() },
    });
    assert.match(stdout, /^ephemeral: 42 \(exit 0, /m);
    assert.match(stdout, /^snapshot: snap-/m);
    assert.match(stdout, /^checkpointed: step 1 -> step 2 \(now snap-/m);
    assert.match(stdout, /^branched: a: 2, b: 2, c: 2 /m);
  });

  it('runs through the unified client in direct mode', async () => {
    const u = new UnifiedFaaSClient({ mode: 'auto', apiKey: s.apiKey(), platformUrl: s.url() });
    assert.equal((await u.execute('echo unified', { environment: 'busybox' })).stdout, 'unified\n');
  });
});
