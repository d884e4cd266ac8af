//! Cleanup at start: whatever a previous runtime left when it died is made consistent with the catalog
//! before anything new is made. Its processes are gone (the spawner kills them when the runtime dies),
//! so: leftover cgroups and mounts go; ephemeral sandboxes go entirely; a persistent sandbox that was
//! running becomes `stopped` at its last snapshot (its later file changes are lost with its processes)
//! or, with no snapshot, `failed` with its files kept; a snapshot that was being made when the runtime
//! died is removed (never listed as good); layers and images nobody references are removed, and so are
//! the layers of one-run sandboxes.

use std::collections::HashSet;
use std::time::Duration;

use crate::catalog::{Catalog, SandboxState, SnapshotState};
use crate::cgroup::Layout;
use crate::config::Config;
use crate::envs::remove_tree;
use crate::layers::Store;
use crate::overlay;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub cgroups: usize,
    pub mounts: usize,
    pub dirs: usize,
    pub sandboxes_stopped: usize,
    pub snapshots_dropped: usize,
    pub layers_dropped: usize,
    /// Sandboxes that were running and are now stopped at their last snapshot.
    pub stopped_ids: Vec<String>,
}

pub fn reconcile(config: &Config, layout: &Layout, catalog: &Catalog, store: &Store) -> Reconciled {
    let mut done = Reconciled::default();
    for (id, cg) in layout.leftovers(&config.cgroup_parent) {
        if !cg.pids().is_empty() {
            cg.kill_all();
        }
        match cg.remove(Duration::from_secs(5)) {
            Ok(()) => done.cgroups += 1,
            Err(e) => crate::log!("leftover sandbox {id}: {e}"),
        }
    }
    for m in overlay::mounts_under(&config.sandboxes_dir()) {
        match overlay::unmount(&m) {
            Ok(()) => done.mounts += 1,
            Err(e) => crate::log!("leftover mount: {e}"),
        }
    }

    let snapshots = catalog.snapshots().unwrap_or_default();
    for s in snapshots.iter().filter(|s| s.state == SnapshotState::Creating) {
        let _ = store.remove_snapshot(&s.id);
        let _ = remove_tree(&config.data_dir.join("snapshots").join(&s.id));
        if catalog.delete_snapshot(&s.id).is_ok() {
            done.snapshots_dropped += 1;
        }
    }
    let ready: HashSet<String> =
        snapshots.iter().filter(|s| s.state == SnapshotState::Ready).map(|s| s.id.clone()).collect();

    let sandboxes = catalog.sandboxes().unwrap_or_default();
    let mut keep_layers = HashSet::new();
    for s in &sandboxes {
        match s.state {
            SandboxState::Running | SandboxState::Paused => {
                let resumable = s.last_snapshot.as_ref().is_some_and(|l| ready.contains(l));
                if resumable {
                    let _ = catalog.set_sandbox_state(&s.id, SandboxState::Stopped, None);
                    done.stopped_ids.push(s.id.clone());
                } else {
                    let _ = catalog.set_sandbox_state(&s.id, SandboxState::Failed, None);
                    keep_layers.insert(s.id.clone());
                }
                done.sandboxes_stopped += 1;
            }
            SandboxState::Exited | SandboxState::Failed => {
                keep_layers.insert(s.id.clone());
            }
            SandboxState::Stopped | SandboxState::Destroyed => {}
        }
    }
    let (layers, snapshot_layers) = store.present();
    for id in layers.iter().filter(|id| !keep_layers.contains(*id)) {
        if store.remove_layer(id).is_ok() {
            done.layers_dropped += 1;
        }
    }
    for id in snapshot_layers.iter().filter(|id| !ready.contains(*id)) {
        if store.remove_snapshot(id).is_ok() {
            done.layers_dropped += 1;
        }
    }
    // One-run sandboxes' layers (their mounts went above): none outlives its runtime.
    for id in store.ephemeral_present() {
        match store.remove_ephemeral(&id) {
            Ok(()) => done.layers_dropped += 1,
            Err(e) => crate::log!("leftover one-run layer {id}: {e}"),
        }
    }
    if let Ok(entries) = std::fs::read_dir(config.data_dir.join("snapshots")) {
        for e in entries.flatten() {
            if !ready.contains(e.file_name().to_string_lossy().as_ref()) && remove_tree(&e.path()).is_ok() {
                done.dirs += 1;
            }
        }
    }
    // Directories of catalogued sandboxes keep their console log; ephemeral ones go.
    let known: HashSet<&str> =
        sandboxes.iter().filter(|s| s.state != SandboxState::Destroyed).map(|s| s.id.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(config.sandboxes_dir()) {
        for e in entries.flatten() {
            if !known.contains(e.file_name().to_string_lossy().as_ref()) {
                match remove_tree(&e.path()) {
                    Ok(()) => done.dirs += 1,
                    Err(err) => crate::log!("leftover directory {}: {err}", e.path().display()),
                }
            }
        }
    }
    done
}
