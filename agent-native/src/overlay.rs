//! The sandbox's root filesystem: an overlay of a writable upper directory over read-only environment
//! lowers, mounted on the host side (so the runtime can reach it for files and CRIU's `--root`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::userns::Userns;

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("cannot create {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("path {path} cannot be an overlay layer: it contains ',' or ':'")]
    UnsafePath { path: PathBuf },
    #[error("cannot mount overlay on {target} ({options}): {errno}")]
    Mount { target: PathBuf, options: String, errno: Errno },
    #[error("cannot unmount {target}: {errno}")]
    Unmount { target: PathBuf, errno: Errno },
    #[error(transparent)]
    Idmapped(Box<crate::userns::UsernsError>),
}

type Result<T> = std::result::Result<T, OverlayError>;

/// The three directories of one overlay: the writable layer, overlayfs's scratch dir, and the mount point.
#[derive(Debug, Clone)]
pub struct OverlayDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub rootfs: PathBuf,
}

impl OverlayDirs {
    pub fn under(dir: &Path) -> OverlayDirs {
        OverlayDirs { upper: dir.join("upper"), work: dir.join("work"), rootfs: dir.join("rootfs") }
    }

    /// The sandbox's directory and the work dir and mount point are root's alone (0700); the upper keeps
    /// the usual 0755, since it is the sandbox's `/`.
    pub fn create(&self) -> Result<()> {
        for d in [&self.work, &self.rootfs] {
            crate::data_dir::create_private_dir(d).map_err(|source| OverlayError::CreateDir { path: d.clone(), source })?;
        }
        fs::create_dir_all(&self.upper).map_err(|source| OverlayError::CreateDir { path: self.upper.clone(), source })
    }
}

/// Builds the mount options; `lowers` are listed top-most first, as overlayfs wants them.
pub fn options(lowers: &[&Path], dirs: &OverlayDirs) -> Result<String> {
    let mut all: Vec<&Path> = lowers.to_vec();
    all.extend([dirs.upper.as_path(), dirs.work.as_path()]);
    for p in &all {
        let s = p.to_string_lossy();
        if s.contains(',') || s.contains(':') {
            return Err(OverlayError::UnsafePath { path: p.to_path_buf() });
        }
    }
    let lower = lowers.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>().join(":");
    Ok(format!("lowerdir={lower},upperdir={},workdir={}", dirs.upper.display(), dirs.work.display()))
}

/// Mounts the overlay of `dirs` over `lowers` (top-most first) on `dirs.rootfs`; with a user namespace map,
/// every layer is seen through it (userns.rs).
pub fn mount_overlay(lowers: &[&Path], dirs: &OverlayDirs, userns: Option<&Userns>) -> Result<()> {
    mount_as(lowers, dirs, userns, "")
}

/// An overlay whose writes never need to reach the disk (a sandbox that lives for one run): `volatile`
/// skips the sync of the upper filesystem at unmount, which on a btrfs upper is a transaction commit.
pub fn mount_volatile_overlay(lowers: &[&Path], dirs: &OverlayDirs, userns: Option<&Userns>) -> Result<()> {
    mount_as(lowers, dirs, userns, ",volatile")
}

fn mount_as(lowers: &[&Path], dirs: &OverlayDirs, userns: Option<&Userns>, extra: &str) -> Result<()> {
    if let Some(u) = userns {
        return u.mount_overlay(lowers, dirs, extra).map_err(|e| OverlayError::Idmapped(Box::new(e)));
    }
    mount_plain(lowers, dirs, extra)
}

/// The overlay mount itself, of layers as they are (userns.rs passes idmapped ones).
pub fn mount_plain(lowers: &[&Path], dirs: &OverlayDirs, extra: &str) -> Result<()> {
    let opts = options(lowers, dirs)? + extra;
    // Nothing a sandbox writes may act on the host: setuid files and device nodes are inert through
    // this mount (the sandbox's own copy of it allows its devices; see rootfs::allow_devices_in_child).
    mount(Some("overlay"), &dirs.rootfs, Some("overlay"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(opts.as_str()))
        .map_err(|errno| OverlayError::Mount { target: dirs.rootfs.clone(), options: opts, errno })
}

/// Unmounts `target`; falls back to a lazy unmount when something still holds it busy. Not mounted is fine.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH)
            .map_err(|errno| OverlayError::Unmount { target: target.into(), errno }),
        Err(errno) => Err(OverlayError::Unmount { target: target.into(), errno }),
    }
}

/// Mount points at or below `dir`, deepest first, read from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_lowers_top_first() {
        let dirs = OverlayDirs::under(Path::new("/d/s1"));
        let o = options(&[Path::new("/snap/fs"), Path::new("/envs/bb/rootfs")], &dirs).unwrap();
        assert_eq!(o, "lowerdir=/snap/fs:/envs/bb/rootfs,upperdir=/d/s1/upper,workdir=/d/s1/work");
    }

    #[test]
    fn separators_in_paths_are_refused() {
        let dirs = OverlayDirs::under(Path::new("/d/a,b"));
        assert!(matches!(options(&[Path::new("/e")], &dirs), Err(OverlayError::UnsafePath { .. })));
        let dirs = OverlayDirs::under(Path::new("/d/ok"));
        assert!(options(&[Path::new("/e:x")], &dirs).is_err());
    }
}
