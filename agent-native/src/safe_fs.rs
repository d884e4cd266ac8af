//! File access inside a sandbox's rootfs from the host, resolved by the kernel as if the rootfs were `/`
//! (openat2 RESOLVE_IN_ROOT): `..` and absolute symlinks cannot climb out of it.
//!
//! What the sandbox left at a path is never trusted to be what it looks like. A file is opened in two
//! steps: first `O_PATH | O_NOFOLLOW` (which opens nothing: a FIFO cannot block, a device is not
//! opened, a symlink is not followed), then, only if `fstat` says it is a regular file, that same inode
//! is reopened through `/proc/self/fd` with `O_NONBLOCK` and checked again (same device and inode, still
//! a regular file). Anything else (a FIFO, socket, device, symlink, directory) is refused with an error
//! that names what it is. New files are created with `O_CREAT | O_EXCL`, so a name the sandbox plants
//! between two steps is never followed. Directory trees are walked through directory fds opened with
//! `O_NOFOLLOW | O_DIRECTORY`, never through host paths, and no deeper than `MAX_DEPTH`.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

pub use crate::sandbox_path::{PathError, SandboxPath};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Deepest directory tree the runtime walks (remove, layer walks). A sandbox can nest directories far
/// deeper than any path could name; past this the walk stops with an error instead of the runtime's
/// stack or fd table paying for it.
pub const MAX_DEPTH: usize = 1024;

/// Set-user-ID and set-group-ID bits: never created by the runtime on a sandbox's behalf.
pub const SET_ID_BITS: u32 = 0o6000;

/// What a path holds, for errors that say why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink { target: PathBuf },
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Regular => write!(f, "a regular file"),
            Kind::Directory => write!(f, "a directory"),
            Kind::Symlink { target } => write!(f, "a symbolic link (to {})", target.display()),
            Kind::Fifo => write!(f, "a FIFO"),
            Kind::Socket => write!(f, "a socket"),
            Kind::CharDevice => write!(f, "a character device"),
            Kind::BlockDevice => write!(f, "a block device"),
            Kind::Unknown => write!(f, "a special file"),
        }
    }
}

fn kind_of(st: &FileStat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::Regular,
        libc::S_IFDIR => Kind::Directory,
        libc::S_IFLNK => Kind::Symlink { target: PathBuf::new() },
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFCHR => Kind::CharDevice,
        libc::S_IFBLK => Kind::BlockDevice,
        _ => Kind::Unknown,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error(transparent)]
    BadPath(#[from] PathError),
    #[error("cannot open sandbox root {root}: {errno}")]
    OpenRoot { root: PathBuf, errno: Errno },
    #[error("cannot create directory {path} in the sandbox: {errno}")]
    Mkdir { path: String, errno: Errno },
    #[error("cannot open {path} in the sandbox: {errno}")]
    Open { path: String, errno: Errno },
    #[error("{path} is {kind}, not a regular file: only regular files can be read or written")]
    NotRegular { path: String, kind: Kind },
    #[error("{path} is {kind}, not a directory")]
    NotDirectory { path: String, kind: Kind },
    #[error("{path} in the sandbox is {kind}, not its pty multiplexer (the ptmx of its devpts): the sandbox replaced /dev/pts or changed its root, so no terminal can be opened in it")]
    NotPtmx { path: String, kind: Kind },
    #[error("{path} was replaced while it was being opened; try again")]
    Replaced { path: String },
    #[error("{path} is nested more than {MAX_DEPTH} directories deep; the runtime does not walk trees that deep")]
    TooDeep { path: String },
    #[error("cannot write {path}: the sandbox's disk limit is reached ({errno}); remove files in it, or give it a larger limits.diskBytes")]
    DiskFull { path: String, errno: Errno },
    #[error("cannot write {path} in the sandbox: {source}")]
    Write { path: String, source: io::Error },
    #[error("cannot read {path} in the sandbox: {source}")]
    Read { path: String, source: io::Error },
}

impl SafeFsError {
    /// The caller's input is what is wrong (a bad path, a file of the wrong kind): InvalidParams.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, SafeFsError::BadPath(_) | SafeFsError::NotRegular { .. } | SafeFsError::NotDirectory { .. })
    }
}

