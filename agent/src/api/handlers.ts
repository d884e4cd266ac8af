// What each public method does: the agent's method table bound to its services. One registration per
// method of agent/src/protocol/methods.ts.
import {
  AgentStatus,
  AgentStop,
  EnvBuild,
  EnvList,
  EnvProgress,
  ErrorCodes,
  ExecOutput,
  ExecRun,
  ExecStarted,
  Initialize,
  PROTOCOL_VERSION,
  ProtocolError,
} from '../protocol';
import type { Agent } from '../agent';
import type { RpcServer } from './rpcServer';

export const AGENT_VERSION = '0.1.0';

export function registerHandlers(server: RpcServer, agent: Agent): void {
  server.on(Initialize, (params, { peer }) => {
    const major = (v: string) => v.split('.')[0];
    if (major(params.protocolVersion) !== major(PROTOCOL_VERSION)) {
      throw new ProtocolError(
        ErrorCodes.InvalidRequest,
        `protocol version ${params.protocolVersion} is not supported (this agent speaks ${PROTOCOL_VERSION}); update the client or the agent`,
      );
    }
    peer.state = 'ready';
    return {
      protocolVersion: PROTOCOL_VERSION,
      serverName: 'forkspace-agent',
      serverVersion: AGENT_VERSION,
      capabilities: { executionModes: ['ephemeral'], streaming: true, cancellation: true },
    };
  });

  server.on(AgentStatus, async () => agent.status());

  server.on(AgentStop, (params) => {
    // Answer first, then stop: the caller gets its response before the socket goes away.
    setImmediate(() => void agent.stop({ stopRuntime: params.stopRuntime ?? false }));
    return {};
  });

  server.on(EnvList, async () => ({ environments: await agent.environments.list() }));

  server.on(EnvBuild, async (params, { peer }) =>
    agent.environments.build(params.name, (message) => peer.notify(EnvProgress, { name: params.name, message })),
  );

  server.on(ExecRun, (params, { peer, signal }) =>
    agent.exec.run(
      params,
      {
        started: (info) => peer.notify(ExecStarted, info),
        output: (chunk) => peer.notify(ExecOutput, chunk),
        progress: (message, name) => peer.notify(EnvProgress, { name, message }),
      },
      signal,
    ),
  );
}
