//! The data dir is private to root: it holds every sandbox's files (the btrfs image and its mount, the
//! overlay mounts), process memory (CRIU images) and environment values (the catalog). The runtime
//! makes its own directories 0700 and its files 0600 (CRIU runs with umask 077; `create_private_dir`);
//! `seal` brings what an older runtime left (0755 directories, 0644 images) to the same modes at start.
//! It never descends into sandbox contents: those keep the modes the sandbox gave them (a process
//! umask would change them, so the runtime keeps 022), and are reachable only through the sealed
//! directories above them.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Directories of the runtime's own making directly under the data dir.
const PRIVATE_DIRS: [&str; 8] = ["sandboxes", "snapshots", "layers", "fs", "cache", "logs", "envs", "idmap"];
/// Files of the runtime directly under the data dir (the catalog and its journals, the btrfs image).
const PRIVATE_FILES: [&str; 6] =
    ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite-journal", "fs.img", "rt.lock"];
/// Directories inside a snapshot's or sandbox's dir whose files are the runtime's (CRIU images, logs),
/// as opposed to layers of sandbox files.
const IMAGE_DIRS: [&str; 1] = ["criu"];

/// `mkdir -p` whose new directories are 0700.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Creates `path` empty with mode 0600 if it is missing, and makes it 0600 if it is not.
pub fn private_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    private(path, 0o600)
}

/// Makes the data dir 0700 and the runtime's files in it 0600 (directories 0700), leaving sandbox
/// contents alone.
pub fn seal(data_dir: &Path) -> io::Result<()> {
    fs::create_dir_all(data_dir)?;
    private(data_dir, 0o700)?;
    let dev = fs::metadata(data_dir)?.dev();
    // Mount points below (sandbox roots, idmapped environments, the btrfs pool's subvolumes) show
    // someone else's files: never chmod or enter them. Their device alone does not tell (an idmapped
    // mount of a directory on the same filesystem has the same one).
    let mounts: std::collections::HashSet<std::path::PathBuf> =
        crate::overlay::mounts_under(data_dir).into_iter().collect();
    for name in PRIVATE_FILES {
        let p = data_dir.join(name);
        if p.symlink_metadata().is_ok_and(|m| m.is_file()) {
            private(&p, 0o600)?;
        }
    }
    for name in PRIVATE_DIRS {
        let dir = data_dir.join(name);
        if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        private(&dir, 0o700)?;
        for entry in fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            let Ok(meta) = path.symlink_metadata() else { continue };
            if !meta.is_dir() || (mounts.contains(&path) && name != "fs") {
                continue;
            }
            // A sandbox's, snapshot's, layer's or environment's own directory (not mounted content:
            // a mount root there has another device, and the btrfs pool's subvolumes are below it).
            if meta.dev() == dev || name == "fs" {
                private(&path, 0o700)?;
            }
            if meta.dev() != dev {
                continue;
            }
            for images in IMAGE_DIRS {
                seal_files_in(&path.join(images))?;
            }
        }
    }
    Ok(())
}

fn seal_files_in(dir: &Path) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    private(dir, 0o700)?;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            private(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

fn private(path: &Path, mode: u32) -> io::Result<()> {
    let current = fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if current & 0o077 != 0 || current & 0o700 != mode & 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn seals_runtime_files_and_leaves_sandbox_contents_alone() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("data");
        for dir in ["snapshots/snap-1/criu", "snapshots/snap-1/fs/etc", "sandboxes/sbx-1/upper/tmp", "logs"] {
            fs::create_dir_all(d.join(dir)).unwrap();
        }
        for f in ["catalog.sqlite", "catalog.sqlite-wal", "fs.img", "snapshots/snap-1/criu/pages-1.img"] {
            fs::write(d.join(f), "x").unwrap();
            fs::set_permissions(d.join(f), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let sandbox_file = d.join("sandboxes/sbx-1/upper/tmp/app.sh");
        fs::write(&sandbox_file, "#!/bin/sh").unwrap();
        fs::set_permissions(&sandbox_file, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(d.join("snapshots/snap-1/fs/etc"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();

        seal(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        for f in ["catalog.sqlite", "catalog.sqlite-wal", "fs.img", "snapshots/snap-1/criu/pages-1.img"] {
            assert_eq!(mode(&d.join(f)), 0o600, "{f}");
        }
        for dir in ["snapshots", "snapshots/snap-1", "snapshots/snap-1/criu", "sandboxes", "sandboxes/sbx-1", "logs"] {
            assert_eq!(mode(&d.join(dir)), 0o700, "{dir}");
        }
        assert_eq!(mode(&sandbox_file), 0o755, "a sandbox's file keeps its mode");
        assert_eq!(mode(&d.join("snapshots/snap-1/fs/etc")), 0o755, "a snapshot layer keeps its modes");
    }
}
