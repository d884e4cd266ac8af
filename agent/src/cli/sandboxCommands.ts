// Sandbox, snapshot and branch commands of the CLI: thin calls of the agent's methods, printed for people
// (or as JSON with --json).
import * as fs from 'node:fs';
import {
  BranchDiff,
  BranchMerge,
  ErrorCodes,
  ExecOutput,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxList,
  SandboxOutput,
  SandboxPause,
  SandboxResume,
  SandboxStart,
  SandboxStop,
  SandboxUnwatch,
  SandboxWatch,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotDelete,
  SnapshotList,
  SnapshotRestore,
  TreeGet,
} from '../protocol';
import type { RpcClient } from '../protocol';
import { parseArgs, parseDuration, UsageError } from './args';
import { limitsFrom, restoreLimitsFrom } from './limits';
import { renderTree, sandboxLine, snapshotLine } from './format';
import { warn } from './ui';
import { instanceCommand, LIFECYCLE_FLAGS, LIFECYCLE_USAGE, lifecycleFrom, policyCommand } from './lifecycleCommands';

export const SANDBOX_USAGE = `sandboxes, snapshots and branches:
  forkspace sandbox start [--env NAME] [--memory SIZE] [--cpus N] [--pids N] [--disk SIZE] [-- CMD...]
                                        create one (prints its id); --disk bounds its files (default 10G)
  forkspace sandbox start ID            start a stopped sandbox again from its last snapshot
  forkspace sandbox list | ls           list sandboxes
  forkspace exec ID [-i] [--timeout DUR] -- CMD...   run a command inside a running sandbox
  forkspace logs ID [-f]                its first process's console (-f follows)
  forkspace pause|resume|stop|destroy ID
  forkspace snapshot ID [--label L] [--stop]          snapshot a running sandbox (prints the snapshot id)
  forkspace snapshots                   list snapshots;  forkspace snapshot rm SNAP to delete one
  forkspace restore SNAP [--disk SIZE]  a new sandbox from a snapshot (its disk limit by default)
  forkspace branch SNAP -n N [--disk SIZE]   N sandboxes from a snapshot, at once
  forkspace diff A B                    what A and B changed in their files since their common snapshot
  forkspace merge FROM INTO [--strategy fail|ours|theirs]   merge FROM's file changes into INTO
  forkspace tree                        the branch tree
${LIFECYCLE_USAGE}`;

type Handler = (client: RpcClient, argv: string[]) => Promise<number>;

export const SANDBOX_COMMANDS: Record<string, Handler> = {
  sandbox: sandboxCommand,
  exec: execCommand,
  logs: logsCommand,
  pause: (c, a) => stateCommand(c, a, 'pause'),
  resume: (c, a) => stateCommand(c, a, 'resume'),
  stop: (c, a) => stateCommand(c, a, 'stop'),
  destroy: (c, a) => stateCommand(c, a, 'destroy'),
  snapshot: snapshotCommand,
  snapshots: (c, a) => listSnapshots(c, a),
  restore: restoreCommand,
  branch: branchCommand,
  diff: diffCommand,
  merge: mergeCommand,
  tree: treeCommand,
  instance: instanceCommand,
  instances: (c, a) => instanceCommand(c, ['list', ...a]),
  policy: policyCommand,
};

/** Options anywhere among the positionals (these commands take no trailing command line). */
function options(argv: string[], spec: Parameters<typeof parseArgs>[1]) {
  return parseArgs(argv, spec, false);
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`give one ${what}\n\n${SANDBOX_USAGE}`);
  return positionals[0];
}

async function sandboxCommand(client: RpcClient, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list' || sub === 'ls') {
    const json = options(rest, { json: {} }).flags.json === true;
    const { sandboxes } = await client.request(SandboxList, {});
    const shown = sandboxes.filter((s) => s.state !== 'destroyed');
    console.log(json ? JSON.stringify(shown, null, 2) : shown.map(sandboxLine).join('\n') || 'no sandboxes');
    return 0;
  }
  if (sub === 'start') {
    const { flags, positionals } = parseArgs(rest, {
      env: { value: true },
      memory: { value: true },
      cpus: { value: true },
      pids: { value: true },
      disk: { value: true },
      label: { value: true, repeat: true },
      ...LIFECYCLE_FLAGS,
    });
    if (positionals.length === 1 && positionals[0].startsWith('sbx-')) {
      const r = await client.request(SandboxStart, { sandboxId: positionals[0] });
      console.log(`${r.sandboxId} started from ${r.snapshotId} in ${r.timeToRunningMs.toFixed(1)} ms`);
      return 0;
    }
    const labels = Object.fromEntries(((flags.label as string[] | undefined) ?? []).map((kv) => kv.split(/=(.*)/s, 2)));
    const { sandbox } = await client.request(SandboxCreate, {
      environment: typeof flags.env === 'string' ? flags.env : undefined,
      command: positionals.length ? positionals : undefined,
      limits: limitsFrom(flags),
      labels,
      ...lifecycleFrom(flags),
    });
    console.log(sandbox.id);
    return 0;
  }
  if (sub === 'rm') return stateCommand(client, rest, 'destroy');
  throw new UsageError(SANDBOX_USAGE);
}

