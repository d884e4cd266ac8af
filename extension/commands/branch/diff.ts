import * as vscode from 'vscode';
import { BranchDiff } from '../../../agent/src/protocol';
import { sandboxUri } from '../../fs/sandboxFileSystem';
import { presence } from '../../model/treeItems';
import { sandboxFor } from '../pick';
import type { Command } from '../services';

const LIVE: ('running' | 'paused' | 'stopped' | 'exited')[] = ['running', 'paused', 'stopped', 'exited'];

/**
 * Diff Branches: what two sandboxes changed since their common snapshot; opens the diff editor on one
 * changed file (the one given, the only one, or the one picked). A file one side lacks shows as empty.
 */
export const diff: Command = {
  id: 'forkspace.branch.diff',
  async run(s, arg, other?: unknown, givenPath?: unknown) {
    const a = await sandboxFor(s, arg, LIVE, 'First sandbox (A)');
    if (!a) return undefined;
    const b = await sandboxFor(s, other, LIVE, `Compare ${a} with (B)`);
    if (!b) return undefined;
    const d = await s.agent.request(BranchDiff, { a, b });
    const changed = d.changes.filter((c) => c.a !== 'unchanged' || c.b !== 'unchanged');
    if (changed.length === 0) {
      void vscode.window.showInformationMessage(`${a} and ${b} have the same files (since ${d.base}).`);
      return d;
    }
    let change = typeof givenPath === 'string' ? changed.find((c) => c.path === givenPath) : changed.length === 1 ? changed[0] : undefined;
    if (typeof givenPath === 'string' && !change) throw new Error(`${givenPath} did not change in ${a} or ${b} since ${d.base}`);
    if (!change) {
      const picked = await vscode.window.showQuickPick(
        changed.map((c) => ({ label: c.path, description: `A ${c.a}, B ${c.b}${c.conflict ? ' · conflict' : ''}`, change: c })),
        { placeHolder: `${changed.length} file(s) differ since ${d.base}; pick one to diff` },
      );
      change = picked?.change;
    }
    if (change) {
      const has = presence(change);
      const title = `${change.path} (${a} ↔ ${b})`;
      await vscode.commands.executeCommand('vscode.diff', sandboxUri(a, change.path, !has.a), sandboxUri(b, change.path, !has.b), title);
    }
    return d;
  },
};
