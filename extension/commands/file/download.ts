import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { FilesRead } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

const CHUNK = 4 * 1024 * 1024;

/** Download File from Sandbox…: a file of a sandbox to a local path, in chunks. */
export const download: Command = {
  id: 'forkspace.file.download',
  async run(s, arg, givenRemote?: unknown, givenLocal?: unknown) {
    const sandboxId = await sandboxFor(s, arg, ['running', 'paused', 'stopped', 'exited'], 'Sandbox to download from');
    if (!sandboxId) return undefined;
    const remote = typeof givenRemote === 'string' ? givenRemote : await vscode.window.showInputBox({ prompt: `Path inside ${sandboxId}`, value: '/root/' });
    if (!remote) return undefined;
    let local = givenLocal instanceof vscode.Uri ? givenLocal : undefined;
    if (!local) {
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      local = await vscode.window.showSaveDialog({ defaultUri: folder && vscode.Uri.joinPath(folder, path.basename(remote)), saveLabel: 'Download' });
    }
    if (!local) return undefined;
    const target = local;
    const tmp = `${target.fsPath}.forkspace-part`;
    await withProgress(`Downloading ${sandboxId}:${remote}…`, async (signal) => {
      const fd = fs.openSync(tmp, 'w');
      try {
        for (let offset = 0; ; ) {
          const r = await s.agent.request(FilesRead, { id: sandboxId, path: remote, offset, length: CHUNK, encoding: 'base64' }, { signal });
          const chunk = Buffer.from(r.content, 'base64');
          fs.writeSync(fd, chunk);
          offset += chunk.length;
          if (r.eof || chunk.length === 0) break;
        }
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, target.fsPath); // whole or not at all
    }).then(undefined, (e) => {
      fs.rmSync(tmp, { force: true });
      throw e;
    });
    return target;
  },
};
