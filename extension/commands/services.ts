// What every command gets: the agent connection, the views, and the terminals it opened.
import * as vscode from 'vscode';
import type { AgentConnection } from '../agent/agentConnection';
import type { RunTerminal, Starter } from '../terminal/runTerminal';
import type { SandboxTerminal } from '../terminal/sandboxTerminal';
import type { BranchesView } from '../tree/branchesView';
import type { InstancesView } from '../tree/instancesView';

export interface Services {
  readonly context: vscode.ExtensionContext;
  readonly agent: AgentConnection;
  readonly branches: BranchesView;
  readonly instances: InstancesView;
  /** Run terminals, newest last (the test API reads their text). */
  readonly runs: RunTerminal[];
  readonly shells: SandboxTerminal[];
  runInTerminal(title: string, start: Starter): RunTerminal;
  /** The last error a command showed (tests read it). */
  lastError: string | undefined;
}

/** One command: its id (forkspace.<noun>.<verb>, as in package.json) and what it does. */
export interface Command {
  readonly id: string;
  run(s: Services, ...args: unknown[]): unknown;
}

/** Runs `work` under a cancellable progress notification; cancelling aborts the request. */
export function withProgress<T>(title: string, work: (signal: AbortSignal) => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (_p, token) => {
    const abort = new AbortController();
    token.onCancellationRequested(() => abort.abort());
    return work(abort.signal);
  });
}
