//! A sandbox process from fork to exec. `init_in_child` is the sandbox's first process, in the spawner's
//! clone3 child in new namespaces; `exec_in_child` is a later process that has joined a running
//! sandbox's namespaces. Both run single-threaded; the steps read top to bottom as the recipe. Each
//! failure is reported to the spawner over the error pipe as one `InitError` and the child exits 127.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::caps::{self, CapSet};
use crate::{ns, rootfs};

/// The sandbox's first process: where its root is, its name, and the process itself (plan.rs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InitPlan {
    pub rootfs: PathBuf,
    pub hostname: String,
    pub process: ProcessPlan,
    /// A warm-pool sandbox: after entering its root, the first process reports itself ready and waits
    /// on fd 0 (a socket) for the command to become (a `Handover`), instead of exec'ing `process.argv`.
    #[serde(default)]
    pub pooled: bool,
}

/// The command a pooled sandbox's first process becomes, sent by the runtime when the pool is taken.
/// It travels as a 4-byte little-endian length (with the error pipe and, when `!stdin_null`, the stdin
/// pipe attached as SCM_RIGHTS) followed by this as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Handover {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub exec_candidates: Vec<String>,
    pub cwd: String,
    pub stdin_null: bool,
}

/// Largest handover the child accepts (argv and env are bounded well below this by plan.rs).
pub const MAX_HANDOVER_BYTES: usize = 8 << 20;

/// What any sandbox process runs, and with what, computed by the runtime before the fork.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessPlan {
    pub argv: Vec<String>,
    /// `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// Absolute paths inside the sandbox to try for argv[0], in PATH order.
    pub exec_candidates: Vec<String>,
    pub cwd: String,
    /// True: stdin is the sandbox's own /dev/null. False: a pipe is passed as the first fd.
    pub stdin_null: bool,
    pub keep_caps: CapSet,
    /// `cgroup.procs` files the spawner writes the child's pid into before it may continue.
    pub cgroup_procs: Vec<PathBuf>,
    /// stdio is a pty slave (the same fd three times), which becomes the controlling terminal.
    #[serde(default)]
    pub tty: bool,
}

/// One variant per failing step, with the errno (and path) the kernel gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum InitError {
    #[error("waiting for the runtime's go-ahead failed: {}", errno_text(*errno))]
    Sync { errno: i32 },
    #[error("setting up stdio failed: {}", errno_text(*errno))]
    Stdio { errno: i32 },
    #[error("making mounts private failed: {}", errno_text(*errno))]
    MakePrivate { errno: i32 },
    #[error("mounting proc at {path} failed: {}", errno_text(*errno))]
    MountProc { path: String, errno: i32 },
    #[error("making {path} read-only failed: {}", errno_text(*errno))]
    ProtectProc { path: String, errno: i32 },
    #[error("mounting devpts at {path} failed: {}", errno_text(*errno))]
    MountDevpts { path: String, errno: i32 },
    #[error("setting hostname {hostname:?} failed: {}", errno_text(*errno))]
    Hostname { hostname: String, errno: i32 },
    #[error("bringing up the loopback interface failed: {}", errno_text(*errno))]
    Loopback { errno: i32 },
    #[error("pivot_root into {path} failed: {}", errno_text(*errno))]
    PivotRoot { path: String, errno: i32 },
    #[error("opening /dev/null in the sandbox failed: {}", errno_text(*errno))]
    DevNull { errno: i32 },
    #[error("working directory {path} cannot be used: {}", errno_text(*errno))]
    Cwd { path: String, errno: i32 },
    #[error("dropping capabilities failed: {}", errno_text(*errno))]
    Capabilities { errno: i32 },
    #[error("starting a new session failed: {}", errno_text(*errno))]
    Setsid { errno: i32 },
    #[error("argument or environment contains a NUL byte")]
    NulByte,
    #[error("joining the sandbox's {ns} namespace failed: {}", errno_text(*errno))]
    Setns { ns: String, errno: i32 },
    #[error("making the pty the controlling terminal failed: {}", errno_text(*errno))]
    Tty { errno: i32 },
    #[error("entering a new cgroup namespace failed: {}", errno_text(*errno))]
    CgroupNs { errno: i32 },
    #[error("remounting the rootfs {path} for devices failed: {}", errno_text(*errno))]
    Remount { path: String, errno: i32 },
    #[error("masking {path} failed: {}", errno_text(*errno))]
    Mask { path: String, errno: i32 },
    #[error("joining a fresh session keyring failed: {}", errno_text(*errno))]
    Keyring { errno: i32 },
    #[error("setting the open-files limit failed: {}", errno_text(*errno))]
    Rlimit { errno: i32 },
    #[error("making the sandbox's network namespace failed: {}", errno_text(*errno))]
    Netns { errno: i32 },
    #[error("cloning the sandbox process failed: {}", errno_text(*errno))]
    Clone { errno: i32 },
    #[error("becoming root of the sandbox's user namespace failed: {}", errno_text(*errno))]
    UserIds { errno: i32 },
    #[error("bind-mounting the rootfs {path} onto itself failed: {}", errno_text(*errno))]
    BindRoot { path: String, errno: i32 },
    #[error("installing the seccomp filter failed: {}", errno_text(*errno))]
    Seccomp { errno: i32 },
    #[error("{command}: {}", exec_text(*errno))]
    Exec { command: String, errno: i32 },
}

