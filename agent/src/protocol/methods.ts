// The agent's method table: every request and notification of the public protocol, and the Direct HTTP
// API's WebSocket streams, in one list each. REST routes are fields of the requests (see routes.ts).
import { AgentStatus, AgentStop, CancelRequest, Exit, Initialize, Shutdown } from './lifecycle';
import { EnvBuild, EnvList, EnvProgress } from './environments';
import { ExecBranch, ExecCancel, ExecGet, ExecLog, ExecOutput, ExecRun, ExecStart, ExecStarted, ExecStream } from './exec';
import { KeyCreate, KeyList, KeyRevoke } from './keys';
import {
  SandboxChanged,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxGet,
  SandboxList,
  SandboxOutput,
  SandboxPause,
  SandboxResume,
  SandboxPolicy,
  SandboxWatch,
  SandboxUnwatch,
  SandboxExpired,
} from './sandboxes';
import { SshPrepare } from './ssh';
import { PoolConfigure, PoolList, PoolSnapshot } from './pools';
import { InstanceDestroy, InstanceGet, InstanceList, InstancePause, InstanceResume, InstanceStart, InstanceStop } from './instances';
import {
  SandboxStart,
  SandboxStop,
  SnapshotBranch,
  SnapshotChanged,
  SnapshotCreate,
  SnapshotDelete,
  SnapshotGet,
  SnapshotList,
  SnapshotRestore,
} from './snapshots';
import { BranchDiff, BranchMerge, TreeGet } from './branches';
import { FilesList, FilesRead, FilesRemove, FilesWrite } from './files';
import { HttpExpose, HttpHide, HttpList, PortForwardCreate, PortList, PortUnforward } from './ports';
import { TerminalClose, TerminalExit, TerminalInput, TerminalOpen, TerminalOutput, TerminalResize, TerminalStream } from './terminals';

export const AgentRequests = [
  Initialize,
  Shutdown,
  AgentStatus,
  AgentStop,
  EnvList,
  EnvBuild,
  ExecRun,
  ExecStart,
  ExecGet,
  ExecCancel,
  ExecLog,
  ExecBranch,
  SandboxCreate,
  SandboxExec,
  SandboxGet,
  SandboxList,
  SandboxPause,
  SandboxResume,
  SandboxStop,
  SandboxStart,
  SandboxDestroy,
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
  SnapshotCreate,
  SnapshotRestore,
  SnapshotBranch,
  SnapshotGet,
  SnapshotList,
  SnapshotDelete,
  BranchDiff,
  BranchMerge,
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
  SshPrepare,
  PoolConfigure,
  PoolList,
  PoolSnapshot,
  KeyCreate,
  KeyList,
  KeyRevoke,
] as const;

export const AgentNotifications = [
  Exit,
  CancelRequest,
  ExecStarted,
  ExecOutput,
  EnvProgress,
  SandboxOutput,
  SandboxChanged,
  SandboxExpired,
  SnapshotChanged,
  TerminalOutput,
  TerminalExit,
] as const;

export const AgentStreams = [ExecStream, TerminalStream] as const;
