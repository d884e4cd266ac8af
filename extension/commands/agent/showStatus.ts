import * as vscode from 'vscode';
import { AgentStatus } from '../../../agent/src/protocol';
import type { Command } from '../services';

export const showStatus: Command = {
  id: 'forkspace.agent.showStatus',
  async run(s) {
    const st = await s.agent.request(AgentStatus, {});
    const runtime = st.runtime.connected ? 'runtime connected' : `runtime unavailable: ${st.runtime.error ?? 'unknown'}`;
    void vscode.window
      .showInformationMessage(`Forkspace agent ${st.version} (pid ${st.pid}, ${st.connections} connection(s)), ${runtime}`, 'Show Log')
      .then((pick) => pick === 'Show Log' && s.agent.output.show());
    return st;
  },
};
