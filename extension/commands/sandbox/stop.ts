import { SandboxStop } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

export const stop: Command = {
  id: 'forkspace.sandbox.stop',
  async run(s, arg) {
    const sandboxId = await sandboxFor(s, arg, ['running', 'paused'], 'Sandbox to stop (snapshot, then end)');
    if (!sandboxId) return undefined;
    const r = await withProgress(`Stopping ${sandboxId}…`, (signal) => s.agent.request(SandboxStop, { sandboxId }, { signal }));
    s.branches.refreshSoon();
    s.instances.refreshSoon();
    return r;
  },
};
