// Snapshots and branches, side by side in one run with raw CRIU on the same workload (a Python process
// holding 50 or 500 MB of random data), plus memory after KSM for 4 branches of a 200 MB process.
//   ours: snapshot/create pause time; snapshot/branch time to running (N = 1, 4, 8), through the agent
//   raw:  `criu dump --leave-running` of the same process with the same flags (freeze + dump + thaw), and
//         `criu restore` of the same image into a prepared root (N in parallel), eager or lazy as ours
// Prints medians and ratios; writes bench/results/snapshots.json and .md.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  SandboxCreate,
  SandboxDestroy,
  SandboxOutput,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotDelete,
  type RpcClient,
} from '../agent/src/protocol';
import { ROOT, envRootfs, Stack } from '../test/integration/stack';
import { percentile } from './stats';

const CRIU = process.env.FORKSPACE_CRIU ?? '/var/cache/forkspace/criu/bin/criu';
const REPS = Number(process.env.BENCH_REPS ?? 5);
const SIZES = [50, 500];
const COUNTS = [1, 4, 8];

function holder(mb: number): string {
  return `import os, time\ndata = os.urandom(${mb} << 20)\nprint("ready", flush=True)\nwhile True: time.sleep(1)`;
}

async function startHolder(c: RpcClient, mb: number): Promise<string> {
  let id = '';
  const ready = new Promise<void>((resolve) => {
    const sub = c.onNotification(SandboxOutput, (o) => {
      if (o.sandboxId === id && o.data.includes('ready')) {
        sub.dispose();
        resolve();
      }
    });
  });
  id = (await c.request(SandboxCreate, { environment: 'python', limits: { memoryBytes: (mb + 256) << 20 }, command: ['python3', '-c', holder(mb)] })).sandbox.id;
  await ready;
  return id;
}

function run(cmd: string, args: string[], opts: { stdio?: (number | 'ignore' | 'pipe')[]; cwd?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: opts.stdio ?? 'ignore', cwd: opts.cwd });
    c.on('error', reject);
    c.on('close', (code) => resolve(code ?? -1));
  });
}

/** Host pid of a sandbox's pid 1 (the process whose NSpid ends in 1 in its cgroup). */
function pid1(cgroupParent: string, sandboxId: string): number {
  const procs = fs.readFileSync(`/sys/fs/cgroup/pids/${cgroupParent}/${sandboxId}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
  for (const p of procs) if (/NSpid:\s+\d+\s+1\n/.test(fs.readFileSync(`/proc/${p}/status`, 'utf8'))) return p;
  throw new Error(`no pid 1 in ${sandboxId}`);
}

async function rawDump(stack: Stack, sandboxId: string, dir: string): Promise<number> {
  const pid = pid1(stack.cgroupParent, sandboxId);
  const netns = fs.statSync(`/proc/${pid}/ns/net`).ino;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const args = ['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '--external', `net[${netns}]:extnet`, '--network-lock', 'skip', '--tcp-established', '--file-locks', '--freeze-cgroup', `/sys/fs/cgroup/freezer/${stack.cgroupParent}/${sandboxId}`, '--leave-running'];
  const t0 = performance.now();
  const code = await run(CRIU, args);
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`raw criu dump failed: ${fs.readFileSync(path.join(dir, 'dump.log'), 'utf8').slice(-600)}`);
  return ms;
}

/** N raw restores of one image at once, each into its own overlay, netns and cgroup; ms until all run. */
async function rawRestore(image: string, snapshotUpper: string, n: number, lazy: boolean, scratch: string): Promise<number[]> {
  const envRoot = envRootfs('python:3.11');
  const pipes = JSON.parse(fs.readFileSync(path.join(image, 'pipes.json'), 'utf8')) as { stdout: number; stderr: number };
  const prepared = [];
  for (let i = 0; i < n; i++) {
    const d = path.join(scratch, `r${i}`);
    fs.rmSync(d, { recursive: true, force: true });
    for (const s of ['upper', 'work', 'root', 'wd']) fs.mkdirSync(path.join(d, s), { recursive: true });
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${snapshotUpper}:${envRoot},upperdir=${d}/upper,workdir=${d}/work`, `${d}/root`]);
    const ns = `fsbench${process.pid}r${i}`;
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    prepared.push({ d, ns });
  }
  const restoreOne = async ({ d, ns }: { d: string; ns: string }): Promise<number> => {
    const netFd = fs.openSync(`/run/netns/${ns}`, 'r');
    // CRIU takes pipes for the console (node's 'pipe' stdio is a socketpair): named FIFOs are pipes.
    const fifos = ['out', 'err'].map((n) => {
      const p = `${d}/${n}.fifo`;
      execFileSync('mkfifo', [p]);
      const r = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      return { r, w: fs.openSync(p, 'w') };
    });
    const t0 = performance.now();
    if (lazy) {
      const daemon = spawn(CRIU, ['lazy-pages', '-D', image, '-W', `${d}/wd`, '-o', 'lazy.log'], { stdio: 'ignore', detached: true });
      daemon.unref();
      while (!fs.existsSync(`${d}/wd/lazy-pages.socket`)) await new Promise((r) => setTimeout(r, 1));
    }
    const args = ['restore', '-D', image, '-W', `${d}/wd`, '-o', 'restore.log', '--root', `${d}/root`, '--restore-detached', '--pidfile', `${d}/wd/pid`, '--manage-cgroups=ignore', '--tcp-established', '--file-locks', '--inherit-fd', 'fd[9]:extnet', '--inherit-fd', `fd[10]:pipe:[${pipes.stdout}]`, '--inherit-fd', `fd[11]:pipe:[${pipes.stderr}]`, ...(lazy ? ['--lazy-pages'] : [])];
    const stdio: (number | 'ignore' | 'pipe')[] = ['ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', netFd, fifos[0].w, fifos[1].w];
    const code = await run(CRIU, args, { stdio });
    const ms = performance.now() - t0;
    for (const fd of [netFd, ...fifos.flatMap((x) => [x.r, x.w])]) fs.closeSync(fd);
    if (code !== 0) throw new Error(`raw criu restore failed: ${fs.readFileSync(`${d}/wd/restore.log`, 'utf8').slice(-600)}`);
    return ms;
  };
  try {
    return await Promise.all(prepared.map(restoreOne));
  } finally {
    for (const { d, ns } of prepared) {
      const pidFile = `${d}/wd/pid`;
      if (fs.existsSync(pidFile)) {
        try {
          process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
        } catch {
          // gone
        }
      }
      await new Promise((r) => setTimeout(r, 50));
      await run('umount', ['-l', `${d}/root`]);
      await run('ip', ['netns', 'del', ns]);
      fs.rmSync(d, { recursive: true, force: true });
    }
  }
}

