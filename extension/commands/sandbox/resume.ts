import { SandboxResume } from '../../../agent/src/protocol';
import { sandboxFor } from '../pick';
import { withProgress, type Command } from '../services';

export const resume: Command = {
  id: 'forkspace.sandbox.resume',
  async run(s, arg) {
    const sandboxId = await sandboxFor(s, arg, ['paused'], 'Sandbox to resume');
    if (!sandboxId) return undefined;
    const r = await withProgress(`Resuming ${sandboxId}…`, (signal) => s.agent.request(SandboxResume, { sandboxId }, { signal }));
    s.branches.refreshSoon();
    s.instances.refreshSoon();
    return r;
  },
};
