//! File access inside a sandbox's rootfs from the host, resolved by the kernel as if the rootfs were `/`
//! (openat2 RESOLVE_IN_ROOT): `..` and absolute symlinks cannot climb out of it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error("cannot open sandbox root {root}: {errno}")]
    OpenRoot { root: PathBuf, errno: Errno },
    #[error("cannot create directory {path} in the sandbox: {errno}")]
    Mkdir { path: String, errno: Errno },
    #[error("cannot open {path} in the sandbox: {errno}")]
    Open { path: String, errno: Errno },
    #[error("cannot write {path} in the sandbox: {source}")]
    Write { path: String, source: io::Error },
}

type Result<T> = std::result::Result<T, SafeFsError>;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2(dir: &OwnedFd, path: &Path, flags: OFlag, mode: u32) -> std::result::Result<OwnedFd, Errno> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC).bits() as u64,
        mode: u64::from(mode),
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2(2) reads the path and the open_how struct, both alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn open_root(root: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| SafeFsError::OpenRoot { root: root.into(), errno })
}

/// Creates (or truncates) `path` inside `root` with `content` and `mode`, creating missing parent
/// directories. `path` is interpreted inside the sandbox: absolute paths start at `root`.
pub fn write_file(root: &Path, path: &str, content: &[u8], mode: u32) -> Result<()> {
    write_at(root, path, 0, content, mode, true)
}

/// Writes `content` at `offset` of `path` inside `root` (creating it and its parents), truncating it
/// first when `truncate`; sets `mode` when it creates or truncates. For files sent in chunks.
pub fn write_at(root: &Path, path: &str, offset: u64, content: &[u8], mode: u32, truncate: bool) -> Result<()> {
    let root_fd = open_root(root)?;
    let rel: PathBuf = Path::new(path).components().filter(|c| !matches!(c, Component::RootDir)).collect();
    let mut prefix = PathBuf::new();
    let mut dir = open_root(root)?;
    if let Some(parent) = rel.parent() {
        for comp in parent.components() {
            prefix.push(comp);
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
            dir = match openat2(&root_fd, &prefix, flags, 0) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match nix::sys::stat::mkdirat(&dir, comp.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => return Err(SafeFsError::Mkdir { path: show(&prefix), errno }),
                    }
                    openat2(&root_fd, &prefix, flags, 0)
                        .map_err(|errno| SafeFsError::Mkdir { path: show(&prefix), errno })?
                }
                Err(errno) => return Err(SafeFsError::Mkdir { path: show(&prefix), errno }),
            };
        }
    }
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | if truncate { OFlag::O_TRUNC } else { OFlag::empty() };
    let fd = openat2(&root_fd, &rel, flags, mode).map_err(|errno| SafeFsError::Open { path: path.into(), errno })?;
    let file = std::fs::File::from(fd);
    use std::os::unix::fs::FileExt;
    file.write_all_at(content, offset).map_err(|source| SafeFsError::Write { path: path.into(), source })?;
    if truncate {
        // The umask shaped the mode at creation; set exactly what was asked.
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode))
            .map_err(|errno| SafeFsError::Write { path: path.into(), source: errno.into() })?;
    }
    Ok(())
}

fn show(p: &Path) -> String {
    format!("/{}", p.display())
}

fn relative(path: &str) -> PathBuf {
    Path::new(path).components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

/// What is at a path inside a root, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
    },
    Symlink {
        target: PathBuf,
    },
    /// Devices, fifos, sockets: compared by kind only.
    Other {
        mode: u32,
    },
}

pub fn entry(root: &Path, path: &str) -> Result<Entry> {
    let root_fd = open_root(root)?;
    let rel = relative(path);
    if rel.as_os_str().is_empty() {
        return Ok(Entry::Dir { mode: 0o755 });
    }
    let fd = match openat2(&root_fd, &rel, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(Entry::Missing),
        Err(errno) => return Err(SafeFsError::Open { path: path.into(), errno }),
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|errno| SafeFsError::Open { path: path.into(), errno })?;
    let mode = st.st_mode & 0o7777;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Entry::Dir { mode },
        libc::S_IFREG => Entry::File { mode, size: st.st_size as u64 },
        libc::S_IFLNK => {
            let target =
                nix::fcntl::readlinkat(&fd, "").map_err(|errno| SafeFsError::Open { path: path.into(), errno })?;
            Entry::Symlink { target: PathBuf::from(target) }
        }
        _ => Entry::Other { mode: st.st_mode },
    })
}

pub fn read_file(root: &Path, path: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let root_fd = open_root(root)?;
    let fd = openat2(&root_fd, &relative(path), OFlag::O_RDONLY | OFlag::O_NOFOLLOW, 0)
        .map_err(|errno| SafeFsError::Open { path: path.into(), errno })?;
    let mut out = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut out).map_err(|source| SafeFsError::Write { path: path.into(), source })?;
    Ok(out)
}

/// Reads up to `len` bytes at `offset` of a file inside a root; returns them and the file's size.
pub fn read_at(root: &Path, path: &str, offset: u64, len: usize) -> Result<(Vec<u8>, u64)> {
    use std::os::unix::fs::FileExt;
    let root_fd = open_root(root)?;
    let fd = openat2(&root_fd, &relative(path), OFlag::O_RDONLY, 0)
        .map_err(|errno| SafeFsError::Open { path: path.into(), errno })?;
    let file = std::fs::File::from(fd);
    let size = file.metadata().map_err(|source| SafeFsError::Write { path: path.into(), source })?.len();
    let mut buf = vec![0u8; len.min(size.saturating_sub(offset) as usize)];
    let mut done = 0;
    while done < buf.len() {
        let n = file
            .read_at(&mut buf[done..], offset + done as u64)
            .map_err(|source| SafeFsError::Write { path: path.into(), source })?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok((buf, size))
}

/// One entry of a directory listing.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirEntry {
    pub name: String,
    /// "file", "dir", "symlink" or "other".
    pub kind: &'static str,
    pub size: u64,
    pub mode: u32,
    pub mtime_ms: u64,
}

