// What each public method does: the agent's method table bound to its services. One registration per
// method of agent/src/protocol/methods.ts.
import {
  AgentStatus,
  AgentStop,
  BranchDiff,
  BranchMerge,
  EnvBuild,
  EnvList,
  EnvProgress,
  ErrorCodes,
  ExecBranch,
  ExecCancel,
  ExecGet,
  ExecLog,
  ExecOutput,
  ExecRun,
  ExecStart,
  ExecStarted,
  KeyCreate,
  KeyList,
  KeyRevoke,
  Initialize,
  PROTOCOL_VERSION,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxGet,
  SandboxList,
  SandboxPause,
  SandboxResume,
  SandboxStart,
  SandboxStop,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotDelete,
  SnapshotGet,
  SnapshotList,
  SnapshotRestore,
  TreeGet,
  FilesWrite,
  FilesRead,
  FilesList,
  FilesRemove,
  TerminalOpen,
  TerminalInput,
  TerminalResize,
  TerminalClose,
  PortForwardCreate,
  PortUnforward,
  PortList,
  HttpExpose,
  HttpHide,
  HttpList,
  SandboxPolicy,
  SandboxWatch,
  SandboxUnwatch,
  InstanceStart,
  InstanceStop,
  InstancePause,
  InstanceResume,
  InstanceGet,
  InstanceList,
  InstanceDestroy,
  SshPrepare,
  PoolConfigure,
  PoolList,
  PoolSnapshot,
} from '../protocol';
import { RtPoolConfigure, RtPoolList, RtPoolSnapshot } from '../protocol/runtime';
import { policyFor } from '../core/sandboxes';
import type { ExecObserver } from '../core/exec';
import type { Peer } from './rpcServer';
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
      capabilities: { executionModes: ['ephemeral', 'cached', 'checkpointed', 'branched', 'persistent'], streaming: true, cancellation: true },
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

  // Every execution goes through the registry (state, replayable output, cancel from anywhere); the
  // mode switch is Agent.runExecution.
  const executions = agent.executions;
  server.on(ExecRun, (params, { peer, signal }) => executions.run(params, streamTo(peer), signal));
  server.on(ExecStart, (params) => executions.start(params));
  server.on(ExecGet, (p) => executions.get(p.execId, p.waitMs));
  server.on(ExecCancel, (p) => executions.cancel(p.execId));
  server.on(ExecLog, (p) => executions.log(p.execId, p.after, p.limit));
  server.on(ExecBranch, (params, { peer, signal }) => executions.branched((observer) => agent.modes.branched(params, observer, signal), streamTo(peer)));

  const sandboxes = agent.sandboxes;
  const ownership = agent.ownership;
  server.on(SandboxCreate, (p, { peer }) => sandboxes.create(p, ownership.ownerOf(peer)));
  server.on(SandboxExec, (p, { peer, signal }) => executions.run({ ...p, mode: 'persistent' }, streamTo(peer), signal));
  server.on(SandboxPolicy, (p, { peer }) => sandboxes.setPolicy(p.sandboxId, p, ownership.ownerOf(peer)));
  server.on(SandboxWatch, (p, { peer }) => ownership.watch(p.sandboxId, peer));
  server.on(SandboxUnwatch, (p) => ownership.unwatch(p.watchId));
  server.on(SandboxGet, (p) => sandboxes.get(p.sandboxId));
  server.on(SandboxList, (p) => sandboxes.list(p));
  server.on(SandboxPause, (p) => sandboxes.pause(p.sandboxId));
  server.on(SandboxResume, (p) => sandboxes.resume(p.sandboxId));
  server.on(SandboxStop, (p) => sandboxes.stop(p.sandboxId));
  server.on(SandboxStart, (p) => sandboxes.start(p.sandboxId));
  server.on(SandboxDestroy, (p) => sandboxes.destroy(p.sandboxId));
  server.on(SnapshotCreate, (p) => sandboxes.snapshot(p.sandboxId, p.leaveRunning, p.label));
  server.on(SnapshotRestore, (p, { peer }) => sandboxes.restore(p.snapshotId, policyFor(p, ownership.ownerOf(peer)), p.limits));
  server.on(SnapshotBranch, (p, { peer }) => sandboxes.branch(p.snapshotId, p.count, policyFor(p, ownership.ownerOf(peer)), p.limits));
  server.on(SnapshotGet, (p) => sandboxes.getSnapshot(p.snapshotId));
  server.on(SnapshotList, (p) => sandboxes.listSnapshots(p));
  server.on(SnapshotDelete, (p) => sandboxes.deleteSnapshot(p.snapshotId));
  server.on(BranchDiff, (p) => sandboxes.diff(p.a, p.b) as never);
  server.on(BranchMerge, (p) => sandboxes.merge(p.from, p.into, p.strategy) as never);
  server.on(TreeGet, (p) => sandboxes.tree(p.includeDestroyed));

  const instances = agent.instances;
  server.on(InstanceStart, (p) => instances.start(p));
  server.on(InstanceStop, (p) => instances.stop(p.instanceId));
  server.on(InstancePause, (p) => instances.pause(p.instanceId));
  server.on(InstanceResume, (p) => instances.resume(p.instanceId));
  server.on(InstanceGet, (p) => instances.get(p.instanceId));
  server.on(InstanceList, () => instances.list());
  server.on(InstanceDestroy, (p) => instances.destroy(p.instanceId));

  server.on(SshPrepare, (p) => agent.ssh.prepare(p.sandboxId));
  server.on(PoolConfigure, (p) => agent.runtime.request(RtPoolConfigure, p));
  server.on(PoolList, () => agent.runtime.request(RtPoolList, {}));
  server.on(PoolSnapshot, async (p) => agent.runtime.request(RtPoolSnapshot, { ...p, snapshotId: await sandboxes.snapshotIdOf(p.snapshotId) }));

  server.on(KeyCreate, (p) => agent.apiKeys.create(p.name));
  server.on(KeyList, () => agent.apiKeys.list());
  server.on(KeyRevoke, (p) => agent.apiKeys.revoke(p.keyId));

  const files = agent.files;
  server.on(FilesWrite, (p) => files.write(p));
  server.on(FilesRead, (p) => files.read(p));
  server.on(FilesList, (p) => files.list(p.id, p.path));
  server.on(FilesRemove, (p) => files.remove(p.sandboxId, p.path, p.recursive));

  const terminals = agent.terminals;
  server.on(TerminalOpen, (p, { peer }) => terminals.open(p, peer));
  server.on(TerminalInput, (p) => terminals.input(p.terminalId, p.data));
  server.on(TerminalResize, (p) => terminals.resize(p.terminalId, p.cols, p.rows));
  server.on(TerminalClose, (p) => terminals.close(p.terminalId));

  const ports = agent.ports;
  server.on(PortForwardCreate, (p) => ports.forward(p.sandboxId, p.port, p.hostPort, p.hostAddress));
  server.on(PortUnforward, (p) => ports.unforward(p.forwardId));
  server.on(PortList, (p) => ports.list(p.sandboxId));
  server.on(HttpExpose, (p) => ports.expose(p.sandboxId, p.port, p.name));
  server.on(HttpHide, (p) => ports.hide(p.name));
  server.on(HttpList, () => ports.listExposures());
}

/** Streams an execution's start, output and environment-build progress to the peer that asked. */
function streamTo(peer: Peer): ExecObserver {
  return {
    started: (info) => peer.notify(ExecStarted, info),
    output: (chunk) => peer.notify(ExecOutput, chunk),
    progress: (message, name) => peer.notify(EnvProgress, { name, message }),
  };
}
