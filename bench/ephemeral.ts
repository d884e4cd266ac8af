// Ephemeral `true`, side by side in one run: through the agent's JSON-RPC API from a connected client,
// through the runtime's socket directly (no agent), through the CLI (a new node process each time),
// bubblewrap (namespaces + a read-only bind of the same busybox rootfs, no cgroups), and a plain spawn.
// Prints medians and ratios; writes bench/results/ephemeral.json and .md.
import { execFileSync, spawn } from 'node:child_process';
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ExecRun, NdjsonTransport, RpcClient } from '../agent/src/protocol';
import { RtSandboxRun } from '../agent/src/protocol/runtime';
import { ROOT, envRootfs, Stack } from '../test/integration/stack';
import { summarize, table, time, type Sample } from './stats';

const N = Number(process.env.BENCH_N ?? 200);
const N_CLI = Number(process.env.BENCH_N_CLI ?? 40);

async function sample(name: string, n: number, fn: () => Promise<unknown> | unknown, warmup = 5): Promise<Sample> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push(await time(fn));
  return { name, ms };
}

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore', env });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const stack = await Stack.start();
  try {
    const client = await stack.client();
    await client.request(ExecRun, { environment: 'busybox', command: ['true'] }); // brings the runtime up
    const rtSocket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(stack.config.runtimeSocket);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const rt = new RpcClient(new NdjsonTransport(rtSocket), false);
    const rootfs = envRootfs('busybox');
    const bwrapArgs = ['--unshare-all', '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'];
    execFileSync('bwrap', bwrapArgs); // fails loudly if bwrap cannot run here

    let i = 0;
    const samples: Sample[] = [];
    samples.push(await sample('plain spawn of /bin/true (node child_process)', N, () => run('/bin/true', [])));
    samples.push(await sample('bwrap --unshare-all, busybox rootfs', N, () => run('bwrap', bwrapArgs)));
    samples.push(
      await sample('forkspace-rt socket: sandbox/run (no agent)', N, () =>
        rt.request(RtSandboxRun, { execId: `bench-rt-${i++}`, environment: 'busybox', argv: ['true'] }),
      ),
    );
    samples.push(await sample('agent API: exec/run over the unix socket', N, () => client.request(ExecRun, { environment: 'busybox', command: ['true'] })));
    samples.push(
      await sample('CLI: forkspace run --env busybox -- true', N_CLI, () =>
        run(path.join(ROOT, 'bin', 'forkspace'), ['run', '--env', 'busybox', '--', 'true'], { ...stack.env, FORKSPACE_NODE: process.execPath }),
      ),
    );
    const spawnBase = samples[0];
    const bwrapBase = samples[1];
    const rows = samples.map((s) => ({ ...summarize(s, spawnBase), vsBwrap: summarize(s, bwrapBase).ratio }));
    const md = table(rows, 'vs plain spawn') + '\n\n' + rows.map((r) => `- ${r.name}: ${r.vsBwrap?.toFixed(2)}x bwrap`).join('\n');
    const host = { kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: os.cpus().length, load: os.loadavg() };
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'ephemeral.json'), JSON.stringify({ date: new Date().toISOString(), host, rows, samples }, null, 2));
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'ephemeral.md'), md + '\n');
    console.log(`\nephemeral \`true\` (kernel ${host.kernel}, ${host.cpus} CPUs, load ${host.load.map((l: number) => l.toFixed(2)).join(' ')})\n`);
    console.log(md);
    const api = rows[3];
    console.log(`\ntarget: agent API p50 under 15 ms -> ${api.p50.toFixed(2)} ms (${api.p50 < 15 ? 'met' : 'missed'})`);
    rt.close();
  } finally {
    const left = await stack.stop();
    if (left.length) console.error('leftovers:', left);
  }
}

void main();
