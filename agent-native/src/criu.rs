//! CRIU command lines for the sandbox layout (SANDBOX-FACTS.md §1): external network namespace,
//! `--network-lock skip` (the frozen sandbox's only network is its own), established TCP kept, file
//! locks, the freezer cgroup given to CRIU, and stdio pipes handed over with `--inherit-fd`. Building
//! the arguments is pure and unit-tested; `dump` runs criu from the runtime, while restores run as
//! spawner helpers (they must start inside the new sandbox's cgroups and be reaped by the spawner).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The fd numbers a restore helper receives its inherited fds on.
pub const NETNS_FD: i32 = 9;
pub const STDOUT_FD: i32 = 10;
pub const STDERR_FD: i32 = 11;
/// An open /dev/userfaultfd for a lazy restore into a user namespace (see `Restore::user_ns`).
pub const UFFD_DEV_FD: i32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("CRIU is not installed at {path}; run scripts/install-criu.sh or pass --criu")]
    Missing { path: PathBuf },
    #[error("criu {op} could not start: {source}")]
    Spawn { op: &'static str, source: std::io::Error },
    #[error("criu {op} failed ({status}); {log}:\n{tail}")]
    Failed { op: &'static str, status: String, log: PathBuf, tail: String },
    #[error("cannot prepare {path} for criu: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

type Result<T> = std::result::Result<T, CriuError>;

#[derive(Debug, Clone)]
pub struct Dump {
    pub pid: i32,
    pub images: PathBuf,
    pub netns_ino: u64,
    pub freezer: PathBuf,
    pub leave_running: bool,
    /// The host id of root of the sandbox's user namespace: a restore's tasks read their images
    /// themselves, so the images become that id's (see `share_images`).
    pub restorer_id: Option<u32>,
}

impl Dump {
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "dump".into(),
            "-t".into(),
            self.pid.to_string(),
            "-D".into(),
            self.images.display().to_string(),
            "-o".into(),
            "dump.log".into(),
            "-v2".into(),
            "--external".into(),
            format!("net[{}]:extnet", self.netns_ino),
            "--network-lock".into(),
            "skip".into(),
            "--tcp-established".into(),
            "--file-locks".into(),
            "--freeze-cgroup".into(),
            self.freezer.display().to_string(),
        ];
        if self.leave_running {
            a.push("--leave-running".into());
        }
        a
    }
}

#[derive(Debug, Clone)]
pub struct Restore {
    pub images: PathBuf,
    pub work: PathBuf,
    pub root: PathBuf,
    pub pidfile: PathBuf,
    pub stdout_pipe: u64,
    pub stderr_pipe: u64,
    pub lazy: bool,
    /// The tasks come back in a user namespace. Lazily, they need /dev/userfaultfd (they may not call
    /// userfaultfd(2) there), which criu, inside the sandbox's devices cgroup, cannot open: it expects
    /// the device on UFFD_DEV_FD.
    pub user_ns: bool,
}

impl Restore {
    /// Arguments for `criu restore`; it expects the netns and the two pipes on NETNS_FD, STDOUT_FD,
    /// STDERR_FD.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "restore".into(),
            "-D".into(),
            self.images.display().to_string(),
            "-W".into(),
            self.work.display().to_string(),
            "-o".into(),
            "restore.log".into(),
            "-v2".into(),
            "--root".into(),
            self.root.display().to_string(),
            "--restore-detached".into(),
            "--pidfile".into(),
            self.pidfile.display().to_string(),
            "--manage-cgroups=ignore".into(),
            "--tcp-established".into(),
            "--file-locks".into(),
            "--inherit-fd".into(),
            format!("fd[{NETNS_FD}]:extnet"),
            "--inherit-fd".into(),
            format!("fd[{STDOUT_FD}]:pipe:[{}]", self.stdout_pipe),
            "--inherit-fd".into(),
            format!("fd[{STDERR_FD}]:pipe:[{}]", self.stderr_pipe),
        ];
        if self.lazy {
            a.push("--lazy-pages".into());
            if self.user_ns {
                a.extend(["--inherit-fd".into(), format!("fd[{UFFD_DEV_FD}]:dev-userfaultfd")]);
            }
        }
        a
    }

    /// Whether the restore expects /dev/userfaultfd on UFFD_DEV_FD.
    pub fn needs_dev_uffd(&self) -> bool {
        self.lazy && self.user_ns
    }

    /// Arguments for the `criu lazy-pages` daemon that serves this restore's pages.
    pub fn lazy_pages_args(&self) -> Vec<String> {
        vec![
            "lazy-pages".into(),
            "-D".into(),
            self.images.display().to_string(),
            "-W".into(),
            self.work.display().to_string(),
            "-o".into(),
            "lazy-pages.log".into(),
            "-v2".into(),
        ]
    }

    pub fn lazy_socket(&self) -> PathBuf {
        self.work.join("lazy-pages.socket")
    }
}

/// Whether the CRIU binary has the user-namespace patch (it logs this message, and stock CRIU cannot).
pub fn handles_user_namespaces(criu: &Path) -> bool {
    const MARK: &[u8] = b"Forking the root task inside the external netns";
    fs::read(criu).is_ok_and(|bin| bin.windows(MARK.len()).any(|w| w == MARK))
}

pub fn check_installed(criu: &Path) -> Result<()> {
    if criu.exists() {
        Ok(())
    } else {
        Err(CriuError::Missing { path: criu.into() })
    }
}

