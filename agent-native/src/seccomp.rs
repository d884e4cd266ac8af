//! The sandbox's seccomp profile, in the spirit of Docker's default: an allowlist of the system calls
//! ordinary programs make, everything else refused. One filter, installed by every sandbox process just
//! before it execs the user's command:
//!   - a listed call is allowed;
//!   - a call refused on purpose answers EPERM: kernel keyrings, bpf, perf, userfaultfd, kexec, modules,
//!     the mount API, namespaces (`unshare`, `setns`, namespace flags of `clone`), io_uring, AF_VSOCK
//!     and AF_PACKET sockets, TIOCSTI, odd personalities, clock setting...;
//!   - anything else answers ENOSYS (what a kernel without the call would say, so libc falls back:
//!     glibc retries `clone3` as `clone`), and a call through another ABI (i386, x32) kills the process.
//!
//! It is compiled once (bpf.rs), in the runtime before the spawner is forked. Restored processes get
//! theirs back from CRIU, which dumps and restores seccomp filters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crate::bpf::{self, ArgTest, Rule, Syscall, Verdict};

/// Kernel features a host operator may give back to sandboxes (`forkspace-rt serve --seccomp-allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// `io_uring_setup`, `io_uring_enter`, `io_uring_register`: a large kernel attack surface.
    IoUring,
    /// AF_VSOCK sockets: they reach the hypervisor's transport on a VM host.
    Vsock,
    /// AF_PACKET sockets (raw link-level access; they also need CAP_NET_RAW, which sandboxes lack).
    Packet,
}

impl Feature {
    pub const ALL: [Feature; 3] = [Feature::IoUring, Feature::Vsock, Feature::Packet];

    pub fn name(self) -> &'static str {
        match self {
            Feature::IoUring => "io_uring",
            Feature::Vsock => "vsock",
            Feature::Packet => "packet",
        }
    }

    pub fn parse(name: &str) -> Result<Feature, SeccompError> {
        Feature::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| SeccompError::UnknownFeature {
            name: name.to_string(),
            known: Feature::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("--seccomp-allow {name:?} is not a feature that can be allowed; use one of: {known}")]
    UnknownFeature { name: String, known: String },
    #[error("the sandbox seccomp profile is defined for x86_64 only; this runtime was built for {arch}")]
    Arch { arch: &'static str },
    #[error("compiling the sandbox seccomp profile failed: {0}")]
    Compile(String),
}

static PROGRAM: OnceLock<Vec<libc::sock_filter>> = OnceLock::new();

/// Compiles the profile for `allowed` features. Call once, before the spawner is forked.
pub fn prepare(allowed: &BTreeSet<Feature>) -> Result<(), SeccompError> {
    let program = compile(allowed)?;
    let _ = PROGRAM.set(program);
    Ok(())
}

/// In a sandbox process, last step before exec: no_new_privs, then the filter. Errors are errnos.
pub fn install_in_child() -> Result<(), nix::errno::Errno> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) sets a flag of this process and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(nix::errno::Errno::last());
    }
    let Some(program) = PROGRAM.get() else { return Err(nix::errno::Errno::ENOSYS) };
    bpf::install(program)
}

