// What per-sandbox disk limits (btrfs quotas on each layer) cost on the paths that must stay fast, at the
// runtime socket: exec/run of `true` cold and from a warm pool (one-run sandboxes now get a pool
// subvolume with a limit), sandbox/create, snapshot/create and a branch of one. Run it once with the
// runtime before disk limits (copy its binary to dist/forkspace-rt) and once with this one: the label
// comes from runtime/info (`diskQuota.mode`, absent before). Writes bench/results/diskQuota-<label>.json
// and prints a table.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { ExecRun, NdjsonTransport, RpcClient } from '../agent/src/protocol';
import { request } from '../agent/src/protocol/messages';
import { ROOT, Stack, waitFor } from '../test/integration/stack';
import { summarize, table, time, type Sample } from './stats';

const N = Number(process.env.BENCH_N ?? 200);
const N_SNAP = Number(process.env.BENCH_N_SNAP ?? 30);
const raw = (method: string) => request(method, z.any(), z.any(), method);

async function main(): Promise<void> {
  const stack = await Stack.start();
  try {
    const client = await stack.client();
    await client.request(ExecRun, { environment: 'busybox', command: ['true'] }); // brings the runtime up
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(stack.config.runtimeSocket);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const rt = new RpcClient(new NdjsonTransport(sock), false);
    const call = (method: string, params: object) => rt.request(raw(method), params);
    const info = await call('runtime/info', {});
    const label = String(info.diskQuota?.mode ?? 'baseline');
    let i = 0;
    const run = () => call('sandbox/run', { execId: `bench-${i++}`, environment: 'busybox', argv: ['true'] });
    const sample = async (name: string, n: number, fn: () => Promise<unknown>, gapMs = 0): Promise<Sample> => {
      for (let k = 0; k < 5; k++) await fn();
      const ms: number[] = [];
      for (let k = 0; k < n; k++) {
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        ms.push(await time(fn));
      }
      return { name, ms };
    };
    const samples: Sample[] = [];
    samples.push(await sample('sandbox/run true, cold', N, run));
    await call('pool/configure', { environment: 'busybox', min: 4, max: 4 });
    await waitFor(async () => ((await call('pool/list', {})).pools.find((p: { environment: string }) => p.environment === 'busybox')?.ready ?? 0) >= 4, 30_000, 'the pool');
    samples.push(await sample('sandbox/run true, warm pool, 50 ms apart', N, run, 50));
    await call('pool/configure', { environment: 'busybox', min: 0, max: 0 });

    const created: string[] = [];
    samples.push(
      await sample('sandbox/create (busybox, idle shell)', N_SNAP, async () => {
        created.push((await call('sandbox/create', { environment: 'busybox' })).sandbox.id);
      }),
    );
    const target = created[0];
    await call('sandbox/exec', { execId: 'fill', sandboxId: target, argv: ['/bin/sh', '-c', 'dd if=/dev/zero of=/root/f bs=1M count=8 2>/dev/null'] });
    const fsMs: number[] = [];
    const snaps: string[] = [];
    samples.push(
      await sample('snapshot/create (8 MiB written)', N_SNAP, async () => {
        const r = await call('snapshot/create', { sandboxId: target });
        fsMs.push(r.timings.fsMs);
        snaps.push(r.snapshot.id);
      }),
    );
    samples.push({ name: 'snapshot/create: its layer snapshot (fsMs)', ms: fsMs.slice(5) });
    const layerMs: number[] = [];
    const branches: string[] = [];
    samples.push(
      await sample('snapshot/branch count 1 (CRIU restore)', N_SNAP, async () => {
        const r = await call('snapshot/branch', { snapshotId: snaps[snaps.length - 1], count: 1 });
        const b = r.branches[0];
        branches.push(b.sandboxId);
        layerMs.push(Object.fromEntries(b.phasesMs as [string, number][]).layer);
      }),
    );
    samples.push({ name: 'snapshot/branch: its layer (phase "layer")', ms: layerMs.slice(5) });
    for (const id of [...created, ...branches]) await call('sandbox/destroy', { sandboxId: id });
    for (const id of snaps) await call('snapshot/delete', { snapshotId: id });

    const rows = samples.map((s) => summarize(s));
    const md = table(rows, '');
    const host = { kernel: os.release(), cpus: os.cpus().length, load: os.loadavg() };
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', `diskQuota-${label}.json`), JSON.stringify({ date: new Date().toISOString(), label, host, rows }, null, 2));
    console.log(`\ndisk quota: ${label} (kernel ${host.kernel}, ${host.cpus} CPUs, load ${host.load.map((l) => l.toFixed(2)).join(' ')})\n`);
    console.log(md);
    rt.close();
  } finally {
    const left = await stack.stop();
    if (left.length) console.error('leftovers:', left);
  }
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