/// Lists a directory inside a root (without following symlinks of its entries).
pub fn list_dir(root: &Path, path: &str) -> Result<Vec<DirEntry>> {
    let root_fd = open_root(root)?;
    let rel = relative(path);
    let dir = if rel.as_os_str().is_empty() {
        open_root(root)?
    } else {
        openat2(&root_fd, &rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
            .map_err(|errno| SafeFsError::Open { path: path.into(), errno })?
    };
    let mut out = Vec::new();
    let rd = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .map_err(|source| SafeFsError::Write { path: path.into(), source })?;
    for e in rd.flatten() {
        let name = e.file_name();
        let Ok(st) = nix::sys::stat::fstatat(&dir, name.as_os_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => "dir",
            libc::S_IFREG => "file",
            libc::S_IFLNK => "symlink",
            _ => "other",
        };
        out.push(DirEntry {
            name: name.to_string_lossy().into_owned(),
            kind,
            size: st.st_size as u64,
            mode: st.st_mode & 0o7777,
            mtime_ms: (st.st_mtime as u64) * 1000 + (st.st_mtime_nsec as u64) / 1_000_000,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes a file, symlink or whole directory inside a root; missing is fine.
pub fn remove(root: &Path, path: &str) -> Result<()> {
    let rel = relative(path);
    let Some(name) = rel.file_name().map(|n| n.to_os_string()) else { return Ok(()) };
    let root_fd = open_root(root)?;
    let parent_rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    let parent = if parent_rel.as_os_str().is_empty() {
        open_root(root)?
    } else {
        match openat2(&root_fd, &parent_rel, OFlag::O_PATH | OFlag::O_DIRECTORY, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
            Err(errno) => return Err(SafeFsError::Open { path: path.into(), errno }),
        }
    };
    remove_at(&parent, &name, path)
}

fn remove_at(parent: &OwnedFd, name: &std::ffi::OsStr, shown: &str) -> Result<()> {
    use nix::unistd::UnlinkatFlags;
    match nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            let dir = nix::fcntl::openat(
                parent,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|errno| SafeFsError::Open { path: shown.into(), errno })?;
            let names: Vec<std::ffi::OsString> = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            for n in names {
                remove_at(&dir, &n, shown)?;
            }
            nix::unistd::unlinkat(parent, name, UnlinkatFlags::RemoveDir)
                .map_err(|errno| SafeFsError::Open { path: shown.into(), errno })
        }
        Err(errno) => Err(SafeFsError::Open { path: shown.into(), errno }),
    }
}

/// Creates a directory (and its parents) inside a root.
pub fn make_dir(root: &Path, path: &str, mode: u32) -> Result<()> {
    // write_file's parent creation does the walk; a marker file is not wanted, so walk here.
    let root_fd = open_root(root)?;
    let rel = relative(path);
    let mut prefix = PathBuf::new();
    let mut dir = open_root(root)?;
    for comp in rel.components() {
        prefix.push(comp);
        dir = match openat2(&root_fd, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                nix::sys::stat::mkdirat(&dir, comp.as_os_str(), Mode::from_bits_truncate(mode))
                    .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
                    .map_err(|errno| SafeFsError::Mkdir { path: show(&prefix), errno })?;
                openat2(&root_fd, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
                    .map_err(|errno| SafeFsError::Mkdir { path: show(&prefix), errno })?
            }
            Err(errno) => return Err(SafeFsError::Mkdir { path: show(&prefix), errno }),
        };
    }
    Ok(())
}

/// Creates (replacing what is there) a symlink inside a root.
pub fn make_symlink(root: &Path, path: &str, target: &Path) -> Result<()> {
    remove(root, path)?;
    let rel = relative(path);
    let parent = rel.parent().map(|p| format!("/{}", p.display())).unwrap_or_else(|| "/".into());
    make_dir(root, &parent, 0o755)?;
    let root_fd = open_root(root)?;
    let parent_fd = if parent == "/" {
        open_root(root)?
    } else {
        openat2(&root_fd, &relative(&parent), OFlag::O_PATH | OFlag::O_DIRECTORY, 0)
            .map_err(|errno| SafeFsError::Open { path: path.into(), errno })?
    };
    let name = rel.file_name().unwrap_or_default();
    nix::unistd::symlinkat(target, &parent_fd, name).map_err(|errno| SafeFsError::Open { path: path.into(), errno })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn writes_create_parents_and_set_mode() {
        let root = tempfile::tempdir().unwrap();
        write_file(root.path(), "/a/b/c.txt", b"hi", 0o600).unwrap();
        let p = root.path().join("a/b/c.txt");
        assert_eq!(std::fs::read(&p).unwrap(), b"hi");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o600);
    }

    #[test]
    fn symlinks_and_dotdot_cannot_escape_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("link")).unwrap();
        symlink("/", root.path().join("abs")).unwrap();
        // The host path the link names does not exist inside the root, so the write fails there.
        assert!(write_file(root.path(), "/link/x", b"1", 0o644).is_err());
        write_file(root.path(), "/abs/y", b"2", 0o644).unwrap();
        write_file(root.path(), "../../z", b"3", 0o644).unwrap();
        // The absolute symlink target resolves inside the root; nothing lands outside.
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        assert_eq!(std::fs::read(root.path().join("y")).unwrap(), b"2");
        assert_eq!(std::fs::read(root.path().join("z")).unwrap(), b"3");
    }
}
