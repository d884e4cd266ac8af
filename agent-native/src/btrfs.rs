//! A btrfs pool for sandbox layers: subvolumes snapshot in O(1). When the data dir is not btrfs itself
//! (here it is ext4), the pool is a sparse image file loop-mounted under the data dir, created once.
//! Subvolume operations are direct ioctls (no btrfs-progs process per snapshot). Quotas are enabled on
//! it when it opens, so each subvolume can carry a disk limit (disk_quota.rs). `sandboxes/` holds
//! persistent sandboxes' layers, `snapshots/` read-only snapshots of them, `ephemeral/` the layers of
//! sandboxes that live for one run.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum BtrfsError {
    #[error("cannot create the btrfs image {path}: {source}")]
    Image { path: PathBuf, source: io::Error },
    #[error("{program} failed for {path}: {detail} (is btrfs-progs installed? run scripts/setup.sh)")]
    Tool { program: &'static str, path: PathBuf, detail: String },
    #[error("cannot open {path}: {errno}")]
    Open { path: PathBuf, errno: Errno },
    #[error("btrfs {op} of {path} failed: {errno}")]
    Ioctl { op: &'static str, path: PathBuf, errno: Errno },
    #[error("subvolume name {name:?} is not a single path component")]
    Name { name: String },
}

type Result<T> = std::result::Result<T, BtrfsError>;

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
const BTRFS_PATH_NAME_MAX: usize = 4087;
const BTRFS_SUBVOL_NAME_MAX: usize = 4039;
const BTRFS_SUBVOL_RDONLY: u64 = 1 << 1;

#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; BTRFS_PATH_NAME_MAX + 1],
}

#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; BTRFS_SUBVOL_NAME_MAX + 1],
}

nix::ioctl_write_ptr!(subvol_create, BTRFS_IOCTL_MAGIC, 14, VolArgs);
nix::ioctl_write_ptr!(snap_destroy, BTRFS_IOCTL_MAGIC, 15, VolArgs);
nix::ioctl_write_ptr!(snap_create_v2, BTRFS_IOCTL_MAGIC, 23, VolArgsV2);

/// A mounted btrfs filesystem whose subvolumes hold sandbox and snapshot layers.
#[derive(Debug, Clone)]
pub struct Pool {
    pub mount: PathBuf,
    image: Option<PathBuf>,
    /// How the pool accounts for each subvolume's writes (see disk_quota.rs).
    pub quota: crate::disk_quota::QuotaMode,
    /// The pool's size in bytes.
    pub size_bytes: u64,
}

