// Snapshots & Branches: the branch tree (environment → sandbox → snapshot → branch sandboxes → …), reloaded
// from agent events (debounced), never by polling.
import * as vscode from 'vscode';
import { SandboxChanged, SnapshotChanged, TreeGet, type TreeNode } from '../../agent/src/protocol';
import type { AgentConnection } from '../agent/agentConnection';
import type { NodeArg } from '../commands/args';
import { itemFor, walk } from '../model/treeItems';

export const DEBOUNCE_MS = 150;

export class BranchesView implements vscode.TreeDataProvider<NodeArg>, vscode.Disposable {
  private roots: TreeNode[] = [];
  private loaded: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly changed = new vscode.EventEmitter<NodeArg | undefined>();
  private readonly disposables: vscode.Disposable[] = [];
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly agent: AgentConnection) {
    this.disposables.push(
      agent.on(SandboxChanged, () => this.refreshSoon()),
      agent.on(SnapshotChanged, () => this.refreshSoon()),
      agent.onDidConnect(() => this.refreshSoon()),
    );
  }

  /** Reloads after a short quiet period, so a burst of events (a branch of 8) is one reload. */
  refreshSoon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), DEBOUNCE_MS);
  }

  refresh(): void {
    this.loaded = undefined;
    this.changed.fire(undefined);
  }

  /** The tree as last loaded (tests and commands look things up here). */
  async nodes(): Promise<TreeNode[]> {
    await (this.loaded ??= this.load());
    return this.roots;
  }

  async find(id: string): Promise<TreeNode | undefined> {
    for (const n of walk(await this.nodes())) if (n.id === id) return n;
    return undefined;
  }

  private async load(): Promise<void> {
    try {
      this.roots = (await this.agent.request(TreeGet, {})).roots;
    } catch {
      this.roots = []; // the status bar and the welcome view say why
    }
  }

  getTreeItem(arg: NodeArg): vscode.TreeItem {
    const spec = itemFor(arg.node);
    const state = !spec.hasChildren
      ? vscode.TreeItemCollapsibleState.None
      : spec.expanded
        ? vscode.TreeItemCollapsibleState.Expanded
        : vscode.TreeItemCollapsibleState.Collapsed;
    const item = new vscode.TreeItem(spec.label, state);
    item.id = spec.id;
    item.description = spec.description;
    item.tooltip = spec.tooltip;
    item.contextValue = spec.contextValue;
    item.iconPath = new vscode.ThemeIcon(spec.icon.id, spec.icon.color ? new vscode.ThemeColor(spec.icon.color) : undefined);
    return item;
  }

  async getChildren(arg?: NodeArg): Promise<NodeArg[]> {
    const nodes = arg ? arg.node.children : await this.nodes();
    return nodes.map((node) => ({ node }));
  }

  getParent(): undefined {
    return undefined;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.changed.dispose();
    this.disposables.forEach((d) => d.dispose());
  }
}
