// The agent's link to forkspace-rt (newline-delimited JSON-RPC over its unix socket). The Rust side is
// agent-native/src/service.rs; `forkspace-rt methods` prints its table, and a test checks they agree.
import { z } from 'zod';
import { Empty } from './common';
import { EnvironmentInfo, EnvironmentManifest } from './environments';
import { notification, request } from './messages';

export const RtLimits = z.strictObject({
  memoryBytes: z.number().optional(),
  cpus: z.number().optional(),
  pids: z.number().optional(),
  diskBytes: z.number().optional(),
});
const RtRestoreLimits = z.strictObject({ diskBytes: z.number().optional() });

export const RtRunParams = z.strictObject({
  execId: z.string(),
  environment: z.string(),
  argv: z.array(z.string()),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  limits: RtLimits.optional(),
  /** base64 */
  stdin: z.string().optional(),
  files: z
    .array(z.strictObject({ path: z.string(), contentBase64: z.string(), mode: z.number().optional() }))
    .optional(),
  timeoutMs: z.number().optional(),
  collect: z.array(z.string()).optional(),
});
export type RtRunParams = z.infer<typeof RtRunParams>;

export const RtRunResult = z.object({
  sandboxId: z.string(),
  /** The environment's canonical name (aliases resolved). */
  environment: z.string(),
  exitCode: z.number(),
  signal: z.string().nullable(),
  oomKilled: z.boolean(),
  timedOut: z.boolean(),
  killed: z.boolean(),
  pidsLimitHit: z.boolean(),
  durationMs: z.number(),
  memoryPeakBytes: z.number().nullable(),
  cpuTimeMs: z.number().nullable(),
  files: z.array(
    z.object({
      path: z.string(),
      contentBase64: z.string(),
      size: z.number(),
      truncated: z.boolean(),
      found: z.boolean(),
      /** Why it was not collected, when something other than "no such file" stopped it. */
      error: z.string().optional(),
    }),
  ),
  pooled: z.boolean(),
});
export type RtRunResult = z.infer<typeof RtRunResult>;

export const RtInfo = request('runtime/info', Empty, z.record(z.string(), z.unknown()), 'Runtime version, cgroup layout, CRIU, host.');
export const RtShutdown = request('runtime/shutdown', Empty, Empty, 'Kills running sandboxes and stops the runtime.');
export const RtEnvList = request('env/list', Empty, z.object({ environments: z.array(EnvironmentInfo) }), 'Known environments.');
export const RtEnvBuild = request(
  'env/build',
  z.strictObject({ name: z.string() }),
  z.object({ name: z.string(), manifest: EnvironmentManifest }),
  'Builds an environment once.',
);
export const RtSandboxRun = request('sandbox/run', RtRunParams, RtRunResult, 'Runs argv in a fresh sandbox, destroyed afterwards.');
export const RtExecKill = request('exec/kill', z.strictObject({ execId: z.string() }), z.object({ killed: z.boolean() }), 'SIGKILLs a running exec.');

export const RtExecStarted = notification('exec/started', z.object({ execId: z.string(), sandboxId: z.string(), pid: z.number() }), 'A run\'s first process exec\'d.');
export const RtExecOutput = notification(
  'exec/output',
  z.object({ execId: z.string(), stream: z.enum(['stdout', 'stderr']), seq: z.number(), dataBase64: z.string() }),
  'Raw output bytes, base64.',
);
export const RtEnvProgress = notification('env/progress', z.object({ name: z.string(), message: z.string() }), 'Environment build progress.');

// What ends a sandbox on its own (agent-native catalog.rs `Policy`).
export const RtExpiry = z.enum(['stop', 'pause', 'snapshot-then-stop', 'destroy']);
export const RtPolicy = z.strictObject({
  ttlMs: z.number().int().positive().optional(),
  idleTimeoutMs: z.number().int().positive().optional(),
  onExpiry: RtExpiry.optional(),
  autostart: z.boolean().optional(),
  owner: z.string().optional(),
  /** The API key the sandbox belongs to (agent/src/core/access.ts); absent: the admin's. Set when it is
   * made, never changed. */
  principal: z.string().optional(),
});
export type RtPolicy = z.infer<typeof RtPolicy>;