async function execCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { stdin: { alias: 'i' }, timeout: { value: true }, cwd: { value: true } }, false);
  const [sandboxId, ...command] = positionals;
  if (!sandboxId || command.length === 0) throw new UsageError(`usage: forkspace exec ID -- CMD...`);
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.on('SIGINT', onSigint);
  const sub = client.onNotification(ExecOutput, (o) => (o.stream === 'stdout' ? process.stdout : process.stderr).write(o.data));
  try {
    const r = await client.request(
      SandboxExec,
      {
        sandboxId,
        command,
        cwd: typeof flags.cwd === 'string' ? flags.cwd : undefined,
        stdin: flags.stdin ? fs.readFileSync(0, 'utf8') : undefined,
        timeoutMs: typeof flags.timeout === 'string' ? parseDuration(flags.timeout, '--timeout') : undefined,
      },
      { signal: controller.signal },
    );
    if (r.timedOut) {
      warn(`timed out after ${flags.timeout}; the command was killed`);
      return 124;
    }
    return r.exitCode;
  } catch (e) {
    if (e instanceof ProtocolError && e.code === ErrorCodes.RequestCancelled) return 130;
    if (e instanceof ProtocolError && e.code === ErrorCodes.CommandNotFound) {
      warn(e.message);
      return 127;
    }
    throw e;
  } finally {
    sub.dispose();
    process.off('SIGINT', onSigint);
  }
}

async function logsCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = options(argv, { follow: { alias: 'f' } });
  const sandboxId = one(positionals, 'sandbox id');
  const logFile = `${process.env.FORKSPACE_DATA_DIR ?? '/var/lib/forkspace'}/sandboxes/${sandboxId}/console.log`;
  if (fs.existsSync(logFile)) process.stdout.write(fs.readFileSync(logFile));
  if (!flags.follow) return 0;
  client.onNotification(SandboxOutput, (o) => o.sandboxId === sandboxId && (o.stream === 'stdout' ? process.stdout : process.stderr).write(o.data));
  // Following is activity: the sandbox is not idle while someone reads its console.
  const { watchId } = await client.request(SandboxWatch, { sandboxId });
  await new Promise<void>((resolve) => process.once('SIGINT', resolve));
  await client.request(SandboxUnwatch, { watchId }).catch(() => {});
  return 0;
}

async function stateCommand(client: RpcClient, argv: string[], action: 'pause' | 'resume' | 'stop' | 'destroy'): Promise<number> {
  const sandboxId = one(options(argv, {}).positionals, 'sandbox id');
  if (action === 'stop') {
    const r = await client.request(SandboxStop, { sandboxId });
    console.log(`${sandboxId} stopped at ${r.snapshot.id} (paused ${r.timings.pauseMs.toFixed(1)} ms); \`forkspace sandbox start ${sandboxId}\` resumes it`);
    return 0;
  }
  const type = { pause: SandboxPause, resume: SandboxResume, destroy: SandboxDestroy }[action];
  const r = await client.request(type, { sandboxId });
  console.log(`${r.sandboxId} ${r.state}`);
  return 0;
}

async function snapshotCommand(client: RpcClient, argv: string[]): Promise<number> {
  if (argv[0] === 'rm') {
    const snapshotId = one(argv.slice(1), 'snapshot id');
    await client.request(SnapshotDelete, { snapshotId });
    console.log(`${snapshotId} deleted`);
    return 0;
  }
  if (argv[0] === 'list' || argv[0] === 'ls') return listSnapshots(client, argv.slice(1));
  const { flags, positionals } = options(argv, { label: { value: true }, stop: {}, json: {} });
  const sandboxId = one(positionals, 'sandbox id');
  const r = await client.request(SnapshotCreate, {
    sandboxId,
    leaveRunning: flags.stop !== true,
    label: typeof flags.label === 'string' ? flags.label : undefined,
  });
  if (flags.json) console.log(JSON.stringify(r, null, 2));
  else console.log(`${r.snapshot.id}  (paused ${r.timings.pauseMs.toFixed(1)} ms, total ${r.timings.totalMs.toFixed(1)} ms)`);
  return 0;
}