impl InitError {
    /// Errno of the failing step, if one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            InitError::NulByte => None,
            InitError::Sync { errno }
            | InitError::Stdio { errno }
            | InitError::MakePrivate { errno }
            | InitError::MountProc { errno, .. }
            | InitError::ProtectProc { errno, .. }
            | InitError::MountDevpts { errno, .. }
            | InitError::Hostname { errno, .. }
            | InitError::Loopback { errno }
            | InitError::PivotRoot { errno, .. }
            | InitError::DevNull { errno }
            | InitError::Cwd { errno, .. }
            | InitError::Capabilities { errno }
            | InitError::Setsid { errno }
            | InitError::Setns { errno, .. }
            | InitError::Tty { errno }
            | InitError::CgroupNs { errno }
            | InitError::Remount { errno, .. }
            | InitError::Mask { errno, .. }
            | InitError::Keyring { errno }
            | InitError::Rlimit { errno }
            | InitError::Netns { errno }
            | InitError::Clone { errno }
            | InitError::UserIds { errno }
            | InitError::BindRoot { errno, .. }
            | InitError::Seccomp { errno }
            | InitError::Exec { errno, .. } => Some(*errno),
        }
    }
}

fn errno_text(errno: i32) -> String {
    Errno::from_raw(errno).desc().to_string()
}

fn exec_text(errno: i32) -> String {
    match errno {
        libc::ENOENT => "command not found in the sandbox (checked every PATH directory)".into(),
        libc::EACCES => "permission denied (not executable?)".into(),
        libc::ENOEXEC => "not an executable format this kernel runs".into(),
        e => errno_text(e),
    }
}

const PR_SET_MEMORY_MERGE: libc::c_int = 67;

/// Fd numbers the child arranges before anything else: 0-2 stdio, 3 the error pipe.
const ERR_FD: RawFd = 3;

/// The first process: runs the recipe and never returns (exec, or `_exit(127)` after reporting). With
/// `userns`, it was cloned into a new user namespace (with the pid, mount, uts and ipc ones) from a
/// helper that made its network namespace and allowed devices on its rootfs (spawner.rs).
pub fn init_in_child(plan: &InitPlan, stdio: &[RawFd], go: RawFd, err: RawFd, userns: bool) -> ! {
    let mut report_fd = err;
    let failure = match run_init(plan, stdio, go, err, &mut report_fd, userns) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report_and_exit(report_fd, &failure)
}

/// A later process, already in the sandbox's namespaces (the spawner's helper did the setns). With
/// `userns`, the helper joined the sandbox's user namespace too, gave it a fresh session keyring and
/// made it root there (`enter_user_ns_as_root`), so it never runs as host root in the sandbox.
pub fn exec_in_child(plan: &ProcessPlan, stdio: &[RawFd], go: RawFd, err: RawFd, userns: bool) -> ! {
    let mut report_fd = err;
    let failure = match prelude(plan, stdio, go, err, &mut report_fd, !userns).and_then(|()| finish(plan)) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report_and_exit(report_fd, &failure)
}