impl Pool {
    /// Uses `mount` if it already is a btrfs mount; otherwise creates (once) a sparse `image` of `size`
    /// bytes, formats it and loop-mounts it there.
    pub fn open_or_create(image: &Path, mount: &Path, size: u64) -> Result<Pool> {
        let tool_err = |program, detail: String| BtrfsError::Tool { program, path: image.into(), detail };
        fs::create_dir_all(mount).map_err(|source| BtrfsError::Image { path: mount.into(), source })?;
        if !is_btrfs_mount(mount) {
            if !image.exists() {
                let tmp = image.with_extension("img.tmp");
                let f = fs::File::create(&tmp).map_err(|source| BtrfsError::Image { path: tmp.clone(), source })?;
                f.set_len(size).map_err(|source| BtrfsError::Image { path: tmp.clone(), source })?;
                // It will hold every sandbox's files.
                fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .map_err(|source| BtrfsError::Image { path: tmp.clone(), source })?;
                let out = Command::new("mkfs.btrfs")
                    .args(["-q", "-f"])
                    .arg(&tmp)
                    .output()
                    .map_err(|e| tool_err("mkfs.btrfs", e.to_string()))?;
                if !out.status.success() {
                    return Err(tool_err("mkfs.btrfs", String::from_utf8_lossy(&out.stderr).into_owned()));
                }
                fs::rename(&tmp, image).map_err(|source| BtrfsError::Image { path: image.into(), source })?;
            }
            // `-o loop` gives the loop device autoclear: unmounting detaches it.
            let out = Command::new("mount")
                .args(["-t", "btrfs", "-o", "loop,noatime,nosuid,nodev"])
                .arg(image)
                .arg(mount)
                .output()
                .map_err(|e| tool_err("mount", e.to_string()))?;
            if !out.status.success() {
                return Err(tool_err("mount", String::from_utf8_lossy(&out.stderr).into_owned()));
            }
        }
        // Also when it was mounted already (by an older runtime): setuid files and device nodes in
        // sandbox layers must be inert on the host.
        nix::mount::mount(
            None::<&str>,
            mount,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME,
            None::<&str>,
        )
        .map_err(|errno| BtrfsError::Ioctl { op: "remount nosuid,nodev", path: mount.into(), errno })?;
        // Quotas are turned on only in Forkspace's own image: a btrfs filesystem someone else mounted there
        // keeps the quota setting it has (simple quotas change its on-disk format).
        let quota = if backed_by(mount, image) {
            let (quota, why) = crate::disk_quota::enable(mount);
            if let Some(why) = why {
                crate::log!("warning: {why}; per-sandbox disk limits (limits.diskBytes) are not enforced");
            }
            quota
        } else {
            let quota = crate::disk_quota::mode_of(mount);
            if quota == crate::disk_quota::QuotaMode::Off {
                crate::log!(
                    "warning: the btrfs pool at {} is not Forkspace's image and has no quotas, so per-sandbox disk \
                     limits are not enforced; to enforce them: btrfs quota enable --simple {}",
                    mount.display(),
                    mount.display()
                );
            }
            quota
        };
        let size_bytes =
            nix::sys::statvfs::statvfs(mount).map(|s| s.blocks().saturating_mul(s.fragment_size())).unwrap_or(size);
        let pool = Pool { mount: mount.into(), image: Some(image.into()), quota, size_bytes };
        for dir in ["sandboxes", "snapshots", "ephemeral"] {
            let p = pool.mount.join(dir);
            fs::create_dir_all(&p).map_err(|source| BtrfsError::Image { path: p, source })?;
        }
        Ok(pool)
    }

    /// Unmounts the pool and makes sure its loop device is detached (autoclear does it, but only once
    /// the kernel drops its last reference, which can lag the unmount).
    pub fn unmount(&self) {
        let Some(image) = &self.image else { return };
        let device = mount_source(&self.mount);
        let _ = crate::overlay::unmount(&self.mount);
        let Some(device) = device.filter(|d| d.starts_with("/dev/loop")) else { return };
        let backing = format!("/sys/block/{}/loop/backing_file", device.trim_start_matches("/dev/"));
        for _ in 0..100 {
            match fs::read_to_string(&backing) {
                Ok(b) if Path::new(b.trim()) == image.as_path() => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => return,
            }
        }
        let _ = Command::new("losetup").arg("-d").arg(&device).output();
    }

