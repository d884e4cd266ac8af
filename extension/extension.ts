// The VS Code extension's entry point: wiring only. The agent connection, the three views, the
// `forkspace:` file system, the status bar and the command table; `activate` returns an API that the
// real-editor tests use to look inside.
import * as vscode from 'vscode';
import { AgentConnection } from './agent/agentConnection';
import { AgentLog } from './agent/agentLog';
import { AgentStatusBar } from './agent/statusBar';
import { registerCommands } from './commands/registerCommands';
import type { Services } from './commands/services';
import { SandboxFileSystem, SCHEME } from './fs/sandboxFileSystem';
import { RunTerminal } from './terminal/runTerminal';
import type { SandboxTerminal } from './terminal/sandboxTerminal';
import { BranchesView } from './tree/branchesView';
import { InstancesView } from './tree/instancesView';
import { TangleJobsView } from './tree/tangleJobsView';

export interface ForkspaceApi {
  readonly services: Services;
  /** The agent's and runtime's log lines followed into the output channel. */
  readonly agentLog: AgentLog;
}

export function activate(context: vscode.ExtensionContext): ForkspaceApi {
  const output = vscode.window.createOutputChannel('Forkspace');
  const agent = new AgentConnection(context.extensionPath, output, context.secrets);
  const agentLog = new AgentLog(output);
  const branches = new BranchesView(agent);
  const instances = new InstancesView(agent);
  const runs: RunTerminal[] = [];
  const shells: SandboxTerminal[] = [];
  const services: Services = {
    context,
    agent,
    branches,
    instances,
    runs,
    shells,
    lastError: undefined,
    runInTerminal(title, start) {
      const pty = new RunTerminal(agent, title, start);
      const terminal = vscode.window.createTerminal({ name: `Forkspace: ${title}`, pty, iconPath: new vscode.ThemeIcon('run') });
      runs.push(pty);
      terminal.show(true);
      void pty.result.then(() => branches.refreshSoon());
      return pty;
    },
  };
  context.subscriptions.push(
    output,
    agent,
    branches,
    instances,
    new AgentStatusBar(agent),
    branches.createView('forkspace.branches'),
    vscode.window.registerTreeDataProvider('forkspace.instances', instances),
    vscode.window.registerTreeDataProvider('forkspace.tangleJobs', new TangleJobsView()),
    vscode.workspace.registerFileSystemProvider(SCHEME, new SandboxFileSystem(agent), { isCaseSensitive: true, isReadonly: true }),
    agentLog,
    agent.onDidChangeState((s) => {
      // A local agent's log files are readable here; one reached by URL keeps its logs where it runs.
      if (s.kind === 'connected' && !s.via.includes('://')) agentLog.follow();
      if (s.kind === 'error') void explain(context, agent, s.message, s.fix);
      if (s.kind === 'connected' && s.runtimeError) void explain(context, agent, s.runtimeError.message, s.runtimeError.fix);
    }),
  );
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('forkspace.agent.url') || e.affectsConfiguration('forkspace.agent.socket')) void agent.reconnect().catch(() => {});
    }),
  );
  registerCommands(context, services);
  void vscode.commands.executeCommand('setContext', 'forkspace.remoteSshAvailable', !!vscode.extensions.getExtension('ms-vscode-remote.remote-ssh'));
  // Connect (starting the agent if needed) in the background: activation must not wait for it.
  void agent.connection().catch(() => {});
  return { services, agentLog };
}

/** An actionable message: what is wrong, a fix to copy, the docs, a retry. */
async function explain(context: vscode.ExtensionContext, agent: AgentConnection, message: string, fix?: string): Promise<void> {
  const actions = [...(fix ? ['Copy Fix Command'] : []), 'Open Docs', 'Retry'];
  const pick = await vscode.window.showErrorMessage(`Forkspace: ${message}`, ...actions);
  if (pick === 'Copy Fix Command' && fix) await vscode.env.clipboard.writeText(fix);
  // The README ships in the extension: its "Requirements and troubleshooting" section, offline.
  if (pick === 'Open Docs') await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.joinPath(context.extensionUri, 'README.md'));
  if (pick === 'Retry') await agent.retry().catch(() => {});
}

export function deactivate(): void {}
