//! Environments: read-only root filesystems that sandboxes overlay. `busybox` is assembled from the
//! host's busybox-static in milliseconds; the Python ones are built once with debootstrap (minbase plus
//! python3) from Debian's mirror, stripped, checked to hold the promised Python version, and cached.
//! A build happens in a temporary directory renamed into place at the end, so a half-built environment
//! is never visible, and a file lock keeps two runtimes sharing the cache from building the same one.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Busybox,
    Debian { suite: &'static str, python: &'static str },
}

#[derive(Debug, Clone, Copy)]
pub struct EnvDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub source: Source,
}

/// Every environment the runtime knows. `python` is the embedded default and names python:3.11.
pub const ENVIRONMENTS: [EnvDef; 4] = [
    EnvDef {
        name: "busybox",
        aliases: &[],
        description: "BusyBox 1.35 shell and tools (Debian busybox-static), ~2 MB, builds in milliseconds",
        source: Source::Busybox,
    },
    EnvDef {
        name: "python:3.11",
        aliases: &["python"],
        description: "Python 3.11 on Debian 12 bookworm (minbase); the default environment",
        source: Source::Debian { suite: "bookworm", python: "3.11" },
    },
    EnvDef {
        name: "python:3.9",
        aliases: &[],
        description: "Python 3.9 on Debian 11 bullseye (minbase)",
        source: Source::Debian { suite: "bullseye", python: "3.9" },
    },
    EnvDef {
        name: "python:3.13",
        aliases: &[],
        description: "Python 3.13 on Debian 13 trixie (minbase)",
        source: Source::Debian { suite: "trixie", python: "3.13" },
    },
];

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("unknown environment {name:?}; known environments: {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
    #[error("environment {name} is not built yet; build it with `forkspace env build {name}`")]
    NotBuilt { name: String },
    #[error("cannot {action} {path} while building {name}: {source}")]
    Io { name: String, action: &'static str, path: PathBuf, source: io::Error },
    #[error("cannot start {program} to build {name}: {source} (run scripts/setup.sh to install it)")]
    Spawn { name: String, program: &'static str, source: io::Error },
    #[error("{program} failed building {name} (exit {status}); last output:\n{tail}")]
    Tool { name: String, program: &'static str, status: String, tail: String },
    #[error("{name} was built but holds Python {found}, not {expected}; refusing to substitute another version")]
    VersionMismatch { name: String, expected: String, found: String },
    #[error("busybox-static is not installed at {path}; run scripts/setup.sh (apt-get install busybox-static)")]
    NoBusybox { path: PathBuf },
}

type Result<T> = std::result::Result<T, EnvError>;

/// Written last into a built environment; its presence means "built".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub source: String,
    pub size_bytes: u64,
    pub built_at_ms: u64,
    /// sha256 over every path, mode and content of the rootfs: what a cached result was computed on.
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvInfo {
    pub name: String,
    pub aliases: Vec<String>,
    pub description: String,
    pub built: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

pub fn resolve(name: &str) -> Result<&'static EnvDef> {
    ENVIRONMENTS.iter().find(|d| d.name == name || d.aliases.contains(&name)).ok_or_else(|| EnvError::Unknown {
        name: name.to_string(),
        known: ENVIRONMENTS
            .iter()
            .flat_map(|d| std::iter::once(d.name).chain(d.aliases.iter().copied()))
            .map(String::from)
            .collect(),
    })
}

/// The cache of built environments.
#[derive(Debug, Clone)]
pub struct EnvStore {
    pub dir: PathBuf,
    pub mirror: String,
}

/// Bumped whenever what a build puts into an environment changes: a new recipe builds into a new slot
/// (`python-3.11.r2`), so sandboxes still overlaying an older build keep it intact.
const RECIPE: u32 = 2;

impl EnvStore {
    fn slot(&self, def: &EnvDef) -> PathBuf {
        self.dir.join(format!("{}.r{RECIPE}", def.name.replace(':', "-")))
    }

    pub fn rootfs(&self, def: &EnvDef) -> PathBuf {
        self.slot(def).join("rootfs")
    }

    pub fn manifest(&self, def: &EnvDef) -> Option<Manifest> {
        let text = fs::read_to_string(self.slot(def).join("manifest.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Computes and records the content digest of environments built before digests existed.
    pub fn backfill_digests(&self) {
        for def in ENVIRONMENTS.iter() {
            let Some(mut m) = self.manifest(def) else { continue };
            if m.digest.is_some() {
                continue;
            }
            m.digest = Some(digest(&self.rootfs(def)));
            let path = self.slot(def).join("manifest.json");
            let tmp = path.with_extension("json.tmp");
            let body = serde_json::to_vec_pretty(&m).unwrap_or_default();
            if fs::write(&tmp, body).and_then(|()| fs::rename(&tmp, &path)).is_err() {
                let _ = fs::remove_file(&tmp);
            }
        }
    }

    /// The rootfs of a built environment, or NotBuilt.
    pub fn built_rootfs(&self, def: &EnvDef) -> Result<PathBuf> {
        match self.manifest(def) {
            Some(_) => Ok(self.rootfs(def)),
            None => Err(EnvError::NotBuilt { name: def.name.to_string() }),
        }
    }

    pub fn list(&self) -> Vec<EnvInfo> {
        ENVIRONMENTS
            .iter()
            .map(|d| {
                let manifest = self.manifest(d);
                EnvInfo {
                    name: d.name.into(),
                    aliases: d.aliases.iter().map(|a| a.to_string()).collect(),
                    description: d.description.into(),
                    built: manifest.is_some(),
                    manifest,
                }
            })
            .collect()
    }

    /// Builds `def` unless it is built already; blocking. `progress` receives one line at a time.
    pub fn build(&self, def: &EnvDef, progress: &mut dyn FnMut(&str)) -> Result<Manifest> {
        let io_err = |action, path: &Path| {
            let name = def.name.to_string();
            let path = path.to_path_buf();
            move |source| EnvError::Io { name, action, path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let slot = self.slot(def);
        let lock_path = self.dir.join(format!(".{}.lock", def.name.replace(':', "-")));
        let lock = fs::File::create(&lock_path).map_err(io_err("create", &lock_path))?;
        // SAFETY: flock(2) on a file we hold open; released when `lock` is dropped at the end.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err("lock", &lock_path)(io::Error::last_os_error()));
        }
        if let Some(m) = self.manifest(def) {
            return Ok(m); // built while we waited for the lock
        }
        let tmp = self.dir.join(format!(".{}.build-{}", def.name.replace(':', "-"), std::process::id()));
        remove_tree(&tmp).map_err(io_err("remove", &tmp))?;
        let rootfs = tmp.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(io_err("create", &rootfs))?;
        let result = (|| {
            let (version, source) = match def.source {
                Source::Busybox => (build_busybox(def, &rootfs, progress)?, "debian busybox-static".to_string()),
                Source::Debian { suite, python } => {
                    build_debian(def, suite, &self.mirror, &rootfs, progress)?;
                    let found = python_version(def, &rootfs)?;
                    if found != python {
                        return Err(EnvError::VersionMismatch {
                            name: def.name.into(),
                            expected: python.into(),
                            found,
                        });
                    }
                    (found, format!("debian {suite} from {}", self.mirror))
                }
            };
            populate_dev(&rootfs).map_err(io_err("populate /dev in", &rootfs))?;
            write_etc(&rootfs).map_err(io_err("write /etc in", &rootfs))?;
            let manifest = Manifest {
                name: def.name.into(),
                version,
                source,
                size_bytes: tree_size(&rootfs),
                built_at_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
                digest: Some(digest(&rootfs)),
            };
            let mpath = tmp.join("manifest.json");
            let body = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
            fs::write(&mpath, body).map_err(io_err("write", &mpath))?;
            // A slot without a manifest is a leftover of a crashed build: replace it.
            remove_tree(&slot).map_err(io_err("remove", &slot))?;
            fs::rename(&tmp, &slot).map_err(io_err("rename into", &slot))?;
            Ok(manifest)
        })();
        if result.is_err() {
            let _ = remove_tree(&tmp);
        }
        progress(&match &result {
            Ok(m) => format!("built {} ({} MB)", def.name, m.size_bytes >> 20),
            Err(e) => format!("building {} failed: {e}", def.name),
        });
        result
    }
}

const BUSYBOX: &str = "/bin/busybox";

fn build_busybox(def: &EnvDef, rootfs: &Path, progress: &mut dyn FnMut(&str)) -> Result<String> {
    let io_err = |action, path: &Path| {
        let (name, path) = (def.name.to_string(), path.to_path_buf());
        move |source| EnvError::Io { name, action, path, source }
    };
    if !Path::new(BUSYBOX).exists() {
        return Err(EnvError::NoBusybox { path: BUSYBOX.into() });
    }
    progress("assembling busybox rootfs from /bin/busybox");
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "var/tmp", "proc", "sys", "home"] {
        let p = rootfs.join(d);
        fs::create_dir_all(&p).map_err(io_err("create", &p))?;
    }
    for t in ["tmp", "var/tmp"] {
        let p = rootfs.join(t);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o1777)).map_err(io_err("chmod", &p))?;
    }
    let target = rootfs.join("bin/busybox");
    fs::copy(BUSYBOX, &target).map_err(io_err("copy", &target))?;
    let out = Command::new(BUSYBOX).arg("--list-full").output().map_err(|source| EnvError::Spawn {
        name: def.name.into(),
        program: "busybox",
        source,
    })?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let link = rootfs.join(applet);
        if applet.is_empty() || applet == "bin/busybox" || link.exists() {
            continue;
        }
        // Relative links keep the rootfs self-contained wherever it is mounted.
        let depth = Path::new(applet).components().count() - 1;
        let rel = format!("{}bin/busybox", "../".repeat(depth));
        symlink(&rel, &link).map_err(io_err("link", &link))?;
    }
    let v = Command::new(BUSYBOX).output().map(|o| o.stdout).unwrap_or_default();
    let first = String::from_utf8_lossy(&v).lines().next().unwrap_or("BusyBox").to_string();
    Ok(first.split_whitespace().nth(1).unwrap_or("unknown").trim_start_matches('v').to_string())
}

fn build_debian(def: &EnvDef, suite: &str, mirror: &str, rootfs: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    progress(&format!("debootstrap {suite} (minbase + python3) from {mirror}: about a minute, once"));
    let mut cmd = Command::new("debootstrap");
    cmd.args(["--variant=minbase", "--include=python3"]).arg(suite).arg(rootfs).arg(mirror);
    run_tool(def, "debootstrap", cmd, progress)?;
    // `python` is what scripts and the seed's examples call (Debian's python-is-python3, without apt).
    let python = rootfs.join("usr/bin/python");
    if fs::symlink_metadata(&python).is_err() {
        symlink("python3", &python).map_err(|source| EnvError::Io {
            name: def.name.into(),
            action: "link",
            path: python.clone(),
            source,
        })?;
    }
    progress("stripping apt lists, caches, locales and docs");
    for dir in
        ["var/lib/apt/lists", "var/cache/apt", "usr/share/locale", "usr/share/doc", "usr/share/man", "usr/share/info"]
    {
        let p = rootfs.join(dir);
        if let Ok(entries) = fs::read_dir(&p) {
            for e in entries.flatten() {
                let _ = remove_tree(&e.path());
            }
        }
    }
    Ok(())
}

/// Runs a build tool, streaming its merged output to `progress` and keeping the tail for errors.
fn run_tool(def: &EnvDef, program: &'static str, mut cmd: Command, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let spawn_err = |source| EnvError::Spawn { name: def.name.into(), program, source };
    let (reader, writer) = io::pipe().map_err(spawn_err)?;
    let writer2 = writer.try_clone().map_err(spawn_err)?;
    let mut child = cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2).spawn().map_err(spawn_err)?;
    drop(cmd); // our copies of the pipe's write end must close, or the read below never ends
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        progress(&line);
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let status = child.wait().map_err(spawn_err)?;
    if !status.success() {
        return Err(EnvError::Tool {
            name: def.name.into(),
            program,
            status: status.to_string(),
            tail: tail.join("\n"),
        });
    }
    Ok(())
}

fn python_version(def: &EnvDef, rootfs: &Path) -> Result<String> {
    let out = Command::new("chroot")
        .arg(rootfs)
        .args(["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .map_err(|source| EnvError::Spawn { name: def.name.into(), program: "chroot", source })?;
    if !out.status.success() {
        return Err(EnvError::Tool {
            name: def.name.into(),
            program: "python3",
            status: out.status.to_string(),
            tail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// /dev as the sandbox sees it: device nodes straight in the image (no tmpfs, which CRIU would have to
/// tar on every checkpoint), a devpts mount point, and the usual links.
fn populate_dev(rootfs: &Path) -> io::Result<()> {
    let dev = rootfs.join("dev");
    remove_tree(&dev)?;
    fs::create_dir_all(dev.join("pts"))?;
    fs::create_dir_all(dev.join("shm"))?;
    fs::set_permissions(dev.join("shm"), fs::Permissions::from_mode(0o1777))?;
    for (name, major, minor) in
        [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
    {
        let path = dev.join(name);
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        )?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
    }
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(name))?;
    }
    for d in ["proc", "tmp", "root"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    Ok(())
}

fn write_etc(rootfs: &Path) -> io::Result<()> {
    let etc = rootfs.join("etc");
    fs::create_dir_all(&etc)?;
    fs::write(etc.join("hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")?;
    // No network by default: an empty resolv.conf fails lookups fast instead of timing out on the host's.
    fs::write(etc.join("resolv.conf"), "")?;
    if !etc.join("passwd").exists() {
        fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?;
        fs::write(etc.join("group"), "root:x:0:\nnogroup:x:65534:\n")?;
    }
    Ok(())
}

/// sha256 over the tree: each entry's relative path, type, mode, and its content (files) or target
/// (symlinks), in sorted order.
pub fn digest(root: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = fs::read_dir(root.join(&rel)) else { continue };
        let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names.into_iter().rev() {
            let child = rel.join(&name);
            let Ok(meta) = fs::symlink_metadata(root.join(&child)) else { continue };
            use std::os::unix::fs::MetadataExt;
            hasher.update(child.as_os_str().as_encoded_bytes());
            hasher.update(meta.mode().to_le_bytes());
            if meta.is_dir() {
                stack.push(child);
            } else if meta.file_type().is_symlink() {
                if let Ok(t) = fs::read_link(root.join(&child)) {
                    hasher.update(t.as_os_str().as_encoded_bytes());
                }
            } else if meta.is_file() {
                if let Ok(mut f) = fs::File::open(root.join(&child)) {
                    let _ = io::copy(&mut f, &mut hasher);
                }
            } else {
                hasher.update(meta.rdev().to_le_bytes());
            }
        }
    }
    let out = hasher.finalize();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path).map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum()).unwrap_or(0)
}

/// rm -rf that treats "not there" as done.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_resolve_without_substitution() {
        assert_eq!(resolve("python").unwrap().name, "python:3.11");
        assert_eq!(resolve("python:3.9").unwrap().source, Source::Debian { suite: "bullseye", python: "3.9" });
        assert_eq!(resolve("python:3.13").unwrap().source, Source::Debian { suite: "trixie", python: "3.13" });
        let err = resolve("python:3.12").unwrap_err().to_string();
        assert!(err.contains("unknown environment \"python:3.12\""), "{err}");
        assert!(err.contains("busybox, python:3.11, python, python:3.9, python:3.13"), "{err}");
    }

    #[test]
    fn unbuilt_environment_says_how_to_build_it() {
        let store = EnvStore { dir: tempfile::tempdir().unwrap().keep(), mirror: "http://x".into() };
        let err = store.built_rootfs(resolve("busybox").unwrap()).unwrap_err().to_string();
        assert_eq!(err, "environment busybox is not built yet; build it with `forkspace env build busybox`");
        assert!(store.list().iter().all(|e| !e.built));
        let _ = remove_tree(&store.dir);
    }
}
