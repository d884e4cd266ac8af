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
import { isAdmin, normalizingNotFound, notFound, principalOf, sees, type Access } from './access';

type CreateParams = z.output<typeof SandboxCreate.params>;

/** Lifecycle options as requests carry them (see protocol/common.ts `Lifecycle`). */
export interface LifecycleOptions {
  ttlMs?: number;
  idleTimeoutMs?: number;
  onExpiry?: RtPolicy['onExpiry'];
  detached?: boolean;
}

/** The runtime policy for a new sandbox made by `access` for the connection `owner` (undefined:
 * nobody's; an instance is never a connection's). */
export function policyFor(o: LifecycleOptions, owner: string | undefined, access: Access, instance = false): RtPolicy {
  return {
    ttlMs: o.ttlMs,
    idleTimeoutMs: o.idleTimeoutMs,
    onExpiry: o.onExpiry,
    autostart: instance || undefined,
    owner: o.detached || instance ? undefined : owner,
    principal: principalOf(access),
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
const SANDBOX_ID = /^sbx-[0-9a-f]+$/;

export interface SandboxFilter {
  state?: Sandbox['state'];
  environment?: string;
  /** `key=value`, or `key` for any value. */
  label?: string;
}

/** Sandbox id → the key it belongs to (null: the admin's). A sandbox's key never changes, so what is
 * learnt once stays true; bounded so a long-lived agent does not grow without end. */
class PrincipalCache {
  private readonly map = new Map<string, string | null>();

  constructor(private readonly max = 50_000) {}

  get(id: string): string | null | undefined {
    return this.map.get(id);
  }

  learn(id: string, principal: string | null | undefined): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string);
    this.map.set(id, principal ?? null);
  }
}

export class SandboxService {
  /** The key of each sandbox and of each snapshot, as far as learnt (runtime events are filtered by them). */
  readonly sandboxPrincipals = new PrincipalCache();
  readonly snapshotPrincipals = new PrincipalCache();

  constructor(private readonly runtime: RuntimeClient) {}

  /** The sandbox, if `access` may see it: for a key, one of its own; else the not-found error, worded
   * the same whether the sandbox does not exist or belongs to another key. */
  async visibleSandbox(sandboxId: string, access: Access): Promise<RtSandboxRow> {
    const { sandbox } = await normalizingNotFound(this.runtime.request(RtSandboxGet, { sandboxId }), ErrorCodes.SandboxNotFound, () => notFound.sandbox(sandboxId));
    this.sandboxPrincipals.learn(sandbox.id, sandbox.policy.principal);
    if (!sees(access, sandbox.policy.principal)) throw notFound.sandbox(sandboxId);
    return sandbox;
  }

  /** Checks `access` may act on the sandbox (nothing to check for the admin: the runtime answers). */
  async checkSandbox(sandboxId: string, access: Access): Promise<void> {
    if (!isAdmin(access)) await this.visibleSandbox(sandboxId, access);
  }

  /** The snapshots `access` may see: for a key, those of its own sandboxes. */
  private async visibleSnapshotRows(access: Access): Promise<RtSnapshotRow[]> {
    const [{ snapshots }, principals] = await Promise.all([
      this.runtime.request(RtSnapshotList, {}),
      isAdmin(access) ? undefined : this.allSandboxPrincipals(),
    ]);
    return principals ? snapshots.filter((s) => sees(access, principals.get(s.sandboxId))) : snapshots;
  }

  /** Every sandbox's key, destroyed ones included (their snapshots stay theirs). */
  private async allSandboxPrincipals(): Promise<Map<string, string | undefined>> {
    const { sandboxes } = await this.runtime.request(RtSandboxList, {});
    for (const s of sandboxes) this.sandboxPrincipals.learn(s.id, s.policy.principal);
    return new Map(sandboxes.map((s) => [s.id, s.policy.principal]));
  }

