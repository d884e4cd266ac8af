import * as vscode from 'vscode';
import { SshPrepare } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

/** The ssh command line that logs into a sandbox from this machine (its own key and forward). */
export async function sshCommandLine(s: Parameters<Command['run']>[0], sandboxId: string): Promise<string> {
  const t = await withProgress(`Preparing SSH into ${sandboxId}…`, () => s.agent.request(SshPrepare, { sandboxId }));
  return `ssh -i ${t.identityFile} -p ${t.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ${t.user}@${t.host}`;
}

export const copySshCommand: Command = {
  id: 'forkspace.ssh.copyCommand',
  async run(s, arg) {
    const sandboxId = await sandboxFor(s, arg, ['running', 'paused', 'stopped'], 'Sandbox to SSH into');
    if (!sandboxId) return undefined;
    const line = await sshCommandLine(s, sandboxId);
    await vscode.env.clipboard.writeText(line);
    void vscode.window.showInformationMessage(`Copied: ${line}`);
    return line;
  },
};
