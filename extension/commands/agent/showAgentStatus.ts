import * as vscode from 'vscode';
import { AgentStatus, connectUnixSocket, Initialize, PROTOCOL_VERSION, RpcClient } from '../../../agent/src/protocol';

/** Connects to the local agent's unix socket and shows its and the runtime's state. */
export async function showAgentStatus(): Promise<void> {
  const socketPath = vscode.workspace.getConfiguration('forkspace').get<string>('agent.socket') || '/run/forkspace/agent.sock';
  const transport = await connectUnixSocket(socketPath).catch((e: Error) => {
    throw new Error(`Forkspace agent not reachable at ${socketPath}: ${e.message}. Start it with \`forkspace agent start\`.`);
  });
  const client = new RpcClient(transport);
  try {
    await client.request(Initialize, { protocolVersion: PROTOCOL_VERSION, clientName: 'vscode' });
    const s = await client.request(AgentStatus, {});
    const runtime = s.runtime.connected ? 'runtime connected' : `runtime unavailable: ${s.runtime.error ?? 'unknown'}`;
    void vscode.window.showInformationMessage(`Forkspace agent ${s.version} (pid ${s.pid}), ${runtime}`);
  } finally {
    client.close();
  }
}