pub fn compile(allowed: &BTreeSet<Feature>) -> Result<Vec<libc::sock_filter>, SeccompError> {
    bpf::compile(&policy(allowed)?).map_err(|e| SeccompError::Compile(e.to_string()))
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const EPERM: Verdict = Verdict::Errno(libc::EPERM as u32);

/// The profile as a policy: which call gets which answer.
pub fn policy(allowed: &BTreeSet<Feature>) -> Result<bpf::Policy, SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(SeccompError::Arch { arch: std::env::consts::ARCH });
    }
    let number = |nr: i64| nr as u32;
    let mut syscalls: BTreeMap<u32, Syscall> =
        table::ALLOWED.iter().map(|nr| (number(*nr), Syscall::always(Verdict::Allow))).collect();
    for nr in table::DENIED {
        syscalls.insert(number(*nr), Syscall::always(EPERM));
    }
    let io_uring = if allowed.contains(&Feature::IoUring) { Verdict::Allow } else { EPERM };
    for nr in table::IO_URING {
        syscalls.insert(number(nr), Syscall::always(io_uring));
    }
    let refuse = |arg: u8, test: ArgTest| Rule { arg, test, verdict: EPERM };
    let clone = NAMESPACE_FLAGS.iter().fold(0u32, |mask, f| mask | *f as u32);
    syscalls.insert(
        number(libc::SYS_clone),
        Syscall { rules: vec![refuse(0, ArgTest::AnyBitOf(clone))], otherwise: Verdict::Allow },
    );
    let mut socket = Vec::new();
    if !allowed.contains(&Feature::Vsock) {
        socket.push(refuse(0, ArgTest::Equals(libc::AF_VSOCK as u32)));
    }
    if !allowed.contains(&Feature::Packet) {
        socket.push(refuse(0, ArgTest::Equals(libc::AF_PACKET as u32)));
    }
    syscalls.insert(number(libc::SYS_socket), Syscall { rules: socket, otherwise: Verdict::Allow });
    // TIOCSTI pushes input into a terminal's queue as if typed.
    syscalls.insert(
        number(libc::SYS_ioctl),
        Syscall { rules: vec![refuse(1, ArgTest::Equals(libc::TIOCSTI as u32))], otherwise: Verdict::Allow },
    );
    let personalities = PERSONALITIES
        .iter()
        .map(|p| Rule { arg: 0, test: ArgTest::Equals(*p as u32), verdict: Verdict::Allow })
        .collect();
    syscalls.insert(number(libc::SYS_personality), Syscall { rules: personalities, otherwise: EPERM });
    Ok(bpf::Policy { arch: AUDIT_ARCH_X86_64, syscalls, default: Verdict::Errno(libc::ENOSYS as u32) })
}

/// Namespace flags `clone` must not carry: a new namespace is a way around every other layer.
const NAMESPACE_FLAGS: [u64; 8] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWCGROUP as u64,
    0x80, // CLONE_NEWTIME
];

/// Personalities programs legitimately ask for (Docker's list): Linux, query, UNAME26, 32-bit.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The syscall numbers, by name, for x86_64.
#[cfg(target_arch = "x86_64")]
mod table {
    use libc::*;

    // Calls the libc crate does not name (io_pgetevents is x86_64's 333; the 45x/46x calls have one
    // number on every architecture).
    const SYS_IO_PGETEVENTS: i64 = 333;
    const SYS_CACHESTAT: i64 = 451;
    const SYS_MAP_SHADOW_STACK: i64 = 453;
    const SYS_FUTEX_WAKE: i64 = 454;
    const SYS_FUTEX_WAIT: i64 = 455;
    const SYS_FUTEX_REQUEUE: i64 = 456;
    const SYS_GETXATTRAT: i64 = 464;
    const SYS_LISTXATTRAT: i64 = 465;
    const SYS_SETXATTRAT: i64 = 463;
    const SYS_REMOVEXATTRAT: i64 = 466;

    pub const IO_URING: [i64; 3] = [SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register];

