import * as vscode from 'vscode';
import { EnvList, SandboxCreate, SandboxStart } from '../../../agent/src/protocol';
import { defaultEnvironment, defaultLimits } from '../../config';
import { sandboxIdOf } from '../args';
import { withProgress, type Command } from '../services';

/** Start Sandbox: a stopped one (from the tree) starts again from its snapshot; otherwise a new one. */
export const startSandbox: Command = {
  id: 'forkspace.sandbox.start',
  async run(s, arg, givenEnvironment?: unknown) {
    const stopped = sandboxIdOf(arg);
    if (stopped) {
      const r = await withProgress(`Starting ${stopped}…`, (signal) => s.agent.request(SandboxStart, { sandboxId: stopped }, { signal }));
      s.branches.refreshSoon();
      return r.sandboxId;
    }
    let environment = typeof givenEnvironment === 'string' ? givenEnvironment : typeof arg === 'string' ? arg : undefined;
    if (!environment) {
      const { environments } = await s.agent.request(EnvList, {});
      const preferred = defaultEnvironment();
      const items = environments.map((e) => ({ label: e.name, description: e.name === preferred ? 'default' : '', detail: e.description }));
      environment = (await vscode.window.showQuickPick(items, { placeHolder: 'Environment of the new sandbox' }))?.label;
      if (!environment) return undefined;
    }
    const env = environment;
    // Detached: the sandbox belongs to the user, not to this window's connection.
    const { sandbox } = await withProgress(`Starting a ${env} sandbox…`, () => s.agent.request(SandboxCreate, { environment: env, limits: defaultLimits(), detached: true }));
    s.branches.refreshSoon();
    return sandbox.id;
  },
};
