// Persistent sandboxes, snapshots, branches and the branch tree, through the runtime. The runtime's
// catalog rows are mapped to the public shapes here (internal paths and pipe inodes stay inside).
import type { z } from 'zod';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { RestoreLimits, Sandbox, Snapshot, TreeNode } from '../protocol';
import type { SandboxCreate } from '../protocol/sandboxes';
import {
  RtBranchDiff,
  RtBranchMerge,
  RtSandboxCreate,
  RtSandboxDestroy,
  RtSandboxGet,
  RtSandboxList,
  RtSandboxPause,
  RtSandboxResume,
  RtSandboxStart,
  RtSandboxStop,
  RtSnapshotBranch,
  RtSnapshotCreate,
  RtSnapshotDelete,
  RtSnapshotGet,
  RtSnapshotList,
  RtSnapshotRestore,
  RtSandboxPolicy,
  type RtPolicy,
  type RtSandboxRow,
  type RtSnapshotRow,
} from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { DEFAULT_ENVIRONMENT } from './languages';

type CreateParams = z.output<typeof SandboxCreate.params>;

/** Lifecycle options as requests carry them (see protocol/common.ts `Lifecycle`). */
export interface LifecycleOptions {
  ttlMs?: number;
  idleTimeoutMs?: number;
  onExpiry?: RtPolicy['onExpiry'];
  detached?: boolean;
}

/** The runtime policy for a new sandbox made for `owner` (undefined: nobody's). */
export function policyFor(o: LifecycleOptions, owner: string | undefined, instance = false): RtPolicy {
  return {
    ttlMs: o.ttlMs,
    idleTimeoutMs: o.idleTimeoutMs,
    onExpiry: o.onExpiry,
    autostart: instance || undefined,
    owner: o.detached || instance ? undefined : owner,
  };
}

export function publicPolicy(policy: RtSandboxRow['policy']): Sandbox['policy'] {
  return {
    ttlMs: policy.ttlMs ?? null,
    idleTimeoutMs: policy.idleTimeoutMs ?? null,
    onExpiry: policy.onExpiry,
    instance: policy.autostart,
    detached: policy.owner === undefined,
  };
}

export function publicSandbox(r: RtSandboxRow): Sandbox {
  const { policy, ...rest } = r;
  return { ...rest, state: r.state as Sandbox['state'], policy: publicPolicy(policy) };
}

export function publicSnapshot(r: RtSnapshotRow): Snapshot {
  return {
    id: r.id,
    sandboxId: r.sandboxId,
    parentSnapshot: r.parentSnapshot,
    environment: r.environment,
    label: r.label,
    memoryBytes: r.memoryBytes,
    fsBytes: r.fsBytes,
    createdAtMs: r.createdAtMs,
  };
}

/** What runtime ids look like; anything else given where a snapshot goes is a label. */
const ID = /^(?:sbx|snap)-[0-9a-f]+$/;

export interface SandboxFilter {
  state?: Sandbox['state'];
  environment?: string;
  /** `key=value`, or `key` for any value. */
  label?: string;
}

export class SandboxService {
  constructor(private readonly runtime: RuntimeClient) {}

  /** A snapshot id, or the label of exactly one snapshot: the snapshot's id. Every method that takes a
   * snapshot (or a checkpoint) resolves it here, so `snapshot-123` works wherever `snap-…` does. */
  async snapshotIdOf(ref: string): Promise<string> {
    if (ID.test(ref)) return ref;
    const { snapshots } = await this.runtime.request(RtSnapshotList, {});
    const matches = snapshots.filter((s) => s.label === ref);
    if (matches.length === 1) return matches[0].id;
    if (matches.length === 0) {
      throw new ProtocolError(ErrorCodes.SnapshotNotFound, `no snapshot with id or label "${ref}"; list them with snapshot/list (forkspace snapshots)`);
    }
    const candidates = matches.map((s) => ({ id: s.id, sandboxId: s.sandboxId, createdAtMs: s.createdAtMs }));
    throw new ProtocolError(
      ErrorCodes.AmbiguousReference,
      `${matches.length} snapshots are labelled "${ref}" (${candidates.map((c) => c.id).join(', ')}); give one of their ids instead`,
      { label: ref, candidates },
    );
  }