    /// What ordinary programs (shells, interpreters, compilers, servers, package managers) call.
    /// `clone`, `socket`, `ioctl` and `personality` are here and narrowed in `policy`.
    pub const ALLOWED: &[i64] = &[
        SYS_accept, SYS_accept4, SYS_access, SYS_adjtimex, SYS_alarm, SYS_arch_prctl, SYS_bind, SYS_brk,
        SYS_CACHESTAT, SYS_capget, SYS_capset, SYS_chdir, SYS_chmod, SYS_chown, SYS_chroot, SYS_clock_adjtime,
        SYS_clock_getres, SYS_clock_gettime, SYS_clock_nanosleep, SYS_clone, SYS_close, SYS_close_range,
        SYS_connect, SYS_copy_file_range, SYS_creat, SYS_dup, SYS_dup2, SYS_dup3, SYS_epoll_create,
        SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_epoll_wait, SYS_eventfd,
        SYS_eventfd2, SYS_execve, SYS_execveat, SYS_exit, SYS_exit_group, SYS_faccessat, SYS_faccessat2,
        SYS_fadvise64, SYS_fallocate, SYS_fanotify_mark, SYS_fchdir, SYS_fchmod, SYS_fchmodat, SYS_fchmodat2,
        SYS_fchown, SYS_fchownat, SYS_fcntl, SYS_fdatasync, SYS_fgetxattr, SYS_flistxattr, SYS_flock, SYS_fork,
        SYS_fremovexattr, SYS_fsetxattr, SYS_fstat, SYS_fstatfs, SYS_fsync, SYS_ftruncate, SYS_futex,
        SYS_FUTEX_REQUEUE, SYS_FUTEX_WAIT, SYS_futex_waitv, SYS_FUTEX_WAKE, SYS_futimesat, SYS_get_mempolicy,
        SYS_get_robust_list, SYS_getcpu, SYS_getcwd, SYS_getdents, SYS_getdents64, SYS_getegid, SYS_geteuid,
        SYS_getgid, SYS_getgroups, SYS_getitimer, SYS_getpeername, SYS_getpgid, SYS_getpgrp, SYS_getpid,
        SYS_getppid, SYS_getpriority, SYS_getrandom, SYS_getresgid, SYS_getresuid, SYS_getrlimit, SYS_getrusage,
        SYS_getsid, SYS_getsockname, SYS_getsockopt, SYS_gettid, SYS_gettimeofday, SYS_getuid, SYS_getxattr,
        SYS_GETXATTRAT, SYS_inotify_add_watch, SYS_inotify_init, SYS_inotify_init1, SYS_inotify_rm_watch,
        SYS_io_cancel, SYS_io_destroy, SYS_io_getevents, SYS_IO_PGETEVENTS, SYS_io_setup, SYS_io_submit,
        SYS_ioctl, SYS_ioprio_get, SYS_ioprio_set, SYS_kill, SYS_landlock_add_rule, SYS_landlock_create_ruleset,
        SYS_landlock_restrict_self, SYS_lchown, SYS_lgetxattr, SYS_link, SYS_linkat, SYS_listen, SYS_listxattr,
        SYS_LISTXATTRAT, SYS_llistxattr, SYS_lremovexattr, SYS_lseek, SYS_lsetxattr, SYS_lstat, SYS_madvise,
        SYS_MAP_SHADOW_STACK, SYS_mbind, SYS_membarrier, SYS_memfd_create, SYS_memfd_secret, SYS_mincore,
        SYS_mkdir, SYS_mkdirat, SYS_mknod, SYS_mknodat, SYS_mlock, SYS_mlock2, SYS_mlockall, SYS_mmap,
        SYS_mprotect, SYS_mq_getsetattr, SYS_mq_notify, SYS_mq_open, SYS_mq_timedreceive, SYS_mq_timedsend,
        SYS_mq_unlink, SYS_mremap, SYS_mseal, SYS_msgctl, SYS_msgget, SYS_msgrcv, SYS_msgsnd, SYS_msync,
        SYS_munlock, SYS_munlockall, SYS_munmap, SYS_name_to_handle_at, SYS_nanosleep, SYS_newfstatat, SYS_open,
        SYS_openat, SYS_openat2, SYS_pause, SYS_personality, SYS_pidfd_getfd, SYS_pidfd_open,
        SYS_pidfd_send_signal, SYS_pipe, SYS_pipe2, SYS_pkey_alloc, SYS_pkey_free, SYS_pkey_mprotect, SYS_poll,
        SYS_ppoll, SYS_prctl, SYS_pread64, SYS_preadv, SYS_preadv2, SYS_prlimit64, SYS_process_madvise,
        SYS_process_mrelease, SYS_process_vm_readv, SYS_process_vm_writev, SYS_pselect6, SYS_ptrace,
        SYS_pwrite64, SYS_pwritev, SYS_pwritev2, SYS_read, SYS_readahead, SYS_readlink, SYS_readlinkat,
        SYS_readv, SYS_recvfrom, SYS_recvmmsg, SYS_recvmsg, SYS_remap_file_pages, SYS_removexattr,
        SYS_REMOVEXATTRAT, SYS_rename, SYS_renameat, SYS_renameat2, SYS_restart_syscall, SYS_rmdir, SYS_rseq,
        SYS_rt_sigaction, SYS_rt_sigpending, SYS_rt_sigprocmask, SYS_rt_sigqueueinfo, SYS_rt_sigreturn,
        SYS_rt_sigsuspend, SYS_rt_sigtimedwait, SYS_rt_tgsigqueueinfo, SYS_sched_get_priority_max,
        SYS_sched_get_priority_min, SYS_sched_getaffinity, SYS_sched_getattr, SYS_sched_getparam,
        SYS_sched_getscheduler, SYS_sched_rr_get_interval, SYS_sched_setaffinity, SYS_sched_setattr,
        SYS_sched_setparam, SYS_sched_setscheduler, SYS_sched_yield, SYS_seccomp, SYS_select, SYS_semctl,
        SYS_semget, SYS_semop, SYS_semtimedop, SYS_sendfile, SYS_sendmmsg, SYS_sendmsg, SYS_sendto,
        SYS_set_mempolicy, SYS_set_robust_list, SYS_set_tid_address, SYS_setfsgid, SYS_setfsuid, SYS_setgid,
        SYS_setgroups, SYS_setitimer, SYS_setpgid, SYS_setpriority, SYS_setregid, SYS_setresgid, SYS_setresuid,
        SYS_setreuid, SYS_setrlimit, SYS_setsid, SYS_setsockopt, SYS_setuid, SYS_setxattr, SYS_SETXATTRAT,
        SYS_shmat, SYS_shmctl, SYS_shmdt, SYS_shmget, SYS_shutdown, SYS_sigaltstack, SYS_signalfd,
        SYS_signalfd4, SYS_socket, SYS_socketpair, SYS_splice, SYS_stat, SYS_statfs, SYS_statx, SYS_symlink,
        SYS_symlinkat, SYS_sync, SYS_sync_file_range, SYS_syncfs, SYS_sysinfo, SYS_tee, SYS_tgkill, SYS_time,
        SYS_timer_create, SYS_timer_delete, SYS_timer_getoverrun, SYS_timer_gettime, SYS_timer_settime,
        SYS_timerfd_create, SYS_timerfd_gettime, SYS_timerfd_settime, SYS_times, SYS_tkill, SYS_truncate,
        SYS_umask, SYS_uname, SYS_unlink, SYS_unlinkat, SYS_utime, SYS_utimensat, SYS_utimes, SYS_vfork,
        SYS_vmsplice, SYS_wait4, SYS_waitid, SYS_write, SYS_writev,
    ];

