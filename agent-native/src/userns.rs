//! User namespaces: a sandbox's processes run in a user namespace of their own whose ids 0..size are
//! the unprivileged host ids base..base+size (`IdMap`), so its root is not host root. Its files keep
//! their ids on disk (the environment's and the writable layer's root files are uid 0 there, so
//! snapshots and branches do not depend on the map): the sandbox sees them through idmapped mounts
//! (`Userns`), and the runtime writes into a sandbox's rootfs with its fsuid/fsgid set to the map's base
//! (`as_sandbox_owner`), because host root has no id inside the map (EOVERFLOW).
//!
//! One map for every sandbox of a runtime (`--userns-base`, `--userns-size`); each sandbox still gets a
//! user namespace of its own, so per-namespace counts (processes, inotify, ...) are its own.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::overlay::{self, OverlayDirs};

/// Sandbox ids 0..size are host ids base..base+size, for uids and gids alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdMap {
    pub base: u32,
    pub size: u32,
}

impl IdMap {
    pub const DEFAULT_BASE: u32 = 100_000;
    pub const DEFAULT_SIZE: u32 = 65_536;

    /// The line for /proc/PID/uid_map and gid_map.
    pub fn line(&self) -> String {
        format!("0 {} {}\n", self.base, self.size)
    }

    /// A usable range: above host root, inside the 32-bit id space (-1 excluded), and clear of the host's
    /// users, groups and subordinate ranges, whose owners would otherwise share ids with sandboxes.
    pub fn check(&self) -> std::result::Result<(), String> {
        let end = u64::from(self.base) + u64::from(self.size);
        if self.base == 0 || self.size == 0 || end > u64::from(u32::MAX) {
            return Err(format!(
                "user namespace ids {}..{end} are invalid: the base must be above 0 and the range below 2^32-1",
                self.base
            ));
        }
        for (file, kind) in [
            ("/etc/subuid", Ranges::Sub),
            ("/etc/subgid", Ranges::Sub),
            ("/etc/passwd", Ranges::Id),
            ("/etc/group", Ranges::Id),
        ] {
            let Ok(text) = fs::read_to_string(file) else { continue };
            if let Some(clash) = kind.overlap(&text, u64::from(self.base), end) {
                return Err(format!(
                    "user namespace ids {}..{end} overlap {file} ({clash}): choose another --userns-base",
                    self.base
                ));
            }
        }
        Ok(())
    }
}

enum Ranges {
    /// `name:start:count` lines (subordinate ids).
    Sub,
    /// `name:x:id:...` lines (users, groups).
    Id,
}

impl Ranges {
    fn overlap(&self, text: &str, base: u64, end: u64) -> Option<String> {
        text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let (start, count) = match self {
                Ranges::Sub => (f.get(1)?.trim().parse::<u64>().ok()?, f.get(2)?.trim().parse::<u64>().ok()?),
                Ranges::Id => (f.get(2)?.trim().parse::<u64>().ok()?, 1),
            };
            (start < end && base < start + count).then(|| line.to_string())
        })
    }
}

const PR_GET_SECUREBITS: libc::c_int = 27;
const PR_SET_SECUREBITS: libc::c_int = 28;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;

/// Runs `f` on this thread with fsuid and fsgid = `ids.base` (sandbox root), keeping the thread's
/// capabilities, and restores both after: what `f` creates in a sandbox's rootfs belongs to sandbox root.
/// Credentials are per thread, so other threads are unaffected (threads `f` starts inherit them); `f`
/// must not block on anything that another thread's progress depends on. Without a map, it just runs `f`.
pub fn as_sandbox_owner<T>(ids: Option<IdMap>, f: impl FnOnce() -> T) -> T {
    let Some(ids) = ids else { return f() };
    let _guard = FsIds::enter(ids.base);
    f()
}

/// The thread's fs ids and securebits while `as_sandbox_owner` runs, restored on drop.
struct FsIds {
    uid: libc::c_long,
    gid: libc::c_long,
    securebits: libc::c_int,
}