  /** A sandbox id, a snapshot id, or a unique snapshot label (for what takes either). */
  refOf(ref: string): Promise<string> {
    return ID.test(ref) ? Promise.resolve(ref) : this.snapshotIdOf(ref);
  }

  /** `owner`: the connection (or agent) the sandbox belongs to unless `p.detached`. */
  async create(p: CreateParams, owner?: string, instance = false) {
    const argv = p.command === undefined ? undefined : typeof p.command === 'string' ? ['/bin/sh', '-c', p.command] : p.command;
    const r = await this.runtime.request(RtSandboxCreate, {
      environment: p.environment ?? DEFAULT_ENVIRONMENT,
      argv,
      env: p.env,
      cwd: p.cwd,
      limits: p.limits,
      files: p.files?.map((f) => ({
        path: f.path,
        contentBase64: f.encoding === 'base64' ? f.content : Buffer.from(f.content, 'utf8').toString('base64'),
        mode: f.mode,
      })),
      labels: p.labels,
      policy: policyFor(p, owner, instance),
    });
    return { sandbox: publicSandbox(r.sandbox) };
  }

  async get(sandboxId: string) {
    return { sandbox: publicSandbox((await this.runtime.request(RtSandboxGet, { sandboxId })).sandbox) };
  }

  async list(filter: SandboxFilter = {}) {
    const [key, value] = filter.label === undefined ? [] : splitLabel(filter.label);
    const all = (await this.runtime.request(RtSandboxList, {})).sandboxes.map(publicSandbox);
    const sandboxes = all.filter(
      (s) =>
        (filter.state === undefined || s.state === filter.state) &&
        (filter.environment === undefined || s.environment === filter.environment) &&
        (key === undefined || (key in s.labels && (value === undefined || s.labels[key] === value))),
    );
    return { sandboxes };
  }

  pause(sandboxId: string) {
    return this.runtime.request(RtSandboxPause, { sandboxId }) as Promise<{ sandboxId: string; state: Sandbox['state'] }>;
  }

  resume(sandboxId: string) {
    return this.runtime.request(RtSandboxResume, { sandboxId }) as Promise<{ sandboxId: string; state: Sandbox['state'] }>;
  }

  destroy(sandboxId: string) {
    return this.runtime.request(RtSandboxDestroy, { sandboxId }) as Promise<{ sandboxId: string; state: Sandbox['state'] }>;
  }

  async stop(sandboxId: string) {
    const r = await this.runtime.request(RtSandboxStop, { sandboxId });
    return { snapshot: publicSnapshot(r.snapshot), timings: r.timings };
  }

  start(sandboxId: string) {
    return this.runtime.request(RtSandboxStart, { sandboxId });
  }

  async snapshot(sandboxId: string, leaveRunning?: boolean, label?: string) {
    const r = await this.runtime.request(RtSnapshotCreate, { sandboxId, leaveRunning, label });
    return { snapshot: publicSnapshot(r.snapshot), timings: r.timings };
  }

  /** `limits`: the new sandbox's own disk limit; by default its snapshot's sandbox's. */
  async restore(snapshot: string, policy?: RtPolicy, limits?: RestoreLimits) {
    return this.runtime.request(RtSnapshotRestore, { snapshotId: await this.snapshotIdOf(snapshot), policy, limits });
  }

  async branch(snapshot: string, count: number, policy?: RtPolicy, limits?: RestoreLimits) {
    return this.runtime.request(RtSnapshotBranch, { snapshotId: await this.snapshotIdOf(snapshot), count, policy, limits });
  }

