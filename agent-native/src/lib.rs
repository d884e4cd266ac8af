//! forkspace-rt: the privileged sandbox runtime. One module per kernel mechanism (`ns`, `overlay`,
//! `rootfs`, `cgroup`, `caps`), the sandbox recipe (`sandbox`, `sandbox_init`) and the process that
//! clones sandboxes (`spawner`), environments (`envs`), and the JSON-RPC service (`rpc`, `service`).

pub mod bpf;
pub mod btrfs;
pub mod caps;
pub mod catalog;
pub mod cgroup;
pub mod codes;
pub mod config;
pub mod criu;
pub mod data_dir;
pub mod disk_quota;
pub mod envs;
pub mod error;
pub mod exec;
pub mod files;
pub mod ids;
pub mod layers;
pub mod lifecycle;
pub mod live;
pub mod merge;
pub mod netns_pool;
pub mod ns;
pub mod overlay;
pub mod plan;
pub mod pool;
pub mod ports;
pub mod preflight;
pub mod quiesce;
pub mod reconcile;
pub mod rootfs;
pub mod rpc;
pub mod safe_fs;
pub mod sandbox;
pub mod sandbox_path;
pub mod sandbox_init;
pub mod seccomp;
pub mod service;
pub mod snapshot_pool;
pub mod snapshots;
pub mod spawner;
pub mod spec;
pub mod terminal;
pub mod tuning;
pub mod userns;
pub mod views;

/// Writes one line to stderr (the agent sends the runtime's stderr to its log file).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("{} forkspace-rt: {}", $crate::timestamp(), format!($($arg)*))
    };
}

/// Seconds since the epoch with milliseconds, for log lines.
pub fn timestamp() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}
