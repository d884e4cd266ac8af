//! Cleanup at start: whatever a previous runtime left when it died (killed processes' cgroups, overlay
//! mounts, sandbox directories) is removed before anything new is made. Ephemeral sandboxes have no
//! owner after a restart, so nothing of them is kept.

use std::time::Duration;

use crate::cgroup::Layout;
use crate::config::Config;
use crate::envs::remove_tree;
use crate::overlay;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub cgroups: usize,
    pub mounts: usize,
    pub dirs: usize,
}

pub fn reconcile(config: &Config, layout: &Layout) -> Reconciled {
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
    if let Ok(entries) = std::fs::read_dir(config.sandboxes_dir()) {
        for e in entries.flatten() {
            match remove_tree(&e.path()) {
                Ok(()) => done.dirs += 1,
                Err(err) => crate::log!("leftover directory {}: {err}", e.path().display()),
            }
        }
    }
    done
}