/// Writes the failure to the spawner and exits without running anything of the spawner's.
pub fn report_and_exit(fd: RawFd, failure: &InitError) -> ! {
    let msg = serde_json::to_vec(failure).unwrap_or_default();
    // SAFETY: write(2) of our own buffer to the error pipe, then _exit(2): no destructors, no atexit,
    // nothing shared with the spawner runs in this copy of its address space.
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(127);
    }
}

pub enum Never {}

fn run_init(
    plan: &InitPlan,
    stdio: &[RawFd],
    go: RawFd,
    err: RawFd,
    report_fd: &mut RawFd,
    userns: bool,
) -> Result<Never, InitError> {
    // In a user namespace this process stays host root (an id it has no name for) until it has left
    // the host's tree: as the owner of the private data dir it may still walk to the rootfs. Nothing
    // else runs in the sandbox yet.
    prelude(&plan.process, stdio, go, err, report_fd, true)?;
    // Now that the spawner has moved us into the sandbox's cgroups, they become the root of our own
    // cgroup namespace: /proc/self/cgroup shows "/" and nothing of the host's hierarchy.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| InitError::CgroupNs { errno: e as i32 })?;

    // 4. Mounts, all before pivot_root because they name host paths.
    let root = plan.rootfs.as_path();
    rootfs::make_private_in_child().map_err(|e| InitError::MakePrivate { errno: e as i32 })?;
    if userns {
        // Mounts copied into a user namespace are locked to their parents, and pivot_root refuses such
        // a root: a bind mount of the rootfs onto itself is a mount of our own (with the same flags,
        // still locked: the helper already allowed devices on it, and nosuid stays).
        rootfs::bind_onto_itself_in_child(root)
            .map_err(|e| InitError::BindRoot { path: root.display().to_string(), errno: e as i32 })?;
    } else {
        rootfs::allow_devices_in_child(root)
            .map_err(|e| InitError::Remount { path: root.display().to_string(), errno: e as i32 })?;
    }
    rootfs::mount_proc_in_child(root)
        .map_err(|e| InitError::MountProc { path: show(root, "proc"), errno: e as i32 })?;
    for entry in rootfs::PROC_READONLY {
        rootfs::protect_proc_in_child(root, entry)
            .map_err(|e| InitError::ProtectProc { path: format!("/proc/{entry}"), errno: e as i32 })?;
    }
    for entry in rootfs::PROC_MASKED {
        rootfs::mask_proc_in_child(root, entry)
            .map_err(|e| InitError::Mask { path: format!("/proc/{entry}"), errno: e as i32 })?;
    }
    rootfs::mount_devpts_in_child(root)
        .map_err(|e| InitError::MountDevpts { path: show(root, "dev/pts"), errno: e as i32 })?;

    // 5. Identity and network of the new uts and net namespaces (a user namespace's network namespace
    //    came ready from the helper).
    nix::unistd::sethostname(&plan.hostname)
        .map_err(|e| InitError::Hostname { hostname: plan.hostname.clone(), errno: e as i32 })?;
    if !userns {
        ns::loopback_up().map_err(|e| InitError::Loopback { errno: e as i32 })?;
    }

    // 6. Into the rootfs; the host's tree is gone from here on.
    rootfs::pivot_in_child(root)
        .map_err(|e| InitError::PivotRoot { path: root.display().to_string(), errno: e as i32 })?;
    if userns {
        become_root().map_err(|e| InitError::UserIds { errno: e as i32 })?;
    }
    if plan.pooled {
        let process = wait_for_handover(&plan.process, report_fd)?;
        return finish(&process);
    }
    finish(&plan.process)
}

