import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { FilesWrite } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

const CHUNK = 4 * 1024 * 1024;

/** Upload File to Sandbox…: a local file into a running sandbox, in chunks, never whole in memory. */
export const upload: Command = {
  id: 'forkspace.file.upload',
  async run(s, arg, givenLocal?: unknown, givenRemote?: unknown) {
    const sandboxId = await sandboxFor(s, arg, ['running', 'paused'], 'Sandbox to upload into');
    if (!sandboxId) return undefined;
    let local = givenLocal instanceof vscode.Uri ? givenLocal : undefined;
    if (!local) local = (await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: `Upload to ${sandboxId}` }))?.[0];
    if (!local) return undefined;
    const source = local;
    const remote = typeof givenRemote === 'string' ? givenRemote : await vscode.window.showInputBox({ prompt: `Path inside ${sandboxId}`, value: `/root/${path.basename(source.fsPath)}` });
    if (!remote) return undefined;
    const size = fs.statSync(source.fsPath).size;
    await withProgress(`Uploading ${path.basename(source.fsPath)} to ${sandboxId}:${remote}…`, async (signal) => {
      const fd = fs.openSync(source.fsPath, 'r');
      try {
        const buf = Buffer.alloc(Math.min(CHUNK, Math.max(size, 1)));
        let offset = 0;
        do {
          const n = fs.readSync(fd, buf, 0, buf.length, offset);
          await s.agent.request(FilesWrite, { sandboxId, path: remote, offset, content: buf.subarray(0, n).toString('base64'), encoding: 'base64', truncate: offset === 0 }, { signal });
          offset += n;
          if (n === 0) break;
        } while (offset < size);
      } finally {
        fs.closeSync(fd);
      }
    });
    void vscode.window.setStatusBarMessage(`Forkspace: uploaded ${size} bytes to ${sandboxId}:${remote}`, 5000);
    return remote;
  },
};