impl FsIds {
    fn enter(id: u32) -> FsIds {
        // SAFETY: prctl(PR_GET/SET_SECUREBITS) and setfsuid/setfsgid(2) change only this thread's
        // credentials and read no memory of ours. NO_SETUID_FIXUP keeps the effective capabilities a
        // non-zero fsuid would otherwise drop (CAP_DAC_OVERRIDE and friends), which writing into
        // directories owned by other sandbox users needs.
        unsafe {
            let securebits = libc::prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
            libc::prctl(PR_SET_SECUREBITS, securebits.max(0) as libc::c_ulong | SECBIT_NO_SETUID_FIXUP, 0, 0, 0);
            let gid = libc::syscall(libc::SYS_setfsgid, id);
            let uid = libc::syscall(libc::SYS_setfsuid, id);
            FsIds { uid, gid, securebits }
        }
    }
}

impl Drop for FsIds {
    fn drop(&mut self) {
        // SAFETY: as in `enter`, restoring the values read there.
        unsafe {
            libc::syscall(libc::SYS_setfsuid, self.uid);
            libc::syscall(libc::SYS_setfsgid, self.gid);
            if self.securebits >= 0 {
                libc::prctl(PR_SET_SECUREBITS, self.securebits as libc::c_ulong, 0, 0, 0);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot create a user namespace for the id map {map}: {source}")]
    Create { map: String, source: io::Error },
    #[error(
        "cannot make an idmapped mount of {path}: {errno} (idmapped mounts need Linux >= 5.12 and a filesystem \
         that supports them, such as ext4, btrfs, xfs or tmpfs; on a host without them, run with --no-userns)"
    )]
    Idmap { path: PathBuf, errno: Errno },
    #[error("cannot attach an idmapped mount at {path}: {errno}")]
    Attach { path: PathBuf, errno: Errno },
    #[error("cannot create {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Overlay(#[from] overlay::OverlayError),
}

type Result<T> = std::result::Result<T, UsernsError>;

/// The runtime's user namespace map and what it needs for idmapped mounts: a user namespace with that
/// map (any will do: an idmapped mount uses only its map), and the idmapped environment lowers, made
/// once per environment and kept attached under `dir` while the runtime runs.
pub struct Userns {
    pub map: IdMap,
    ns: OwnedFd,
    env_dir: PathBuf,
    dir: PathBuf,
    lowers: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl std::fmt::Debug for Userns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Userns").field("map", &self.map).field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Userns {
    /// Makes the user namespace for `map` and checks that `probe` (the directories sandbox layers live
    /// in) support idmapped mounts. `dir` holds the idmapped environment lowers; what a previous
    /// runtime left there is unmounted first. Call before any thread exists (it forks).
    pub fn new(map: IdMap, env_dir: &Path, dir: &Path, probe: &[&Path]) -> Result<Userns> {
        for m in overlay::mounts_under(dir) {
            overlay::unmount(&m)?;
        }
        crate::data_dir::create_private_dir(dir).map_err(|source| UsernsError::Dir { path: dir.into(), source })?;
        let ns = user_namespace(map).map_err(|source| UsernsError::Create { map: map.line().trim().into(), source })?;
        let u = Userns { map, ns, env_dir: env_dir.into(), dir: dir.into(), lowers: Mutex::new(HashMap::new()) };
        for p in probe.iter().chain([&env_dir]) {
            // A directory made later (an environment dir before its first build) is on its nearest
            // existing ancestor's filesystem, most likely.
            let existing = p.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
            drop(u.idmapped_clone(existing, 0)?);
        }
        Ok(u)
    }

