import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Command } from '../services';
import { documentFor, runSource } from './run';

export const runCheckpointed: Command = {
  id: 'forkspace.file.runCheckpointed',
  async run(s, arg) {
    const doc = await documentFor(arg);
    const t = doc && runSource(s, `${path.basename(doc.fileName)} (checkpointed)`, doc.languageId, doc.getText(), { mode: 'checkpointed' });
    void t?.result.then(async (r) => {
      if (!r?.checkpointId) return;
      s.branches.refreshSoon();
      const pick = await vscode.window.showInformationMessage(`Checkpoint ${r.checkpointId} taken after the run.`, 'Branch It…');
      if (pick) await vscode.commands.executeCommand('forkspace.snapshot.branch', r.checkpointId);
    });
    return t;
  },
};