  /** A snapshot id, or the label of exactly one snapshot: the snapshot's id. Every method that takes a
   * snapshot (or a checkpoint) resolves it here, so `snapshot-123` works wherever `snap-…` does. A key's
   * labels resolve among its own snapshots only. */
  async snapshotIdOf(ref: string, access: Access): Promise<string> {
    if (ID.test(ref) && isAdmin(access)) return ref;
    const snapshots = await this.visibleSnapshotRows(access);
    if (!isAdmin(access)) for (const s of snapshots) this.snapshotPrincipals.learn(s.id, access.keyId);
    if (ID.test(ref)) {
      if (!snapshots.some((s) => s.id === ref)) throw notFound.snapshot(ref);
      return ref;
    }
    const matches = snapshots.filter((s) => s.label === ref);
    if (matches.length === 1) return matches[0].id;
    if (matches.length === 0) throw notFound.snapshot(ref);
    const candidates = matches.map((s) => ({ id: s.id, sandboxId: s.sandboxId, createdAtMs: s.createdAtMs }));
    throw new ProtocolError(
      ErrorCodes.AmbiguousReference,
      `${matches.length} snapshots are labelled "${ref}" (${candidates.map((c) => c.id).join(', ')}); give one of their ids instead`,
      { label: ref, candidates },
    );
  }

  /** A sandbox id, a snapshot id, or a unique snapshot label (for what takes either), visible to `access`. */
  async refOf(ref: string, access: Access): Promise<string> {
    if (SANDBOX_ID.test(ref)) {
      await this.checkSandbox(ref, access);
      return ref;
    }
    return ID.test(ref) && isAdmin(access) ? ref : this.snapshotIdOf(ref, access);
  }