    /// Refused on purpose (EPERM): each reaches past the sandbox, or is kernel surface no program in a
    /// sandbox needs.
    pub const DENIED: &[i64] = &[
        // Kernel keyrings are not namespaced: they would reach the host's keys.
        SYS_add_key, SYS_keyctl, SYS_request_key,
        // Kernel programmability and introspection.
        SYS_bpf, SYS_perf_event_open, SYS_userfaultfd, SYS_kcmp, SYS_lookup_dcookie, SYS_syslog,
        // Loading kernels and modules.
        SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module,
        // Mounts, old and new API, and namespaces.
        SYS_mount, SYS_umount2, SYS_pivot_root, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
        SYS_move_mount, SYS_open_tree, SYS_mount_setattr, SYS_unshare, SYS_setns,
        // Handles that bypass path permissions (the "shocker" escape), fanotify of the whole system.
        SYS_open_by_handle_at, SYS_fanotify_init,
        // Machine-wide settings.
        SYS_reboot, SYS_swapon, SYS_swapoff, SYS_settimeofday, SYS_clock_settime, SYS_acct, SYS_quotactl,
        SYS_quotactl_fd, SYS_sethostname, SYS_setdomainname, SYS_vhangup, SYS_iopl, SYS_ioperm,
        SYS_modify_ldt, SYS_uselib, SYS_ustat, SYS_sysfs, SYS__sysctl, SYS_nfsservctl, SYS_migrate_pages,
        SYS_move_pages,
    ];
}

#[cfg(not(target_arch = "x86_64"))]
mod table {
    pub const IO_URING: [i64; 0] = [];
    pub const ALLOWED: &[i64] = &[];
    pub const DENIED: &[i64] = &[];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_and_denials_do_not_overlap() {
        let allowed: BTreeSet<i64> = table::ALLOWED.iter().copied().collect();
        assert_eq!(allowed.len(), table::ALLOWED.len(), "a syscall is listed twice");
        for nr in table::DENIED.iter().chain(table::IO_URING.iter()) {
            assert!(!allowed.contains(nr), "syscall {nr} is both allowed and denied");
        }
    }