    /// A detached copy of the mount at `path`, showing its files through the map, with `attrs`.
    fn idmapped_clone(&self, path: &Path, attrs: u64) -> Result<OwnedFd> {
        let err = |errno| UsernsError::Idmap { path: path.into(), errno };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| err(Errno::EINVAL))?;
        // SAFETY: open_tree(2) reads the path, alive for the call; it returns a new fd or -1.
        let fd = unsafe {
            libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), OPEN_TREE_CLONE | libc::O_CLOEXEC as u32)
        };
        if fd < 0 {
            return Err(err(Errno::last()));
        }
        // SAFETY: the kernel returned a new fd that nothing else owns.
        let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP | attrs,
            attr_clr: 0,
            propagation: 0,
            userns_fd: self.ns.as_raw_fd() as u64,
        };
        // SAFETY: mount_setattr(2) reads one mount_attr we own, of the size we pass, on a tree fd we hold.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if rc < 0 {
            return Err(err(Errno::last()));
        }
        Ok(tree)
    }

    fn attach(tree: OwnedFd, at: &Path) -> Result<()> {
        let err = |errno| UsernsError::Attach { path: at.into(), errno };
        let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).map_err(|_| err(Errno::EINVAL))?;
        // SAFETY: move_mount(2) of a detached tree we hold onto a path alive for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                c.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if rc < 0 {
            return Err(err(Errno::last()));
        }
        Ok(())
    }

    /// The idmapped, read-only view of environment rootfs `env_root`, attached once under `dir`.
    fn env_lower(&self, env_root: &Path) -> Result<PathBuf> {
        let mut lowers = self.lowers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = lowers.get(env_root) {
            return Ok(at.clone());
        }
        let name = env_root.strip_prefix(&self.env_dir).unwrap_or(env_root).to_string_lossy().replace('/', "_");
        let at = self.dir.join(name.trim_start_matches('_'));
        crate::data_dir::create_private_dir(&at).map_err(|source| UsernsError::Dir { path: at.clone(), source })?;
        let tree = self.idmapped_clone(env_root, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)?;
        Self::attach(tree, &at)?;
        lowers.insert(env_root.into(), at.clone());
        Ok(at)
    }

    /// Mounts the overlay of `dirs` over `lowers` (top-most first) with every layer idmapped, as
    /// overlay::mount_overlay does without a map. Environment lowers come from the cache; the writable
    /// layer (the directory holding `upper` and `work`) and any other lower are idmapped for this mount
    /// only: attached next to the mount point (in `idmap/` of the sandbox's directory), given to
    /// overlayfs (which keeps private copies), and detached again whatever happens.
    pub fn mount_overlay(&self, lowers: &[&Path], dirs: &OverlayDirs, extra: &str) -> Result<()> {
        let home = dirs
            .upper
            .parent()
            .filter(|h| Some(*h) == dirs.work.parent())
            .ok_or_else(|| UsernsError::Overlay(overlay::OverlayError::UnsafePath { path: dirs.work.clone() }))?;
        let stage = dirs.rootfs.with_file_name("idmap");
        let mut staged = Vec::new();
        let result = (|| {
            let mut mapped = Vec::with_capacity(lowers.len());
            for (i, lower) in lowers.iter().enumerate() {
                if lower.starts_with(&self.env_dir) {
                    mapped.push(self.env_lower(lower)?);
                    continue;
                }
                let at = stage.join(format!("lower{i}"));
                crate::data_dir::create_private_dir(&at).map_err(|source| UsernsError::Dir { path: at.clone(), source })?;
                let tree = self.idmapped_clone(lower, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)?;
                Self::attach(tree, &at)?;
                staged.push(at.clone());
                mapped.push(at);
            }
            let layer = stage.join("layer");
            crate::data_dir::create_private_dir(&layer).map_err(|source| UsernsError::Dir { path: layer.clone(), source })?;
            Self::attach(self.idmapped_clone(home, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)?, &layer)?;
            staged.push(layer.clone());
            let idmapped =
                OverlayDirs { upper: layer.join("upper"), work: layer.join("work"), rootfs: dirs.rootfs.clone() };
            let refs: Vec<&Path> = mapped.iter().map(PathBuf::as_path).collect();
            // overlayfs does its own work (the work dir, copy-up) with the mounter's credentials, which
            // must have an id inside the map: as host root it would fail with EOVERFLOW and go read-only.
            as_sandbox_owner(Some(self.map), || overlay::mount_plain(&refs, &idmapped, extra))?;
            Ok(())
        })();
        for at in staged.iter().rev() {
            let _ = nix::mount::umount2(at.as_path(), nix::mount::MntFlags::MNT_DETACH);
        }
        // The empty stage directories go with the sandbox's directory: removing a mount point right
        // after its lazy unmount waits for an RCU grace period, on the path of every start.
        result
    }

    /// Detaches the idmapped environment lowers (overlays mounted over them keep their own copies).
    pub fn close(&self) {
        let mut lowers = self.lowers.lock().unwrap_or_else(|p| p.into_inner());
        for (_, at) in lowers.drain() {
            let _ = nix::mount::umount2(at.as_path(), nix::mount::MntFlags::MNT_DETACH);
            let _ = fs::remove_dir(&at);
        }
    }
}

