// The public protocol of forkspace-agent: what the extension, the CLI and the SDKs may import.
export { ErrorCodes, ProtocolError, errorCodeName, HTTP_STATUS, httpStatusOf } from './errors';
export type { ErrorCode, ErrorCodeName } from './errors';
export { request, notification, stream, HTTP_VERBS } from './messages';
export type { Direction, HttpRoute, HttpVerb, NotificationType, ParamsOf, RequestType, ResultOf, StreamType } from './messages';
export { Id, Limits, RestoreLimits, Empty, Expiry, Policy } from './common';
export { PROTOCOL_VERSION, Initialize, Shutdown, Exit, CancelRequest, AgentStatus, AgentStop } from './lifecycle';
export { EnvList, EnvBuild, EnvProgress, EnvironmentInfo } from './environments';
export {
  ExecRun,
  ExecRunParams,
  ExecResult,
  ExecStarted,
  ExecOutput,
  FileInput,
  ExecBranch,
  ExecBranchParams,
  ExecStart,
  ExecGet,
  ExecCancel,
  ExecLog,
  ExecStream,
  ExecStreamFrame,
  Execution,
  ExecutionState,
  OutputChunk,
} from './exec';
export {
  Sandbox,
  SandboxState,
  SandboxCreate,
  SandboxExec,
  SandboxExecParams,
  SandboxGet,
  SandboxList,
  SandboxPause,
  SandboxResume,
  SandboxDestroy,
  SandboxChanged,
  SandboxOutput,
  SandboxPolicy,
  SandboxWatch,
  SandboxUnwatch,
  SandboxExpired,
} from './sandboxes';
export { InstanceStart, InstanceStop, InstancePause, InstanceResume, InstanceGet, InstanceList, InstanceDestroy } from './instances';
export {
  Snapshot,
  SnapshotTimings,
  SnapshotCreate,
  SnapshotRestore,
  SnapshotBranch,
  SnapshotGet,
  SnapshotList,
  SnapshotDelete,
  SandboxStop,
  SandboxStart,
  SnapshotChanged,
  Restored,
} from './snapshots';
export { BranchDiff, BranchMerge, MergeStrategy, MergeResult, TreeGet, TreeNode, Change } from './branches';
export type { ExecOutputParams } from './exec';
export { AgentRequests, AgentNotifications, AgentStreams } from './methods';
export { ApiKey, KeyCreate, KeyList, KeyRevoke, KEY_REVOKED_CLOSE } from './keys';
export { DEFAULT_MAX_MESSAGE_BYTES, TransportBase } from './transport';
export type { MessageTransport } from './transport';
export { NdjsonTransport, connectUnixSocket } from './transports/ndjson';
export { WebSocketTransport } from './transports/websocket';
export { RpcClient } from './client';
export type { Disposable, RequestOptions } from './client';
export { FilesWrite, FilesRead, FilesList, FilesRemove, FileEntry, MAX_FILE_CHUNK } from './files';
export {
  TerminalOpen,
  TerminalInput,
  TerminalResize,
  TerminalClose,
  TerminalOutput,
  TerminalExit,
  TerminalStream,
  TerminalStreamFrame,
  TerminalClientFrame,
} from './terminals';
export { PortForward, PortForwardCreate, PortUnforward, PortList, Exposure, HttpExpose, HttpHide, HttpList } from './ports';
export { SshPrepare, SshTarget } from './ssh';
export { PoolConfigure, PoolList, PoolInfo, PoolSnapshot, SnapshotPoolInfo } from './pools';
