// What the sandbox hardening costs: the same runtime calls against two builds of forkspace-rt, side by
// side in one run and interleaved call by call (so load from other tenants hits both alike), with
// bubblewrap as the outside baseline. BENCH_BASELINE_RT names the older build (scripts/bench-baseline.sh
// REV builds one); the newer is dist/forkspace-rt. Both talk to their runtime socket directly (no agent,
// no warm pools), so the numbers are the sandbox setup itself:
//   - ephemeral: sandbox/run of `true` in busybox (clone, mounts, cgroups, seccomp..., exec, teardown)
//   - branch: snapshot/branch of one copy of an idle busybox sandbox, until it runs (CRIU restore)
// Prints p50s and ratios; writes bench/results/isolation.json and .md.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { NdjsonTransport, RpcClient } from '../agent/src/protocol';
import { RtSandboxCreate, RtSandboxDestroy, RtSandboxRun, RtSnapshotBranch, RtSnapshotCreate, RtSnapshotDelete } from '../agent/src/protocol/runtime';
import { ExecRun } from '../agent/src/protocol';
import { DIST, ROOT, envRootfs, Stack } from '../test/integration/stack';
import { percentile, table, time, type Sample } from './stats';

const N = Number(process.env.BENCH_N ?? 200);
const N_BRANCH = Number(process.env.BENCH_N_BRANCH ?? 40);
const baselineRt = process.env.BENCH_BASELINE_RT;

function runtimeClient(stack: Stack): Promise<RpcClient> {
  return new Promise((resolve, reject) => {
    const s = net.connect(stack.config.runtimeSocket);
    s.once('connect', () => resolve(new RpcClient(new NdjsonTransport(s), false)));
    s.once('error', reject);
  });
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

interface Side {
  label: string;
  stack: Stack;
  rt: RpcClient;
  snapshotId?: string;
  sandboxId?: string;
}

async function main(): Promise<void> {
  if (!baselineRt || !fs.existsSync(baselineRt)) {
    console.error('BENCH_BASELINE_RT must name the forkspace-rt build to compare with, e.g.\n  BENCH_BASELINE_RT=$(scripts/bench-baseline.sh b2f033d) npm run bench:isolation');
    process.exit(2);
  }
  const current = path.join(DIST, 'forkspace-rt');
  const sides: Side[] = [];
  try {
    for (const [label, bin] of [['before', baselineRt], ['after', current]] as const) {
      const stack = await Stack.start({ env: { FORKSPACE_RT_BIN: bin } });
      await (await stack.client()).request(ExecRun, { environment: 'busybox', command: ['true'] }); // brings the runtime up
      sides.push({ label, stack, rt: await runtimeClient(stack) });
    }
    const rootfs = envRootfs('busybox');
    const bwrapArgs = ['--unshare-all', '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'];
    execFileSync('bwrap', bwrapArgs);

    const exec: Record<string, number[]> = { bwrap: [], before: [], after: [] };
    let id = 0;
    const once = {
      bwrap: () => run('bwrap', bwrapArgs),
      before: () => sides[0].rt.request(RtSandboxRun, { execId: `bench-${id++}`, environment: 'busybox', argv: ['true'] }),
      after: () => sides[1].rt.request(RtSandboxRun, { execId: `bench-${id++}`, environment: 'busybox', argv: ['true'] }),
    };
    for (let i = 0; i < 5; i++) for (const f of Object.values(once)) await f();
    for (let i = 0; i < N; i++) {
      // Alternate the order so neither side always runs right after the other's teardown.
      const order = i % 2 ? (['bwrap', 'before', 'after'] as const) : (['after', 'before', 'bwrap'] as const);
      for (const k of order) exec[k].push(await time(once[k]));
    }

    for (const side of sides) {
      const made = await side.rt.request(RtSandboxCreate, { environment: 'busybox', argv: ['sh', '-c', 'while :; do sleep 1; done'] });
      side.sandboxId = made.sandbox.id;
      side.snapshotId = (await side.rt.request(RtSnapshotCreate, { sandboxId: made.sandbox.id, leaveRunning: true })).snapshot.id;
    }
    const branch: Record<string, number[]> = { before: [], after: [] };
    const branchOnce = async (side: Side) => {
      let made = '';
      const ms = await time(async () => {
        made = (await side.rt.request(RtSnapshotBranch, { snapshotId: side.snapshotId!, count: 1 })).branches[0].sandboxId;
      });
      await side.rt.request(RtSandboxDestroy, { sandboxId: made });
      return ms;
    };
    for (let i = 0; i < 3; i++) for (const s of sides) await branchOnce(s);
    for (let i = 0; i < N_BRANCH; i++) {
      const order = i % 2 ? sides : [...sides].reverse();
      for (const s of order) branch[s.label].push(await branchOnce(s));
    }

    const samples: Sample[] = [
      { name: 'bwrap --unshare-all, busybox rootfs, `true`', ms: exec.bwrap },
      { name: 'ephemeral `true` (sandbox/run), before', ms: exec.before },
      { name: 'ephemeral `true` (sandbox/run), after', ms: exec.after },
      { name: 'branch of an idle busybox sandbox (1 copy), before', ms: branch.before },
      { name: 'branch of an idle busybox sandbox (1 copy), after', ms: branch.after },
    ];
    const p50 = (ms: number[]) => percentile(ms, 50);
    const rows = samples.map((s) => ({
      name: s.name,
      n: s.ms.length,
      p50: p50(s.ms),
      p90: percentile(s.ms, 90),
      min: Math.min(...s.ms),
      ratio: p50(s.ms) / p50(exec.bwrap),
    }));
    const md = [
      table(rows, 'vs bwrap'),
      '',
      `- ephemeral after/before: ${(p50(exec.after) / p50(exec.before)).toFixed(3)}x`,
      `- branch after/before: ${(p50(branch.after) / p50(branch.before)).toFixed(3)}x`,
      `- before = ${baselineRt}, after = ${current}`,
    ].join('\n');
    const host = { kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: os.cpus().length, load: os.loadavg() };
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'isolation.json'), JSON.stringify({ date: new Date().toISOString(), host, rows, samples }, null, 2));
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'isolation.md'), md + '\n');
    console.log(`\nisolation cost (kernel ${host.kernel}, ${host.cpus} CPUs, load ${host.load.map((l) => l.toFixed(2)).join(' ')})\n`);
    console.log(md);
  } finally {
    for (const side of sides) {
      try {
        if (side.sandboxId) await side.rt.request(RtSandboxDestroy, { sandboxId: side.sandboxId });
        if (side.snapshotId) await side.rt.request(RtSnapshotDelete, { snapshotId: side.snapshotId });
      } catch {
        // the stack's stop below reports anything left
      }
      side.rt.close();
      const left = await side.stack.stop();
      if (left.length) console.error(`leftovers (${side.label}):`, left);
    }
  }
}

void main();
