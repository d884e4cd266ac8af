// The status bar item: the agent's state and how many sandboxes run; a click shows the details.
import * as vscode from 'vscode';
import { SandboxChanged, SandboxList } from '../../agent/src/protocol';
import type { AgentConnection, AgentState } from './agentConnection';

export class AgentStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('forkspace.agent', vscode.StatusBarAlignment.Left, 50);
  private readonly disposables: vscode.Disposable[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly agent: AgentConnection) {
    this.item.name = 'Forkspace';
    this.item.command = 'forkspace.agent.showStatus';
    this.disposables.push(
      agent.onDidChangeState((s) => this.render(s)),
      agent.on(SandboxChanged, () => this.countSoon()),
      agent.onDidConnect(() => this.countSoon()),
    );
    this.render(agent.state);
    this.item.show();
  }

  private countSoon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      try {
        const { sandboxes } = await this.agent.request(SandboxList, {});
        this.running = sandboxes.filter((s) => s.state === 'running' || s.state === 'paused').length;
      } catch {
        return;
      }
      this.render(this.agent.state);
    }, 200);
  }

  private render(s: AgentState): void {
    switch (s.kind) {
      case 'connecting':
        this.item.text = '$(sync~spin) Forkspace';
        this.item.tooltip = 'Connecting to the Forkspace agent…';
        this.item.backgroundColor = undefined;
        break;
      case 'starting':
        this.item.text = '$(sync~spin) Forkspace: starting';
        this.item.tooltip = 'Starting the Forkspace agent…';
        this.item.backgroundColor = undefined;
        break;
      case 'connected':
        this.item.text = s.runtimeError ? '$(warning) Forkspace' : `$(vm-running) Forkspace: ${this.running}`;
        this.item.tooltip = s.runtimeError ? s.runtimeError.message : `Agent ${s.version} connected; ${this.running} sandbox(es) running or paused`;
        this.item.backgroundColor = s.runtimeError ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
        break;
      case 'error':
        this.item.text = '$(error) Forkspace';
        this.item.tooltip = s.message;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.item.dispose();
    this.disposables.forEach((d) => d.dispose());
  }
}