// Persistent sandboxes, snapshots and branches: the runtime returns the catalog's rows (agent-native
// catalog.rs); the agent maps them to the public shapes.
export const RtSandboxRow = z.object({
  id: z.string(),
  environment: z.string(),
  state: z.string(),
  originSnapshot: z.string().nullable(),
  lastSnapshot: z.string().nullable(),
  spec: z.object({
    argv: z.array(z.string()),
    env: z.record(z.string(), z.string()),
    cwd: z.string().nullable(),
    memoryBytes: z.number().nullable(),
    cpus: z.number().nullable(),
    pids: z.number().nullable(),
    /** The disk limit the sandbox's layer got (default filled in); null where none is enforced. */
    diskBytes: z.number().nullable().default(null),
  }),
  labels: z.record(z.string(), z.string()),
  exitCode: z.number().nullable(),
  createdAtMs: z.number(),
  updatedAtMs: z.number(),
  policy: z.object({
    ttlMs: z.number().optional(),
    idleTimeoutMs: z.number().optional(),
    onExpiry: RtExpiry,
    autostart: z.boolean(),
    owner: z.string().optional(),
    principal: z.string().optional(),
  }),
});
export type RtSandboxRow = z.infer<typeof RtSandboxRow>;

export const RtSnapshotRow = z.object({
  id: z.string(),
  sandboxId: z.string(),
  parentSnapshot: z.string().nullable(),
  environment: z.string(),
  state: z.string(),
  label: z.string().nullable(),
  memoryBytes: z.number(),
  fsBytes: z.number(),
  createdAtMs: z.number(),
  layers: z.array(z.string()),
  external: z.record(z.string(), z.number()),
});
export type RtSnapshotRow = z.infer<typeof RtSnapshotRow>;

const RtFile = z.strictObject({ path: z.string(), contentBase64: z.string(), mode: z.number().optional() });
const SandboxRef = z.strictObject({ sandboxId: z.string() });
const SnapshotRef = z.strictObject({ snapshotId: z.string() });
const Timings = z.object({ pauseMs: z.number(), dumpMs: z.number(), fsMs: z.number(), totalMs: z.number() });
const RtCreated = z.object({ snapshot: RtSnapshotRow, timings: Timings });
const RtRestored = z.object({ sandboxId: z.string(), snapshotId: z.string(), lazy: z.boolean(), timeToRunningMs: z.number(), pooled: z.boolean() });
const RtState = z.object({ sandboxId: z.string(), state: z.string() });