function med(xs: number[]): number {
  return percentile(xs, 50);
}

function f(n: number): string {
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}

function memoryOf(stack: Stack, ids: string[]): number {
  return ids.reduce((sum, id) => sum + Number(fs.readFileSync(`/sys/fs/cgroup/memory/${stack.cgroupParent}/${id}/memory.usage_in_bytes`, 'utf8')), 0);
}

async function main(): Promise<void> {
  const stack = await Stack.start();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-bench-'));
  const rows: string[] = [];
  const made: string[] = [];
  const json: Record<string, unknown> = { date: new Date().toISOString(), kernel: os.release(), cpus: os.cpus().length, reps: REPS };
  try {
    const c = await stack.client();
    for (const mb of SIZES) {
      const id = await startHolder(c, mb);
      made.push(id);
      // Snapshot pause: ours (freeze + dump + layer snapshot + thaw) vs raw criu dump --leave-running.
      const ours: number[] = [];
      const raw: number[] = [];
      let snapshotId = '';
      for (let i = 0; i < REPS; i++) {
        // Each dump writes the whole image: start each from clean page cache (sync, untimed), and
        // alternate which goes first, so writeback of one never slows the other.
        const measureRaw = async () => {
          await run('sync', []);
          raw.push(await rawDump(stack, id, path.join(scratch, 'rawdump')));
        };
        const measureOurs = async () => {
          await run('sync', []);
          const s = await c.request(SnapshotCreate, { sandboxId: id });
          ours.push(s.timings.pauseMs);
          if (snapshotId) await c.request(SnapshotDelete, { snapshotId });
          snapshotId = s.snapshot.id;
        };
        if (i % 2 === 0) {
          await measureRaw();
          await measureOurs();
        } else {
          await measureOurs();
          await measureRaw();
        }
      }
      rows.push(`| snapshot pause, ${mb} MB | ${f(med(ours))} | ${f(med(raw))} | ${(med(ours) / med(raw)).toFixed(2)}x |`);
      json[`pause_${mb}`] = { ours, raw };

      // The raw restore needs what our restore gets: the image, the snapshot's layer, the pipe inodes.
      const image = path.join(stack.config.dataDir, 'snapshots', snapshotId, 'criu');
      const upper = path.join(stack.config.dataDir, 'fs', 'snapshots', snapshotId, 'upper');
      const catalogPipes = await pipeInodes(stack, snapshotId);
      fs.writeFileSync(path.join(image, 'pipes.json'), JSON.stringify(catalogPipes));
      const lazy = mb > 64;
      for (const n of COUNTS) {
        const oursAll: number[] = [];
        const oursEach: number[] = [];
        const rawAll: number[] = [];
        for (let i = 0; i < REPS; i++) {
          const measureRaw = async () => {
            const r = await rawRestore(image, upper, n, lazy, scratch);
            rawAll.push(Math.max(...r));
          };
          const measureOurs = async () => {
            const t0 = performance.now();
            const b = await c.request(SnapshotBranch, { snapshotId, count: n });
            oursAll.push(performance.now() - t0);
            oursEach.push(...b.branches.map((x) => x.timeToRunningMs));
            for (const x of b.branches) await c.request(SandboxDestroy, { sandboxId: x.sandboxId });
          };
          // Alternate the order; let the previous restores' background page fills finish first.
          await new Promise((r) => setTimeout(r, 300));
          if (i % 2 === 0) {
            await measureRaw();
            await new Promise((r) => setTimeout(r, 300));
            await measureOurs();
          } else {
            await measureOurs();
            await new Promise((r) => setTimeout(r, 300));
            await measureRaw();
          }
        }
        rows.push(
          `| branch ${mb} MB, N=${n} (${lazy ? 'lazy' : 'eager'}): all running | ${f(med(oursAll))} | ${f(med(rawAll))} | ${(med(oursAll) / med(rawAll)).toFixed(2)}x |`,
        );
        if (n === 1) rows.push(`| branch ${mb} MB, N=1: time to running (server side, p50) | ${f(med(oursEach))} | | |`);
        json[`branch_${mb}_${n}`] = { oursAll, oursEach, rawAll };
      }
      await c.request(SandboxDestroy, { sandboxId: id });
    }

    // KSM: 4 branches of a 200 MB process, memory charged once KSM has merged them.
    const id = await startHolder(c, 200);
    const one = memoryOf(stack, [id]);
    const s = await c.request(SnapshotCreate, { sandboxId: id });
    const b = await c.request(SnapshotBranch, { snapshotId: s.snapshot.id, count: 4 });
    const ids = b.branches.map((x) => x.sandboxId);
    const before = memoryOf(stack, ids);
    let merged = before;
    const t0 = Date.now();
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = memoryOf(stack, ids);
      if (Math.abs(now - merged) < 4 << 20 && now < before * 0.5) break;
      merged = now;
    }
    merged = memoryOf(stack, ids);
    const total = merged + memoryOf(stack, [id]);
    rows.push(`| KSM: 4 branches of 200 MB, charged after ${Math.round((Date.now() - t0) / 1000)} s | ${(merged / 2 ** 20).toFixed(0)} MB | one: ${(one / 2 ** 20).toFixed(0)} MB | ${(merged / one).toFixed(2)}x one |`);
    rows.push(`| KSM: original + 4 branches | ${(total / 2 ** 20).toFixed(0)} MB | before merging: ${((before + one) / 2 ** 20).toFixed(0)} MB | ${(total / one).toFixed(2)}x one |`);
    json.ksm = { one, before, merged, total, pagesSharing: Number(fs.readFileSync('/sys/kernel/mm/ksm/pages_sharing', 'utf8')) };
    for (const x of [id, ...ids]) await c.request(SandboxDestroy, { sandboxId: x });

    const md = ['| measure | forkspace (ms unless noted) | raw CRIU | ratio |', '| --- | ---: | ---: | ---: |', ...rows].join('\n');
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'snapshots.json'), JSON.stringify(json, null, 2));
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'snapshots.md'), md + '\n');
    console.log(`\nsnapshots and branches, p50 of ${REPS} (kernel ${os.release()}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
    console.log(md);
  } finally {
    const c = await stack.client().catch(() => undefined);
    for (const id of made) await c?.request(SandboxDestroy, { sandboxId: id }).catch(() => {});
    fs.rmSync(scratch, { recursive: true, force: true });
    const left = await stack.stop();
    if (left.length) console.error('leftovers:', left);
  }
}

/** The stdio pipe inodes the snapshot's catalog row recorded (a raw restore must hand them over too). */
async function pipeInodes(stack: Stack, snapshotId: string): Promise<{ stdout: number; stderr: number }> {
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(path.join(stack.config.dataDir, 'catalog.sqlite'), { readOnly: true });
  const row = db.prepare('SELECT external FROM snapshots WHERE id = ?').get(snapshotId) as { external: string };
  db.close();
  const e = JSON.parse(row.external) as { stdoutPipe: number; stderrPipe: number };
  return { stdout: e.stdoutPipe, stderr: e.stderrPipe };
}

void main();
