// Every command id of the extension, registered in one table.
import * as vscode from 'vscode';
import { showAgentStatus } from './agent/showAgentStatus';

export function registerCommands(context: vscode.ExtensionContext): void {
  context.subscriptions.push(vscode.commands.registerCommand('forkspace.agent.showStatus', showAgentStatus));
}
