//! One sandbox's host-side resources, in the order they are made: its directory, its writable layer (a
//! subvolume of the btrfs pool bounded by the run's disk limit, or a directory beside the mount point
//! with the copy store), the overlay mount, the files placed before start, and its cgroup. The first
//! process is then cloned by the spawner (see spawner.rs and sandbox_init.rs). `prepare` undoes its own
//! partial work on failure; `release` tears everything down, is idempotent, and leaves no mount, cgroup,
//! layer or directory.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::{CgroupError, Layout, SandboxCgroup};
use crate::config::Config;
use crate::envs::remove_tree;
use crate::layers::{LayerError, Store};
use crate::overlay::{self, OverlayDirs, OverlayError};
use crate::plan::{FilePlan, RunPlan};
use crate::safe_fs::{self, SafeFsError};
use crate::userns::{self, IdMap};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Files(#[from] SafeFsError),
    #[error("cannot remove sandbox directory {path}: {source}")]
    RemoveDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Layer(#[from] LayerError),
}

type Result<T> = std::result::Result<T, SandboxError>;

#[derive(Debug)]
pub struct Sandbox {
    pub id: String,
    pub dir: PathBuf,
    pub overlay: OverlayDirs,
    pub cgroup: Option<SandboxCgroup>,
    /// Its user namespace map: what the runtime writes into its rootfs belongs to sandbox root.
    pub ids: Option<IdMap>,
    mounted: bool,
    /// The pool subvolume holding its writable layer (btrfs store), deleted at release.
    layer: Option<PathBuf>,
}

impl Sandbox {
    /// Makes the sandbox's resources for `plan` over the read-only `lowers` (top-most first), and
    /// records the cgroup files the first process must join in `plan.init.process.cgroup_procs`.
    pub fn prepare(
        config: &Config,
        layout: &Layout,
        store: &Store,
        id: &str,
        lowers: &[&Path],
        plan: &mut RunPlan,
    ) -> Result<Sandbox> {
        let dir = config.sandbox_dir(id);
        let mut sandbox = Sandbox {
            id: id.to_string(),
            overlay: OverlayDirs::under(&dir),
            dir,
            cgroup: None,
            ids: config.ids(),
            mounted: false,
            layer: None,
        };
        match sandbox.prepare_steps(config, layout, store, lowers, plan) {
            Ok(()) => Ok(sandbox),
            Err(e) => {
                let _ = sandbox.release();
                Err(e)
            }
        }
    }

    fn prepare_steps(
        &mut self,
        config: &Config,
        layout: &Layout,
        store: &Store,
        lowers: &[&Path],
        plan: &mut RunPlan,
    ) -> Result<()> {
        if let Some(layer) = store.ephemeral_layer(&self.id, plan.disk_bytes)? {
            self.layer = layer.upper.parent().map(Path::to_path_buf);
            self.overlay.upper = layer.upper;
            self.overlay.work = layer.work;
        }
        self.overlay.create()?;
        overlay::mount_volatile_overlay(lowers, &self.overlay, config.userns.as_deref())?;
        self.mounted = true;
        // Files go in through the mount, resolved inside the rootfs, before the first process exists.
        self.write_files(&plan.files)?;
        let cgroup = layout.create(&config.cgroup_parent, &self.id, &plan.limits)?;
        plan.init.process.cgroup_procs = cgroup.procs_files();
        self.cgroup = Some(cgroup);
        Ok(())
    }

    /// Changes the disk limit of its writable layer (a warm sandbox handed a run with other limits).
    pub fn set_disk_limit(&self, bytes: u64) -> Result<()> {
        match &self.layer {
            Some(layer) => Ok(crate::disk_quota::set_limit(layer, bytes).map_err(LayerError::from)?),
            None => Ok(()),
        }
    }

    /// Places files into the rootfs, owned by sandbox root.
    pub fn write_files(&self, files: &[FilePlan]) -> Result<()> {
        userns::as_sandbox_owner(self.ids, || {
            files.iter().try_for_each(|f| safe_fs::write_file(&self.overlay.rootfs, &f.path, &f.content, f.mode))
        })?;
        Ok(())
    }

    /// Kills anything still running, unmounts, removes the cgroup and the directory.
    pub fn release(&mut self) -> Result<()> {
        if let Some(cg) = &self.cgroup {
            if !cg.pids().is_empty() {
                cg.kill_all();
            }
        }
        if self.mounted {
            overlay::unmount(&self.overlay.rootfs)?;
            self.mounted = false;
        }
        if let Some(cg) = &self.cgroup {
            cg.remove(Duration::from_secs(2))?;
            self.cgroup = None;
        }
        if let Some(layer) = &self.layer {
            crate::btrfs::delete_subvolume_at(layer).map_err(LayerError::from)?;
            self.layer = None;
        }
        remove_tree(&self.dir).map_err(|source| SandboxError::RemoveDir { path: self.dir.clone(), source })
    }
}
