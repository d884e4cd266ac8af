import * as vscode from 'vscode';
import { SnapshotCreate } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

export const checkpoint: Command = {
  id: 'forkspace.sandbox.checkpoint',
  async run(s, arg, givenLabel?: unknown) {
    const sandboxId = await sandboxFor(s, arg, ['running'], 'Sandbox to checkpoint');
    if (!sandboxId) return undefined;
    // Programmatic callers pass the label (or null for none); from the UI, ask (Escape cancels).
    const label =
      typeof givenLabel === 'string' || givenLabel === null
        ? (givenLabel ?? '')
        : await vscode.window.showInputBox({ prompt: `Label for the snapshot of ${sandboxId} (optional)` });
    if (label === undefined) return undefined;
    const r = await withProgress(`Checkpointing ${sandboxId}…`, (signal) => s.agent.request(SnapshotCreate, { sandboxId, label: label || undefined }, { signal }));
    s.branches.refreshSoon();
    void vscode.window.setStatusBarMessage(`Forkspace: ${r.snapshot.id} (paused ${r.timings.pauseMs.toFixed(0)} ms)`, 5000);
    return r.snapshot.id;
  },
};
