// Instances: persistent sandboxes with their lifetime (TTL countdown, idle timeout). Reloaded from agent
// events; while an instance has a TTL, its countdown is redrawn every 15 s (no agent request for that).
import * as vscode from 'vscode';
import { InstanceList, SandboxChanged, SandboxExpired, type NotificationType, type Sandbox } from '../../agent/src/protocol';
import type { AgentConnection } from '../agent/agentConnection';
import { lifetimeOf } from '../model/treeItems';
import { Refresher } from './refresher';

const COUNTDOWN_MS = 15_000;

export interface InstanceArg {
  sandboxId: string;
  instance: Sandbox;
}

export class InstancesView implements vscode.TreeDataProvider<InstanceArg>, vscode.Disposable {
  private instances: Sandbox[] | undefined;
  private countdown: NodeJS.Timeout | undefined;
  private readonly changed = new vscode.EventEmitter<InstanceArg | undefined>();
  private readonly refresher: Refresher;
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly agent: AgentConnection) {
    this.refresher = new Refresher(agent, [SandboxChanged, SandboxExpired] as NotificationType<unknown>[], () => {
      this.instances = undefined;
      this.changed.fire(undefined);
    });
  }

  refreshSoon(): void {
    this.refresher.soon();
  }

  refresh(): void {
    this.refresher.now();
  }

  async list(): Promise<Sandbox[]> {
    if (!this.instances) {
      try {
        this.instances = (await this.agent.request(InstanceList, {})).instances;
      } catch {
        this.instances = [];
      }
      clearInterval(this.countdown);
      if (this.instances.some((i) => i.policy.ttlMs !== null)) this.countdown = setInterval(() => this.changed.fire(undefined), COUNTDOWN_MS);
    }
    return this.instances;
  }

  getTreeItem(arg: InstanceArg): vscode.TreeItem {
    const s = arg.instance;
    const item = new vscode.TreeItem(s.labels.name ?? s.id, vscode.TreeItemCollapsibleState.None);
    item.id = `instance:${s.id}`;
    item.description = lifetimeOf(s);
    item.tooltip = `Instance ${s.id} (${s.environment})\n${lifetimeOf(s)}`;
    item.contextValue = `${s.state}Sandbox`;
    item.iconPath = new vscode.ThemeIcon(s.state === 'running' ? 'vm-running' : s.state === 'paused' ? 'debug-pause' : 'vm-outline');
    return item;
  }

  async getChildren(arg?: InstanceArg): Promise<InstanceArg[]> {
    if (arg) return [];
    // The countdown redraws without reloading; a reload happens on events.
    return (await this.list()).map((instance) => ({ sandboxId: instance.id, instance }));
  }

  dispose(): void {
    this.refresher.dispose();
    clearInterval(this.countdown);
    this.changed.dispose();
  }
}
