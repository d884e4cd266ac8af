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
import { isAdmin } from '../core/access';
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
  // mode switch is Agent.runExecution. Everything below acts as the caller (peer.access): an API key
  // reaches only what it made (core/access.ts).
  const executions = agent.executions;
  server.on(ExecRun, (params, { peer, signal }) => executions.run(params, streamTo(peer), signal, peer.access));
  server.on(ExecStart, (params, { peer }) => executions.start(params, peer.access));
  server.on(ExecGet, (p, { peer }) => executions.get(p.execId, p.waitMs ?? 0, peer.access));
  server.on(ExecCancel, (p, { peer }) => executions.cancel(p.execId, peer.access));
  server.on(ExecLog, (p, { peer }) => executions.log(p.execId, p.after, p.limit, peer.access));
  server.on(ExecBranch, (params, { peer, signal }) =>
    executions.branched((observer) => agent.modes.branched(params, observer, signal, peer.access), streamTo(peer), peer.access),
  );

  const sandboxes = agent.sandboxes;
  const ownership = agent.ownership;
  server.on(SandboxCreate, (p, { peer }) => sandboxes.create(p, ownership.ownerOf(peer), peer.access));
  server.on(SandboxExec, (p, { peer, signal }) => executions.run({ ...p, mode: 'persistent' }, streamTo(peer), signal, peer.access));
  server.on(SandboxPolicy, (p, { peer }) => sandboxes.setPolicy(p.sandboxId, p, ownership.ownerOf(peer), peer.access));
  server.on(SandboxWatch, async (p, { peer }) => {
    await sandboxes.checkSandbox(p.sandboxId, peer.access);
    return ownership.watch(p.sandboxId, peer);
  });
  server.on(SandboxUnwatch, (p, { peer }) => ownership.unwatch(p.watchId, peer));
  server.on(SandboxGet, (p, { peer }) => sandboxes.get(p.sandboxId, peer.access));
  server.on(SandboxList, (p, { peer }) => sandboxes.list(p, peer.access));
  server.on(SandboxPause, (p, { peer }) => sandboxes.pause(p.sandboxId, peer.access));
  server.on(SandboxResume, (p, { peer }) => sandboxes.resume(p.sandboxId, peer.access));
  server.on(SandboxStop, (p, { peer }) => sandboxes.stop(p.sandboxId, peer.access));
  server.on(SandboxStart, (p, { peer }) => sandboxes.start(p.sandboxId, peer.access));
  server.on(SandboxDestroy, (p, { peer }) => sandboxes.destroy(p.sandboxId, peer.access));
  server.on(SnapshotCreate, (p, { peer }) => sandboxes.snapshot(p.sandboxId, p.leaveRunning, p.label, peer.access));
  server.on(SnapshotRestore, (p, { peer }) => sandboxes.restore(p.snapshotId, policyFor(p, ownership.ownerOf(peer), peer.access), peer.access, p.limits));
  server.on(SnapshotBranch, (p, { peer }) => sandboxes.branch(p.snapshotId, p.count, policyFor(p, ownership.ownerOf(peer), peer.access), peer.access, p.limits));
  server.on(SnapshotGet, (p, { peer }) => sandboxes.getSnapshot(p.snapshotId, peer.access));
  server.on(SnapshotList, (p, { peer }) => sandboxes.listSnapshots(p, peer.access));
  server.on(SnapshotDelete, (p, { peer }) => sandboxes.deleteSnapshot(p.snapshotId, peer.access));
  server.on(BranchDiff, (p, { peer }) => sandboxes.diff(p.a, p.b, peer.access) as never);
  server.on(BranchMerge, (p, { peer }) => sandboxes.merge(p.from, p.into, p.strategy, peer.access) as never);
  server.on(TreeGet, (p, { peer }) => sandboxes.tree(p.includeDestroyed ?? false, peer.access));

  const instances = agent.instances;
  server.on(InstanceStart, (p, { peer }) => instances.start(p, peer.access));
  server.on(InstanceStop, (p, { peer }) => instances.stop(p.instanceId, peer.access));
  server.on(InstancePause, (p, { peer }) => instances.pause(p.instanceId, peer.access));
  server.on(InstanceResume, (p, { peer }) => instances.resume(p.instanceId, peer.access));
  server.on(InstanceGet, (p, { peer }) => instances.get(p.instanceId, peer.access));
  server.on(InstanceList, (_p, { peer }) => instances.list(peer.access));
  server.on(InstanceDestroy, (p, { peer }) => instances.destroy(p.instanceId, peer.access));

  server.on(SshPrepare, async (p, { peer }) => {
    await sandboxes.checkSandbox(p.sandboxId, peer.access);
    return agent.ssh.prepare(p.sandboxId);
  });
  server.on(PoolConfigure, (p) => agent.runtime.request(RtPoolConfigure, p));
  server.on(PoolList, async (_p, { peer }) => {
    const pools = await agent.runtime.request(RtPoolList, {});
    if (isAdmin(peer.access)) return pools;
    const mine = new Set((await sandboxes.listSnapshots({}, peer.access)).snapshots.map((s) => s.id));
    return { ...pools, snapshots: pools.snapshots.filter((s) => mine.has(s.snapshotId)) };
  });
  server.on(PoolSnapshot, async (p, { peer }) => agent.runtime.request(RtPoolSnapshot, { ...p, snapshotId: await sandboxes.snapshotIdOf(p.snapshotId, peer.access) }));

  server.on(KeyCreate, (p) => agent.apiKeys.create(p.name));
  server.on(KeyList, () => agent.apiKeys.list());
  server.on(KeyRevoke, (p) => agent.apiKeys.revoke(p.keyId));

  const files = agent.files;
  server.on(FilesWrite, (p, { peer }) => files.write(p, peer.access));
  server.on(FilesRead, (p, { peer }) => files.read(p, peer.access));
  server.on(FilesList, (p, { peer }) => files.list(p.id, p.path, peer.access));
  server.on(FilesRemove, (p, { peer }) => files.remove(p.sandboxId, p.path, p.recursive, peer.access));

  const terminals = agent.terminals;
  server.on(TerminalOpen, async (p, { peer }) => {
    await sandboxes.checkSandbox(p.sandboxId, peer.access);
    return terminals.open(p, peer, peer.access);
  });
  server.on(TerminalInput, (p, { peer }) => terminals.input(p.terminalId, p.data, peer.access));
  server.on(TerminalResize, (p, { peer }) => terminals.resize(p.terminalId, p.cols, p.rows, peer.access));
  server.on(TerminalClose, (p, { peer }) => terminals.close(p.terminalId, peer.access));

  const ports = agent.ports;
  server.on(PortForwardCreate, (p, { peer }) => ports.forward(p.sandboxId, p.port, p.hostPort, p.hostAddress, peer.access));
  server.on(PortUnforward, (p, { peer }) => ports.unforward(p.forwardId, peer.access));
  server.on(PortList, (p, { peer }) => ports.list(p.sandboxId, peer.access));
  server.on(HttpExpose, (p, { peer }) => ports.expose(p.sandboxId, p.port, p.name, peer.access));
  server.on(HttpHide, (p, { peer }) => ports.hide(p.name, peer.access));
  server.on(HttpList, (_p, { peer }) => ports.listExposures(peer.access));
}

/** Streams an execution's start, output and environment-build progress to the peer that asked. */
function streamTo(peer: Peer): ExecObserver {
  return {
    started: (info) => peer.notify(ExecStarted, info),
    output: (chunk) => peer.notify(ExecOutput, chunk),
    progress: (message, name) => peer.notify(EnvProgress, { name, message }),
  };
}
