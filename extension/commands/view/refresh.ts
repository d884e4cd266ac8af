import type { Command } from '../services';

export const refresh: Command = {
  id: 'forkspace.view.refresh',
  run(s) {
    s.branches.refresh();
    s.instances.refresh();
  },
};