    pub fn create_subvolume(&self, dir: &str, name: &str) -> Result<PathBuf> {
        let parent = self.mount.join(dir);
        let parent_fd = open_dir(&parent)?;
        let mut args = VolArgs { fd: 0, name: [0; BTRFS_PATH_NAME_MAX + 1] };
        copy_name(&mut args.name, name)?;
        // SAFETY: BTRFS_IOC_SUBVOL_CREATE reads one VolArgs we own, on a directory fd we hold.
        unsafe { subvol_create(parent_fd.as_raw_fd(), &args) }.map_err(|errno| BtrfsError::Ioctl {
            op: "subvolume create",
            path: parent.join(name),
            errno,
        })?;
        // The subvolume's root holds a sandbox's layer (upper/ keeps the sandbox's own modes): root's
        // alone, as every directory of the runtime's; snapshots of it copy the mode.
        let path = parent.join(name);
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|source| BtrfsError::Image { path: path.clone(), source })?;
        Ok(path)
    }

    /// Snapshots subvolume `src` (a path in the pool) as `dir/name`, read-only or writable.
    pub fn snapshot(&self, src: &Path, dir: &str, name: &str, readonly: bool) -> Result<PathBuf> {
        let src_fd = open_dir(src)?;
        let parent = self.mount.join(dir);
        let parent_fd = open_dir(&parent)?;
        let mut args = VolArgsV2 {
            fd: i64::from(src_fd.as_raw_fd()),
            transid: 0,
            flags: if readonly { BTRFS_SUBVOL_RDONLY } else { 0 },
            unused: [0; 4],
            name: [0; BTRFS_SUBVOL_NAME_MAX + 1],
        };
        copy_name(&mut args.name, name)?;
        // SAFETY: BTRFS_IOC_SNAP_CREATE_V2 reads one VolArgsV2 we own; both fds stay open for the call.
        unsafe { snap_create_v2(parent_fd.as_raw_fd(), &args) }.map_err(|errno| BtrfsError::Ioctl {
            op: "snapshot",
            path: parent.join(name),
            errno,
        })?;
        Ok(parent.join(name))
    }

    /// Deletes subvolume `dir/name` with everything in it; missing is fine.
    pub fn delete_subvolume(&self, dir: &str, name: &str) -> Result<()> {
        delete_subvolume_at(&self.mount.join(dir).join(name))
    }

    /// Names of the subvolumes in `dir`.
    pub fn list(&self, dir: &str) -> Vec<String> {
        fs::read_dir(self.mount.join(dir))
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }
}

/// Deletes the subvolume at `path` with everything in it; missing is fine.
pub fn delete_subvolume_at(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(BtrfsError::Name { name: path.display().to_string() });
    };
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let parent_fd = open_dir(parent)?;
    let mut args = VolArgs { fd: 0, name: [0; BTRFS_PATH_NAME_MAX + 1] };
    copy_name(&mut args.name, &name.to_string_lossy())?;
    // SAFETY: BTRFS_IOC_SNAP_DESTROY reads one VolArgs we own, on a directory fd we hold.
    match unsafe { snap_destroy(parent_fd.as_raw_fd(), &args) } {
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(BtrfsError::Ioctl { op: "subvolume delete", path: path.into(), errno }),
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| BtrfsError::Open { path: path.into(), errno })
}

fn copy_name(dst: &mut [u8], name: &str) -> Result<()> {
    let bytes = OsStr::new(name).as_bytes();
    if bytes.is_empty() || bytes.len() >= dst.len() || bytes.contains(&b'/') || name == "." || name == ".." {
        return Err(BtrfsError::Name { name: name.into() });
    }
    dst[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// Whether `mount` is the loop mount of `image` (the pool Forkspace made), per the loop device's backing file.
fn backed_by(mount: &Path, image: &Path) -> bool {
    let Some(device) = mount_source(mount).filter(|d| d.starts_with("/dev/loop")) else { return false };
    let backing = format!("/sys/block/{}/loop/backing_file", device.trim_start_matches("/dev/"));
    let image = fs::canonicalize(image).unwrap_or_else(|_| image.to_path_buf());
    fs::read_to_string(backing).is_ok_and(|b| Path::new(b.trim()) == image)
}

/// The device a mount point is mounted from (`/dev/loop3`), per mountinfo.
fn mount_source(dir: &Path) -> Option<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (left.split(' ').nth(4).map(Path::new) == Some(dir))
            .then(|| right.split(' ').nth(1).map(String::from))
            .flatten()
    })
}

fn is_btrfs_mount(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else { return false };
    text.lines().any(|l| {
        let mut parts = l.split(" - ");
        let left = parts.next().unwrap_or("");
        let right = parts.next().unwrap_or("");
        left.split(' ').nth(4).map(Path::new) == Some(dir) && right.starts_with("btrfs ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_argument_structs_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
    }

    #[test]
    fn names_must_be_one_component() {
        let mut buf = [0u8; 16];
        assert!(copy_name(&mut buf, "ok-name").is_ok());
        for bad in ["", "a/b", "..", "x".repeat(20).as_str()] {
            assert!(copy_name(&mut buf, bad).is_err(), "{bad}");
        }
    }
}