    #[test]
    fn features_change_only_their_own_calls() {
        let none = policy(&BTreeSet::new()).unwrap();
        let all = policy(&Feature::ALL.into_iter().collect()).unwrap();
        let nr = |n: i64| n as u32;
        let (arch, zero) = (AUDIT_ARCH_X86_64, [0u64; 6]);
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        assert_eq!(none.verdict(arch, nr(libc::SYS_io_uring_setup), &zero), eperm);
        assert_eq!(all.verdict(arch, nr(libc::SYS_io_uring_setup), &zero), libc::SECCOMP_RET_ALLOW);
        let vsock = [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0];
        assert_eq!(none.verdict(arch, nr(libc::SYS_socket), &vsock), eperm);
        assert_eq!(all.verdict(arch, nr(libc::SYS_socket), &vsock), libc::SECCOMP_RET_ALLOW);
        for p in [&none, &all] {
            assert_eq!(p.verdict(arch, nr(libc::SYS_keyctl), &zero), eperm);
            assert_eq!(p.verdict(arch, nr(libc::SYS_clone3), &zero), libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
            let userns = [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0];
            assert_eq!(p.verdict(arch, nr(libc::SYS_clone), &userns), eperm);
            let thread = [(libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64, 0, 0, 0, 0, 0];
            assert_eq!(p.verdict(arch, nr(libc::SYS_clone), &thread), libc::SECCOMP_RET_ALLOW);
        }
    }

    #[test]
    fn the_compiled_program_answers_as_the_policy_for_every_call() {
        for features in [BTreeSet::new(), Feature::ALL.into_iter().collect()] {
            let p = policy(&features).unwrap();
            let prog = compile(&features).unwrap();
            assert!(prog.len() < 4096);
            let samples: [[u64; 6]; 6] = [
                [0; 6],
                [libc::AF_VSOCK as u64, libc::TIOCSTI, 0, 0, 0, 0],
                [libc::AF_PACKET as u64, 0, 0, 0, 0, 0],
                [libc::CLONE_NEWNS as u64 | libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
                [0xffff_ffff, 0, 0, 0, 0, 0],
                [0x0040_0000 | (1 << 40), libc::TIOCSTI | (1 << 33), 0, 0, 0, 0],
            ];
            for nr in 0..1024u32 {
                for args in &samples {
                    assert_eq!(
                        crate::bpf::run(&prog, AUDIT_ARCH_X86_64, nr, args),
                        p.verdict(AUDIT_ARCH_X86_64, nr, args),
                        "syscall {nr}, args {args:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn feature_names_round_trip_and_unknown_ones_are_refused() {
        for f in Feature::ALL {
            assert_eq!(Feature::parse(f.name()).unwrap(), f);
        }
        let e = Feature::parse("userns").unwrap_err().to_string();
        assert!(e.contains("io_uring, vsock, packet"), "{e}");
    }

    /// A forked child installs the profile and makes the calls: refused ones fail with the errno
    /// their filter gives, allowed ones still work.
    #[test]
    fn installed_profile_refuses_and_allows() {
        let program = compile(&BTreeSet::new()).unwrap();
        // SAFETY: fork in a test; the child only makes syscalls and _exits.
        match unsafe { libc::fork() } {
            0 => {
                let code = (|| {
                    // SAFETY: prctl sets a flag of this process.
                    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                    crate::bpf::install(&program).ok()?;
                    let errno = || nix::errno::Errno::last_raw();
                    // SAFETY: raw syscalls with no pointers, or pointers to nothing (NULL).
                    unsafe {
                        if libc::syscall(libc::SYS_keyctl, 0, -3, 0) != -1 || errno() != libc::EPERM {
                            return Some(10);
                        }
                        if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) != -1 || errno() != libc::EPERM {
                            return Some(11);
                        }
                        if libc::syscall(libc::SYS_io_uring_setup, 1, 0) != -1 || errno() != libc::EPERM {
                            return Some(12);
                        }
                        if libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) != -1 || errno() != libc::EPERM {
                            return Some(13);
                        }
                        if libc::syscall(libc::SYS_clone3, 0, 0) != -1 || errno() != libc::ENOSYS {
                            return Some(14);
                        }
                        if libc::getpid() <= 0 || libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) < 0 {
                            return Some(15);
                        }
                    }
                    Some(0)
                })()
                .unwrap_or(9);
                // SAFETY: _exit from the forked test child.
                unsafe { libc::_exit(code) }
            }
            pid => {
                let mut status = 0;
                // SAFETY: waitpid on our child with a status out-pointer we own.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFEXITED(status), "child died: {status}");
                assert_eq!(libc::WEXITSTATUS(status), 0, "step that failed (see the test body)");
            }
        }
    }
}
