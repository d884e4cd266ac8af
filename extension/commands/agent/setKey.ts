import * as vscode from 'vscode';
import { AGENT_KEY_SECRET } from '../../agent/agentConnection';
import type { Command } from '../services';

/** Set Agent Key…: the key for the agent at `forkspace.agent.url`, kept in SecretStorage; empty clears it. */
export const setKey: Command = {
  id: 'forkspace.agent.setKey',
  async run(s, givenKey?: unknown) {
    const key =
      typeof givenKey === 'string'
        ? givenKey
        : await vscode.window.showInputBox({
            prompt: 'Key of the Forkspace agent at forkspace.agent.url (from `forkspace keys create`); empty clears it',
            password: true,
            ignoreFocusOut: true,
          });
    if (key === undefined) return undefined;
    if (key.trim()) await s.context.secrets.store(AGENT_KEY_SECRET, key.trim());
    else await s.context.secrets.delete(AGENT_KEY_SECRET);
    await s.agent.reconnect().catch(() => {}); // the status bar and an error message say how it went
    return s.agent.state.kind;
  },
};
