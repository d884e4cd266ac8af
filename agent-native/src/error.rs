//! The runtime's top-level error: every module's error, each mapped to a JSON-RPC code and to
//! structured `data` (`kind`, and `step`, `path`, `errno` where the failing step has them).

use serde_json::{json, Value};

use crate::cgroup::CgroupError;
use crate::codes;
use crate::envs::EnvError;
use crate::overlay::OverlayError;
use crate::plan::SpecError;
use crate::safe_fs::SafeFsError;
use crate::sandbox::SandboxError;
use crate::sandbox_init::InitError;
use crate::spawner::{SpawnError, SpawnFailure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("invalid params for {method}: {source}")]
    Params { method: String, source: serde_json::Error },
    #[error("unknown method {0:?}; `forkspace-rt methods` lists them")]
    MethodNotFound(String),
    #[error("no running exec {0:?}: it has ended or never started (exec/list lists the running ones)")]
    ExecNotFound(String),
    #[error("execId {0:?} is already in use by a running exec; choose a fresh id")]
    ExecIdInUse(String),
    #[error("the runtime is shutting down; retry once it is back (the agent starts it again on its next request)")]
    ShuttingDown,
    #[error("cannot create a pipe for the sandbox's stdio: {0}")]
    Pipe(nix::errno::Errno),
    #[error("an environment build task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Layer(crate::layers::LayerError),
    #[error(transparent)]
    Catalog(crate::catalog::CatalogError),
    #[error(transparent)]
    Criu(crate::criu::CriuError),
    #[error(transparent)]
    Quiesce(crate::quiesce::QuiesceError),
    #[error("cannot {0} {1}: {2}")]
    Io(&'static str, std::path::PathBuf, std::io::Error),
    #[error("no sandbox {0:?} (sandbox/list lists them; a destroyed one stays listed as destroyed)")]
    SandboxNotFound(String),
    #[error("no snapshot {0:?} (list them with snapshot/list)")]
    SnapshotNotFound(String),
    #[error("sandbox {id} is {state}; this needs it {need}")]
    SandboxState { id: String, state: &'static str, need: &'static str },
    #[error("sandbox {id} has {execs} running exec(s); a snapshot captures pid 1's process tree, so wait for them or kill them first")]
    SandboxBusy { id: String, execs: usize },
    #[error("{a} and {b} cannot be compared: {why}")]
    Unrelated { a: String, b: String, why: String },
    #[error("merging {from} into {into} found {count} conflict(s) and the strategy is `fail`; nothing was applied")]
    MergeConflict { from: String, into: String, count: usize, merged: serde_json::Value },
    #[error("{what} of {size} bytes is too large: send at most {max} bytes per request")]
    TooLarge { what: &'static str, size: usize, max: usize },
    #[error("port must be 1-65535")]
    BadPort,
    #[error("no port forward {0:?}")]
    ForwardNotFound(String),
    #[error("no open terminal {0:?}")]
    TerminalNotFound(String),
    #[error("no hold {0:?} (it was released, or its connection closed)")]
    HoldNotFound(String),
    #[error("invalid policy: {0}")]
    BadPolicy(String),
    #[error("terminal size {cols}x{rows} is invalid: both must be at least 1")]
    BadSize { cols: u16, rows: u16 },
    #[error("count {count} is out of range: branch 1 to {max} sandboxes at a time")]
    BadCount { count: usize, max: usize },
    #[error("this host has no freezer cgroup (v1 freezer or v2 cgroup.freeze), which snapshots need")]
    NoFreezer,
    #[error("snapshot {snapshot} cannot be restored by this runtime: {why}")]
    UsernsMismatch { snapshot: String, why: String },
}

impl Error {
    pub fn code(&self) -> i32 {
        match self {
            Error::Spec(SpecError::DiskUnenforced { .. }) => codes::UNSUPPORTED,
            Error::Spec(_) | Error::Params { .. } | Error::BadCount { .. } | Error::BadSize { .. } => {
                codes::INVALID_PARAMS
            }
            Error::TerminalNotFound(_) | Error::ForwardNotFound(_) | Error::HoldNotFound(_) => codes::EXEC_NOT_FOUND,
            Error::BadPort | Error::BadPolicy(_) => codes::INVALID_PARAMS,
            Error::TooLarge { .. } => codes::PAYLOAD_TOO_LARGE,
            Error::Env(EnvError::Unknown { .. }) => codes::ENVIRONMENT_UNKNOWN,
            Error::Env(EnvError::NotBuilt { .. }) => codes::ENVIRONMENT_NOT_BUILT,
            Error::Env(_) => codes::ENVIRONMENT_BUILD_FAILED,
            Error::Spawn(SpawnError::Failure(SpawnFailure::Init(InitError::Exec { .. }))) => codes::COMMAND_NOT_FOUND,
            Error::Spawn(SpawnError::TooLarge { .. }) => codes::INVALID_PARAMS,
            Error::Sandbox(SandboxError::Files(e)) if e.is_invalid_input() => codes::INVALID_PARAMS,
            Error::Sandbox(SandboxError::Files(SafeFsError::DiskFull { .. } | SafeFsError::NotPtmx { .. })) => {
                codes::SANDBOX_STATE
            }
            Error::Sandbox(SandboxError::Files(SafeFsError::Open {
                errno: nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR,
                ..
            })) => codes::FILE_NOT_FOUND,
            Error::Sandbox(_) | Error::Spawn(_) | Error::Pipe(_) => codes::RUNTIME_FAILED,
            Error::MethodNotFound(_) => codes::METHOD_NOT_FOUND,
            Error::ExecNotFound(_) => codes::EXEC_NOT_FOUND,
            Error::ExecIdInUse(_) => codes::EXEC_ID_IN_USE,
            Error::ShuttingDown => codes::SHUTTING_DOWN,
            Error::Task(_) => codes::INTERNAL_ERROR,
            Error::Layer(_) | Error::Io(..) | Error::NoFreezer => codes::RUNTIME_FAILED,
            Error::Catalog(_) => codes::INTERNAL_ERROR,
            Error::Criu(crate::criu::CriuError::Missing { .. }) | Error::UsernsMismatch { .. } => codes::UNSUPPORTED,
            Error::Criu(_) => codes::CHECKPOINT_FAILED,
            Error::Quiesce(_) => codes::SANDBOX_STATE,
            Error::SandboxNotFound(_) => codes::SANDBOX_NOT_FOUND,
            Error::SnapshotNotFound(_) => codes::SNAPSHOT_NOT_FOUND,
            Error::SandboxState { .. } | Error::SandboxBusy { .. } => codes::SANDBOX_STATE,
            Error::Unrelated { .. } => codes::INVALID_PARAMS,
            Error::MergeConflict { .. } => codes::MERGE_CONFLICT,
        }
    }

    pub fn data(&self) -> Value {
        match self {
            Error::Spawn(SpawnError::Failure(SpawnFailure::Init(init))) => {
                let mut v = serde_json::to_value(init).unwrap_or(Value::Null);
                v["kind"] = json!("init");
                v
            }
            Error::Spawn(SpawnError::Failure(f)) => serde_json::to_value(f).unwrap_or(Value::Null),
            Error::Env(EnvError::Unknown { known, .. }) => json!({ "kind": "environment", "known": known }),
            Error::Env(_) => json!({ "kind": "environment" }),
            Error::Sandbox(SandboxError::Overlay(OverlayError::Mount { target, errno, .. })) => {
                json!({ "kind": "overlay", "step": "mount", "path": target, "errno": *errno as i32 })
            }
            Error::Sandbox(SandboxError::Cgroup(e)) => cgroup_data(e),
            Error::Sandbox(SandboxError::Files(
                SafeFsError::Open { path, errno }
                | SafeFsError::Mkdir { path, errno }
                | SafeFsError::DiskFull { path, errno },
            )) => {
                json!({ "kind": "files", "path": path, "errno": *errno as i32, "code": errno_name(*errno) })
            }
            Error::Sandbox(SandboxError::Files(
                SafeFsError::NotRegular { path, kind } | SafeFsError::NotDirectory { path, kind },
            )) => {
                json!({ "kind": "files", "path": path, "fileKind": kind_name(kind) })
            }
            Error::Sandbox(SandboxError::Files(SafeFsError::BadPath(e))) | Error::Spec(SpecError::Path(e)) => {
                json!({ "kind": "params", "field": e.field })
            }
            Error::Spec(SpecError::SetIdMode { field, .. }) => json!({ "kind": "params", "field": field }),
            Error::Sandbox(_) => json!({ "kind": "sandbox" }),
            Error::Spec(_) | Error::Params { .. } => json!({ "kind": "params" }),
            Error::MergeConflict { merged, .. } => merged.clone(),
            Error::Quiesce(crate::quiesce::QuiesceError::Vfork { .. }) => json!({ "kind": "freeze", "step": "vfork" }),
            Error::Quiesce(crate::quiesce::QuiesceError::Freeze(e)) => cgroup_data(e),
            _ => json!({ "kind": "runtime" }),
        }
    }
}

fn kind_name(k: &crate::safe_fs::Kind) -> &'static str {
    use crate::safe_fs::Kind;
    match k {
        Kind::Regular => "file",
        Kind::Directory => "dir",
        Kind::Symlink { .. } => "symlink",
        Kind::Fifo => "fifo",
        Kind::Socket => "socket",
        Kind::CharDevice => "char-device",
        Kind::BlockDevice => "block-device",
        Kind::Unknown => "other",
    }
}

