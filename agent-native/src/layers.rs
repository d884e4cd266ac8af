//! Writable filesystem layers of persistent sandboxes, and how a snapshot freezes one. Two stores:
//!
//! - `Btrfs` (preferred): each sandbox layer is a subvolume holding `upper/` and `work/` (overlayfs needs
//!   both on one subvolume); a snapshot is a read-only subvolume snapshot, a branch a writable snapshot of
//!   that: O(1) whatever the size, and a branch's layer holds its whole state, so chains never grow.
//! - `Copy` (fallback where no btrfs can be mounted): a snapshot copies the upper (`cp -a`) and stacks it
//!   over the sandbox's own lowers; a branch gets an empty upper over the snapshot's stack. Stacks deeper
//!   than `MAX_STACK` are flattened into one layer (whiteouts and opaque directories kept).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::btrfs::{BtrfsError, Pool};
use crate::envs::remove_tree;

/// Stack depth past which the copy store flattens a snapshot's layers.
pub const MAX_STACK: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Btrfs(#[from] BtrfsError),
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("copying {from} to {to} failed: {detail}")]
    Copy { from: PathBuf, to: PathBuf, detail: String },
}

type Result<T> = std::result::Result<T, LayerError>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayerError {
    let path = path.to_path_buf();
    move |source| LayerError::Io { action, path, source }
}

/// A sandbox's writable overlay layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub upper: PathBuf,
    pub work: PathBuf,
}

#[derive(Debug)]
pub enum Store {
    Btrfs(Pool),
    Copy { root: PathBuf },
}