export const RtExecList = request('exec/list', Empty, z.object({ execs: z.array(z.record(z.string(), z.unknown())) }), 'Running execs.');
export const RtSandboxCreate = request(
  'sandbox/create',
  z.strictObject({
    environment: z.string(),
    argv: z.array(z.string()).optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    limits: RtLimits.optional(),
    files: z.array(RtFile).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    policy: RtPolicy.optional(),
  }),
  z.object({ sandbox: RtSandboxRow }),
  'Creates a persistent sandbox.',
);
export const RtSandboxExec = request(
  'sandbox/exec',
  z.strictObject({
    execId: z.string(),
    sandboxId: z.string(),
    argv: z.array(z.string()),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    stdin: z.string().optional(),
    timeoutMs: z.number().optional(),
    files: z.array(RtFile).optional(),
  }),
  z.object({ sandboxId: z.string(), exitCode: z.number(), signal: z.string().nullable(), timedOut: z.boolean(), killed: z.boolean(), durationMs: z.number() }),
  'Runs argv inside a running sandbox.',
);
export const RtSandboxGet = request('sandbox/get', SandboxRef, z.object({ sandbox: RtSandboxRow }), 'One sandbox.');
export const RtSandboxList = request('sandbox/list', Empty, z.object({ sandboxes: z.array(RtSandboxRow) }), 'All sandboxes.');
export const RtSandboxPause = request('sandbox/pause', SandboxRef, RtState, 'Freeze.');
export const RtSandboxResume = request('sandbox/resume', SandboxRef, RtState, 'Thaw.');
export const RtSandboxStop = request('sandbox/stop', SandboxRef, RtCreated, 'Snapshot and end.');
export const RtSandboxStart = request('sandbox/start', SandboxRef, RtRestored, 'Restore a stopped sandbox.');
export const RtSandboxDestroy = request('sandbox/destroy', SandboxRef, RtState, 'Destroy.');
export const RtSandboxPolicy = request(
  'sandbox/policy',
  z.strictObject({
    sandboxId: z.string(),
    ttlMs: z.number().int().positive().nullable().optional(),
    idleTimeoutMs: z.number().int().positive().nullable().optional(),
    onExpiry: RtExpiry.optional(),
    autostart: z.boolean().optional(),
    owner: z.string().nullable().optional(),
  }),
  z.object({ sandboxId: z.string(), policy: RtSandboxRow.shape.policy }),
  'Change what ends a sandbox (absent fields stay; null clears).',
);
export const RtSandboxHold = request(
  'sandbox/hold',
  z.strictObject({ holdId: z.string(), sandboxId: z.string() }),
  z.object({ holdId: z.string(), sandboxId: z.string() }),
  'Mark a sandbox active until released or this connection closes.',
);
export const RtSandboxRelease = request('sandbox/release', z.strictObject({ holdId: z.string() }), z.object({ released: z.boolean() }), 'End a hold.');
export const RtOwnerGone = request(
  'owner/gone',
  z.strictObject({ owner: z.string() }),
  z.object({ owner: z.string(), graceMs: z.number() }),
  'The client that owns some sandboxes went away: they are destroyed after the grace period.',
);
export const RtSnapshotCreate = request(
  'snapshot/create',
  z.strictObject({ sandboxId: z.string(), leaveRunning: z.boolean().optional(), label: z.string().optional() }),
  RtCreated,
  'Snapshot a sandbox.',
);
export const RtSnapshotRestore = request(
  'snapshot/restore',
  z.strictObject({ snapshotId: z.string(), policy: RtPolicy.optional(), limits: RtRestoreLimits.optional() }),
  RtRestored,
  'Restore into a new sandbox.',
);
export const RtSnapshotBranch = request(
  'snapshot/branch',
  z.strictObject({ snapshotId: z.string(), count: z.number(), policy: RtPolicy.optional(), limits: RtRestoreLimits.optional() }),
  z.object({ snapshotId: z.string(), branches: z.array(RtRestored), totalMs: z.number() }),
  'N restores at once.',
);
export const RtSnapshotGet = request('snapshot/get', SnapshotRef, z.object({ snapshot: RtSnapshotRow }), 'One snapshot.');
export const RtSnapshotList = request('snapshot/list', Empty, z.object({ snapshots: z.array(RtSnapshotRow) }), 'All ready snapshots.');
export const RtSnapshotDelete = request('snapshot/delete', SnapshotRef, z.object({ snapshotId: z.string(), deleted: z.boolean() }), 'Delete.');
export const RtBranchDiff = request('branch/diff', z.strictObject({ a: z.string(), b: z.string() }), z.record(z.string(), z.unknown()), 'Diff.');
export const RtBranchMerge = request(
  'branch/merge',
  z.strictObject({ from: z.string(), into: z.string(), strategy: z.string() }),
  z.record(z.string(), z.unknown()),
  'Merge.',
);

