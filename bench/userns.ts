// What user namespaces cost, side by side in one run: three runtimes, each with its own agent, sampled in
// turn (so load on the shared machine hits all alike):
//   before:      a forkspace-rt from before user namespaces (BENCH_BASELINE_RT), with its CRIU (BENCH_BASELINE_CRIU)
//   --no-userns: this forkspace-rt with --no-userns
//   userns:      this forkspace-rt (sandboxes in user namespaces, the default)
// Measured through the agent's JSON-RPC: exec/run of `true` cold and from a warm pool, snapshot/create of
// an idle sandbox (pause), snapshot/restore (time to running) and snapshot/branch of 4.
// Writes bench/results/userns.json and .md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExecRun, PoolList, SandboxCreate, SandboxDestroy, SnapshotBranch, SnapshotCreate, SnapshotRestore, type RpcClient } from '../agent/src/protocol';
import { ROOT, Stack, waitFor } from '../test/integration/stack';
import { summarize, table, time, type Sample } from './stats';

const N = Number(process.env.BENCH_N ?? 40);
const N_SNAP = Number(process.env.BENCH_N_SNAP ?? 12);
const BASELINE_RT = process.env.BENCH_BASELINE_RT ?? '/var/cache/forkspace-userns/baseline/forkspace-rt';
const BASELINE_CRIU = process.env.BENCH_BASELINE_CRIU ?? '/var/cache/forkspace/criu/bin/criu';
const CRIU = process.env.FORKSPACE_CRIU ?? '/var/cache/forkspace/criu/bin/criu';

interface Arm {
  name: string;
  stack: Stack;
  client: RpcClient;
  samples: Map<string, number[]>;
}

async function arm(name: string, env: NodeJS.ProcessEnv, rtBin?: string): Promise<Arm> {
  const stack = Stack.prepare({ env: { FORKSPACE_POOLS: 'busybox=1-2', ...env } });
  if (rtBin) stack.env.FORKSPACE_RT_BIN = rtBin;
  await stack.startAgent();
  const client = await stack.client();
  await client.request(ExecRun, { environment: 'busybox', command: ['true'] });
  return { name, stack, client, samples: new Map() };
}

function record(a: Arm, what: string, ms: number): void {
  a.samples.set(what, [...(a.samples.get(what) ?? []), ms]);
}

async function poolReady(c: RpcClient): Promise<void> {
  await waitFor(async () => ((await c.request(PoolList, {})).pools.find((p) => p.environment === 'busybox')?.ready ?? 0) >= 1, 20_000, 'a warm sandbox');
}

async function main(): Promise<void> {
  const arms = [
    await arm('before (no user namespaces)', { FORKSPACE_CRIU: BASELINE_CRIU }, BASELINE_RT),
    await arm('--no-userns', { FORKSPACE_CRIU: CRIU, FORKSPACE_NO_USERNS: 'true' }),
    await arm('userns', { FORKSPACE_CRIU: CRIU }),
  ];
  try {
    const idle: Record<string, string> = {};
    for (const a of arms) idle[a.name] = (await a.client.request(SandboxCreate, { environment: 'busybox' })).sandbox.id;
    for (let i = 0; i < N; i++) {
      for (const a of arms) {
        await poolReady(a.client);
        record(a, 'exec/run true, warm pool', await time(() => a.client.request(ExecRun, { environment: 'busybox', command: ['true'] })));
      }
    }
    // Cold: an environment without a pool.
    for (let i = 0; i < N; i++) {
      for (const a of arms) record(a, 'exec/run true, cold (python env, no pool)', await time(() => a.client.request(ExecRun, { environment: 'python', command: ['true'] })));
    }
    for (let i = 0; i < N_SNAP; i++) {
      for (const a of arms) {
        const { snapshot, timings } = await a.client.request(SnapshotCreate, { sandboxId: idle[a.name] });
        record(a, 'snapshot/create: pause', timings.pauseMs);
        const r = await a.client.request(SnapshotRestore, { snapshotId: snapshot.id });
        record(a, 'snapshot/restore: time to running', r.timeToRunningMs);
        const t0 = process.hrtime.bigint();
        const b = await a.client.request(SnapshotBranch, { snapshotId: snapshot.id, count: 4 });
        record(a, 'snapshot/branch 4: request to all running', Number(process.hrtime.bigint() - t0) / 1e6);
        for (const id of [r.sandboxId, ...b.branches.map((x) => x.sandboxId)]) await a.client.request(SandboxDestroy, { sandboxId: id });
      }
    }
    for (const a of arms) await a.client.request(SandboxDestroy, { sandboxId: idle[a.name] });
    const whats = [...arms[0].samples.keys()];
    const sections = whats.map((what) => {
      const base: Sample = { name: arms[0].name, ms: arms[0].samples.get(what)! };
      const rows = arms.map((a) => summarize({ name: a.name, ms: a.samples.get(what)! }, base));
      return `### ${what}\n\n${table(rows, 'vs before')}`;
    });
    const host = { kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: os.cpus().length, load: os.loadavg() };
    const md = `userns cost (kernel ${host.kernel}, ${host.cpus} CPUs, load ${host.load.map((l) => l.toFixed(2)).join(' ')})\n\n${sections.join('\n\n')}`;
    const out = path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(out, { recursive: true });
    const raw = Object.fromEntries(arms.map((a) => [a.name, Object.fromEntries(a.samples)]));
    fs.writeFileSync(path.join(out, 'userns.json'), JSON.stringify({ date: new Date().toISOString(), host, samples: raw }, null, 2));
    fs.writeFileSync(path.join(out, 'userns.md'), md + '\n');
    console.log(md);
  } finally {
    for (const a of arms) {
      const left = await a.stack.stop();
      if (left.length) console.error(`${a.name} left:`, left);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
