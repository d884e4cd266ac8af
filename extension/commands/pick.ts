// QuickPick flows for commands run from the palette without a tree node.
import * as vscode from 'vscode';
import { SandboxList, SnapshotList, type Sandbox } from '../../agent/src/protocol';
import { age, bytes } from '../model/treeItems';
import { sandboxIdOf, snapshotIdOf } from './args';
import type { Services } from './services';

/** The sandbox a command acts on: the one it was given, or one the user picks among those in `states`. */
export async function sandboxFor(s: Services, arg: unknown, states: Sandbox['state'][], placeHolder: string): Promise<string | undefined> {
  const given = sandboxIdOf(arg);
  if (given) return given;
  const { sandboxes } = await s.agent.request(SandboxList, {});
  const candidates = sandboxes.filter((x) => states.includes(x.state)).sort((a, b) => b.createdAtMs - a.createdAtMs);
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(`No ${states.join(' or ')} sandbox. Start one with "Forkspace: Start Sandbox".`);
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    candidates.map((x) => ({ label: x.id, description: `${x.state} · ${x.environment} · ${age(x.createdAtMs)}`, id: x.id })),
    { placeHolder, matchOnDescription: true },
  );
  return picked?.id;
}

export async function snapshotFor(s: Services, arg: unknown, placeHolder: string): Promise<string | undefined> {
  const given = snapshotIdOf(arg);
  if (given) return given;
  const { snapshots } = await s.agent.request(SnapshotList, {});
  if (snapshots.length === 0) {
    void vscode.window.showInformationMessage('No snapshots yet. Checkpoint a running sandbox first.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    snapshots
      .sort((a, b) => b.createdAtMs - a.createdAtMs)
      .map((x) => ({ label: x.label ? `${x.id} "${x.label}"` : x.id, description: `of ${x.sandboxId} · ${bytes(x.memoryBytes)} · ${age(x.createdAtMs)}`, id: x.id })),
    { placeHolder, matchOnDescription: true },
  );
  return picked?.id;
}
