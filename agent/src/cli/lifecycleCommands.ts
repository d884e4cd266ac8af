// Instances and lifecycle from the CLI: `forkspace instance ...`, `forkspace policy ID ...`, and the
// lifecycle flags every command that makes a running sandbox accepts.
import {
  InstanceDestroy,
  InstanceList,
  InstancePause,
  InstanceResume,
  InstanceStart,
  InstanceStop,
  SandboxPolicy,
  type Expiry,
  type RpcClient,
  type Sandbox,
} from '../protocol';
import { parseArgs, parseDuration, UsageError, type FlagSpec } from './args';
import { age } from './format';
import { limitsFrom } from './limits';

export const LIFECYCLE_USAGE = `lifecycle (on sandbox start, restore, branch and instance start):
  --ttl DUR             end it DUR after it started, busy or not
  --idle-timeout DUR    end it after DUR without a running command, terminal, watch or forwarded connection
  --on-expiry ACTION    snapshot-then-stop (default) | stop | pause | destroy
  --attached            belong to this CLI process: destroyed a grace period after it exits (default: detached)
  forkspace policy ID [--ttl DUR|none] [--idle-timeout DUR|none] [--on-expiry ACTION] [--detach]
instances (persistent, started again when the runtime restarts):
  forkspace instance start [--snapshot SNAP | --env NAME [--memory SIZE] [--cpus N] [--pids N] [--disk SIZE]] [--ttl ...] [-- CMD...]
  forkspace instance list | ls
  forkspace instance stop|pause|resume|rm ID`;

export const LIFECYCLE_FLAGS: Record<string, FlagSpec> = {
  ttl: { value: true },
  'idle-timeout': { value: true },
  'on-expiry': { value: true },
  attached: {},
};

const EXPIRY: readonly Expiry[] = ['stop', 'pause', 'snapshot-then-stop', 'destroy'];

function expiry(flags: Record<string, unknown>): Expiry | undefined {
  const v = flags['on-expiry'];
  if (v === undefined) return undefined;
  if (!EXPIRY.includes(v as Expiry)) throw new UsageError(`--on-expiry is one of ${EXPIRY.join(', ')}`);
  return v as Expiry;
}

function duration(flags: Record<string, unknown>, name: string): number | undefined {
  return typeof flags[name] === 'string' ? parseDuration(flags[name] as string, `--${name}`) : undefined;
}

/** The lifecycle fields of a request, from the flags in LIFECYCLE_FLAGS. */
export function lifecycleFrom(flags: Record<string, unknown>) {
  return {
    ttlMs: duration(flags, 'ttl'),
    idleTimeoutMs: duration(flags, 'idle-timeout'),
    onExpiry: expiry(flags),
    detached: flags.attached !== true,
  };
}

export function policyText(s: Sandbox): string {
  const p = s.policy;
  const parts = [
    p.ttlMs !== null ? `ttl ${p.ttlMs / 1000}s` : '',
    p.idleTimeoutMs !== null ? `idle ${p.idleTimeoutMs / 1000}s` : '',
    p.ttlMs !== null || p.idleTimeoutMs !== null ? `then ${p.onExpiry}` : '',
    p.detached ? '' : 'attached',
  ].filter(Boolean);
  return parts.join(', ');
}

export async function instanceCommand(client: RpcClient, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list' || sub === 'ls') {
    const json = parseArgs(rest, { json: {} }, false).flags.json === true;
    const { instances } = await client.request(InstanceList, {});
    if (json) console.log(JSON.stringify(instances, null, 2));
    else console.log(instances.map((i) => `${i.id}  ${i.state.padEnd(8)} ${i.environment.padEnd(12)} ${age(i.createdAtMs)}  ${policyText(i)}`).join('\n') || 'no instances');
    return 0;
  }
  if (sub === 'start') {
    const { flags, positionals } = parseArgs(rest, {
      snapshot: { value: true },
      env: { value: true },
      memory: { value: true },
      cpus: { value: true },
      pids: { value: true },
      disk: { value: true },
      label: { value: true, repeat: true },
      ...LIFECYCLE_FLAGS,
    });
    const { detached: _d, ...lifecycle } = lifecycleFrom(flags);
    const labels = Object.fromEntries(((flags.label as string[] | undefined) ?? []).map((kv) => kv.split(/=(.*)/s, 2)));
    const { instance } = await client.request(InstanceStart, {
      snapshotId: typeof flags.snapshot === 'string' ? flags.snapshot : undefined,
      environment: typeof flags.env === 'string' ? flags.env : undefined,
      command: positionals.length ? positionals : undefined,
      limits: limitsFrom(flags),
      labels,
      ...lifecycle,
    });
    console.log(instance.id);
    return 0;
  }
  const actions = { stop: InstanceStop, pause: InstancePause, resume: InstanceResume, rm: InstanceDestroy } as const;
  if (sub in actions) {
    const { positionals } = parseArgs(rest, {}, false);
    if (positionals.length !== 1) throw new UsageError(`usage: forkspace instance ${sub} ID`);
    const instanceId = positionals[0];
    if (sub === 'rm') {
      await client.request(InstanceDestroy, { instanceId });
      console.log(`${instanceId} destroyed`);
      return 0;
    }
    const r = await client.request(actions[sub as 'stop' | 'pause' | 'resume'], { instanceId });
    const at = 'snapshotId' in r ? ` at ${r.snapshotId}` : '';
    console.log(`${instanceId} ${r.instance.state}${at}`);
    return 0;
  }
  throw new UsageError(LIFECYCLE_USAGE);
}

export async function policyCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { ttl: { value: true }, 'idle-timeout': { value: true }, 'on-expiry': { value: true }, detach: {}, json: {} }, false);
  if (positionals.length !== 1) throw new UsageError(`usage: forkspace policy ID [--ttl DUR|none] [--idle-timeout DUR|none] [--on-expiry ACTION] [--detach]`);
  const timeout = (name: string) => (flags[name] === 'none' ? null : duration(flags, name));
  const r = await client.request(SandboxPolicy, {
    sandboxId: positionals[0],
    ttlMs: timeout('ttl'),
    idleTimeoutMs: timeout('idle-timeout'),
    onExpiry: expiry(flags),
    detached: flags.detach === true ? true : undefined,
  });
  console.log(flags.json ? JSON.stringify(r, null, 2) : `${r.sandboxId}: ${JSON.stringify(r.policy)}`);
  return 0;
}
