import * as vscode from 'vscode';
import { SandboxDestroy } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

export const deleteSandbox: Command = {
  id: 'forkspace.sandbox.delete',
  /** `options.confirmed`: for programmatic callers that asked already (no modal). */
  async run(s, arg, options?: unknown) {
    const sandboxId = await sandboxFor(s, arg, ['running', 'paused', 'stopped', 'exited', 'failed'], 'Sandbox to delete');
    if (!sandboxId) return undefined;
    const confirmed = (options as { confirmed?: boolean } | undefined)?.confirmed === true;
    const ok = confirmed ? 'Delete' : await vscode.window.showWarningMessage(
      `Delete sandbox ${sandboxId}? Its processes and files go; its snapshots stay.`,
      { modal: true },
      'Delete',
    );
    if (ok !== 'Delete') return undefined;
    const r = await withProgress(`Deleting ${sandboxId}…`, (signal) => s.agent.request(SandboxDestroy, { sandboxId }, { signal }));
    s.branches.refreshSoon();
    s.instances.refreshSoon();
    return r;
  },
};
