import * as vscode from 'vscode';
import { EnvList, ExecRun } from '../../../agent/src/protocol';
import { defaultEnvironment, defaultLimits, defaultTimeoutMs } from '../../config';
import type { Command } from '../services';

/** Run Command in Sandbox…: a shell command line in a fresh sandbox of a chosen environment. */
export const runCommand: Command = {
  id: 'forkspace.command.run',
  async run(s, given?: unknown, givenEnvironment?: unknown) {
    const command =
      typeof given === 'string' ? given : await vscode.window.showInputBox({ prompt: 'Shell command to run in a fresh sandbox', placeHolder: 'python3 -c "print(42)"', ignoreFocusOut: true });
    if (!command) return undefined;
    let environment = typeof givenEnvironment === 'string' ? givenEnvironment : undefined;
    if (!environment) {
      const { environments } = await s.agent.request(EnvList, {});
      const preferred = defaultEnvironment();
      const items = environments.map((e) => ({ label: e.name, description: `${e.built ? 'built' : 'builds on first use'}${e.name === preferred ? ' · default' : ''}`, detail: e.description }));
      items.sort((a, b) => (a.label === preferred ? -1 : b.label === preferred ? 1 : 0));
      environment = (await vscode.window.showQuickPick(items, { placeHolder: 'Environment' }))?.label;
      if (!environment) return undefined;
    }
    const env = environment;
    return s.runInTerminal(command, (execId, signal) =>
      s.agent.request(ExecRun, { execId, environment: env, command, limits: defaultLimits(), timeoutMs: defaultTimeoutMs() }, { signal }),
    );
  },
};
