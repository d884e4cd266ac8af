import * as vscode from 'vscode';
import { SandboxTerminal } from '../../terminal/sandboxTerminal';
import { sandboxFor } from '../pick';
import type { Command } from '../services';

export const openTerminal: Command = {
  id: 'forkspace.terminal.open',
  async run(s, arg) {
    const sandboxId = await sandboxFor(s, arg, ['running'], 'Sandbox to open a terminal in');
    if (!sandboxId) return undefined;
    const pty = new SandboxTerminal(s.agent, sandboxId);
    const terminal = vscode.window.createTerminal({ name: `Forkspace: ${sandboxId}`, pty, iconPath: new vscode.ThemeIcon('vm-running') });
    s.shells.push(pty);
    terminal.show();
    return pty;
  },
};
