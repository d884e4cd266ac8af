// What the in-editor tests share: the activated extension's API, readiness waits, and tree lookups
// through the real TreeDataProviders (the same calls VS Code makes to render the views).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TreeNode } from '../../../agent/src/protocol';
import type { ForkspaceApi } from '../../../extension/extension';
import type { NodeArg } from '../../../extension/commands/args';

export const EXTENSION_ID = 'forkspace.forkspace';

export async function forkspace(): Promise<ForkspaceApi> {
  const ext = vscode.extensions.getExtension<ForkspaceApi>(EXTENSION_ID);
  if (!ext) throw new Error(`${EXTENSION_ID} is not installed in this extension host`);
  return ext.isActive ? ext.exports : ext.activate();
}

/** Polls `check` until it returns something truthy; fails naming `what` after `timeoutMs`. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function workspaceDir(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('the tests need a workspace folder (the runner opens one)');
  return folder.uri.fsPath;
}

export function writeWorkspaceFile(name: string, text: string): vscode.Uri {
  const file = path.join(workspaceDir(), name);
  fs.writeFileSync(file, text);
  return vscode.Uri.file(file);
}

/** A node of the Snapshots & Branches view by id, reloading the view first (as an event would). */
export async function treeNode(api: ForkspaceApi, id: string): Promise<TreeNode | undefined> {
  api.services.branches.refresh();
  const visit = async (arg?: NodeArg): Promise<TreeNode | undefined> => {
    for (const child of await api.services.branches.getChildren(arg)) {
      if (child.node.id === id) return child.node;
      const found = await visit(child);
      if (found) return found;
    }
    return undefined;
  };
  return visit();
}

/** The TreeItem VS Code renders for a node of the Snapshots & Branches view. */
export async function treeItem(api: ForkspaceApi, id: string): Promise<vscode.TreeItem | undefined> {
  const node = await treeNode(api, id);
  return node && api.services.branches.getTreeItem({ node });
}

/** The agent's token (the key exposed HTTP services want), from the run dir the runner set. */
export function agentToken(): string {
  const runDir = process.env.FORKSPACE_RUN_DIR ?? '/run/forkspace';
  return fs.readFileSync(process.env.FORKSPACE_TOKEN_FILE ?? path.join(runDir, 'agent.token'), 'utf8').trim();
}
