import * as vscode from 'vscode';
import { SnapshotDelete } from '../../../agent/src/protocol';
import { snapshotFor } from '../pick';
import type { Command } from '../services';

export const deleteSnapshot: Command = {
  id: 'forkspace.snapshot.delete',
  async run(s, arg, options?: unknown) {
    const snapshotId = await snapshotFor(s, arg, 'Snapshot to delete');
    if (!snapshotId) return undefined;
    const confirmed = (options as { confirmed?: boolean } | undefined)?.confirmed === true;
    const ok = confirmed
      ? 'Delete'
      : await vscode.window.showWarningMessage(`Delete snapshot ${snapshotId}? Sandboxes made from it keep running.`, { modal: true }, 'Delete');
    if (ok !== 'Delete') return undefined;
    const r = await s.agent.request(SnapshotDelete, { snapshotId });
    s.branches.refreshSoon();
    return r;
  },
};
