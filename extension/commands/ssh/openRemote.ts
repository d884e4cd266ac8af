import * as vscode from 'vscode';
import { SshPrepare } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

export const REMOTE_SSH = 'ms-vscode-remote.remote-ssh';

/** Open in Remote-SSH: a new window on `forkspace-<id>` (needs `forkspace ssh-config` on the machine). */
export const openRemote: Command = {
  id: 'forkspace.ssh.openRemote',
  async run(s, arg) {
    if (!vscode.extensions.getExtension(REMOTE_SSH)) {
      void vscode.window.showErrorMessage('Open in Remote-SSH needs the Remote - SSH extension. "Copy SSH Command" works without it.');
      return undefined;
    }
    const sandboxId = await sandboxFor(s, arg, ['running', 'paused', 'stopped'], 'Sandbox to open over SSH');
    if (!sandboxId) return undefined;
    const t = await withProgress(`Preparing SSH into ${sandboxId}…`, () => s.agent.request(SshPrepare, { sandboxId }));
    await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.parse(`vscode-remote://ssh-remote+${t.alias}/root`), { forceNewWindow: true });
    return t;
  },
};
