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
