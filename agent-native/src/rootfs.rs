//! Mounts inside the sandbox's own mount namespace, run by the sandbox's first process before it
//! becomes the user's command. Each function names one step; the order lives in sandbox_init.rs.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Stops our mounts from propagating back to the host (and the host's from arriving here).
pub fn make_private_in_child() -> Result<(), Errno> {
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
}

/// A proc for the sandbox's own pid namespace.
pub fn mount_proc_in_child(rootfs: &Path) -> Result<(), Errno> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &rootfs.join("proc"), Some("proc"), flags, None::<&str>)
}

/// /proc entries that would let root in the sandbox reconfigure the host kernel (core_pattern, sysrq,
/// irq affinity...) are bound read-only over themselves.
pub const PROC_READONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];

pub fn protect_proc_in_child(rootfs: &Path, entry: &str) -> Result<(), Errno> {
    let path = rootfs.join("proc").join(entry);
    if !path.exists() {
        return Ok(());
    }
    mount(Some(&path), &path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
    let ro = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(None::<&str>, &path, None::<&str>, ro, None::<&str>)
}

/// The rootfs is mounted `nosuid,nodev` on the host, so device nodes a sandbox makes there act on
/// nothing host-side. In the sandbox's own copy of the mount the environment's /dev nodes must work:
/// this remounts that copy without `nodev` (still `nosuid`).
pub fn allow_devices_in_child(rootfs: &Path) -> Result<(), Errno> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID;
    mount(None::<&str>, rootfs, None::<&str>, flags, None::<&str>)
}

/// Bind-mounts `rootfs` (with what is below it) onto itself, making it a mount of the caller's namespace.
pub fn bind_onto_itself_in_child(rootfs: &Path) -> Result<(), Errno> {
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
}

/// /proc files that show the host's kernel state (keyrings, physical memory and page maps, timers, slab
/// caches, vmalloc areas) are hidden behind the sandbox's /dev/null, as Docker's masked paths. (kallsyms shows no
/// addresses without CAP_SYSLOG; each mask is a mount that every snapshot and branch carries, so only
/// what leaks is masked.)
pub const PROC_MASKED: [&str; 10] = [
    "keys",
    "key-users",
    "kpageflags",
    "kpagecount",
    "kpagecgroup",
    "timer_list",
    "iomem",
    "kcore",
    "slabinfo",
    "vmallocinfo",
];

/// Binds /dev/null over `/proc/<entry>`. Writable, as /dev/null is: writes go nowhere, and a read-only
/// remount would be one more mount operation for every restore.
pub fn mask_proc_in_child(rootfs: &Path, entry: &str) -> Result<(), Errno> {
    let path = rootfs.join("proc").join(entry);
    if !path.exists() {
        return Ok(());
    }
    mount(Some(&rootfs.join("dev/null")), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
}

/// A private devpts instance, so the sandbox's ptys are its own. `/dev/ptmx` in the environment links
/// to `pts/ptmx`.
pub fn mount_devpts_in_child(rootfs: &Path) -> Result<(), Errno> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount(Some("devpts"), &rootfs.join("dev/pts"), Some("devpts"), flags, Some("newinstance,ptmxmode=0666,mode=0620"))
}

/// Makes `rootfs` the root and drops every host mount from view. `pivot_root(".", ".")` stacks the old
/// root under the new one, and the lazy unmount of "." then detaches it.
pub fn pivot_in_child(rootfs: &Path) -> Result<(), Errno> {
    nix::unistd::chdir(rootfs)?;
    nix::unistd::pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")
}
