//! Host kernel settings the runtime changes while it serves, each restored when it stops.
//!
//! `rcu_expedited`: moving a process into a v1 cgroup takes the global threadgroup rwsem for writing,
//! which waits for an RCU grace period (10-20 ms on this kernel with RCU_LAZY). Expedited grace periods
//! end in microseconds at the price of an IPI to each CPU, so a sandbox starts in ~5 ms instead of ~20.

use std::fs;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct Tuning {
    restore: Vec<(PathBuf, String)>,
}

pub const RCU_EXPEDITED: &str = "/sys/kernel/rcu_expedited";

/// KSM on, scanning 1000 pages every 20 ms (~200 MB/s): branches restored under PR_SET_MEMORY_MERGE
/// merge their identical pages within seconds. Faster scanning merges sooner but takes CPU from the
/// sandboxes themselves (ksmd is one kernel thread; on 2 CPUs it slowed branching measurably).
pub const KSM: [(&str, &str); 3] = [
    ("/sys/kernel/mm/ksm/pages_to_scan", "1000"),
    ("/sys/kernel/mm/ksm/sleep_millisecs", "20"),
    ("/sys/kernel/mm/ksm/run", "1"),
];

/// Host-wide counters of kernel objects that a sandbox's memory cgroup already pays for, and the least
/// kernel memory one object costs. Each is raised (never lowered) to host memory / that cost, so that
/// memory, not the counter, is what bounds them:
/// - `file-max`: open files (a `filp` is 192-256 bytes, plus an fd slot). The default (10% of RAM in
///   1 KiB units) is small enough for one sandbox to exhaust for every unprivileged process.
/// - inotify instances and watches: counted per user in the initial user namespace, and the kernel
///   charges a user namespace's use to its creator, host root, so a sandbox holding 128 inotify
///   instances (the default limit) left host root unable to make one. An instance costs ~1 KiB (its
///   group, queue and file), a watch ~256 bytes (its mark, and it pins an inode).
pub const MEMORY_BOUNDED: [(&str, u64); 3] = [
    ("/proc/sys/fs/file-max", 128),
    ("/proc/sys/fs/inotify/max_user_instances", 1024),
    ("/proc/sys/fs/inotify/max_user_watches", 256),
];

/// The value to raise one of `MEMORY_BOUNDED` to, given host memory and its current value; None: leave it.
pub fn memory_bound(memory_bytes: u64, bytes_per_object: u64, current: u64) -> Option<u64> {
    // The inotify limits are ints.
    let target = (memory_bytes / bytes_per_object).min(i32::MAX as u64);
    (target > current).then_some(target)
}

impl Tuning {
    /// Writes each `(file, value)`, remembering the old values; files that are missing or refuse the
    /// write are skipped with a log line, since every setting here is an optimisation.
    pub fn apply(settings: &[(&str, &str)]) -> Tuning {
        let mut t = Tuning::default();
        for (file, value) in settings {
            let Ok(old) = fs::read_to_string(file) else { continue };
            if old.trim() == *value {
                continue;
            }
            match fs::write(file, value) {
                Ok(()) => t.restore.push((PathBuf::from(file), old.trim().to_string())),
                Err(e) => crate::log!("could not set {file} to {value}: {e} (continuing without it)"),
            }
        }
        t
    }

    pub fn restore(&mut self) {
        for (file, old) in self.restore.drain(..) {
            let _ = fs::write(&file, old);
        }
    }
}

impl Drop for Tuning {
    fn drop(&mut self) {
        self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_only_ever_raised_to_memory_over_the_object_cost() {
        assert_eq!(memory_bound(24 << 30, 128, 2_466_093), Some(201_326_592));
        assert_eq!(memory_bound(24 << 30, 128, 1 << 62), None);
        assert_eq!(memory_bound(24 << 30, 1024, 128), Some(25_165_824));
        assert_eq!(memory_bound(1 << 50, 256, 128), Some(i32::MAX as u64), "inotify limits are ints");
    }

    #[test]
    fn settings_are_restored_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("knob");
        fs::write(&f, "0\n").unwrap();
        let p = f.to_str().unwrap();
        {
            let t = Tuning::apply(&[(p, "1"), ("/nonexistent/knob", "1")]);
            assert_eq!(fs::read_to_string(&f).unwrap(), "1");
            assert_eq!(t.restore.len(), 1);
        }
        assert_eq!(fs::read_to_string(&f).unwrap(), "0");
    }
}
