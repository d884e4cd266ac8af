// Snapshots & Branches: the branch tree (environment → sandbox → snapshot → branch sandboxes → …), reloaded
// from agent events (debounced, tree/refresher.ts), never by polling.
import * as vscode from 'vscode';
import { SandboxChanged, SnapshotChanged, TreeGet, type NotificationType, type TreeNode } from '../../agent/src/protocol';
import type { AgentConnection } from '../agent/agentConnection';
import type { NodeArg } from '../commands/args';
import { itemFor, walk } from '../model/treeItems';
import { Refresher } from './refresher';

/** A node's identity across reloads (snapshot and sandbox ids never collide, but say which). */
const key = (n: TreeNode) => `${n.kind}:${n.id}`;

export class BranchesView implements vscode.TreeDataProvider<NodeArg>, vscode.Disposable {
  private roots: TreeNode[] = [];
  /** Each node's parent, for getParent (which `reveal` needs). */
  private parents = new Map<string, TreeNode>();
  private view: vscode.TreeView<NodeArg> | undefined;
  private loaded: Promise<void> | undefined;
  private readonly changed = new vscode.EventEmitter<NodeArg | undefined>();
  private readonly refresher: Refresher;
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly agent: AgentConnection) {
    this.refresher = new Refresher(agent, [SandboxChanged, SnapshotChanged] as NotificationType<unknown>[], () => {
      this.loaded = undefined;
      this.changed.fire(undefined);
    });
  }

  /** Reloads after a short quiet period, so a burst of events (a branch of 8) is one reload. */
  refreshSoon(): void {
    this.refresher.soon();
  }

  refresh(): void {
    this.refresher.now();
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
    this.parents = new Map();
    const index = (parent: TreeNode) => parent.children.forEach((c) => (this.parents.set(key(c), parent), index(c)));
    this.roots.forEach(index);
  }

  /** Creates the view this provider renders (createTreeView, so that nodes can be revealed). */
  createView(id: string): vscode.TreeView<NodeArg> {
    this.view = vscode.window.createTreeView(id, { treeDataProvider: this, showCollapseAll: true });
    return this.view;
  }

  /** Ids of the selected nodes. */
  selected(): string[] {
    return this.view?.selection.map((a) => a.node.id) ?? [];
  }

  /** Shows (and selects) a node once the tree has it: after a command made it, say. */
  async reveal(id: string): Promise<void> {
    this.refresh();
    const node = await this.find(id);
    if (node && this.view?.visible) await this.view.reveal({ node }, { select: true, focus: false, expand: true });
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

  getParent(arg: NodeArg): NodeArg | undefined {
    const parent = this.parents.get(key(arg.node));
    return parent && { node: parent };
  }

  dispose(): void {
    this.refresher.dispose();
    this.changed.dispose();
  }
}