type Result<T> = std::result::Result<T, SafeFsError>;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2(dir: &OwnedFd, path: &Path, flags: OFlag, mode: u32) -> std::result::Result<OwnedFd, Errno> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC).bits() as u64,
        mode: u64::from(mode),
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // An empty path names the root itself.
    let c = if c.as_bytes().is_empty() { std::ffi::CString::new(".").map_err(|_| Errno::EINVAL)? } else { c };
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

fn parse(path: &str) -> Result<SandboxPath> {
    Ok(SandboxPath::parse("path", path)?)
}

/// The kind at an `O_PATH | O_NOFOLLOW` fd, with a symlink's target filled in.
fn describe(fd: &OwnedFd, st: &FileStat) -> Kind {
    match kind_of(st) {
        Kind::Symlink { .. } => {
            Kind::Symlink { target: nix::fcntl::readlinkat(fd, "").map(PathBuf::from).unwrap_or_default() }
        }
        k => k,
    }
}

/// Opens the inode an `O_PATH` fd holds, for real, through `/proc/self/fd` (the only way to turn an
/// `O_PATH` fd into an open file without resolving the path again). Never blocks: `O_NONBLOCK`.
fn reopen(fd: &OwnedFd, flags: OFlag) -> std::result::Result<OwnedFd, Errno> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::fcntl::open(link.as_str(), flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK, Mode::empty())
}

fn same_inode(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// Turns `O_NONBLOCK` off again (regular files ignore it, but whoever reads the file next expects
/// ordinary blocking semantics).
fn clear_nonblock(fd: &OwnedFd) -> std::result::Result<(), Errno> {
    let flags = OFlag::from_bits_truncate(nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)?);
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags & !OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Opens the existing regular file at `p` for `access` (O_RDONLY or O_WRONLY), refusing anything
/// else, without ever following a final symlink or opening a special file. Returns it and its stat.
fn open_existing_regular(root_fd: &OwnedFd, p: &SandboxPath, access: OFlag) -> Result<(File, FileStat)> {
    let shown = p.shown();
    let open_err = |errno| SafeFsError::Open { path: shown.clone(), errno };
    let handle = openat2(root_fd, p.rel(), OFlag::O_PATH | OFlag::O_NOFOLLOW, 0).map_err(open_err)?;
    let st = nix::sys::stat::fstat(&handle).map_err(open_err)?;
    let kind = describe(&handle, &st);
    if kind != Kind::Regular {
        return Err(SafeFsError::NotRegular { path: shown, kind });
    }
    let fd = reopen(&handle, access).map_err(open_err)?;
    let st2 = nix::sys::stat::fstat(&fd).map_err(open_err)?;
    if !same_inode(&st, &st2) || kind_of(&st2) != Kind::Regular {
        return Err(SafeFsError::Replaced { path: shown });
    }
    clear_nonblock(&fd).map_err(open_err)?;
    Ok((File::from(fd), st2))
}

/// Opens a regular file for reading. The file's size is in the returned stat.
pub fn open_read(root: &Path, path: &SandboxPath) -> Result<(File, u64)> {
    let root_fd = open_root(root)?;
    let (file, st) = open_existing_regular(&root_fd, path, OFlag::O_RDONLY)?;
    Ok((file, st.st_size as u64))
}

/// Creates missing directories of `dir` (resolved inside the root; a directory symlink met on the way
/// is followed inside the root). Returns an `O_PATH` fd of `dir`.
fn make_dirs(root_fd: &OwnedFd, dir: &SandboxPath, mode: u32) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut prefix = SandboxPath::root();
    let mut fd =
        openat2(root_fd, prefix.rel(), flags, 0).map_err(|errno| SafeFsError::Open { path: "/".into(), errno })?;
    for comp in dir.rel().components() {
        prefix = prefix.join(comp.as_os_str());
        let mkdir_err = |errno: Errno, path: String| match errno {
            Errno::EDQUOT | Errno::ENOSPC => SafeFsError::DiskFull { path, errno },
            Errno::ENOTDIR | Errno::ELOOP => SafeFsError::NotDirectory { path, kind: Kind::Unknown },
            _ => SafeFsError::Mkdir { path, errno },
        };
        fd = match openat2(root_fd, prefix.rel(), flags, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match nix::sys::stat::mkdirat(&fd, comp.as_os_str(), Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(mkdir_err(errno, prefix.shown())),
                }
                openat2(root_fd, prefix.rel(), flags, 0).map_err(|errno| mkdir_err(errno, prefix.shown()))?
            }
            Err(Errno::ENOTDIR) => {
                let kind = kind_at(root_fd, &prefix).unwrap_or(Kind::Unknown);
                return Err(SafeFsError::NotDirectory { path: prefix.shown(), kind });
            }
            Err(errno) => return Err(mkdir_err(errno, prefix.shown())),
        };
    }
    Ok(fd)
}