/// Runs a dump; returns how long criu took.
pub async fn dump(criu: &Path, d: &Dump) -> Result<Duration> {
    check_installed(criu)?;
    crate::data_dir::create_private_dir(&d.images).map_err(|source| CriuError::Io { path: d.images.clone(), source })?;
    let t0 = Instant::now();
    let mut cmd = tokio::process::Command::new(criu);
    // Page images are process memory: 0600, not criu's 0644.
    // SAFETY: umask(2) in the forked child before exec; async-signal-safe, touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        })
    };
    let out = cmd
        .args(d.args())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| CriuError::Spawn { op: "dump", source })?;
    if !out.status.success() {
        let log = d.images.join("dump.log");
        return Err(CriuError::Failed { op: "dump", status: out.status.to_string(), tail: log_tail(&log), log });
    }
    if let Some(id) = d.restorer_id {
        share_images(&d.images, id).map_err(|source| CriuError::Io { path: d.images.clone(), source })?;
    }
    Ok(t0.elapsed())
}

/// Gives an image directory and its images to `id`, as uid and gid (modes stay 0700 and 0600): a
/// restore's tasks read their images themselves through criu's open directory, as root of their user
/// namespace, host id `id` (and, before criu has written its id maps, through criu's usernsd: see
/// scripts/patches/criu-4.1.1-userns.patch). Nothing else runs as that host id, and sandboxes cannot
/// walk into the private data dir.
pub fn share_images(images: &Path, id: u32) -> std::io::Result<()> {
    let (owner, group) = (Some(nix::unistd::Uid::from_raw(id)), Some(nix::unistd::Gid::from_raw(id)));
    for entry in fs::read_dir(images)? {
        let entry = entry?;
        // Logs are the runtime's, not read by a restore.
        if entry.file_type()?.is_file() && !entry.file_name().as_encoded_bytes().ends_with(b".log") {
            nix::unistd::chown(&entry.path(), owner, group)?;
        }
    }
    nix::unistd::chown(images, owner, group)?;
    Ok(())
}

/// The errors of a criu log (its last lines when it has none), without the rlimit warning every run on
/// a host without CAP_SYS_RESOURCE prints.
pub fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error") && !l.contains("RLIMIT_NOFILE")).collect();
    let lines: Vec<&str> = if errors.is_empty() { text.lines().collect() } else { errors };
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// Bytes of memory pages in an image directory.
pub fn image_pages_bytes(images: &Path) -> u64 {
    fs::read_dir(images)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_marks_the_netns_external_and_freezes_through_the_cgroup() {
        let d = Dump {
            pid: 42,
            images: "/s/criu".into(),
            netns_ino: 4026532000,
            freezer: "/fz/sbx".into(),
            leave_running: true,
            restorer_id: None,
        };
        let a = d.args().join(" ");
        assert!(a.starts_with("dump -t 42 -D /s/criu"));
        assert!(a.contains("--external net[4026532000]:extnet"));
        assert!(a.contains("--network-lock skip"));
        assert!(a.contains("--freeze-cgroup /fz/sbx"));
        assert!(a.ends_with("--leave-running"));
        let stop = Dump { leave_running: false, ..d };
        assert!(!stop.args().join(" ").contains("--leave-running"));
    }

    #[test]
    fn restore_inherits_netns_and_pipes_and_goes_lazy_on_request() {
        let r = Restore {
            images: "/i".into(),
            work: "/w".into(),
            root: "/r".into(),
            pidfile: "/w/pid".into(),
            stdout_pipe: 11,
            stderr_pipe: 12,
            lazy: false,
            user_ns: true,
        };
        let a = r.args().join(" ");
        assert!(a.contains("--root /r --restore-detached --pidfile /w/pid --manage-cgroups=ignore"));
        assert!(a.contains("--inherit-fd fd[9]:extnet --inherit-fd fd[10]:pipe:[11] --inherit-fd fd[11]:pipe:[12]"));
        assert!(!a.contains("--lazy-pages"));
        assert!(!r.needs_dev_uffd() && !a.contains("dev-userfaultfd"));
        let lazy = Restore { lazy: true, ..r.clone() };
        assert!(lazy.args().join(" ").ends_with("--lazy-pages --inherit-fd fd[12]:dev-userfaultfd"));
        assert!(lazy.needs_dev_uffd());
        let plain = Restore { user_ns: false, ..lazy.clone() };
        assert!(plain.args().join(" ").ends_with("--lazy-pages") && !plain.needs_dev_uffd());
        assert_eq!(lazy.lazy_pages_args().join(" "), "lazy-pages -D /i -W /w -o lazy-pages.log -v2");
        assert_eq!(lazy.lazy_socket(), PathBuf::from("/w/lazy-pages.socket"));
    }

    #[test]
    fn shared_images_belong_to_the_restorer_and_stay_private() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: chown needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        let images = data.join("snapshots/snap-1/criu");
        crate::data_dir::create_private_dir(&images).unwrap();
        for f in ["core-1.img", "dump.log"] {
            fs::write(images.join(f), "x").unwrap();
            fs::set_permissions(images.join(f), fs::Permissions::from_mode(0o600)).unwrap();
        }
        share_images(&images, 100_000).unwrap();
        crate::data_dir::seal(&data).unwrap();
        let meta = |f: &str| fs::metadata(images.join(f)).unwrap();
        assert_eq!((meta("").uid(), meta("").gid(), meta("").mode() & 0o7777), (100_000, 100_000, 0o700));
        let core = meta("core-1.img");
        assert_eq!((core.uid(), core.gid(), core.mode() & 0o7777), (100_000, 100_000, 0o600));
        assert_eq!(meta("dump.log").uid(), 0, "the runtime's log stays root's");
    }

    #[test]
    fn log_tail_keeps_errors_but_not_the_rlimit_noise() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        fs::write(&log, "(0.1) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE\n(0.2) info\n(0.3) Error (mount.c:1): bad root\n").unwrap();
        assert_eq!(log_tail(&log), "(0.3) Error (mount.c:1): bad root");
    }
}
