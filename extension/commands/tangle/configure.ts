import * as vscode from 'vscode';
import type { Command } from '../services';

/** Key of the operator mnemonic in SecretStorage: never in settings. */
export const MNEMONIC_SECRET = 'forkspace.tangle.mnemonic';

/** Configure Tangle…: the endpoint goes into settings, the signing mnemonic into SecretStorage. */
export const configureTangle: Command = {
  id: 'forkspace.tangle.configure',
  /** Programmatic callers pass the endpoint and the mnemonic ('' keeps the stored one); the UI asks. */
  async run(s, givenEndpoint?: unknown, givenMnemonic?: unknown) {
    const config = vscode.workspace.getConfiguration('forkspace');
    const endpoint = typeof givenEndpoint === 'string' ? givenEndpoint : await vscode.window.showInputBox({
      prompt: 'Tangle RPC endpoint (Substrate WebSocket or EVM HTTP)',
      value: config.get<string>('tangle.endpoint') || 'ws://127.0.0.1:9944',
      ignoreFocusOut: true,
    });
    if (endpoint === undefined) return undefined;
    await config.update('tangle.endpoint', endpoint, vscode.ConfigurationTarget.Global);
    const mnemonic = typeof givenMnemonic === 'string' ? givenMnemonic : await vscode.window.showInputBox({ prompt: 'Account mnemonic for signing jobs (stored in SecretStorage; leave empty to keep the current one)', password: true, ignoreFocusOut: true });
    if (mnemonic) await s.context.secrets.store(MNEMONIC_SECRET, mnemonic);
    void vscode.window.showInformationMessage(`Tangle endpoint set to ${endpoint}${mnemonic ? '; mnemonic stored in SecretStorage' : ''}. Jobs appear in the Tangle Jobs view.`);
    return endpoint;
  },
};