fn kind_at(root_fd: &OwnedFd, p: &SandboxPath) -> Option<Kind> {
    let fd = openat2(root_fd, p.rel(), OFlag::O_PATH | OFlag::O_NOFOLLOW, 0).ok()?;
    let st = nix::sys::stat::fstat(&fd).ok()?;
    Some(describe(&fd, &st))
}

/// How many times a create races a sandbox that keeps planting names before the write gives up.
const CREATE_ATTEMPTS: usize = 4;

/// Opens `p` for writing: the existing regular file, or a new one made with `O_CREAT | O_EXCL` (which
/// never follows a symlink and never opens what is already there). True when it was created.
fn open_for_write(root_fd: &OwnedFd, p: &SandboxPath, mode: u32) -> Result<(File, bool)> {
    let shown = p.shown();
    for _ in 0..CREATE_ATTEMPTS {
        match open_existing_regular(root_fd, p, OFlag::O_WRONLY) {
            Ok((file, _)) => return Ok((file, false)),
            Err(SafeFsError::Open { errno: Errno::ENOENT, .. }) => {}
            Err(e) => return Err(e),
        }
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        match openat2(root_fd, p.rel(), flags, mode & 0o777) {
            Ok(fd) => {
                let st =
                    nix::sys::stat::fstat(&fd).map_err(|errno| SafeFsError::Open { path: shown.clone(), errno })?;
                if kind_of(&st) != Kind::Regular {
                    return Err(SafeFsError::Replaced { path: shown });
                }
                clear_nonblock(&fd).map_err(|errno| SafeFsError::Open { path: shown.clone(), errno })?;
                return Ok((File::from(fd), true));
            }
            Err(Errno::EEXIST) => continue, // something appeared since: look at it again
            Err(errno @ (Errno::EDQUOT | Errno::ENOSPC)) => return Err(SafeFsError::DiskFull { path: shown, errno }),
            Err(errno) => return Err(SafeFsError::Open { path: shown, errno }),
        }
    }
    Err(SafeFsError::Replaced { path: shown })
}

fn write_err(path: &str, e: io::Error) -> SafeFsError {
    match e.raw_os_error().map(Errno::from_raw) {
        Some(errno @ (Errno::EDQUOT | Errno::ENOSPC)) => SafeFsError::DiskFull { path: path.into(), errno },
        _ => SafeFsError::Write { path: path.into(), source: e },
    }
}

/// Creates (or truncates) `path` inside `root` with `content` and `mode`, creating missing parent
/// directories. `path` is interpreted inside the sandbox: absolute paths start at `root`.
pub fn write_file(root: &Path, path: &str, content: &[u8], mode: u32) -> Result<()> {
    write_at(root, path, 0, content, mode, true)
}

/// Writes `content` at `offset` of `path` inside `root` (creating it and its parents), truncating it
/// first when `truncate`; sets `mode` when it creates or truncates. For files sent in chunks. Only
/// regular files are written; set-user-ID and set-group-ID bits are never set (callers refuse them
/// first; this is the last line).
pub fn write_at(root: &Path, path: &str, offset: u64, content: &[u8], mode: u32, truncate: bool) -> Result<()> {
    let p = parse(path)?;
    let mode = mode & 0o7777 & !SET_ID_BITS;
    let root_fd = open_root(root)?;
    let Some(parent) = p.parent() else {
        return Err(SafeFsError::NotRegular { path: p.shown(), kind: Kind::Directory });
    };
    make_dirs(&root_fd, &parent, 0o755)?;
    let (file, created) = open_for_write(&root_fd, &p, mode)?;
    let shown = p.shown();
    if truncate && !created {
        file.set_len(0).map_err(|e| write_err(&shown, e))?;
    }
    file.write_all_at(content, offset).map_err(|e| write_err(&shown, e))?;
    if truncate || created {
        // The umask shaped the mode at creation; set exactly what was asked.
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode))
            .map_err(|errno| write_err(&shown, errno.into()))?;
    }
    Ok(())
}

