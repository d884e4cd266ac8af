//! The btrfs pool on a real loop-mounted image (root only; skipped elsewhere, saying why).
use forkspace_rt::btrfs::Pool;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn subvolumes_snapshot_and_delete() {
    if !is_root() {
        eprintln!("skipped: the btrfs pool test needs root (loop mount)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::open_or_create(&dir.path().join("fs.img"), &dir.path().join("fs"), 1 << 30).unwrap();
    let sub = pool.create_subvolume("sandboxes", "a").unwrap();
    std::fs::create_dir(sub.join("upper")).unwrap();
    std::fs::write(sub.join("upper/file"), b"one").unwrap();
    let snap = pool.snapshot(&sub, "snapshots", "s1", true).unwrap();
    std::fs::write(sub.join("upper/file"), b"two").unwrap();
    assert_eq!(std::fs::read(snap.join("upper/file")).unwrap(), b"one");
    assert!(std::fs::write(snap.join("upper/file"), b"x").is_err(), "a read-only snapshot refused the write");
    let branch = pool.snapshot(&snap, "sandboxes", "b", false).unwrap();
    std::fs::write(branch.join("upper/file"), b"three").unwrap();
    assert_eq!(std::fs::read(snap.join("upper/file")).unwrap(), b"one");
    assert_eq!(pool.list("sandboxes").len(), 2);
    for (d, n) in [("sandboxes", "a"), ("sandboxes", "b"), ("snapshots", "s1")] {
        pool.delete_subvolume(d, n).unwrap();
    }
    assert!(pool.list("sandboxes").is_empty() && pool.list("snapshots").is_empty());
    // Reopening finds the mount; unmounting detaches the loop device.
    let again = Pool::open_or_create(&dir.path().join("fs.img"), &dir.path().join("fs"), 1 << 30).unwrap();
    again.unmount();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.path().to_str().unwrap()));
    let loops = std::process::Command::new("losetup").arg("-a").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&loops.stdout).contains(dir.path().to_str().unwrap()),
        "loop device left attached"
    );
}

fn write_mib(path: &std::path::Path, mib: usize) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let block = vec![0xa5u8; 1 << 20];
    for _ in 0..mib {
        f.write_all(&block)?;
    }
    f.sync_all()
}

fn is_quota_error(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EDQUOT) | Some(libc::ENOSPC))
}

/// Disk limits on a real pool: writes past a layer's limit fail with EDQUOT while another layer keeps
/// writing, deleting frees the room, a branch gets its own limit, and one-run layers are bounded too.
#[test]
fn layers_are_bounded_by_their_disk_limit() {
    use forkspace_rt::disk_quota::QuotaMode;
    use forkspace_rt::layers::Store;
    if !is_root() {
        eprintln!("skipped: the btrfs quota test needs root (loop mount)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::open_or_create(&dir.path().join("fs.img"), &dir.path().join("fs"), 2 << 30).unwrap();
    assert_ne!(pool.quota, QuotaMode::Off, "quotas were enabled on the pool");
    let mount = pool.mount.clone();
    let store = Store::Btrfs(pool);
    assert!(store.disk_facts().enforced);
    assert_eq!(store.disk_facts().default_bytes(), (2u64 << 30) / 4);
    let small = store.new_layer("small", Some(32 << 20)).unwrap();
    let other = store.new_layer("other", Some(512 << 20)).unwrap();
    let err = write_mib(&small.upper.join("big"), 64).unwrap_err();
    assert!(is_quota_error(&err), "writing past the limit: {err}");
    write_mib(&other.upper.join("fine"), 64).expect("another layer is not affected");
    // Deleting frees the room (the next write that needs it commits the deletion).
    std::fs::remove_file(small.upper.join("big")).unwrap();
    write_mib(&small.upper.join("again"), 16).expect("room again after deleting");
    // A branch of a snapshot gets its own limit.
    let snaps = store.snapshot("small", &[], "snap").unwrap();
    assert_eq!(snaps.len(), 1);
    let (branch, lowers) = store.layer_from_snapshot("snap", &snaps, "branch", Some(24 << 20)).unwrap();
    assert!(lowers.is_empty());
    let err = write_mib(&branch.upper.join("big"), 48).unwrap_err();
    assert!(is_quota_error(&err), "the branch's own limit: {err}");
    // One-run layers are subvolumes with a limit too.
    let eph = store.ephemeral_layer("run1", Some(16 << 20)).unwrap().expect("a btrfs one-run layer");
    assert!(eph.upper.starts_with(mount.join("ephemeral")));
    assert!(is_quota_error(&write_mib(&eph.upper.join("big"), 32).unwrap_err()));
    assert_eq!(store.ephemeral_present(), vec!["run1".to_string()]);
    store.remove_ephemeral("run1").unwrap();
    assert!(store.ephemeral_present().is_empty());
    for id in ["small", "other", "branch"] {
        store.remove_layer(id).unwrap();
    }
    store.remove_snapshot("snap").unwrap();
    store.close();
}