  /** `owner`: the connection (or agent) the sandbox belongs to unless `p.detached`. */
  async create(p: CreateParams, owner: string | undefined, access: Access, instance = false) {
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
      policy: policyFor(p, owner, access, instance),
    });
    this.sandboxPrincipals.learn(r.sandbox.id, r.sandbox.policy.principal);
    return { sandbox: publicSandbox(r.sandbox) };
  }

  async get(sandboxId: string, access: Access) {
    if (!isAdmin(access)) return { sandbox: publicSandbox(await this.visibleSandbox(sandboxId, access)) };
    return { sandbox: publicSandbox((await this.runtime.request(RtSandboxGet, { sandboxId })).sandbox) };
  }

  async list(filter: SandboxFilter, access: Access) {
    const [key, value] = filter.label === undefined ? [] : splitLabel(filter.label);
    const rows = (await this.runtime.request(RtSandboxList, {})).sandboxes;
    for (const s of rows) this.sandboxPrincipals.learn(s.id, s.policy.principal);
    const sandboxes = rows
      .filter((r) => sees(access, r.policy.principal))
      .map(publicSandbox)
      .filter(
        (s) =>
          (filter.state === undefined || s.state === filter.state) &&
          (filter.environment === undefined || s.environment === filter.environment) &&
          (key === undefined || (key in s.labels && (value === undefined || s.labels[key] === value))),
      );
    return { sandboxes };
  }

  async pause(sandboxId: string, access: Access) {
    await this.checkSandbox(sandboxId, access);
    return this.runtime.request(RtSandboxPause, { sandboxId }) as Promise<{ sandboxId: string; state: Sandbox['state'] }>;
  }

  async resume(sandboxId: string, access: Access) {
    await this.checkSandbox(sandboxId, access);
    return this.runtime.request(RtSandboxResume, { sandboxId }) as Promise<{ sandboxId: string; state: Sandbox['state'] }>;
  }

  async destroy(sandboxId: string, access: Access) {
    await this.checkSandbox(sandboxId, access);
    return this.runtime.request(RtSandboxDestroy, { sandboxId }) as Promise<{ sandboxId: string; state: Sandbox['state'] }>;
  }

  async stop(sandboxId: string, access: Access) {
    await this.checkSandbox(sandboxId, access);
    const r = await this.runtime.request(RtSandboxStop, { sandboxId });
    this.snapshotPrincipals.learn(r.snapshot.id, this.sandboxPrincipals.get(sandboxId));
    return { snapshot: publicSnapshot(r.snapshot), timings: r.timings };
  }

  async start(sandboxId: string, access: Access) {
    await this.checkSandbox(sandboxId, access);
    return this.runtime.request(RtSandboxStart, { sandboxId });
  }

  async snapshot(sandboxId: string, leaveRunning: boolean | undefined, label: string | undefined, access: Access) {
    await this.checkSandbox(sandboxId, access);
    const r = await this.runtime.request(RtSnapshotCreate, { sandboxId, leaveRunning, label });
    this.snapshotPrincipals.learn(r.snapshot.id, this.sandboxPrincipals.get(sandboxId));
    return { snapshot: publicSnapshot(r.snapshot), timings: r.timings };
  }

  /** A new sandbox from a snapshot `access` may see; `policy` carries its key (policyFor); `limits`: the
   * new sandbox's own disk limit, by default its snapshot's sandbox's. */
  async restore(snapshot: string, policy: RtPolicy, access: Access, limits?: RestoreLimits) {
    const r = await this.runtime.request(RtSnapshotRestore, { snapshotId: await this.snapshotIdOf(snapshot, access), policy, limits });
    this.sandboxPrincipals.learn(r.sandboxId, policy.principal);
    return r;
  }

  async branch(snapshot: string, count: number, policy: RtPolicy, access: Access, limits?: RestoreLimits) {
    const r = await this.runtime.request(RtSnapshotBranch, { snapshotId: await this.snapshotIdOf(snapshot, access), count, policy, limits });
    for (const b of r.branches) this.sandboxPrincipals.learn(b.sandboxId, policy.principal);
    return r;
  }

  async setPolicy(
    sandboxId: string,
    change: { ttlMs?: number | null; idleTimeoutMs?: number | null; onExpiry?: RtPolicy['onExpiry']; detached?: boolean; instance?: boolean },
    owner: string | undefined,
    access: Access,
  ) {
    await this.checkSandbox(sandboxId, access);
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

  async getSnapshot(snapshot: string, access: Access) {
    const snapshotId = await this.snapshotIdOf(snapshot, access);
    return { snapshot: publicSnapshot((await this.runtime.request(RtSnapshotGet, { snapshotId })).snapshot) };
  }

  async listSnapshots(filter: { sandboxId?: string; label?: string }, access: Access) {
    const all = (await this.visibleSnapshotRows(access)).map(publicSnapshot);
    const snapshots = all.filter(
      (s) => (filter.sandboxId === undefined || s.sandboxId === filter.sandboxId) && (filter.label === undefined || s.label === filter.label),
    );
    return { snapshots };
  }

  async deleteSnapshot(snapshot: string, access: Access) {
    return this.runtime.request(RtSnapshotDelete, { snapshotId: await this.snapshotIdOf(snapshot, access) });
  }

  async diff(a: string, b: string, access: Access) {
    return this.runtime.request(RtBranchDiff, { a: await this.refOf(a, access), b: await this.refOf(b, access) });
  }

  async merge(from: string, into: string, strategy: string, access: Access) {
    await this.checkSandbox(into, access);
    return this.runtime.request(RtBranchMerge, { from: await this.refOf(from, access), into, strategy });
  }

  /** environment → sandboxes made from it → their snapshots → sandboxes made from those → ... (what
   * `access` may see). */
  async tree(includeDestroyed: boolean, access: Access): Promise<{ roots: TreeNode[] }> {
    const [{ sandboxes }, { snapshots }] = await Promise.all([this.list({}, access), this.listSnapshots({}, access)]);
    return { roots: buildTree(sandboxes, snapshots, includeDestroyed) };
  }

  /** The key a sandbox belongs to (null: the admin's; undefined: no such sandbox in the catalog). */
  async principalOfSandbox(sandboxId: string): Promise<string | null | undefined> {
    const known = this.sandboxPrincipals.get(sandboxId);
    if (known !== undefined) return known;
    try {
      const { sandbox } = await this.runtime.request(RtSandboxGet, { sandboxId });
      this.sandboxPrincipals.learn(sandboxId, sandbox.policy.principal);
      return sandbox.policy.principal ?? null;
    } catch {
      // destroyed ones are only in the list; ephemeral runs are in neither
      return (await this.allSandboxPrincipals().catch(() => new Map<string, string | undefined>())).has(sandboxId)
        ? (this.sandboxPrincipals.get(sandboxId) ?? null)
        : undefined;
    }
  }

  /** The key a snapshot belongs to (that of its sandbox). */
  async principalOfSnapshot(snapshotId: string): Promise<string | null | undefined> {
    const known = this.snapshotPrincipals.get(snapshotId);
    if (known !== undefined) return known;
    const row = await this.runtime.request(RtSnapshotGet, { snapshotId }).then((r) => r.snapshot, () => undefined);
    if (!row) return undefined;
    const principal = await this.principalOfSandbox(row.sandboxId);
    if (principal !== undefined) this.snapshotPrincipals.learn(snapshotId, principal);
    return principal;
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
