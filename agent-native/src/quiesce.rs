//! Freezing a sandbox into a state that holds (a pause) or that CRIU can dump (a snapshot), whatever its
//! processes are doing. A process in `vfork` waits in the kernel until its child execs or exits, and shells
//! (dash) and `posix_spawn` vfork all the time, so a freeze can land in that window, with two outcomes:
//! the child is frozen before its exec and the waiting parent never freezes (the cgroup stays FREEZING), or
//! the cgroup freezes, CRIU stops the child with ptrace and the parent never reaches a ptrace stop (the dump
//! fails after its timeout with "Unseizable non-zombie ... state D"). Either way, the sandbox is thawed for a
//! moment, letting the child reach `exec`, and frozen again.

use std::fs;
use std::time::{Duration, Instant};

use crate::cgroup::{describe_processes, CgroupError, SandboxCgroup, FREEZE_PATIENCE};

/// How long to keep letting a vfork child run on towards `exec` before giving up.
pub const VFORK_PATIENCE: Duration = Duration::from_secs(3);
/// A freeze usually completes within a few milliseconds; after this, look for a vfork holding it up.
const SUSPECT_AFTER: Duration = Duration::from_millis(20);
const CHECK_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum QuiesceError {
    #[error(transparent)]
    Freeze(#[from] CgroupError),
    #[error("cannot {what} now: {parent} is in vfork, waiting for its child {child} to exec, which it has not done for {waited:?}{paused}; retry once the child has run")]
    Vfork { what: &'static str, parent: String, child: String, waited: Duration, paused: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Every process frozen: a pause.
    Frozen,
    /// Frozen, and no process waiting on a vfork child: what CRIU can dump.
    Dumpable,
}

/// Freezes `cgroup` until `goal` holds. `may_thaw`: false for a sandbox the user paused, which must not run
/// on, so a vfork in it is reported at once. On an error, a sandbox that was running is left running.
pub fn freeze(cgroup: &SandboxCgroup, goal: Goal, may_thaw: bool) -> Result<(), QuiesceError> {
    let start = Instant::now();
    let mut run_for = Duration::from_millis(1);
    loop {
        let Some((parent, child)) = freeze_once(cgroup, goal)? else {
            return Ok(());
        };
        if !may_thaw || start.elapsed() >= VFORK_PATIENCE {
            let err = QuiesceError::Vfork {
                what: if goal == Goal::Dumpable { "snapshot (CRIU cannot dump a process waiting on vfork)" } else { "freeze it" },
                parent: describe_processes(&[parent]),
                child: describe_processes(&[child]),
                waited: start.elapsed(),
                paused: if may_thaw { "" } else { " and the sandbox is paused" },
            };
            if may_thaw {
                let _ = cgroup.set_frozen(false);
            }
            return Err(err);
        }
        cgroup.set_frozen(false)?;
        std::thread::sleep(run_for);
        run_for = (run_for * 2).min(Duration::from_millis(50));
    }
}

/// One freeze: Ok(None) once the goal holds, Ok(Some(pair)) when a vfork in progress stands in its way.
fn freeze_once(cgroup: &SandboxCgroup, goal: Goal) -> Result<Option<(i32, i32)>, QuiesceError> {
    cgroup.request_frozen(true)?;
    let asked = Instant::now();
    let mut next_check = asked + SUSPECT_AFTER;
    loop {
        let frozen = cgroup.reached(true);
        if frozen && goal == Goal::Frozen {
            return Ok(None);
        }
        if frozen || Instant::now() >= next_check {
            next_check = Instant::now() + CHECK_EVERY;
            match vfork_in_progress(&cgroup.pids()) {
                Some(pair) => return Ok(Some(pair)),
                None if frozen => return Ok(None),
                None => {}
            }
        }
        if asked.elapsed() >= FREEZE_PATIENCE {
            return Err(cgroup.undo_freeze(true).into());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A (parent, child) pair among `pids` sharing one address space without being threads of one process:
/// a vfork whose child has not yet exec'd (or a bare CLONE_VM child, which CRIU cannot dump either).
pub fn vfork_in_progress(pids: &[i32]) -> Option<(i32, i32)> {
    pids.iter().find_map(|&child| {
        let parent = parent_of(child)?;
        (pids.contains(&parent) && same_memory(parent, child)).then_some((parent, child))
    })
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

const KCMP_VM: libc::c_long = 1;

fn same_memory(a: i32, b: i32) -> bool {
    // SAFETY: kcmp(2) only compares kernel objects of two pids; it touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_kcmp, a as libc::c_long, b as libc::c_long, KCMP_VM, 0, 0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_vfork_child_that_has_not_exec_d_and_not_a_forked_one() {
        let me = std::process::id() as i32;
        // A forked child has its own memory.
        let mut forked = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert_eq!(vfork_in_progress(&[me, forked.id() as i32]), None);
        forked.kill().unwrap();
        forked.wait().unwrap();

        // A vfork child that sleeps before exiting shares ours until then. vfork suspends only the calling
        // thread, so this thread looks while another one is in vfork.
        let (tx, rx) = std::sync::mpsc::channel();
        let vforker = std::thread::spawn(move || {
            // SAFETY: the child only calls async-signal-safe functions (nanosleep, _exit) before _exit,
            // the pattern vfork allows; the parent thread is suspended meanwhile.
            let pid = unsafe { libc::vfork() };
            if pid == 0 {
                unsafe {
                    let ts = libc::timespec { tv_sec: 1, tv_nsec: 0 };
                    libc::nanosleep(&ts, std::ptr::null_mut());
                    libc::_exit(0);
                }
            }
            let _ = tx.send(());
            let mut status = 0;
            // SAFETY: waits for the child just made.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        });
        let deadline = Instant::now() + Duration::from_millis(800);
        let mut seen = None;
        while seen.is_none() && Instant::now() < deadline {
            // Children of any of our threads (the vfork child's parent is the thread that called vfork).
            let children: Vec<i32> = fs::read_dir(format!("/proc/{me}/task"))
                .unwrap()
                .flatten()
                .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
                .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<i32>>())
                .collect();
            let mut pids = vec![me];
            pids.extend(children);
            seen = vfork_in_progress(&pids);
        }
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok(), "the vfork child never exited");
        vforker.join().unwrap();
        let (parent, child) = seen.expect("the vfork child was not found sharing memory with its parent");
        assert_eq!(parent, me);
        assert_ne!(child, me);
    }
}
