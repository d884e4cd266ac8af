import { SandboxPause } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

export const pause: Command = {
  id: 'forkspace.sandbox.pause',
  async run(s, arg) {
    const sandboxId = await sandboxFor(s, arg, ['running'], 'Sandbox to pause (freeze)');
    if (!sandboxId) return undefined;
    const r = await withProgress(`Pausing ${sandboxId}…`, (signal) => s.agent.request(SandboxPause, { sandboxId }, { signal }));
    s.branches.refreshSoon();
    s.instances.refreshSoon();
    return r;
  },
};