/// Pool mode: closing the spawner's error pipe tells it this sandbox is ready (as an exec would); then
/// the runtime's handover brings the command, a new error pipe (fd 3 again) and maybe a stdin pipe.
/// A closed socket means the pool let this sandbox go: exit quietly.
fn wait_for_handover(base: &ProcessPlan, report_fd: &mut RawFd) -> Result<ProcessPlan, InitError> {
    // SAFETY: closing fd 3, the spawner's error pipe, which this process owns.
    unsafe { libc::close(ERR_FD) };
    let (len, fds) = match recv_length_and_fds(0) {
        Ok(Some(got)) => got,
        Ok(None) | Err(_) => exit_quietly(),
    };
    let mut json = vec![0u8; len.min(MAX_HANDOVER_BYTES)];
    if len > MAX_HANDOVER_BYTES || read_exact(0, &mut json).is_err() {
        exit_quietly();
    }
    let Some(&err) = fds.first() else { exit_quietly() };
    dup2(err, ERR_FD).map_err(|e| InitError::Stdio { errno: e as i32 })?;
    // SAFETY: fcntl on fd 3, ours since the dup2.
    unsafe { libc::fcntl(ERR_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    *report_fd = ERR_FD;
    let h: Handover = serde_json::from_slice(&json).map_err(|_| InitError::Sync { errno: libc::EPROTO })?;
    match (h.stdin_null, fds.get(1)) {
        (false, Some(&stdin)) => dup2(stdin, 0).map_err(|e| InitError::Stdio { errno: e as i32 })?,
        // finish() opens the sandbox's /dev/null over fd 0 (the socket) for stdin_null.
        (true, _) => {}
        (false, None) => return Err(InitError::Stdio { errno: libc::EBADF }),
    }
    // The received copies go, except where one already landed on the number it needed (3 was free).
    for fd in fds.into_iter().filter(|fd| *fd != ERR_FD && *fd != 0) {
        // SAFETY: closing a received fd that was dup2'd into place above.
        unsafe { libc::close(fd) };
    }
    Ok(ProcessPlan {
        argv: h.argv,
        env: h.env,
        exec_candidates: h.exec_candidates,
        cwd: h.cwd,
        stdin_null: h.stdin_null,
        ..base.clone()
    })
}

fn exit_quietly() -> ! {
    // SAFETY: _exit(2) without running anything of the spawner's copied state.
    unsafe { libc::_exit(0) }
}

/// Reads the 4-byte length and the fds sent with it. None on end-of-file.
fn recv_length_and_fds(sock: RawFd) -> Result<Option<(usize, Vec<RawFd>)>, Errno> {
    let mut len = [0u8; 4];
    let mut iov = [std::io::IoSliceMut::new(&mut len)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = loop {
        match nix::sys::socket::recvmsg::<()>(sock, &mut iov, Some(&mut space), nix::sys::socket::MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    if msg.bytes == 0 {
        return Ok(None);
    }
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(|_| Errno::EPROTO)? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(r) = c {
            fds.extend(r);
        }
    }
    let got = msg.bytes;
    drop(iov);
    if got < 4 {
        read_exact(sock, &mut len[got..])?;
    }
    Ok(Some((u32::from_le_bytes(len) as usize, fds)))
}

fn read_exact(fd: RawFd, mut buf: &mut [u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: read(2) into the part of our buffer not yet filled.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return Err(Errno::EPIPE),
            n if n > 0 => buf = &mut buf[n as usize..],
            _ if Errno::last() == Errno::EINTR => {}
            _ => return Err(Errno::last()),
        }
    }
    Ok(())
}

/// Steps 1-4, shared by every sandbox process.
fn prelude(
    plan: &ProcessPlan,
    stdio: &[RawFd],
    go: RawFd,
    err: RawFd,
    report_fd: &mut RawFd,
    new_keyring: bool,
) -> Result<(), InitError> {
    // 0. Until exec this process is a copy of the runtime: nothing in the sandbox may ptrace it, read
    //    its memory or open its /proc/PID/exe (the host binary). exec makes the user's command dumpable.
    // SAFETY: prctl(PR_SET_DUMPABLE) sets a flag of this process and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // The runtime works with umask 077 (its data dir is private); the sandbox gets the usual one.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    // 1. Wait until the spawner has put us into the sandbox's cgroups: limits hold from the first
    //    instruction of user code.
    wait_for_go(go).map_err(|e| InitError::Sync { errno: e as i32 })?;
    // 2. stdio on 0-2 and the error pipe on 3; every other inherited fd (the spawner's socket, other
    //    sandboxes' pidfds) is closed so nothing of the host leaks in.
    arrange_fds(stdio, err, plan.stdin_null).map_err(|e| InitError::Stdio { errno: e as i32 })?;
    *report_fd = ERR_FD;
    // 3. Signals back to defaults: the spawner blocks SIGCHLD and Rust ignores SIGPIPE, and both would
    //    survive exec.
    reset_signals();
    // 4. A session keyring of its own: the one inherited from the runtime is the host's (unless the
    //    helper that made this process joined one for it, see `enter_user_ns_as_root`).
    if new_keyring {
        join_fresh_session_keyring().map_err(|e| InitError::Keyring { errno: e as i32 })?;
    }
    Ok(())
}

/// In the helper of an exec into a sandbox with a user namespace, after it joined that namespace: a
/// fresh session keyring, joined while still host root (a keyring counts against its owner's key
/// quota, and every sandbox's root is the same host uid, whose quota of 200 keys they would share),
/// then root of the namespace.
pub fn enter_user_ns_as_root() -> Result<(), InitError> {
    join_fresh_session_keyring().map_err(|e| InitError::Keyring { errno: e as i32 })?;
    become_root().map_err(|e| InitError::UserIds { errno: e as i32 })
}

/// In a user namespace whose maps are written: become its root (host uid `IdMap.base`), without the
/// spawner's supplementary groups. Capabilities stay: they are the namespace's.
fn become_root() -> Result<(), Errno> {
    nix::unistd::setgroups(&[])?;
    let root_gid = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)?;
    let root = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(root, root, root)
}

/// Steps 7-9, inside the sandbox's root: stdin, working directory, capabilities, session, exec.
fn finish(plan: &ProcessPlan) -> Result<Never, InitError> {
    // Everything is prepared before the first syscall that cannot be undone, so a bad plan fails cleanly.
    let argv = cstrings(&plan.argv)?;
    let envp = cstrings(&plan.env)?;
    let candidates = cstrings(&plan.exec_candidates)?;
    if plan.stdin_null {
        // Opened inside the sandbox so a checkpoint finds it in the sandbox's own mount namespace.
        open_dev_null_as_stdin().map_err(|e| InitError::DevNull { errno: e as i32 })?;
    }
    enter_cwd(&plan.cwd).map_err(|e| InitError::Cwd { path: plan.cwd.clone(), errno: e as i32 })?;

    // KSM may merge this process's identical pages with other sandboxes' (inherited across exec and
    // fork; a kernel without PR_SET_MEMORY_MERGE answers EINVAL, which only means no merging).
    // SAFETY: prctl sets a flag of this process and touches no memory of ours.
    unsafe { libc::prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) };

    set_open_files_limit().map_err(|e| InitError::Rlimit { errno: e as i32 })?;

    // 7. Last privileged step: give up the capabilities the sandbox must not have.
    caps::restrict_in_child(plan.keep_caps, caps::last_cap())
        .map_err(|e| InitError::Capabilities { errno: e as i32 })?;
    // 8. Each process leads its own session, inside the sandbox (CRIU refuses an outside leader).
    nix::unistd::setsid().map_err(|e| InitError::Setsid { errno: e as i32 })?;
    if plan.tty {
        // SAFETY: TIOCSCTTY on fd 0, our pty slave, from a session leader without a terminal.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return Err(InitError::Tty { errno: Errno::last() as i32 });
        }
    }

    // 9. no_new_privs and the seccomp profile (seccomp.rs); from here on only the exec below is needed.
    crate::seccomp::install_in_child().map_err(|e| InitError::Seccomp { errno: e as i32 })?;

    // 10. Exec, trying each PATH candidate like execvp: a missing file moves on, EACCES is remembered
    //    (it is more telling than a later ENOENT), anything else stops.
    let command = plan.argv.first().cloned().unwrap_or_default();
    let mut denied = false;
    for path in &candidates {
        match nix::unistd::execve(path, &argv, &envp) {
            Ok(never) => match never {},
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(Errno::EACCES) => denied = true,
            Err(e) => return Err(InitError::Exec { command, errno: e as i32 }),
        }
    }
    Err(InitError::Exec { command, errno: if denied { libc::EACCES } else { libc::ENOENT } })
}