impl Store {
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Btrfs(_) => "btrfs",
            Store::Copy { .. } => "copy",
        }
    }

    fn copy_sandbox_dir(root: &Path, id: &str) -> PathBuf {
        root.join("sandboxes").join(id)
    }

    fn copy_snapshot_dir(root: &Path, id: &str) -> PathBuf {
        root.join("snapshots").join(id)
    }

    /// What the store can do about disk limits.
    pub fn disk_facts(&self) -> crate::plan::DiskFacts {
        match self {
            Store::Btrfs(pool) => crate::plan::DiskFacts {
                enforced: pool.quota != crate::disk_quota::QuotaMode::Off,
                pool_bytes: pool.size_bytes,
            },
            Store::Copy { .. } => crate::plan::DiskFacts { enforced: false, pool_bytes: 0 },
        }
    }

    pub fn quota_mode(&self) -> crate::disk_quota::QuotaMode {
        match self {
            Store::Btrfs(pool) => pool.quota,
            Store::Copy { .. } => crate::disk_quota::QuotaMode::Off,
        }
    }

    /// A new subvolume `dir/id` bounded at `disk` bytes (when given and quotas are on).
    fn limited_subvolume(pool: &Pool, dir: &str, id: &str, disk: Option<u64>) -> Result<PathBuf> {
        let home = pool.create_subvolume(dir, id)?;
        if let Err(e) = Self::limit(pool, &home, disk) {
            let _ = pool.delete_subvolume(dir, id);
            return Err(e);
        }
        Ok(home)
    }

    fn limit(pool: &Pool, subvolume: &Path, disk: Option<u64>) -> Result<()> {
        match disk {
            Some(bytes) if pool.quota != crate::disk_quota::QuotaMode::Off => {
                Ok(crate::disk_quota::set_limit(subvolume, bytes)?)
            }
            _ => Ok(()),
        }
    }

    /// Sets (or changes) the disk limit of sandbox `id`'s layer.
    pub fn set_disk_limit(&self, id: &str, disk: Option<u64>) -> Result<()> {
        match self {
            Store::Btrfs(pool) => Self::limit(pool, &pool.mount.join("sandboxes").join(id), disk),
            Store::Copy { .. } => Ok(()),
        }
    }

    /// The writable layer of a sandbox that lives for one run, bounded at `disk` bytes: a subvolume of
    /// the pool (None for the copy store: the caller keeps it in the sandbox's directory, unbounded).
    pub fn ephemeral_layer(&self, id: &str, disk: Option<u64>) -> Result<Option<Layer>> {
        let Store::Btrfs(pool) = self else { return Ok(None) };
        let home = Self::limited_subvolume(pool, "ephemeral", id, disk)?;
        let layer = Layer { upper: home.join("upper"), work: home.join("work") };
        for d in [&layer.upper, &layer.work] {
            if let Err(e) = fs::create_dir_all(d) {
                let _ = pool.delete_subvolume("ephemeral", id);
                return Err(LayerError::Io { action: "create", path: d.clone(), source: e });
            }
        }
        Ok(Some(layer))
    }

    pub fn remove_ephemeral(&self, id: &str) -> Result<()> {
        match self {
            Store::Btrfs(pool) => Ok(pool.delete_subvolume("ephemeral", id)?),
            Store::Copy { .. } => Ok(()),
        }
    }

    /// Layers of one-run sandboxes present (after a crash: all of them are leftovers).
    pub fn ephemeral_present(&self) -> Vec<String> {
        match self {
            Store::Btrfs(pool) => pool.list("ephemeral"),
            Store::Copy { .. } => Vec::new(),
        }
    }

    /// A fresh, empty writable layer for sandbox `id`, bounded at `disk` bytes.
    pub fn new_layer(&self, id: &str, disk: Option<u64>) -> Result<Layer> {
        let home = match self {
            Store::Btrfs(pool) => Self::limited_subvolume(pool, "sandboxes", id, disk)?,
            Store::Copy { root } => {
                let d = Self::copy_sandbox_dir(root, id);
                crate::data_dir::create_private_dir(&d).map_err(io_err("create", &d))?;
                d
            }
        };
        let layer = Layer { upper: home.join("upper"), work: home.join("work") };
        for d in [&layer.upper, &layer.work] {
            fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        Ok(layer)
    }

    /// The layer of sandbox `id` as `new_layer` made it (for a sandbox that already has one).
    pub fn layer_of(&self, id: &str) -> Layer {
        let home = match self {
            Store::Btrfs(pool) => pool.mount.join("sandboxes").join(id),
            Store::Copy { root } => Self::copy_sandbox_dir(root, id),
        };
        Layer { upper: home.join("upper"), work: home.join("work") }
    }

    /// Freezes sandbox `id`'s layer (the sandbox must be frozen) as snapshot `snap`. Returns the
    /// snapshot's read-only layers, top first, given the sandbox's own lowers.
    pub fn snapshot(&self, id: &str, lowers: &[PathBuf], snap: &str) -> Result<Vec<PathBuf>> {
        match self {
            Store::Btrfs(pool) => {
                let src = pool.mount.join("sandboxes").join(id);
                let dst = pool.snapshot(&src, "snapshots", snap, true)?;
                Ok(vec![dst.join("upper")])
            }
            Store::Copy { root } => {
                let dir = Self::copy_snapshot_dir(root, snap);
                crate::data_dir::create_private_dir(&dir).map_err(io_err("create", &dir))?;
                let fs_dir = dir.join("fs");
                cp_a(&self.layer_of(id).upper, &fs_dir)?;
                let mut layers = vec![fs_dir];
                layers.extend(lowers.iter().cloned());
                if layers.len() > MAX_STACK {
                    let flat = dir.join("flat");
                    flatten(&layers, &flat)?;
                    remove_tree(&dir.join("fs")).map_err(io_err("remove", &dir))?;
                    layers = vec![flat];
                }
                Ok(layers)
            }
        }
    }

    /// A writable layer for new sandbox `id` whose files start as snapshot `snap`'s, bounded at `disk`
    /// bytes. Returns it and the lowers its overlay needs (top first, the environment not included).
    pub fn layer_from_snapshot(
        &self,
        snap: &str,
        snap_layers: &[PathBuf],
        id: &str,
        disk: Option<u64>,
    ) -> Result<(Layer, Vec<PathBuf>)> {
        match self {
            Store::Btrfs(pool) => {
                let src = pool.mount.join("snapshots").join(snap);
                let home = pool.snapshot(&src, "sandboxes", id, false)?;
                if let Err(e) = Self::limit(pool, &home, disk) {
                    let _ = pool.delete_subvolume("sandboxes", id);
                    return Err(e);
                }
                let layer = Layer { upper: home.join("upper"), work: home.join("work") };
                // overlayfs refuses a work dir left over from another mount: start it empty.
                remove_tree(&layer.work).map_err(io_err("clear", &layer.work))?;
                fs::create_dir_all(&layer.work).map_err(io_err("create", &layer.work))?;
                Ok((layer, Vec::new()))
            }
            Store::Copy { .. } => Ok((self.new_layer(id, disk)?, snap_layers.to_vec())),
        }
    }

    pub fn remove_layer(&self, id: &str) -> Result<()> {
        match self {
            Store::Btrfs(pool) => Ok(pool.delete_subvolume("sandboxes", id)?),
            Store::Copy { root } => {
                let d = Self::copy_sandbox_dir(root, id);
                remove_tree(&d).map_err(io_err("remove", &d))
            }
        }
    }

    pub fn remove_snapshot(&self, snap: &str) -> Result<()> {
        match self {
            Store::Btrfs(pool) => Ok(pool.delete_subvolume("snapshots", snap)?),
            Store::Copy { root } => {
                let d = Self::copy_snapshot_dir(root, snap);
                remove_tree(&d).map_err(io_err("remove", &d))
            }
        }
    }

    /// Ids of the sandbox layers and snapshot layers present, for reconciliation.
    pub fn present(&self) -> (Vec<String>, Vec<String>) {
        let list = |dir: PathBuf| -> Vec<String> {
            fs::read_dir(dir)
                .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default()
        };
        match self {
            Store::Btrfs(pool) => (pool.list("sandboxes"), pool.list("snapshots")),
            Store::Copy { root } => (list(root.join("sandboxes")), list(root.join("snapshots"))),
        }
    }

    pub fn close(&self) {
        if let Store::Btrfs(pool) = self {
            pool.unmount();
        }
    }
}

