//! Per-sandbox disk limits: btrfs quota groups on each sandbox's subvolume, set with ioctls (no
//! btrfs-progs process, so a limit costs microseconds on the sandbox's path).
//!
//! Quotas are enabled on the pool once, in *simple* mode where the kernel has it (6.7+): each extent is
//! charged to the subvolume that wrote it, for as long as the extent exists, with no backref walks at
//! commit. A branch (a writable snapshot) starts at zero and is charged only for what it writes; a
//! sandbox's data that a snapshot still holds stays charged to the sandbox (deleting it frees nothing
//! until the snapshot goes), so snapshots cannot be used to write past the limit. Older kernels get
//! full qgroups instead, limiting what the subvolume references (a branch then starts with its
//! snapshot's size counted). Writing past a limit fails with EDQUOT, for the sandbox's processes and for
//! the runtime's own writes into it alike.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::btrfs::BtrfsError;

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
const QUOTA_CTL_ENABLE: u64 = 1;
const QUOTA_CTL_ENABLE_SIMPLE: u64 = 4;
const QGROUP_LIMIT_MAX_RFER: u64 = 1 << 0;
const QGROUP_LIMIT_MAX_EXCL: u64 = 1 << 1;

#[repr(C)]
struct QuotaCtlArgs {
    cmd: u64,
    status: u64,
}

#[repr(C)]
struct QgroupLimit {
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    lim: QgroupLimit,
}

#[repr(C)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    nodesize: u32,
    sectorsize: u32,
    clone_alignment: u32,
    csum_type: u16,
    csum_size: u16,
    flags: u64,
    generation: u64,
    metadata_uuid: [u8; 16],
    reserved: [u8; 944],
}

nix::ioctl_readwrite!(quota_ctl, BTRFS_IOCTL_MAGIC, 40, QuotaCtlArgs);
// The kernel declares QGROUP_LIMIT as _IOR although it reads the argument.
nix::ioctl_read!(qgroup_limit, BTRFS_IOCTL_MAGIC, 43, QgroupLimitArgs);
nix::ioctl_read!(fs_info, BTRFS_IOCTL_MAGIC, 31, FsInfoArgs);

/// How the pool accounts for what each subvolume writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaMode {
    /// Simple quotas: extents charged to the subvolume that allocated them.
    Simple,
    /// Full qgroups: what each subvolume references.
    Full,
    /// No quotas: limits are not enforced.
    Off,
}

fn open_dir(path: &Path) -> Result<OwnedFd, BtrfsError> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| BtrfsError::Open { path: path.into(), errno })
}

fn ctl(mount: &Path, cmd: u64) -> Result<(), Errno> {
    let fd = open_dir(mount).map_err(|_| Errno::EBADF)?;
    let mut args = QuotaCtlArgs { cmd, status: 0 };
    // SAFETY: BTRFS_IOC_QUOTA_CTL reads and writes one QuotaCtlArgs we own, on a directory fd we hold.
    unsafe { quota_ctl(fd.as_raw_fd(), &mut args) }.map(|_| ())
}

/// The pool's sysfs directory (`/sys/fs/btrfs/<fsid>`).
fn sysfs_dir(mount: &Path) -> Option<PathBuf> {
    let fd = open_dir(mount).ok()?;
    // SAFETY: FsInfoArgs is plain integers and byte arrays, for which all-zero is a valid value.
    let mut args: FsInfoArgs = unsafe { std::mem::zeroed() };
    // SAFETY: BTRFS_IOC_FS_INFO fills one FsInfoArgs we own, on a directory fd we hold.
    unsafe { fs_info(fd.as_raw_fd(), &mut args) }.ok()?;
    let h: String = args.fsid.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
    Some(Path::new("/sys/fs/btrfs").join(uuid))
}

/// The mode quotas run in on the filesystem at `mount`, per sysfs.
pub fn mode_of(mount: &Path) -> QuotaMode {
    let Some(dir) = sysfs_dir(mount) else { return QuotaMode::Off };
    if !dir.join("qgroups").exists() {
        return QuotaMode::Off;
    }
    match fs::read_to_string(dir.join("qgroups/mode")).map(|s| s.trim().to_string()) {
        Ok(m) if m == "squota" => QuotaMode::Simple,
        Ok(m) if m == "disabled" => QuotaMode::Off,
        // Kernels before simple quotas have no mode file: qgroups exist, so they are full ones.
        _ => QuotaMode::Full,
    }
}

/// Turns quotas on for the pool (once; a pool that has them keeps its mode): simple quotas where the
/// kernel has them, full qgroups otherwise. Off only when neither can be enabled, with why.
pub fn enable(mount: &Path) -> (QuotaMode, Option<String>) {
    let mode = mode_of(mount);
    if mode != QuotaMode::Off {
        return (mode, None);
    }
    let simple = ctl(mount, QUOTA_CTL_ENABLE_SIMPLE);
    if simple.is_ok() {
        return (mode_of(mount), None);
    }
    match ctl(mount, QUOTA_CTL_ENABLE) {
        Ok(()) => (mode_of(mount), None),
        Err(full) => (
            QuotaMode::Off,
            Some(format!(
                "enabling btrfs quotas on {} failed (simple: {}, full: {full})",
                mount.display(),
                simple.err().map(|e| e.to_string()).unwrap_or_default()
            )),
        ),
    }
}

/// Limits what the subvolume at `subvolume` may hold to `bytes` (its qgroup 0/<id>, which the kernel
/// made with the subvolume).
pub fn set_limit(subvolume: &Path, bytes: u64) -> Result<(), BtrfsError> {
    let fd = open_dir(subvolume)?;
    let mut args = QgroupLimitArgs {
        // 0: the qgroup of the subvolume the fd is in.
        qgroupid: 0,
        lim: QgroupLimit {
            flags: QGROUP_LIMIT_MAX_RFER | QGROUP_LIMIT_MAX_EXCL,
            max_rfer: bytes,
            max_excl: bytes,
            rsv_rfer: 0,
            rsv_excl: 0,
        },
    };
    // SAFETY: BTRFS_IOC_QGROUP_LIMIT reads one QgroupLimitArgs we own, on a directory fd we hold.
    unsafe { qgroup_limit(fd.as_raw_fd(), &mut args) }.map(|_| ()).map_err(|errno| BtrfsError::Ioctl {
        op: "qgroup limit",
        path: subvolume.into(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_argument_structs_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<QuotaCtlArgs>(), 16);
        assert_eq!(std::mem::size_of::<QgroupLimitArgs>(), 48);
        assert_eq!(std::mem::size_of::<FsInfoArgs>(), 1024);
    }
}