  async setPolicy(
    sandboxId: string,
    change: { ttlMs?: number | null; idleTimeoutMs?: number | null; onExpiry?: RtPolicy['onExpiry']; detached?: boolean; instance?: boolean },
    owner: string | undefined,
  ) {
    const r = await this.runtime.request(RtSandboxPolicy, {
      sandboxId,
      ttlMs: change.ttlMs,
      idleTimeoutMs: change.idleTimeoutMs,
      onExpiry: change.onExpiry,
      autostart: change.instance,
      // An instance belongs to nobody; otherwise `detached` decides.
      owner: change.instance ? null : change.detached === undefined ? undefined : change.detached ? null : owner,
    });
    return { sandboxId, policy: publicPolicy(r.policy) };
  }

  async getSnapshot(snapshot: string) {
    const snapshotId = await this.snapshotIdOf(snapshot);
    return { snapshot: publicSnapshot((await this.runtime.request(RtSnapshotGet, { snapshotId })).snapshot) };
  }

  async listSnapshots(filter: { sandboxId?: string; label?: string } = {}) {
    const all = (await this.runtime.request(RtSnapshotList, {})).snapshots.map(publicSnapshot);
    const snapshots = all.filter(
      (s) => (filter.sandboxId === undefined || s.sandboxId === filter.sandboxId) && (filter.label === undefined || s.label === filter.label),
    );
    return { snapshots };
  }

  async deleteSnapshot(snapshot: string) {
    return this.runtime.request(RtSnapshotDelete, { snapshotId: await this.snapshotIdOf(snapshot) });
  }

  async diff(a: string, b: string) {
    return this.runtime.request(RtBranchDiff, { a: await this.refOf(a), b: await this.refOf(b) });
  }

  async merge(from: string, into: string, strategy: string) {
    return this.runtime.request(RtBranchMerge, { from: await this.refOf(from), into, strategy });
  }

  /** environment → sandboxes made from it → their snapshots → sandboxes made from those → ... */
  async tree(includeDestroyed = false): Promise<{ roots: TreeNode[] }> {
    const [{ sandboxes }, { snapshots }] = await Promise.all([this.list(), this.listSnapshots()]);
    return { roots: buildTree(sandboxes, snapshots, includeDestroyed) };
  }
}

function splitLabel(label: string): [string, string | undefined] {
  const i = label.indexOf('=');
  return i < 0 ? [label, undefined] : [label.slice(0, i), label.slice(i + 1)];
}

export function buildTree(sandboxes: Sandbox[], snapshots: Snapshot[], includeDestroyed: boolean): TreeNode[] {
  const snapshotsOf = new Map<string, Snapshot[]>();
  for (const s of snapshots) snapshotsOf.set(s.sandboxId, [...(snapshotsOf.get(s.sandboxId) ?? []), s]);
  const sandboxesFrom = new Map<string, Sandbox[]>();
  const roots = new Map<string, Sandbox[]>();
  const known = new Set(snapshots.map((s) => s.id));
  for (const sb of sandboxes) {
    if (sb.originSnapshot && known.has(sb.originSnapshot)) {
      sandboxesFrom.set(sb.originSnapshot, [...(sandboxesFrom.get(sb.originSnapshot) ?? []), sb]);
    } else {
      roots.set(sb.environment, [...(roots.get(sb.environment) ?? []), sb]);
    }
  }
  // A sandbox is shown when it is alive or when something below it still exists.
  const sandboxNode = (sb: Sandbox): TreeNode | undefined => {
    const children = (snapshotsOf.get(sb.id) ?? []).map(snapshotNode);
    if (sb.state === 'destroyed' && !includeDestroyed && children.length === 0) return undefined;
    return { kind: 'sandbox', id: sb.id, sandbox: sb, children };
  };
  const snapshotNode = (s: Snapshot): TreeNode => ({
    kind: 'snapshot',
    id: s.id,
    snapshot: s,
    children: (sandboxesFrom.get(s.id) ?? []).map(sandboxNode).filter((n): n is TreeNode => n !== undefined),
  });
  return [...roots.entries()]
    .map(([env, sbs]) => ({
      kind: 'environment' as const,
      id: env,
      children: sbs.map(sandboxNode).filter((n): n is TreeNode => n !== undefined),
    }))
    .filter((n) => n.children.length > 0)
    .sort((a, b) => a.id.localeCompare(b.id));
}