const OPEN_TREE_CLONE: u32 = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x0000_0004;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A user namespace with `map` for uids and gids, held by the returned fd: a child unshares it, we write
/// its maps (as host root: no newuidmap, no setgroups restriction), open it, and let the child go.
fn user_namespace(map: IdMap) -> io::Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the child only makes raw system calls (unshare, write, read, _exit) before exiting, which
    // is sound after fork even in a multi-threaded process.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop((ready_r, hold_w));
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"y" } else { b"n" });
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&hold_r, &mut b);
            // SAFETY: _exit(2) without running the parent's destructors in this copy of its memory.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop((ready_w, hold_r));
            let mut b = [0u8; 1];
            let n = nix::unistd::read(&ready_r, &mut b)?;
            let result = if n == 1 && b[0] == b'y' {
                fs::write(format!("/proc/{child}/uid_map"), map.line())
                    .and_then(|()| fs::write(format!("/proc/{child}/gid_map"), map.line()))
                    .and_then(|()| fs::File::open(format!("/proc/{child}/ns/user")).map(OwnedFd::from))
            } else {
                Err(io::Error::other("unshare(CLONE_NEWUSER) failed in the child"))
            };
            drop(hold_w);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_line_and_range_checks() {
        let m = IdMap { base: 100_000, size: 65_536 };
        assert_eq!(m.line(), "0 100000 65536\n");
        assert!(IdMap { base: 0, size: 10 }.check().is_err());
        assert!(IdMap { base: u32::MAX - 5, size: 10 }.check().is_err());
        let sub = "alice:100000:65536\n# comment\nbob:300000:10\n";
        assert!(Ranges::Sub.overlap(sub, 165_536, 200_000).is_none());
        assert!(Ranges::Sub.overlap(sub, 165_535, 200_000).unwrap().starts_with("alice"));
        assert!(Ranges::Sub.overlap(sub, 299_000, 300_001).unwrap().starts_with("bob"));
        let passwd =
            "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nsvc:x:150000:150000::/:/bin/false\n";
        assert!(Ranges::Id.overlap(passwd, 100_000, 165_536).unwrap().starts_with("svc"));
        assert!(Ranges::Id.overlap(passwd, 200_000, 265_536).is_none());
    }

    #[test]
    fn starts_before_the_environment_dir_exists_and_cleans_its_idmap_dir() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: user namespaces with a host range and idmapped mounts need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (envs, idmap) = (t.path().join("data/envs"), t.path().join("data/idmap"));
        let u = Userns::new(IdMap { base: 100_000, size: 65_536 }, &envs, &idmap, &[t.path()]).unwrap();
        assert!(idmap.is_dir() && !envs.exists());
        u.close();
    }

    #[test]
    fn sandbox_owner_ids_apply_to_this_thread_only_and_are_restored() {
        let fsuid = || {
            let status = fs::read_to_string("/proc/thread-self/status").unwrap();
            status.lines().find(|l| l.starts_with("Uid:")).unwrap().split_whitespace().nth(4).unwrap().to_string()
        };
        let before = fsuid();
        // A thread that exists already (a thread created meanwhile would inherit the ids).
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let (tell, told) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            asked.recv().unwrap();
            tell.send(fsuid()).unwrap();
        });
        let inside = as_sandbox_owner(Some(IdMap { base: 123_456, size: 1 }), || {
            ask.send(()).unwrap();
            (fsuid(), told.recv().unwrap())
        });
        other.join().unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(inside.0, "123456");
        }
        assert_eq!(inside.1, before, "another thread's fsuid changed");
        assert_eq!(fsuid(), before);
        assert_eq!(as_sandbox_owner(None, fsuid), before);
    }
}
