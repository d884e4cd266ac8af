//! Read-only views of a sandbox's or a snapshot's files: the live rootfs mount of a running sandbox, or a
//! temporary read-only overlay of layers for one that is not running and for snapshots. Used by diff and
//! merge, and by the files API to read from snapshots.

use std::path::{Path, PathBuf};

use crate::catalog::{SandboxState, SnapshotState};
use crate::envs;
use crate::error::Error;
use crate::overlay;
use crate::service::Runtime;

/// A read-only view of one side's files, mounted for as long as it is needed.
pub struct View {
    pub root: PathBuf,
    /// Layer directories above the environment whose entries may differ from it.
    pub layers: Vec<PathBuf>,
    temp_mount: Option<PathBuf>,
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(m) = &self.temp_mount {
            let _ = overlay::unmount(m);
            let _ = std::fs::remove_dir(m);
        }
    }
}

/// Where a side comes from: a sandbox (its live mount, or its last state) or a snapshot.
pub fn view(rt: &Runtime, id: &str) -> Result<View, Error> {
    if let Some(live) = rt.live.get(id) {
        live.touch();
        let mut layers = vec![live.layer.upper.clone()];
        layers.extend(live.lowers.iter().cloned());
        return Ok(View { root: live.rootfs.clone(), layers, temp_mount: None });
    }
    if let Some(row) = rt.catalog.sandbox(id).map_err(Error::Catalog)? {
        return match row.state {
            SandboxState::Exited | SandboxState::Failed => {
                let def = envs::resolve(&row.environment)?;
                let layer = rt.store.layer_of(id);
                temp_view(rt, vec![layer.upper], &rt.envs.built_rootfs(def)?)
            }
            SandboxState::Stopped => match row.last_snapshot {
                Some(s) => view(rt, &s),
                None => {
                    Err(Error::SandboxState { id: id.into(), state: "stopped without a snapshot", need: "running" })
                }
            },
            _ => Err(Error::SandboxNotFound(id.into())),
        };
    }
    let snap = rt.catalog.snapshot(id).map_err(Error::Catalog)?;
    match snap {
        Some(s) if s.state == SnapshotState::Ready => {
            let def = envs::resolve(&s.environment)?;
            temp_view(rt, s.layers, &rt.envs.built_rootfs(def)?)
        }
        _ => Err(Error::SandboxNotFound(id.into())),
    }
}

fn temp_view(rt: &Runtime, layers: Vec<PathBuf>, env_root: &Path) -> Result<View, Error> {
    let mount = rt.config.data_dir.join("tmp").join(format!("view-{}", crate::ids::new_sandbox_id()));
    std::fs::create_dir_all(&mount).map_err(|e| Error::Io("create a view", mount.clone(), e))?;
    let lower = layers
        .iter()
        .map(|l| l.display().to_string())
        .chain([env_root.display().to_string()])
        .collect::<Vec<_>>()
        .join(":");
    // Lowers only, no upper: overlayfs mounts it read-only.
    nix::mount::mount(
        Some("overlay"),
        &mount,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(format!("lowerdir={lower}").as_str()),
    )
    .map_err(|errno| {
        Error::Sandbox(overlay::OverlayError::Mount { target: mount.clone(), options: lower, errno }.into())
    })?;
    Ok(View { root: mount.clone(), layers, temp_mount: Some(mount) })
}

/// The environment itself, for two sandboxes with no snapshot in common.
pub fn env_view(rt: &Runtime, environment: &str) -> Result<View, Error> {
    let def = envs::resolve(environment)?;
    Ok(View { root: rt.envs.built_rootfs(def)?, layers: Vec::new(), temp_mount: None })
}
