import * as path from 'node:path';
import * as vscode from 'vscode';
import { ExecRun } from '../../../agent/src/protocol';
import { defaultEnvironment, defaultLimits, defaultTimeoutMs } from '../../config';
import { runnableFor } from '../../model/languages';
import type { Command, Services } from '../services';

/** The file to run: the given URI, else the active editor's document. */
export async function documentFor(arg: unknown): Promise<vscode.TextDocument | undefined> {
  if (arg instanceof vscode.Uri) return vscode.workspace.openTextDocument(arg);
  const doc = vscode.window.activeTextEditor?.document;
  if (!doc) void vscode.window.showWarningMessage('Open a file to run it in a sandbox.');
  return doc;
}

export function runSource(s: Services, title: string, languageId: string, source: string, extra: { mode?: 'checkpointed' } = {}) {
  const r = runnableFor(languageId, source, defaultEnvironment());
  if ('error' in r) {
    void vscode.window.showErrorMessage(r.error);
    return undefined;
  }
  return s.runInTerminal(title, (execId, signal) =>
    s.agent.request(ExecRun, { execId, ...r, limits: defaultLimits(), timeoutMs: defaultTimeoutMs(), ...extra }, { signal }),
  );
}

export const runFile: Command = {
  id: 'forkspace.file.run',
  async run(s, arg) {
    const doc = await documentFor(arg);
    return doc && runSource(s, path.basename(doc.fileName), doc.languageId, doc.getText());
  },
};
