//! Where the runtime keeps its state, and which external tools it uses.

use std::path::PathBuf;
use std::sync::Arc;

use crate::userns::{IdMap, Userns};

/// Paths and names one runtime instance owns. Two runtimes with different configs (a user's and a test
/// suite's) never touch each other's sandboxes, cgroups or files.
#[derive(Debug, Clone)]
pub struct Config {
    /// Durable state: `sandboxes/`, `snapshots/`, `catalog.sqlite`, `logs/`.
    pub data_dir: PathBuf,
    /// Read-only environment rootfs trees (`<name>/rootfs`); shared between runtimes as a build cache.
    pub env_dir: PathBuf,
    /// Unix socket the runtime serves JSON-RPC on.
    pub socket: PathBuf,
    /// Name of the cgroup directory under each hierarchy that holds this runtime's sandboxes.
    pub cgroup_parent: String,
    /// The CRIU binary (>= 4.1 with the SO_PASSCRED fix).
    pub criu: PathBuf,
    /// Debian mirror used to build the Python environments.
    pub debian_mirror: String,
    /// Size bound of the result cache (least recently used entries go first).
    pub cache_max_bytes: u64,
    /// How long a sandbox outlives its owning client before it is destroyed.
    pub orphan_grace_ms: u64,
    /// The user namespace map new sandboxes run under, with its idmapped mounts; None with --no-userns.
    pub userns: Option<Arc<Userns>>,
}

impl Config {
    pub fn sandboxes_dir(&self) -> PathBuf {
        self.data_dir.join("sandboxes")
    }

    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.sandboxes_dir().join(id)
    }

    /// The id map new sandboxes get (the owner of what the runtime writes into them).
    pub fn ids(&self) -> Option<IdMap> {
        self.userns.as_ref().map(|u| u.map)
    }

    /// Where idmapped environment lowers stay attached while the runtime runs.
    pub fn idmap_dir(&self) -> PathBuf {
        self.data_dir.join("idmap")
    }
}
