import * as vscode from 'vscode';
import { BranchMerge, ErrorCodes, ProtocolError } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

type Strategy = 'fail' | 'ours' | 'theirs';

/** Merge Branch Into…: three-way merge of one sandbox's file changes into a running one. */
export const merge: Command = {
  id: 'forkspace.branch.merge',
  async run(s, arg, givenInto?: unknown, givenStrategy?: unknown) {
    const from = await sandboxFor(s, arg, ['running', 'paused', 'stopped', 'exited'], 'Merge the changes of…');
    if (!from) return undefined;
    const into = await sandboxFor(s, givenInto, ['running', 'paused'], `Merge ${from}'s changes into…`);
    if (!into) return undefined;
    let strategy = givenStrategy as Strategy | undefined;
    if (!strategy) {
      const picked = await vscode.window.showQuickPick(
        [
          { label: 'fail', description: 'on conflicts apply nothing (default)' },
          { label: 'ours', description: `on conflicts keep ${into}'s version` },
          { label: 'theirs', description: `on conflicts take ${from}'s version` },
        ],
        { placeHolder: 'When both changed the same thing' },
      );
      if (!picked) return undefined;
      strategy = picked.label as Strategy;
    }
    const how = strategy;
    try {
      const m = await withProgress(`Merging ${from} into ${into}…`, (signal) => s.agent.request(BranchMerge, { from, into, strategy: how }, { signal }));
      void vscode.window.showInformationMessage(`Merged ${m.applied.length} file(s) from ${from} into ${into}${m.conflicts.length ? `; ${m.conflicts.length} conflict(s) resolved with "${how}"` : ''}.`);
      return m;
    } catch (e) {
      if (e instanceof ProtocolError && e.code === ErrorCodes.MergeConflict) {
        const conflicts = (e.data as { conflicts?: { path: string; reason: string }[] } | undefined)?.conflicts ?? [];
        void vscode.window.showErrorMessage(`Nothing merged: ${conflicts.length} conflict(s): ${conflicts.map((c) => `${c.path} (${c.reason})`).join(', ')}. Retry with "ours" or "theirs", or use Diff Branches.`);
        return e.data;
      }
      throw e;
    }
  },
};
