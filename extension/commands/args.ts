// What a command was invoked on. From a tree's context menu VS Code passes the node; from the palette,
// nothing (the command then asks with a QuickPick); from tests and other commands, an id. Pure.
import type { TreeNode } from '../../agent/src/protocol';

/** A tree node as the views hand it to commands. */
export interface NodeArg {
  node: TreeNode;
}

function isNodeArg(arg: unknown): arg is NodeArg {
  return typeof arg === 'object' && arg !== null && 'node' in arg && typeof (arg as NodeArg).node?.id === 'string';
}

/** The sandbox id a command was given, if any. */
export function sandboxIdOf(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.startsWith('sbx-')) return arg;
  if (isNodeArg(arg) && arg.node.kind === 'sandbox') return arg.node.id;
  if (typeof arg === 'object' && arg !== null && typeof (arg as { sandboxId?: unknown }).sandboxId === 'string') {
    return (arg as { sandboxId: string }).sandboxId;
  }
  return undefined;
}

/** The snapshot id a command was given, if any. */
export function snapshotIdOf(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.startsWith('snap-')) return arg;
  if (isNodeArg(arg) && arg.node.kind === 'snapshot') return arg.node.id;
  if (typeof arg === 'object' && arg !== null && typeof (arg as { snapshotId?: unknown }).snapshotId === 'string') {
    return (arg as { snapshotId: string }).snapshotId;
  }
  return undefined;
}

/** A branch count typed by the user: a whole number from 1 to 64, or why not. */
export function parseCount(text: string): number | string {
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 1 || n > 64) return 'Enter a whole number from 1 to 64';
  return n;
}

/** A port typed by the user: 1-65535, or why not. */
export function parsePort(text: string): number | string {
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 1 || n > 65535) return 'Enter a port from 1 to 65535';
  return n;
}

/** A name for an HTTP exposure: what the agent accepts in its URL path. */
export function parseExposureName(text: string): string | { error: string } {
  const t = text.trim();
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(t) ? t : { error: 'Use 1-63 lowercase letters, digits and dashes, starting with a letter or digit' };
}
