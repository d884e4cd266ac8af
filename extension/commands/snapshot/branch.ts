import * as vscode from 'vscode';
import { SnapshotBranch } from '../../../agent/src/protocol';
import { parseCount } from '../args';
import { snapshotFor } from '../pick';
import { withProgress, type Command } from '../services';

export const branch: Command = {
  id: 'forkspace.snapshot.branch',
  async run(s, arg, givenCount?: unknown) {
    const snapshotId = await snapshotFor(s, arg, 'Snapshot to branch');
    if (!snapshotId) return undefined;
    let count = typeof givenCount === 'number' ? givenCount : undefined;
    if (count === undefined) {
      const text = await vscode.window.showInputBox({
        prompt: `How many running copies of ${snapshotId}?`,
        value: '2',
        validateInput: (t) => (typeof parseCount(t) === 'string' ? (parseCount(t) as string) : undefined),
      });
      if (text === undefined) return undefined;
      count = parseCount(text) as number;
    }
    const n = count;
    const r = await withProgress(`Branching ${snapshotId} into ${n}…`, (signal) => s.agent.request(SnapshotBranch, { snapshotId, count: n, detached: true }, { signal }));
    void s.branches.reveal(r.branches[0].sandboxId);
    void vscode.window.setStatusBarMessage(`Forkspace: ${r.branches.length} branch(es) running in ${r.totalMs.toFixed(0)} ms`, 5000);
    return r.branches.map((b) => b.sandboxId);
  },
};