/// Copies everything `from` yields into `path` (created or truncated, with `mode`), in bounded chunks:
/// for files too large to hold in memory.
pub fn write_from(root: &Path, path: &str, from: &mut dyn io::Read, mode: u32) -> Result<u64> {
    let p = parse(path)?;
    let mode = mode & 0o7777 & !SET_ID_BITS;
    let root_fd = open_root(root)?;
    let Some(parent) = p.parent() else {
        return Err(SafeFsError::NotRegular { path: p.shown(), kind: Kind::Directory });
    };
    make_dirs(&root_fd, &parent, 0o755)?;
    let (mut file, created) = open_for_write(&root_fd, &p, mode)?;
    let shown = p.shown();
    if !created {
        file.set_len(0).map_err(|e| write_err(&shown, e))?;
    }
    let n = io::copy(from, &mut file).map_err(|e| write_err(&shown, e))?;
    nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode)).map_err(|errno| write_err(&shown, errno.into()))?;
    Ok(n)
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
    let p = parse(path)?;
    let root_fd = open_root(root)?;
    if p.is_root() {
        return Ok(Entry::Dir { mode: 0o755 });
    }
    let fd = match openat2(&root_fd, p.rel(), OFlag::O_PATH | OFlag::O_NOFOLLOW, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(Entry::Missing),
        Err(errno) => return Err(SafeFsError::Open { path: p.shown(), errno }),
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|errno| SafeFsError::Open { path: p.shown(), errno })?;
    let mode = st.st_mode & 0o7777;
    Ok(match describe(&fd, &st) {
        Kind::Directory => Entry::Dir { mode },
        Kind::Regular => Entry::File { mode, size: st.st_size as u64 },
        Kind::Symlink { target } => Entry::Symlink { target },
        _ => Entry::Other { mode: st.st_mode },
    })
}

/// Reads a whole regular file (for small ones: callers check the size first).
pub fn read_file(root: &Path, path: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let p = parse(path)?;
    let (mut file, size) = open_read(root, &p)?;
    let mut out = Vec::with_capacity(size as usize);
    file.read_to_end(&mut out).map_err(|source| SafeFsError::Read { path: p.shown(), source })?;
    Ok(out)
}

