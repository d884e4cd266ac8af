// Warm pools and cached results, side by side in one run: exec/run of `true` through the agent cold (no
// pool) and from a warm pool (back to back, so the pool refills while runs go on; and with 50 ms between
// runs), the same through the runtime socket, a cached-result hit, and the baselines (plain spawn, bwrap).
// Then a branch taken from a snapshot pool (thaw + hand-over) against a CRIU restore of the same snapshot.
// Prints medians and ratios; writes bench/results/pools.json and .md.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExecRun, NdjsonTransport, PoolConfigure, PoolList, PoolSnapshot, RpcClient, SandboxCreate, SandboxDestroy, SnapshotCreate, SnapshotDelete, SnapshotRestore } from '../agent/src/protocol';
import { RtSandboxRun } from '../agent/src/protocol/runtime';
import { ROOT, envRootfs, sleep, Stack, waitFor } from '../test/integration/stack';
import { summarize, table, time, type Sample } from './stats';

const N = Number(process.env.BENCH_N ?? 200);
const N_RESTORE = Number(process.env.BENCH_N_RESTORE ?? 30);
const PYTHON_IDLE = 'import time\nx = list(range(100000))\nprint("ready", flush=True)\nwhile True: time.sleep(1)';

async function sample(name: string, n: number, fn: () => Promise<unknown> | unknown, gapMs = 0, warmup = 5): Promise<Sample> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    if (gapMs) await sleep(gapMs);
    ms.push(await time(fn));
  }
  return { name, ms };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const stack = await Stack.start();
  try {
    const client = await stack.client();
    const exec = (extra: object = {}) => client.request(ExecRun, { environment: 'busybox', command: ['true'], ...extra });
    await exec(); // brings the runtime up
    const rtSocket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(stack.config.runtimeSocket);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const rt = new RpcClient(new NdjsonTransport(rtSocket), false);
    let i = 0;
    const rtRun = () => rt.request(RtSandboxRun, { execId: `bench-${i++}`, environment: 'busybox', argv: ['true'] });
    const rootfs = envRootfs('busybox');
    const bwrapArgs = ['--unshare-all', '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'];
    execFileSync('bwrap', bwrapArgs);

    const samples: Sample[] = [];
    samples.push(await sample('plain spawn of /bin/true', N, () => run('/bin/true', [])));
    samples.push(await sample('bwrap --unshare-all, busybox rootfs', N, () => run('bwrap', bwrapArgs)));
    samples.push(await sample('agent exec/run, cold (no pool)', N, () => exec()));
    samples.push(await sample('runtime sandbox/run, cold (no pool)', N, rtRun));

    await client.request(PoolConfigure, { environment: 'busybox', min: 8, max: 8 });
    const ready = async () => (await client.request(PoolList, {})).pools.find((p) => p.environment === 'busybox')?.ready ?? 0;
    await waitFor(async () => (await ready()) >= 8, 30_000, 'the pool to fill');
    let pooled = 0;
    const counted = async () => {
      const r = await exec();
      if (r.pooled) pooled++;
    };
    samples.push(await sample('agent exec/run from the warm pool, 50 ms apart', N, counted, 50));
    const spaced = pooled;
    pooled = 0;
    samples.push(await sample('agent exec/run from the warm pool, back to back (refilling)', N, counted));
    const backToBack = pooled;
    await waitFor(async () => (await ready()) >= 8, 30_000, 'the pool to refill');
    samples.push(await sample('runtime sandbox/run from the warm pool, 50 ms apart', N, rtRun, 50));
    await client.request(PoolConfigure, { environment: 'busybox', min: 0, max: 0 });

    await exec({ mode: 'cached', command: ['echo', 'cached'] });
    samples.push(await sample('agent exec/run, cached-result hit', N, () => exec({ mode: 'cached', command: ['echo', 'cached'] })));

    // Snapshot pools: restore one sandbox from a snapshot of an idle Python process, by CRIU and by thawing
    // a frozen copy. The sandbox made each time is destroyed outside the timed part.
    const { sandbox } = await client.request(SandboxCreate, { environment: 'python', command: ['python3', '-c', PYTHON_IDLE], detached: true });
    await sleep(1500);
    const { snapshot } = await client.request(SnapshotCreate, { sandboxId: sandbox.id });
    const restoreSamples = async (name: string, pooled: boolean): Promise<Sample> => {
      const ms: number[] = [];
      for (let k = 0; k < N_RESTORE + 2; k++) {
        if (pooled) await waitFor(async () => ((await client.request(PoolList, {})).snapshots[0]?.ready ?? 0) >= 1, 30_000, 'a frozen copy');
        let id = '';
        const t = await time(async () => {
          const r = await client.request(SnapshotRestore, { snapshotId: snapshot.id, detached: true });
          if (r.pooled !== pooled) throw new Error(`expected pooled=${pooled}`);
          id = r.sandboxId;
        });
        await client.request(SandboxDestroy, { sandboxId: id });
        if (k >= 2) ms.push(t); // two warm-up rounds
      }
      return { name, ms };
    };
    const criuSample = await restoreSamples('agent snapshot/restore by CRIU (python, idle)', false);
    await client.request(PoolSnapshot, { snapshotId: snapshot.id, size: 2 });
    const pooledSample = await restoreSamples('agent snapshot/restore from the snapshot pool (thaw)', true);
    await client.request(PoolSnapshot, { snapshotId: snapshot.id, size: 0 });
    await client.request(SandboxDestroy, { sandboxId: sandbox.id });
    await client.request(SnapshotDelete, { snapshotId: snapshot.id });

    const spawnBase = samples[0];
    const cold = samples[2];
    const rows = samples.map((s) => ({ ...summarize(s, spawnBase), vsCold: summarize(s, cold).ratio }));
    const restoreRows = [summarize(criuSample, criuSample), summarize(pooledSample, criuSample)];
    const md =
      table(rows, 'vs plain spawn') +
      '\n\n' +
      rows.map((r) => `- ${r.name}: ${r.vsCold?.toFixed(2)}x cold agent exec`).join('\n') +
      `\n- pool hits: ${spaced}/${N} spaced, ${backToBack}/${N} back to back` +
      '\n\n' +
      table(restoreRows, 'vs CRIU restore');
    const host = { kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: os.cpus().length, load: os.loadavg() };
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(
      path.join(ROOT, 'bench', 'results', 'pools.json'),
      JSON.stringify({ date: new Date().toISOString(), host, rows, restoreRows, samples: [...samples, criuSample, pooledSample] }, null, 2),
    );
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'pools.md'), md + '\n');
    console.log(`\nwarm pools and cache (kernel ${host.kernel}, ${host.cpus} CPUs)\n`);
    console.log(md);
    const hit = rows[4];
    console.log(`\ntarget: pool exec p50 under 5 ms through the agent -> ${hit.p50.toFixed(2)} ms (${hit.p50 < 5 ? 'met' : 'missed'})`);
    const thaw = restoreRows[1];
    console.log(`target: branch from a snapshot pool p50 under 10 ms -> ${thaw.p50.toFixed(2)} ms (${thaw.p50 < 10 ? 'met' : 'missed'})`);
    rt.close();
  } finally {
    const left = await stack.stop();
    if (left.length) console.error('leftovers:', left);
  }
}

void main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
