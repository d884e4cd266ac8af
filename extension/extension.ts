// The VS Code extension's entry point: wiring only. The full extension (trees, commands, terminals)
// grows here; today it reports the agent's state.
import * as vscode from 'vscode';
import { registerCommands } from './commands/registerCommands';

export function activate(context: vscode.ExtensionContext): void {
  registerCommands(context);
}

export function deactivate(): void {}