/// Reads up to `len` bytes at `offset` of a regular file inside a root; returns them and the file's size.
pub fn read_at(root: &Path, path: &str, offset: u64, len: usize) -> Result<(Vec<u8>, u64)> {
    let p = parse(path)?;
    let (file, size) = open_read(root, &p)?;
    let mut buf = vec![0u8; len.min(size.saturating_sub(offset) as usize)];
    let mut done = 0;
    while done < buf.len() {
        let n = file
            .read_at(&mut buf[done..], offset + done as u64)
            .map_err(|source| SafeFsError::Read { path: p.shown(), source })?;
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

/// Names in an open directory (without `.` and `..`).
fn names_in(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    // A fresh open of the same directory: nix's Dir takes ownership of the fd it reads.
    let fd = nix::fcntl::openat(dir, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

/// Lists a directory inside a root (without following symlinks of its entries). A symlink given as the
/// directory itself is followed inside the root (`/bin` is one on merged-/usr systems); `O_DIRECTORY`
/// makes anything that is not a directory fail before it is opened.
pub fn list_dir(root: &Path, path: &str) -> Result<Vec<DirEntry>> {
    let p = parse(path)?;
    let root_fd = open_root(root)?;
    let dir = match openat2(&root_fd, p.rel(), OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NONBLOCK, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOTDIR) if kind_at(&root_fd, &p).is_some() => {
            let kind = kind_at(&root_fd, &p).unwrap_or(Kind::Unknown);
            return Err(SafeFsError::NotDirectory { path: p.shown(), kind });
        }
        Err(errno) => return Err(SafeFsError::Open { path: p.shown(), errno }),
    };
    let mut out = Vec::new();
    for name in names_in(&dir).map_err(|source| SafeFsError::Read { path: p.shown(), source })? {
        let Ok(st) = nix::sys::stat::fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
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
    let p = parse(path)?;
    let (Some(parent), Some(name)) = (p.parent(), p.name()) else { return Ok(()) };
    let root_fd = open_root(root)?;
    let parent_fd = match openat2(&root_fd, parent.rel(), OFlag::O_PATH | OFlag::O_DIRECTORY, 0) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
        Err(errno) => return Err(SafeFsError::Open { path: p.shown(), errno }),
    };
    remove_at(&parent_fd, name, &p.shown(), 0)
}

fn remove_at(parent: &OwnedFd, name: &OsStr, shown: &str, depth: usize) -> Result<()> {
    use nix::unistd::UnlinkatFlags;
    match nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            if depth >= MAX_DEPTH {
                return Err(SafeFsError::TooDeep { path: shown.into() });
            }
            // O_NOFOLLOW: a directory swapped for a symlink since the unlink is not followed.
            let dir = nix::fcntl::openat(
                parent,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|errno| SafeFsError::Open { path: shown.into(), errno })?;
            let names = names_in(&dir).map_err(|source| SafeFsError::Read { path: shown.into(), source })?;
            for n in names {
                remove_at(&dir, &n, shown, depth + 1)?;
            }
            nix::unistd::unlinkat(parent, name, UnlinkatFlags::RemoveDir)
                .map_err(|errno| SafeFsError::Open { path: shown.into(), errno })
        }
        Err(errno) => Err(SafeFsError::Open { path: shown.into(), errno }),
    }
}

/// Creates a directory (and its parents) inside a root.
pub fn make_dir(root: &Path, path: &str, mode: u32) -> Result<()> {
    let p = parse(path)?;
    let root_fd = open_root(root)?;
    make_dirs(&root_fd, &p, mode & 0o7777)?;
    Ok(())
}

/// Creates (replacing what is there) a symlink inside a root.
pub fn make_symlink(root: &Path, path: &str, target: &Path) -> Result<()> {
    let p = parse(path)?;
    let (Some(parent), Some(name)) = (p.parent(), p.name()) else {
        return Err(SafeFsError::NotRegular { path: p.shown(), kind: Kind::Directory });
    };
    remove(root, path)?;
    let root_fd = open_root(root)?;
    let parent_fd = make_dirs(&root_fd, &parent, 0o755)?;
    nix::unistd::symlinkat(target, &parent_fd, name).map_err(|errno| SafeFsError::Open { path: p.shown(), errno })
}

/// Opens the pty multiplexer (`/dev/pts/ptmx`) of the devpts instance inside a sandbox's root (`root`
/// is `/proc/PID/root` of its pid 1), read-write. Resolved inside that root, the final component not
/// followed, and opened only if it is the ptmx device (5:2) on a devpts filesystem: whatever else the
/// sandbox put there (a FIFO, a symlink to a host path, another device) is refused unopened.
pub fn open_ptmx(root: &Path) -> Result<OwnedFd> {
    let p = SandboxPath::parse("path", "/dev/pts/ptmx")?;
    let shown = p.shown();
    let open_err = |errno| SafeFsError::Open { path: shown.clone(), errno };
    let root_fd = open_root(root)?;
    let handle = openat2(&root_fd, p.rel(), OFlag::O_PATH | OFlag::O_NOFOLLOW, 0).map_err(open_err)?;
    let st = nix::sys::stat::fstat(&handle).map_err(open_err)?;
    let is_ptmx = kind_of(&st) == Kind::CharDevice
        && nix::sys::stat::major(st.st_rdev) == 5
        && nix::sys::stat::minor(st.st_rdev) == 2;
    let on_devpts =
        nix::sys::statfs::fstatfs(&handle).map(|f| f.filesystem_type() == nix::sys::statfs::DEVPTS_SUPER_MAGIC);
    if !is_ptmx || on_devpts != Ok(true) {
        return Err(SafeFsError::NotPtmx { path: shown, kind: describe(&handle, &st) });
    }
    let fd = reopen(&handle, OFlag::O_RDWR).map_err(open_err)?;
    let st2 = nix::sys::stat::fstat(&fd).map_err(open_err)?;
    if !same_inode(&st, &st2) {
        return Err(SafeFsError::Replaced { path: shown });
    }
    Ok(fd)
}

/// Adds every path under a layer directory (`/a`, `/a/b`, ...) to `out`, walking directory fds opened
/// with `O_NOFOLLOW | O_DIRECTORY`: a symlink in the layer, even one swapped in while walking, is listed
/// but never entered. Unreadable parts are skipped (a layer walk only proposes candidates).
pub fn layer_paths(layer: &Path, out: &mut BTreeSet<String>) -> Result<()> {
    let top = nix::fcntl::open(
        layer,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| SafeFsError::Open { path: layer.display().to_string(), errno })?;
    walk_layer(&top, "", out, 0)
}

fn walk_layer(dir: &OwnedFd, prefix: &str, out: &mut BTreeSet<String>, depth: usize) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(SafeFsError::TooDeep { path: prefix.into() });
    }
    let Ok(names) = names_in(dir) else { return Ok(()) };
    for name in names {
        let path = format!("{prefix}/{}", name.to_string_lossy());
        out.insert(path.clone());
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(sub) => walk_layer(&sub, &path, out, depth + 1)?,
            Err(_) => continue, // not a directory (or a symlink to one): a leaf
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::time::{Duration, Instant};

    fn root_user() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    fn mkfifo(p: &Path) {
        nix::unistd::mkfifo(p, Mode::from_bits_truncate(0o644)).unwrap();
    }

    /// Runs `f` on a thread and fails the test if it has not returned within a few seconds: a blocking
    /// open would otherwise hang the whole test run instead of failing it.
    fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        let t0 = Instant::now();
        let out = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("{what} blocked"));
        assert!(t0.elapsed() < Duration::from_secs(5));
        out
    }

    #[test]
    fn writes_create_parents_and_set_mode() {
        let root = tempfile::tempdir().unwrap();
        write_file(root.path(), "/a/b/c.txt", b"hi", 0o600).unwrap();
        let p = root.path().join("a/b/c.txt");
        assert_eq!(std::fs::read(&p).unwrap(), b"hi");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o600);
        // Chunks land at their offsets; a later truncating write starts afresh.
        write_at(root.path(), "/a/b/c.txt", 2, b"!!", 0o600, false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hi!!");
        write_at(root.path(), "/a/b/c.txt", 0, b"x", 0o640, true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o640);
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

    #[test]
    fn a_final_symlink_is_never_followed_for_files() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "host").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("real"), "inside").unwrap();
        symlink("real", root.path().join("rel")).unwrap();
        symlink(&secret, root.path().join("abs")).unwrap();
        symlink("/nowhere", root.path().join("dangling")).unwrap();
        for link in ["/rel", "/abs", "/dangling"] {
            let e = read_at(root.path(), link, 0, 100).unwrap_err();
            assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::Symlink { .. }, .. }), "{link}: {e}");
            assert!(e.to_string().contains("is a symbolic link (to "), "{e}");
            let e = write_file(root.path(), link, b"overwrite", 0o644).unwrap_err();
            assert!(e.is_invalid_input(), "{link}: {e}");
        }
        assert_eq!(std::fs::read_to_string(root.path().join("real")).unwrap(), "inside");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host");
        assert!(!Path::new("/nowhere").exists());
    }

    #[test]
    fn fifos_are_refused_promptly_for_every_operation() {
        let root = tempfile::tempdir().unwrap();
        mkfifo(&root.path().join("fifo"));
        let r = root.path().to_path_buf();
        let e = promptly("read of a FIFO", move || read_at(&r, "/fifo", 0, 10).unwrap_err());
        assert_eq!(e.to_string(), "/fifo is a FIFO, not a regular file: only regular files can be read or written");
        assert!(e.is_invalid_input());
        let r = root.path().to_path_buf();
        let e = promptly("write to a FIFO", move || write_file(&r, "/fifo", b"x", 0o644).unwrap_err());
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::Fifo, .. }), "{e}");
        let r = root.path().to_path_buf();
        let e = promptly("whole read of a FIFO", move || read_file(&r, "/fifo").unwrap_err());
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::Fifo, .. }), "{e}");
        let r = root.path().to_path_buf();
        let e = promptly("listing a FIFO", move || list_dir(&r, "/fifo").unwrap_err());
        assert!(matches!(e, SafeFsError::NotDirectory { kind: Kind::Fifo, .. }), "{e}");
        let r = root.path().to_path_buf();
        assert_eq!(
            promptly("entry of a FIFO", move || entry(&r, "/fifo").unwrap()),
            Entry::Other { mode: libc::S_IFIFO | 0o644 }
        );
        let r = root.path().to_path_buf();
        promptly("removing a FIFO", move || remove(&r, "/fifo").unwrap());
        assert!(!root.path().join("fifo").exists());
    }

    #[test]
    fn a_fifo_behind_a_symlink_or_inside_a_tree_never_blocks() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("d/e")).unwrap();
        mkfifo(&root.path().join("d/e/fifo"));
        symlink("/d/e/fifo", root.path().join("to-fifo")).unwrap();
        let r = root.path().to_path_buf();
        let e = promptly("read through a symlink to a FIFO", move || read_at(&r, "/to-fifo", 0, 1).unwrap_err());
        assert!(e.is_invalid_input(), "{e}");
        let mut names = BTreeSet::new();
        let r = root.path().to_path_buf();
        names = promptly("walking a layer with a FIFO", move || {
            layer_paths(&r, &mut names).unwrap();
            names
        });
        assert!(names.contains("/d/e/fifo") && names.contains("/to-fifo"), "{names:?}");
        let r = root.path().to_path_buf();
        promptly("removing a tree with a FIFO", move || remove(&r, "/d").unwrap());
        assert!(!root.path().join("d").exists());
    }

    #[test]
    fn sockets_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(root.path().join("sock")).unwrap();
        let e = read_at(root.path(), "/sock", 0, 1).unwrap_err();
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::Socket, .. }), "{e}");
        assert!(e.to_string().starts_with("/sock is a socket, not a regular file"), "{e}");
        let e = write_file(root.path(), "/sock", b"x", 0o644).unwrap_err();
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::Socket, .. }), "{e}");
    }

    #[test]
    fn devices_are_never_opened() {
        if !root_user() {
            eprintln!("skipped: mknod of devices needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        // /dev/zero (1:5) reads forever and /dev/full (1:7) refuses writes: either one opened would
        // show, and a block device (7:0, a loop device) would be the host's disk.
        let dev = |maj, min| nix::sys::stat::makedev(maj, min);
        nix::sys::stat::mknod(
            &root.path().join("zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            dev(1, 5),
        )
        .unwrap();
        nix::sys::stat::mknod(
            &root.path().join("full"),
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            dev(1, 7),
        )
        .unwrap();
        nix::sys::stat::mknod(
            &root.path().join("disk"),
            nix::sys::stat::SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o666),
            dev(7, 0),
        )
        .unwrap();
        let e = read_at(root.path(), "/zero", 0, 10).unwrap_err();
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::CharDevice, .. }), "{e}");
        let e = write_file(root.path(), "/full", b"x", 0o644).unwrap_err();
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::CharDevice, .. }), "{e}");
        let e = read_at(root.path(), "/disk", 0, 10).unwrap_err();
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::BlockDevice, .. }), "{e}");
        assert!(e.to_string().contains("is a block device, not a regular file"), "{e}");
    }

    #[test]
    fn directories_are_not_files_and_files_are_not_directories() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        std::fs::write(root.path().join("f"), "x").unwrap();
        let e = read_at(root.path(), "/d", 0, 1).unwrap_err();
        assert!(matches!(e, SafeFsError::NotRegular { kind: Kind::Directory, .. }), "{e}");
        assert!(write_file(root.path(), "/d", b"x", 0o644).unwrap_err().is_invalid_input());
        assert!(write_file(root.path(), "/", b"x", 0o644).unwrap_err().is_invalid_input());
        let e = list_dir(root.path(), "/f").unwrap_err();
        assert!(matches!(e, SafeFsError::NotDirectory { kind: Kind::Regular, .. }), "{e}");
        let e = write_file(root.path(), "/f/below", b"x", 0o644).unwrap_err();
        assert!(matches!(e, SafeFsError::NotDirectory { .. }), "{e}");
        // Listing follows a directory symlink inside the root (as /bin -> usr/bin).
        std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        std::fs::write(root.path().join("usr/bin/tool"), "").unwrap();
        symlink("usr/bin", root.path().join("bin")).unwrap();
        assert_eq!(list_dir(root.path(), "/bin").unwrap()[0].name, "tool");
    }

    #[test]
    fn set_id_bits_are_never_written() {
        let root = tempfile::tempdir().unwrap();
        write_file(root.path(), "/suid", b"#!/bin/sh\n", 0o6755).unwrap();
        let mode = std::fs::metadata(root.path().join("suid")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        write_file(root.path(), "/sticky", b"", 0o1777).unwrap();
        let mode = std::fs::metadata(root.path().join("sticky")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777, "the sticky bit stays allowed");
    }

    #[test]
    fn control_characters_in_paths_are_refused_before_any_syscall() {
        let root = tempfile::tempdir().unwrap();
        for bad in ["/a\0b", "/a\nb", "/\u{1}"] {
            for e in [
                read_at(root.path(), bad, 0, 1).unwrap_err(),
                write_file(root.path(), bad, b"", 0o644).unwrap_err(),
                list_dir(root.path(), bad).unwrap_err(),
                remove(root.path(), bad).unwrap_err(),
                entry(root.path(), bad).unwrap_err(),
                make_dir(root.path(), bad, 0o755).unwrap_err(),
            ] {
                assert!(matches!(e, SafeFsError::BadPath(_)), "{bad:?}: {e}");
                assert!(e.is_invalid_input());
            }
        }
        assert!(std::fs::read_dir(root.path()).unwrap().next().is_none());
    }

    #[test]
    fn hardlinks_write_through_to_the_same_inode_only() {
        // A hard link made inside the root is the same file: writing it changes that file, never
        // anything outside (a hard link cannot cross into the host from inside the root).
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a"), "one").unwrap();
        std::fs::hard_link(root.path().join("a"), root.path().join("b")).unwrap();
        write_file(root.path(), "/b", b"two", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(root.path().join("a")).unwrap(), "two");
    }

    #[test]
    fn deep_trees_stop_at_the_depth_limit() {
        let root = tempfile::tempdir().unwrap();
        let mut dir = std::fs::File::open(root.path()).unwrap();
        for _ in 0..(MAX_DEPTH + 5) {
            nix::sys::stat::mkdirat(&dir, "d", Mode::from_bits_truncate(0o755)).unwrap();
            let next = nix::fcntl::openat(&dir, "d", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
            dir = File::from(next);
        }
        let mut names = BTreeSet::new();
        assert!(matches!(layer_paths(root.path(), &mut names), Err(SafeFsError::TooDeep { .. })));
        assert!(matches!(remove(root.path(), "/d"), Err(SafeFsError::TooDeep { .. })));
    }

    #[test]
    fn the_pty_multiplexer_must_be_devpts_ptmx() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("dev/pts")).unwrap();
        let ptmx = root.path().join("dev/pts/ptmx");
        // A FIFO planted there is refused unopened (an open would block until a writer came).
        mkfifo(&ptmx);
        let r = root.path().to_path_buf();
        let e = promptly("opening a FIFO as ptmx", move || open_ptmx(&r).unwrap_err());
        assert!(matches!(e, SafeFsError::NotPtmx { kind: Kind::Fifo, .. }), "{e}");
        // A symlink to the host's multiplexer is not followed.
        std::fs::remove_file(&ptmx).unwrap();
        symlink("/dev/ptmx", &ptmx).unwrap();
        assert!(matches!(open_ptmx(root.path()), Err(SafeFsError::NotPtmx { kind: Kind::Symlink { .. }, .. })));
        std::fs::remove_file(&ptmx).unwrap();
        if !root_user() {
            eprintln!("skipped the devpts half: mounting devpts needs root");
            return;
        }
        // The right device on the wrong filesystem (a mknod'd 5:2 outside devpts) is refused too.
        let dev = nix::sys::stat::makedev(5, 2);
        nix::sys::stat::mknod(&ptmx, nix::sys::stat::SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), dev).unwrap();
        assert!(open_ptmx(root.path()).is_err(), "a 5:2 node outside devpts");
        std::fs::remove_file(&ptmx).unwrap();
        // A real devpts instance: opened.
        let pts = root.path().join("dev/pts");
        nix::mount::mount(
            Some("devpts"),
            &pts,
            Some("devpts"),
            nix::mount::MsFlags::empty(),
            Some("newinstance,ptmxmode=0666"),
        )
        .unwrap();
        let opened = open_ptmx(root.path());
        nix::mount::umount2(&pts, nix::mount::MntFlags::MNT_DETACH).unwrap();
        opened.unwrap();
    }
}
