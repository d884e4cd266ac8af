import * as vscode from 'vscode';
import { BranchDiff } from '../../../agent/src/protocol';
import { sandboxUri } from '../../fs/sandboxFileSystem';
import { sandboxFor } from '../pick';
import type { Command } from '../services';

const LIVE: ('running' | 'paused' | 'stopped' | 'exited')[] = ['running', 'paused', 'stopped', 'exited'];

/** Diff Branches: what two sandboxes changed since their common snapshot; opens the diff editor per file. */
export const diff: Command = {
  id: 'forkspace.branch.diff',
  async run(s, arg, other?: unknown) {
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
    const open = (path: string) => vscode.commands.executeCommand('vscode.diff', sandboxUri(a, path), sandboxUri(b, path), `${path} (${a} ↔ ${b})`);
    if (changed.length === 1 || other !== undefined) {
      await open(changed[0].path);
      return d;
    }
    const picked = await vscode.window.showQuickPick(
      changed.map((c) => ({ label: c.path, description: `A ${c.a}, B ${c.b}${c.conflict ? ' · conflict' : ''}` })),
      { placeHolder: `${changed.length} file(s) differ since ${d.base}; pick one to diff`, canPickMany: false },
    );
    if (picked) await open(picked.label);
    return d;
  },
};
