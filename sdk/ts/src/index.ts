// @forkspace/sdk: the Direct HTTP API of Forkspace from TypeScript (Node >= 22, no dependencies).
export { FaaSPlatformClient } from './client';
export { UnifiedFaaSClient } from './unified';
export { SandboxBuilder } from './fluent';
export { Sandbox, Snapshot, Instance } from './sandbox';
export { ExecutionHandle } from './execution';
export { Files } from './files';
export { Terminal } from './terminal';
export { HttpTransport } from './http';
export {
  ForkspaceError,
  InvalidArgumentError,
  AmbiguousReferenceError,
  PayloadTooLargeError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  SandboxNotFoundError,
  SnapshotNotFoundError,
  ExecutionNotFoundError,
  FileNotFoundError,
  ConflictError,
  SandboxStateError,
  MergeConflictError,
  CancelledError,
  EnvironmentError,
  CommandNotFoundError,
  CheckpointError,
  UnsupportedError,
  UnavailableError,
  ConnectionError,
  TimeoutError,
  InternalError,
  TangleNotConfiguredError,
  ERROR_CLASSES,
  errorFromWire,
} from './errors';
export { ROUTES, STREAMS, ERROR_CODES, HTTP_STATUS, PROTOCOL_VERSION } from './api.gen';
export { parseSize, parseDuration } from './units';
export { backoffDelay, DEFAULT_RETRY } from './retry';

export type { ClientOptions, SandboxCreateOptions, InstanceStartOptions, Settled } from './client';
export type { ConnectionOptions, CallOptions } from './http';
export type { RunOptions, ExecutionMode } from './options';
export type { ExecutionOptions, UnifiedOptions, TangleExecutor } from './unified';
export type { OutputCallbacks } from './execution';
export type { FollowOptions } from './stream';
export type { SandboxRef, ExecOptions, BranchRunOptions } from './sandbox';
export type { RetryOptions } from './retry';
export type { ErrorDetails } from './errors';
export type {
  Methods,
  MethodName,
  Route,
  ErrorCodeName,
  ExecResult,
  Execution,
  ExecStreamFrame,
  TerminalStreamFrame,
  OutputChunk,
  Sandbox as SandboxInfo,
  Snapshot as SnapshotInfo,
  Restored,
  MergeResult,
  BranchDiffResult,
  TreeNode,
  FileEntry,
  PortForward,
  Exposure,
  EnvironmentInfo,
  ExecBranchResult,
  Limits,
  FileInput,
} from './api.gen';
