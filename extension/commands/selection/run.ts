import * as vscode from 'vscode';
import type { Command } from '../services';
import { runSource } from '../file/run';

export const runSelection: Command = {
  id: 'forkspace.selection.run',
  run(s) {
    const editor = vscode.window.activeTextEditor;
    const text = editor?.document.getText(editor.selection);
    if (!editor || !text) {
      void vscode.window.showWarningMessage('Select some code to run it in a sandbox.');
      return undefined;
    }
    return runSource(s, 'selection', editor.document.languageId, text);
  },
};
