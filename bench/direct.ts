// The Direct flow's overhead, side by side in one run against one agent: ephemeral `true` (and a snapshot
// restore) through JSON-RPC on the unix socket, through REST (one keep-alive fetch per call), through the
// TypeScript SDK, and through the Python SDK (its own timing loop in the same venv the tests use), with a
// plain spawn of /bin/true as the floor. Prints medians and ratios; writes bench/results/direct.json and .md.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExecRun, KeyCreate, SandboxCreate, SandboxDestroy, SnapshotCreate, SnapshotRestore } from '../agent/src/protocol';
import { FaaSPlatformClient } from '../sdk/ts/src';
import { ROOT, Stack, freePort } from '../test/integration/stack';
import { summarize, table, time, type Sample } from './stats';

const N = Number(process.env.BENCH_N ?? 200);
const N_RESTORE = Number(process.env.BENCH_N_RESTORE ?? 30);
const VENV_PYTHON = path.join(process.env.FORKSPACE_CACHE ?? '/var/cache/forkspace', 'venv-sdk', 'bin', 'python');

async function sample(name: string, n: number, fn: () => Promise<unknown> | unknown, warmup = 5): Promise<Sample> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push(await time(fn));
  return { name, ms };
}

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('/bin/true', [], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', () => resolve());
  });
}

/** The Python SDK times its own calls (one process, warm), so interpreter start-up is not counted. */
function pythonSample(name: string, url: string, key: string, what: 'run' | 'restore', n: number, snapshotId = ''): Sample {
  const script = `
import asyncio, json, sys, time
from forkspace import FaaSPlatformClient
async def main():
    async with FaaSPlatformClient(api_key=${JSON.stringify(key)}, platform_url=${JSON.stringify(url)}) as c:
        async def once():
            if ${JSON.stringify(what)} == "run":
                await c.execute(["true"], environment="busybox")
            else:
                s = await c.snapshots.restore(${JSON.stringify(snapshotId)})
                await s.destroy()
        for _ in range(5): await once()
        ms = []
        for _ in range(${n}):
            t = time.perf_counter(); await once(); ms.append((time.perf_counter() - t) * 1000)
        print(json.dumps(ms))
asyncio.run(main())
`;
  const out = execFileSync(VENV_PYTHON, ['-c', script], { env: { ...process.env, PYTHONPATH: path.join(ROOT, 'sdk', 'python', 'src') }, encoding: 'utf8' });
  return { name, ms: JSON.parse(out.trim().split('\n').pop()!) };
}

async function main(): Promise<void> {
  const httpPort = await freePort();
  const stack = await Stack.start({ env: { FORKSPACE_HTTP_PORT: String(httpPort) } });
  try {
    const rpc = await stack.client();
    await rpc.request(ExecRun, { environment: 'busybox', command: ['true'] }); // brings the runtime up
    const key = (await rpc.request(KeyCreate, { name: 'bench' })).secret;
    const url = `http://127.0.0.1:${httpPort}`;
    const sdk = new FaaSPlatformClient({ apiKey: key, platformUrl: url });
    const rest = (body: unknown) =>
      fetch(`${url}/v1/executions/run`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (r) => {
        if (r.status !== 200) throw new Error(`REST exec/run answered ${r.status}: ${await r.text()}`);
        return r.json();
      });
    const { sandbox } = await rpc.request(SandboxCreate, { environment: 'busybox', detached: true });
    const { snapshot } = await rpc.request(SnapshotCreate, { sandboxId: sandbox.id });
    await rpc.request(SandboxDestroy, { sandboxId: sandbox.id });
    const hasPython = fs.existsSync(VENV_PYTHON);

    const runs: Sample[] = [];
    runs.push(await sample('plain spawn of /bin/true (node child_process)', N, spawnTrue));
    runs.push(await sample('JSON-RPC exec/run over the unix socket', N, () => rpc.request(ExecRun, { environment: 'busybox', command: ['true'] })));
    runs.push(await sample('REST POST /v1/executions/run (fetch, keep-alive)', N, () => rest({ environment: 'busybox', command: ['true'] })));
    runs.push(await sample('TypeScript SDK client.run()', N, () => sdk.run(['true'], { environment: 'busybox' })));
    if (hasPython) runs.push(pythonSample('Python SDK client.execute()', url, key, 'run', N));

    const restores: Sample[] = [];
    restores.push(
      await sample('JSON-RPC snapshot/restore + destroy', N_RESTORE, async () => {
        const r = await rpc.request(SnapshotRestore, { snapshotId: snapshot.id });
        await rpc.request(SandboxDestroy, { sandboxId: r.sandboxId });
      }),
    );
    restores.push(
      await sample('TypeScript SDK snapshots.ref(id).restore() + destroy', N_RESTORE, async () => {
        const s = await sdk.snapshots.ref(snapshot.id).restore();
        await s.destroy();
      }),
    );
    if (hasPython) restores.push(pythonSample('Python SDK snapshots.restore() + destroy', url, key, 'restore', N_RESTORE, snapshot.id));

    const runRows = runs.map((s) => ({ ...summarize(s, runs[0]), vsRpc: summarize(s, runs[1]).ratio }));
    const restoreRows = restores.map((s) => summarize(s, restores[0]));
    const md = [
      '### ephemeral `true`',
      table(runRows, 'vs plain spawn'),
      '',
      runRows.map((r) => `- ${r.name}: ${r.vsRpc?.toFixed(2)}x JSON-RPC`).join('\n'),
      '',
      '### restore a busybox snapshot, then destroy it',
      table(restoreRows, 'vs JSON-RPC'),
      hasPython ? '' : '\n(the Python SDK rows need scripts/install-python-sdk.sh)',
    ].join('\n');
    const host = { kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: os.cpus().length, load: os.loadavg() };
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'direct.json'), JSON.stringify({ date: new Date().toISOString(), host, runRows, restoreRows, runs, restores }, null, 2));
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'direct.md'), md + '\n');
    console.log(`\nDirect flow (kernel ${host.kernel}, ${host.cpus} CPUs, load ${host.load.map((l) => l.toFixed(2)).join(' ')})\n`);
    console.log(md);
    await rpc.request(SandboxDestroy, { sandboxId: sandbox.id }).catch(() => {});
  } finally {
    const left = await stack.stop();
    if (left.length) console.error('leftovers:', left);
  }
}

void main();
