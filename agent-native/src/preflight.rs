//! What the runtime needs from the host, checked before it starts, with a fix for each problem.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::cgroup::{Layout, LayoutInfo};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    pub kernel: String,
    pub root: bool,
    pub cgroups: Option<LayoutInfo>,
    pub overlay: bool,
    pub criu: Option<String>,
    /// Problems that stop the runtime from serving.
    pub problems: Vec<Problem>,
    /// Problems that disable a feature (snapshots without CRIU, say).
    pub warnings: Vec<Problem>,
}

pub fn check(criu: &Path) -> (Report, Option<Layout>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        problems.push(Problem {
            what: "forkspace-rt is not running as root; it needs root to create namespaces, mounts and cgroups".into(),
            fix: "start it with sudo (the agent starts it for you when the agent runs as root)".into(),
        });
    }
    let layout = match Layout::detect() {
        Ok(l) => match l.check_required() {
            Ok(()) => Some(l),
            Err(e) => {
                problems.push(Problem {
                    what: e.to_string(),
                    fix: "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) or mount the v1 memory, cpu and pids hierarchies".into(),
                });
                None
            }
        },
        Err(e) => {
            problems.push(Problem { what: e.to_string(), fix: "mount /proc".into() });
            None
        }
    };
    let overlay = std::fs::read_to_string("/proc/filesystems").map(|s| s.contains("\toverlay")).unwrap_or(false);
    if !overlay {
        problems.push(Problem { what: "the kernel has no overlayfs".into(), fix: "modprobe overlay".into() });
    }
    let criu_version = criu_version(criu);
    if criu_version.is_none() {
        warnings.push(Problem {
            what: format!("CRIU not found at {} (snapshots, restore and branching are unavailable)", criu.display()),
            fix: "run scripts/install-criu.sh, or pass --criu /path/to/criu (>= 4.1)".into(),
        });
    }
    let report = Report {
        ok: problems.is_empty(),
        kernel,
        root,
        cgroups: layout.as_ref().map(Layout::info),
        overlay,
        criu: criu_version,
        problems,
        warnings,
    };
    (report, layout)
}

pub fn criu_version(criu: &Path) -> Option<String> {
    let out = Command::new(criu).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()))
}
