//! JSON-RPC error codes. The same numbers, names and meanings are defined for the agent and its clients
//! in `agent/src/protocol/errors.ts`; `forkspace-rt methods` prints these so a test can compare.

/// Invalid JSON was received.
pub const PARSE_ERROR: i32 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Invalid method parameters: wrong types, unknown fields, values out of range.
pub const INVALID_PARAMS: i32 = -32602;
/// A bug or an unexpected condition in the runtime.
pub const INTERNAL_ERROR: i32 = -32603;
/// A message was larger than the connection allows.
pub const PAYLOAD_TOO_LARGE: i32 = -32802;
/// The runtime is shutting down and takes no new work.
pub const SHUTTING_DOWN: i32 = -32803;
/// A kernel step (mount, cgroup, clone, pivot_root...) failed; `data` names the step, path and errno.
pub const RUNTIME_FAILED: i32 = -33001;
/// The environment name is not one the runtime knows; `data.known` lists them.
pub const ENVIRONMENT_UNKNOWN: i32 = -33002;
/// The environment is known but not built; build it with `env/build`.
pub const ENVIRONMENT_NOT_BUILT: i32 = -33003;
/// Building an environment failed; the message carries the build tool's last output.
pub const ENVIRONMENT_BUILD_FAILED: i32 = -33004;
/// No exec with that id is running.
pub const EXEC_NOT_FOUND: i32 = -33006;
/// The command does not exist (or is not executable) inside the sandbox.
pub const COMMAND_NOT_FOUND: i32 = -33007;
/// The execId is already in use by a running exec.
pub const EXEC_ID_IN_USE: i32 = -33008;
/// No sandbox with that id.
pub const SANDBOX_NOT_FOUND: i32 = -33005;
/// No (ready) snapshot with that id.
pub const SNAPSHOT_NOT_FOUND: i32 = -33009;
/// The sandbox is in a state the request cannot act on (paused, stopped, busy...); the message says
/// which state it needs.
pub const SANDBOX_STATE: i32 = -33010;
/// CRIU failed to dump or restore; the message carries the lines of its log that say why.
pub const CHECKPOINT_FAILED: i32 = -33011;
/// A feature this host cannot provide (CRIU missing, for instance); the message says what to install.
pub const UNSUPPORTED: i32 = -33012;
/// A merge found conflicting changes and the strategy was `fail`: nothing was applied.
pub const MERGE_CONFLICT: i32 = -33013;

/// No file or directory at that path inside the sandbox (or snapshot).
pub const FILE_NOT_FOUND: i32 = -33014;

pub const ALL: [(&str, i32); 21] = [
    ("ParseError", PARSE_ERROR),
    ("InvalidRequest", INVALID_REQUEST),
    ("MethodNotFound", METHOD_NOT_FOUND),
    ("InvalidParams", INVALID_PARAMS),
    ("InternalError", INTERNAL_ERROR),
    ("PayloadTooLarge", PAYLOAD_TOO_LARGE),
    ("ShuttingDown", SHUTTING_DOWN),
    ("RuntimeFailed", RUNTIME_FAILED),
    ("EnvironmentUnknown", ENVIRONMENT_UNKNOWN),
    ("EnvironmentNotBuilt", ENVIRONMENT_NOT_BUILT),
    ("EnvironmentBuildFailed", ENVIRONMENT_BUILD_FAILED),
    ("ExecNotFound", EXEC_NOT_FOUND),
    ("CommandNotFound", COMMAND_NOT_FOUND),
    ("ExecIdInUse", EXEC_ID_IN_USE),
    ("SandboxNotFound", SANDBOX_NOT_FOUND),
    ("SnapshotNotFound", SNAPSHOT_NOT_FOUND),
    ("SandboxState", SANDBOX_STATE),
    ("CheckpointFailed", CHECKPOINT_FAILED),
    ("Unsupported", UNSUPPORTED),
    ("MergeConflict", MERGE_CONFLICT),
    ("FileNotFound", FILE_NOT_FOUND),
];
