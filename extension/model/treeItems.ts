// The branch tree as VS Code shows it: labels, descriptions, tooltips, icons and the `contextValue` that
// decides which menu items a node gets. Pure (no vscode import): unit-tested on its own, rendered by
// tree/branchesView.ts.
import type { Sandbox, Snapshot, TreeNode } from '../../agent/src/protocol';

export type ContextValue =
  | 'environment'
  | 'runningSandbox'
  | 'pausedSandbox'
  | 'stoppedSandbox'
  | 'exitedSandbox'
  | 'failedSandbox'
  | 'destroyedSandbox'
  | 'snapshot';

export interface ItemSpec {
  id: string;
  label: string;
  description: string;
  tooltip: string;
  contextValue: ContextValue;
  /** A codicon id (ThemeIcon) and its theme colour id, if any. */
  icon: { id: string; color?: string };
  expanded: boolean;
  hasChildren: boolean;
}

export function age(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) || n >= 10 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

const SANDBOX_ICONS: Record<Sandbox['state'], { id: string; color?: string }> = {
  running: { id: 'vm-running', color: 'testing.iconPassed' },
  paused: { id: 'debug-pause', color: 'charts.yellow' },
  stopped: { id: 'vm-outline' },
  exited: { id: 'circle-slash' },
  failed: { id: 'error', color: 'testing.iconFailed' },
  destroyed: { id: 'trash' },
};

export function contextValueOf(node: TreeNode): ContextValue {
  if (node.kind === 'environment') return 'environment';
  if (node.kind === 'snapshot') return 'snapshot';
  return `${node.sandbox?.state ?? 'exited'}Sandbox` as ContextValue;
}

export function itemFor(node: TreeNode, now = Date.now()): ItemSpec {
  const hasChildren = node.children.length > 0;
  const base = { id: `${node.kind}:${node.id}`, hasChildren, contextValue: contextValueOf(node) };
  if (node.kind === 'environment') {
    return { ...base, label: node.id, description: '', tooltip: `Environment ${node.id}`, icon: { id: 'package' }, expanded: true };
  }
  if (node.kind === 'snapshot' && node.snapshot) return { ...base, ...snapshotLook(node.snapshot, now), expanded: true };
  const s = node.sandbox;
  if (!s) return { ...base, label: node.id, description: '', tooltip: node.id, icon: { id: 'question' }, expanded: false };
  return { ...base, ...sandboxLook(s, now), expanded: true };
}

function sandboxLook(s: Sandbox, now: number) {
  const exit = s.state === 'exited' && s.exitCode !== null ? ` (${s.exitCode})` : '';
  const life = [
    s.policy.instance ? 'instance' : '',
    s.policy.ttlMs !== null ? `ttl ${duration(s.policy.ttlMs)}` : '',
    s.policy.idleTimeoutMs !== null ? `idle ${duration(s.policy.idleTimeoutMs)}` : '',
  ].filter(Boolean);
  const description = [`${s.state}${exit}`, age(s.createdAtMs, now), ...life].join(' · ');
  const tooltip = [
    `Sandbox ${s.id}`,
    `state: ${s.state}${exit}`,
    `environment: ${s.environment}`,
    s.originSnapshot ? `branched from ${s.originSnapshot}` : 'fresh from its environment',
    `command: ${s.spec.argv.join(' ')}`,
    s.spec.memoryBytes !== null ? `memory limit: ${bytes(s.spec.memoryBytes)}` : '',
    life.length ? `lifecycle: ${life.join(', ')}, then ${s.policy.onExpiry}` : '',
    `created ${new Date(s.createdAtMs).toLocaleString()}`,
  ].filter(Boolean);
  return { label: s.id, description, tooltip: tooltip.join('\n'), icon: SANDBOX_ICONS[s.state] };
}

function snapshotLook(s: Snapshot, now: number) {
  const label = s.label ? `${s.id} "${s.label}"` : s.id;
  const description = [age(s.createdAtMs, now), `${bytes(s.memoryBytes)} memory`, `${bytes(s.fsBytes)} files`].join(' · ');
  const tooltip = [`Snapshot ${s.id}${s.label ? ` "${s.label}"` : ''}`, `of sandbox ${s.sandboxId}`, `memory: ${bytes(s.memoryBytes)}`, `files changed: ${bytes(s.fsBytes)}`, `taken ${new Date(s.createdAtMs).toLocaleString()}`];
  return { label, description, tooltip: tooltip.join('\n'), icon: { id: 'device-camera' } };
}

export function duration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** How an instance's lifetime stands: what the Instances view shows next to it. */
export function lifetimeOf(s: Sandbox, now = Date.now()): string {
  const parts: string[] = [s.state];
  if (s.policy.ttlMs !== null && (s.state === 'running' || s.state === 'paused')) {
    const left = s.createdAtMs + s.policy.ttlMs - now;
    parts.push(left > 0 ? `${duration(left)} left` : 'expiring');
  }
  if (s.policy.idleTimeoutMs !== null) parts.push(`idle timeout ${duration(s.policy.idleTimeoutMs)}`);
  if (s.policy.ttlMs !== null || s.policy.idleTimeoutMs !== null) parts.push(`then ${s.policy.onExpiry}`);
  return parts.join(' · ');
}

/** Every node of the tree, depth first (for lookups by id). */
export function* walk(nodes: TreeNode[]): Generator<TreeNode> {
  for (const n of nodes) {
    yield n;
    yield* walk(n.children);
  }
}

type Change = 'unchanged' | 'added' | 'modified' | 'deleted';

/** Whether a file changed as `a` on one side and `b` on the other exists on each side: a side that did not
 * touch it has it when the common base had it, which it did unless the other side added it. */
export function presence(c: { a: Change; b: Change }): { a: boolean; b: boolean } {
  const has = (mine: Change, theirs: Change) => mine === 'added' || mine === 'modified' || (mine === 'unchanged' && theirs !== 'added');
  return { a: has(c.a, c.b), b: has(c.b, c.a) };
}