fn errno_name(e: nix::errno::Errno) -> &'static str {
    match e {
        nix::errno::Errno::EDQUOT => "EDQUOT",
        nix::errno::Errno::ENOSPC => "ENOSPC",
        nix::errno::Errno::ELOOP => "ELOOP",
        nix::errno::Errno::ENOENT => "ENOENT",
        nix::errno::Errno::ENOTDIR => "ENOTDIR",
        nix::errno::Errno::EISDIR => "EISDIR",
        nix::errno::Errno::ENOTEMPTY => "ENOTEMPTY",
        nix::errno::Errno::EACCES => "EACCES",
        nix::errno::Errno::EXDEV => "EXDEV",
        _ => "EIO",
    }
}

fn cgroup_data(e: &CgroupError) -> Value {
    let (step, path, errno) = match e {
        CgroupError::Create { path, source } => ("create", Some(path), source.raw_os_error()),
        CgroupError::Write { path, source, .. } => ("write", Some(path), source.raw_os_error()),
        CgroupError::Attach { path, source, .. } => ("attach", Some(path), source.raw_os_error()),
        CgroupError::Remove { path, source } => ("remove", Some(path), source.raw_os_error()),
        CgroupError::Read { path, source } => ("read", Some(path), source.raw_os_error()),
        CgroupError::MissingController { .. } => ("detect", None, None),
        CgroupError::Freeze { .. } => ("freeze", None, None),
    };
    json!({ "kind": "cgroup", "step": step, "path": path, "errno": errno })
}