async function listSnapshots(client: RpcClient, argv: string[]): Promise<number> {
  const { snapshots } = await client.request(SnapshotList, {});
  if (options(argv, { json: {} }).flags.json) console.log(JSON.stringify(snapshots, null, 2));
  else console.log(snapshots.map(snapshotLine).join('\n') || 'no snapshots');
  return 0;
}

async function restoreCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = options(argv, { disk: { value: true }, ...LIFECYCLE_FLAGS });
  const snapshotId = one(positionals, 'snapshot id');
  const r = await client.request(SnapshotRestore, { snapshotId, limits: restoreLimitsFrom(flags), ...lifecycleFrom(flags) });
  console.log(`${r.sandboxId}  (running in ${r.timeToRunningMs.toFixed(1)} ms${r.lazy ? ', pages on demand' : ''})`);
  return 0;
}

async function branchCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = options(argv, { count: { value: true, alias: 'n' }, disk: { value: true }, json: {}, ...LIFECYCLE_FLAGS });
  const snapshotId = one(positionals, 'snapshot id');
  const count = Number(flags.count ?? 1);
  if (!Number.isInteger(count) || count < 1) throw new UsageError('-n must be a positive whole number');
  const r = await client.request(SnapshotBranch, { snapshotId, count, limits: restoreLimitsFrom(flags), ...lifecycleFrom(flags) });
  if (flags.json) {
    console.log(JSON.stringify(r, null, 2));
    return 0;
  }
  for (const b of r.branches) console.log(`${b.sandboxId}  (running in ${b.timeToRunningMs.toFixed(1)} ms${b.lazy ? ', pages on demand' : ''})`);
  console.log(`${r.branches.length} branch(es) of ${snapshotId} running in ${r.totalMs.toFixed(1)} ms`);
  return 0;
}

async function diffCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = options(argv, { json: {} });
  if (positionals.length !== 2) throw new UsageError('usage: forkspace diff A B');
  const d = await client.request(BranchDiff, { a: positionals[0], b: positionals[1] });
  if (flags.json) {
    console.log(JSON.stringify(d, null, 2));
    return 0;
  }
  console.log(`base ${d.base}; A = ${d.a}, B = ${d.b}`);
  for (const c of d.changes) console.log(`${c.conflict ? '!' : ' '} A:${c.a.padEnd(9)} B:${c.b.padEnd(9)} ${c.path}`);
  if (d.changes.some((c) => c.conflict)) console.log('(! both changed it in ways a merge cannot combine)');
  return 0;
}

async function mergeCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = options(argv, { strategy: { value: true }, json: {} });
  if (positionals.length !== 2) throw new UsageError('usage: forkspace merge FROM INTO [--strategy fail|ours|theirs]');
  const strategy = (flags.strategy ?? 'fail') as 'fail' | 'ours' | 'theirs';
  if (!['fail', 'ours', 'theirs'].includes(strategy)) throw new UsageError('--strategy is fail, ours or theirs');
  try {
    const m = await client.request(BranchMerge, { from: positionals[0], into: positionals[1], strategy });
    if (flags.json) console.log(JSON.stringify(m, null, 2));
    else {
      console.log(`merged ${m.applied.length} path(s) from ${m.from} into ${m.into} (base ${m.base})`);
      for (const p of m.applied) console.log(`  ${p}`);
      for (const c of m.conflicts) console.log(`  conflict ${c.path}: ${c.reason} (kept ${strategy === 'theirs' ? m.from : m.into}'s)`);
    }
    return 0;
  } catch (e) {
    if (!(e instanceof ProtocolError) || e.code !== ErrorCodes.MergeConflict) throw e;
    const m = e.data as { conflicts: { path: string; reason: string; detail: string }[] };
    warn(e.message);
    for (const c of m.conflicts) console.log(`conflict ${c.path}: ${c.reason}\n${c.detail}`);
    return 1;
  }
}

async function treeCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags } = options(argv, { all: {}, json: {} });
  const { roots } = await client.request(TreeGet, { includeDestroyed: flags.all === true });
  console.log(flags.json ? JSON.stringify(roots, null, 2) : renderTree(roots) || 'no sandboxes yet');
  return 0;
}
