import * as vscode from 'vscode';
import { PortForwardCreate } from '../../../agent/src/protocol';
import { parsePort } from '../args';
import { sandboxFor } from '../pick';
import type { Command } from '../services';

export const forwardPort: Command = {
  id: 'forkspace.port.forward',
  async run(s, arg, givenPort?: unknown) {
    const sandboxId = await sandboxFor(s, arg, ['running'], 'Sandbox whose port to forward');
    if (!sandboxId) return undefined;
    let port = typeof givenPort === 'number' ? givenPort : undefined;
    if (port === undefined) {
      const text = await vscode.window.showInputBox({ prompt: `Port inside ${sandboxId}`, placeHolder: '8000', validateInput: (t) => (typeof parsePort(t) === 'string' ? (parsePort(t) as string) : undefined) });
      if (text === undefined) return undefined;
      port = parsePort(text) as number;
    }
    const f = await s.agent.request(PortForwardCreate, { sandboxId, port });
    // In a remote or dev-container window, the host port must be tunnelled to the user's machine.
    const local = await vscode.env.asExternalUri(vscode.Uri.parse(`http://${f.hostAddress}:${f.hostPort}/`));
    // The message stays until dismissed: its buttons act later, the command returns now.
    void vscode.window.showInformationMessage(`${sandboxId}:${port} is forwarded to ${local.toString(true)}`, 'Open in Browser', 'Copy Address').then((pick) => {
      if (pick === 'Open in Browser') void vscode.env.openExternal(local);
      if (pick === 'Copy Address') void vscode.env.clipboard.writeText(local.toString(true));
    });
    return { ...f, localUri: local.toString(true) };
  },
};
