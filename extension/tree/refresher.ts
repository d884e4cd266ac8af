// What makes a view reload: the agent's events that change what it shows, and each (re)connection,
// debounced so that a burst (a branch of 8 sends 8 events) is one reload; `now()` is the manual refresh.
import * as vscode from 'vscode';
import type { NotificationType } from '../../agent/src/protocol';
import type { AgentConnection } from '../agent/agentConnection';

export const DEBOUNCE_MS = 150;

export class Refresher implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[];

  constructor(agent: AgentConnection, events: NotificationType<unknown>[], private readonly reload: () => void) {
    this.subscriptions = [...events.map((e) => agent.on(e, () => this.soon())), agent.onDidConnect(() => this.soon())];
  }

  soon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.now(), DEBOUNCE_MS);
  }

  now(): void {
    clearTimeout(this.timer);
    this.reload();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.subscriptions.forEach((d) => d.dispose());
  }
}