fn cp_a(from: &Path, to: &Path) -> Result<()> {
    let out = Command::new("cp").arg("-a").arg(from).arg(to).output().map_err(|e| LayerError::Copy {
        from: from.into(),
        to: to.into(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(LayerError::Copy {
            from: from.into(),
            to: to.into(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Merges overlay layers (top first) into one directory with the same meaning as the stack: applied
/// bottom to top, a whiteout deletes what is below and stays (it may hide a file of the environment),
/// an opaque directory replaces what is below.
pub fn flatten(layers_top_first: &[PathBuf], out: &Path) -> Result<()> {
    fs::create_dir_all(out).map_err(io_err("create", out))?;
    for layer in layers_top_first.iter().rev() {
        apply_layer(layer, out)?;
    }
    Ok(())
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    xattr_get(path, OPAQUE_XATTR).as_deref() == Some(b"y".as_slice())
}

fn apply_layer(src: &Path, dst: &Path) -> Result<()> {
    for entry in fs::read_dir(src).map_err(io_err("read", src))? {
        let entry = entry.map_err(io_err("read", src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(io_err("stat", &from))?;
        let existing = fs::symlink_metadata(&to).ok();
        if meta.is_dir() {
            let opaque = is_opaque(&from);
            if opaque || existing.as_ref().is_some_and(|m| !m.is_dir()) {
                remove_tree(&to).map_err(io_err("remove", &to))?;
            }
            if !to.exists() {
                fs::create_dir(&to).map_err(io_err("create", &to))?;
            }
            fs::set_permissions(&to, meta.permissions()).map_err(io_err("chmod", &to))?;
            let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
            if opaque {
                xattr_set(&to, OPAQUE_XATTR, b"y").map_err(io_err("mark opaque", &to))?;
            }
            apply_layer(&from, &to)?;
            continue;
        }
        if existing.is_some() {
            remove_tree(&to).map_err(io_err("replace", &to))?;
        }
        if is_whiteout(&meta) {
            nix::sys::stat::mknod(&to, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
                .map_err(|e| LayerError::Io { action: "create whiteout", path: to.clone(), source: e.into() })?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&from).map_err(io_err("read link", &from))?;
            std::os::unix::fs::symlink(target, &to).map_err(io_err("link", &to))?;
        } else if meta.is_file() {
            fs::copy(&from, &to).map_err(io_err("copy", &from))?;
        } else {
            cp_a(&from, &to)?; // devices, fifos, sockets: rare enough to shell out
        }
        let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(())
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 16];
    // SAFETY: lgetxattr(2) writes at most buf.len() bytes into our buffer.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let n = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: lsetxattr(2) reads value.len() bytes from our buffer.
    let rc = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn flatten_keeps_the_stacks_meaning() {
        if !root() {
            eprintln!("skipped: whiteouts and trusted xattrs need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (bottom, top, out) = (t.path().join("bottom"), t.path().join("top"), t.path().join("out"));
        fs::create_dir_all(bottom.join("d/sub")).unwrap();
        fs::write(bottom.join("keep"), "bottom").unwrap();
        fs::write(bottom.join("changed"), "old").unwrap();
        fs::write(bottom.join("d/sub/x"), "x").unwrap();
        fs::write(bottom.join("gone"), "g").unwrap();
        fs::create_dir_all(top.join("d")).unwrap();
        fs::write(top.join("changed"), "new").unwrap();
        xattr_set(&top.join("d"), OPAQUE_XATTR, b"y").unwrap();
        fs::write(top.join("d/y"), "y").unwrap();
        nix::sys::stat::mknod(&top.join("gone"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .unwrap();
        nix::sys::stat::mknod(&top.join("env-file"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .unwrap();
        flatten(&[top, bottom], &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("keep")).unwrap(), "bottom");
        assert_eq!(fs::read_to_string(out.join("changed")).unwrap(), "new");
        assert!(!out.join("d/sub").exists(), "the opaque directory hides what was below");
        assert!(is_opaque(&out.join("d")));
        assert_eq!(fs::read_to_string(out.join("d/y")).unwrap(), "y");
        assert!(is_whiteout(&fs::symlink_metadata(out.join("gone")).unwrap()));
        assert!(
            is_whiteout(&fs::symlink_metadata(out.join("env-file")).unwrap()),
            "whiteouts of environment files stay"
        );
    }
}
