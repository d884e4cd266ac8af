// Small text formatting helpers shared by the CLI commands.
import type { Sandbox, Snapshot, TreeNode } from '../protocol';
import { formatBytes } from './args';

export function age(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function sandboxLine(s: Sandbox): string {
  const exit = s.state === 'exited' && s.exitCode !== null ? ` ${s.exitCode}` : '';
  const p = s.policy;
  const life = [p.instance ? 'instance' : '', p.ttlMs !== null ? `ttl ${p.ttlMs / 1000}s` : '', p.idleTimeoutMs !== null ? `idle ${p.idleTimeoutMs / 1000}s` : ''].filter(Boolean).join(', ');
  return `${s.id}  ${(s.state + exit).padEnd(10)} ${s.environment.padEnd(12)} ${age(s.createdAtMs)}${life ? `  (${life})` : ''}`;
}

export function snapshotLine(s: Snapshot): string {
  const label = s.label ? ` "${s.label}"` : '';
  return `${s.id}  of ${s.sandboxId}  ${formatBytes(s.memoryBytes).padStart(9)} memory  ${age(s.createdAtMs)}${label}`;
}

/** The branch tree as indented text. */
export function renderTree(roots: TreeNode[]): string {
  const lines: string[] = [];
  const walk = (node: TreeNode, prefix: string, last: boolean, top: boolean): void => {
    const branch = top ? '' : last ? '└─ ' : '├─ ';
    lines.push(prefix + branch + label(node));
    const childPrefix = top ? '' : prefix + (last ? '   ' : '│  ');
    node.children.forEach((c, i) => walk(c, childPrefix, i === node.children.length - 1, false));
  };
  roots.forEach((r) => walk(r, '', true, true));
  return lines.join('\n');
}

function label(n: TreeNode): string {
  if (n.kind === 'environment') return n.id;
  if (n.kind === 'sandbox' && n.sandbox) {
    const exit = n.sandbox.state === 'exited' && n.sandbox.exitCode !== null ? ` ${n.sandbox.exitCode}` : '';
    return `${n.id} (${n.sandbox.state}${exit})`;
  }
  if (n.snapshot) {
    const l = n.snapshot.label ? ` "${n.snapshot.label}"` : '';
    return `${n.id}${l} ${formatBytes(n.snapshot.memoryBytes)}, ${age(n.snapshot.createdAtMs)}`;
  }
  return n.id;
}