export const RtFilesWrite = request(
  'files/write',
  z.strictObject({ sandboxId: z.string(), path: z.string(), offset: z.number(), dataBase64: z.string(), mode: z.number().optional(), truncate: z.boolean() }),
  z.object({ path: z.string(), written: z.number(), end: z.number() }),
  'Write a chunk.',
);
export const RtFilesRead = request(
  'files/read',
  z.strictObject({ id: z.string(), path: z.string(), offset: z.number(), length: z.number() }),
  z.object({ dataBase64: z.string(), offset: z.number(), size: z.number(), eof: z.boolean() }),
  'Read a chunk.',
);
export const RtFilesList = request(
  'files/list',
  z.strictObject({ id: z.string(), path: z.string() }),
  z.object({ entries: z.array(z.object({ name: z.string(), kind: z.string(), size: z.number(), mode: z.number(), mtimeMs: z.number() })) }),
  'List a directory.',
);
export const RtFilesRemove = request(
  'files/remove',
  z.strictObject({ id: z.string(), path: z.string(), recursive: z.boolean() }),
  z.object({ removed: z.boolean() }),
  'Remove.',
);

export const RtCacheGet = request('cache/get', z.strictObject({ key: z.string() }), z.object({ result: z.string().nullable() }), 'A stored result.');
export const RtCachePut = request('cache/put', z.strictObject({ key: z.string(), result: z.string() }), z.object({ evicted: z.number() }), 'Store a result (LRU-bounded).');
export const RtCacheStats = request(
  'cache/stats',
  Empty,
  z.object({ entries: z.number(), bytes: z.number(), hits: z.number(), maxBytes: z.number() }),
  'Cache size and use.',
);
export const RtCacheClear = request('cache/clear', Empty, z.object({ removed: z.number() }), 'Empty the cache.');

