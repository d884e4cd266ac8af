import { SnapshotRestore } from '../../../agent/src/protocol';
import { snapshotFor } from '../pick';
import { withProgress, type Command } from '../services';

export const restore: Command = {
  id: 'forkspace.snapshot.restore',
  async run(s, arg) {
    const snapshotId = await snapshotFor(s, arg, 'Snapshot to restore into a new sandbox');
    if (!snapshotId) return undefined;
    const r = await withProgress(`Restoring ${snapshotId}…`, (signal) => s.agent.request(SnapshotRestore, { snapshotId, detached: true }, { signal }));
    s.branches.refreshSoon();
    return r.sandboxId;
  },
};