fn show(root: &Path, rel: &str) -> String {
    root.join(rel).display().to_string()
}

fn cstrings(items: &[String]) -> Result<Vec<CString>, InitError> {
    items.iter().map(|s| CString::new(s.as_bytes()).map_err(|_| InitError::NulByte)).collect()
}

fn arrange_fds(stdio: &[RawFd], err: RawFd, stdin_null: bool) -> Result<(), Errno> {
    // Move every fd we keep above the target range first, so no dup2 below clobbers another.
    let high = |fd: RawFd| -> Result<RawFd, Errno> {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd we were handed; returns a new fd or -1.
        let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(r)
        }
    };
    let err_high = high(err)?;
    let kept: Vec<RawFd> = stdio.iter().map(|fd| high(*fd)).collect::<Result<_, _>>()?;
    let targets: &[RawFd] = if stdin_null { &[1, 2] } else { &[0, 1, 2] };
    for (src, dst) in kept.iter().zip(targets) {
        dup2(*src, *dst)?;
    }
    dup2(err_high, ERR_FD)?;
    // SAFETY: fcntl on fd 3, which dup2 just made ours.
    if unsafe { libc::fcntl(ERR_FD, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: close_range(2) closes fds we own; nothing in this process refers to them afterwards.
    if unsafe { libc::syscall(libc::SYS_close_range, ERR_FD + 1, u32::MAX, 0) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn dup2(src: RawFd, dst: RawFd) -> Result<(), Errno> {
    // SAFETY: dup2(2) on fds owned by this process.
    if unsafe { libc::dup2(src, dst) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn reset_signals() {
    // SAFETY: sigemptyset/sigprocmask/signal only touch this process's signal state; SIGKILL and SIGSTOP
    // refuse SIG_DFL harmlessly.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

fn wait_for_go(go: RawFd) -> Result<(), Errno> {
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: read(2) of one byte into our buffer from the go pipe.
        let n = unsafe { libc::read(go, byte.as_mut_ptr().cast(), 1) };
        match n {
            1 => return Ok(()),
            0 => return Err(Errno::EPIPE), // the spawner gave up on us
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(Errno::last()),
        }
    }
}

fn open_dev_null_as_stdin() -> Result<(), Errno> {
    let fd = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty())?;
    use std::os::fd::AsRawFd;
    dup2(fd.as_raw_fd(), 0)
}

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

pub fn join_fresh_session_keyring() -> Result<(), Errno> {
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL) makes and joins a new anonymous keyring; the
    // NULL name means no memory of ours is read.
    if unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, std::ptr::null::<libc::c_char>()) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Open files per process: the soft limit programs expect, and a hard limit that, times the pids
/// limit, stays far below the host's file-max (the rest is bounded by the memory cgroup, which
/// kernel memory such as open files is charged to).
pub const NOFILE_SOFT: u64 = 1024;
pub const NOFILE_HARD: u64 = 4096;

fn set_open_files_limit() -> Result<(), Errno> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, NOFILE_SOFT, NOFILE_HARD)
}

fn enter_cwd(cwd: &str) -> Result<(), Errno> {
    let mut path = PathBuf::from("/");
    for part in Path::new(cwd).components().skip(1) {
        path.push(part);
        match nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    nix::unistd::chdir(cwd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_errors_round_trip_through_json() {
        let e = InitError::Exec { command: "python4".into(), errno: libc::ENOENT };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""step":"exec""#), "{json}");
        let back: InitError = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.to_string(), "python4: command not found in the sandbox (checked every PATH directory)");
        assert_eq!(e.errno(), Some(libc::ENOENT));
    }
}
