import * as net from 'node:net';
import * as vscode from 'vscode';
import { AgentStatus, Initialize, NdjsonTransport, PROTOCOL_VERSION, RpcClient } from '../../../agent/src/protocol';

/** Connects to the local agent's unix socket and shows its and the runtime's state. */
export async function showAgentStatus(): Promise<void> {
  const socketPath = vscode.workspace.getConfiguration('forkspace').get<string>('agent.socket') || '/run/forkspace/agent.sock';
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  }).catch((e: Error) => {
    throw new Error(`Forkspace agent not reachable at ${socketPath}: ${e.message}. Start it with \`forkspace agent start\`.`);
  });
  const client = new RpcClient(new NdjsonTransport(socket));
  try {
    await client.request(Initialize, { protocolVersion: PROTOCOL_VERSION, clientName: 'vscode' });
    const s = await client.request(AgentStatus, {});
    const runtime = s.runtime.connected ? 'runtime connected' : `runtime unavailable: ${s.runtime.error ?? 'unknown'}`;
    void vscode.window.showInformationMessage(`Forkspace agent ${s.version} (pid ${s.pid}), ${runtime}`);
  } finally {
    client.close();
  }
}