export const RtTerminalOpen = request(
  'terminal/open',
  z.strictObject({
    terminalId: z.string(),
    sandboxId: z.string(),
    argv: z.array(z.string()).optional(),
    cols: z.number(),
    rows: z.number(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
  }),
  z.object({ terminalId: z.string(), sandboxId: z.string(), pid: z.number() }),
  'Open a pty session.',
);
export const RtTerminalInput = request('terminal/input', z.strictObject({ terminalId: z.string(), dataBase64: z.string() }), z.object({ written: z.number() }), 'Type.');
export const RtTerminalResize = request(
  'terminal/resize',
  z.strictObject({ terminalId: z.string(), cols: z.number(), rows: z.number() }),
  z.object({ cols: z.number(), rows: z.number() }),
  'Resize.',
);
export const RtTerminalClose = request('terminal/close', z.strictObject({ terminalId: z.string() }), z.object({ closed: z.boolean() }), 'Close.');
export const RtTerminalOutput = notification('terminal/output', z.object({ terminalId: z.string(), seq: z.number(), dataBase64: z.string() }), 'Pty output.');
export const RtTerminalExit = notification('terminal/exit', z.object({ terminalId: z.string(), exitCode: z.number().nullable() }), 'Pty program ended.');

const RtForward = z.object({
  forwardId: z.string(),
  sandboxId: z.string(),
  port: z.number(),
  hostAddress: z.string(),
  hostPort: z.number(),
  openConnections: z.number(),
});
export const RtPortForward = request(
  'port/forward',
  z.strictObject({ sandboxId: z.string(), port: z.number(), hostPort: z.number().optional(), hostAddress: z.string().optional() }),
  RtForward,
  'Forward a host port into a sandbox.',
);
export const RtPortExpose = request(
  'port/expose',
  z.strictObject({ sandboxId: z.string(), port: z.number() }),
  z.object({ forwardId: z.string(), sandboxId: z.string(), port: z.number(), socketPath: z.string() }),
  'Relay a unix socket only the runtime\'s user can reach (0700 directory, 0600 socket) to a sandbox port; the agent serves it as an exposure.',
);
export const RtPortUnforward = request('port/unforward', z.strictObject({ forwardId: z.string() }), z.object({ removed: z.boolean() }), 'Remove a forward or an exposure\'s socket.');
export const RtPortList = request('port/list', z.strictObject({ sandboxId: z.string().optional() }), z.object({ forwards: z.array(RtForward) }), 'List forwards.');

export const RtSandboxOutput = notification(
  'sandbox/output',
  z.object({ sandboxId: z.string(), stream: z.enum(['stdout', 'stderr']), seq: z.number(), dataBase64: z.string() }),
  'Console output of a sandbox\'s pid 1.',
);
export const RtSandboxChanged = notification('sandbox/changed', z.object({ sandboxId: z.string(), state: z.string() }), 'State change.');
export const RtSandboxExpired = notification(
  'sandbox/expired',
  z.object({ sandboxId: z.string(), reason: z.enum(['ttl', 'idle', 'orphaned']), action: RtExpiry }),
  'A TTL, an idle timeout or an orphaned owner ended (or paused) a sandbox.',
);
export const RtSnapshotChanged = notification('snapshot/changed', z.object({ snapshotId: z.string(), state: z.string() }), 'Snapshot ready or deleted.');

const RtPoolInfo = z.object({
  environment: z.string(),
  min: z.number(),
  max: z.number(),
  target: z.number(),
  ready: z.number(),
  filling: z.number(),
  hits: z.number(),
  misses: z.number(),
});
export const RtPoolConfigure = request(
  'pool/configure',
  z.strictObject({ environment: z.string(), min: z.number().int().min(0), max: z.number().int().min(0) }),
  RtPoolInfo,
  'Size a warm pool.',
);
const RtSnapshotPoolInfo = z.object({ snapshotId: z.string(), size: z.number(), ready: z.number(), filling: z.number(), hits: z.number() });
export const RtPoolList = request('pool/list', Empty, z.object({ pools: z.array(RtPoolInfo), snapshots: z.array(RtSnapshotPoolInfo) }), 'Warm pools.');
export const RtPoolSnapshot = request(
  'pool/snapshot',
  z.strictObject({ snapshotId: z.string(), size: z.number().int().min(0) }),
  RtSnapshotPoolInfo,
  'Keep N restored, frozen copies of a snapshot.',
);

export const RuntimeRequests = [
  RtInfo,
  RtShutdown,
  RtEnvList,
  RtEnvBuild,
  RtSandboxRun,
  RtExecList,
  RtExecKill,
  RtSandboxCreate,
  RtSandboxExec,
  RtSandboxGet,
  RtSandboxList,
  RtSandboxPause,
  RtSandboxResume,
  RtSandboxStop,
  RtSandboxStart,
  RtSandboxDestroy,
  RtSandboxPolicy,
  RtSandboxHold,
  RtSandboxRelease,
  RtOwnerGone,
  RtSnapshotCreate,
  RtSnapshotRestore,
  RtSnapshotBranch,
  RtSnapshotGet,
  RtSnapshotList,
  RtSnapshotDelete,
  RtBranchDiff,
  RtBranchMerge,
  RtFilesWrite,
  RtFilesRead,
  RtFilesList,
  RtFilesRemove,
  RtCacheGet,
  RtCachePut,
  RtCacheStats,
  RtCacheClear,
  RtTerminalOpen,
  RtTerminalInput,
  RtTerminalResize,
  RtTerminalClose,
  RtPortForward,
  RtPortExpose,
  RtPortUnforward,
  RtPortList,
  RtPoolConfigure,
  RtPoolList,
  RtPoolSnapshot,
] as const;
export const RuntimeNotifications = [
  RtExecStarted,
  RtExecOutput,
  RtEnvProgress,
  RtSandboxOutput,
  RtSandboxChanged,
  RtSandboxExpired,
  RtSnapshotChanged,
  RtTerminalOutput,
  RtTerminalExit,
] as const;
