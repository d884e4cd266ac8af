//! The spawner: a single-threaded process forked from forkspace-rt before its async runtime starts.
//! clone3 into new namespaces and setns into a mount namespace are only possible (or safe) from a
//! single-threaded process, so every sandbox process is created here, and so are the helpers that must
//! end up supervising sandbox trees (criu restore, criu lazy-pages). The spawner is their parent (or,
//! as a child subreaper, the adoptive parent of trees criu restores): it reaps them and reports exits.
//!
//! Channel design: the runtime sends `Request`s over a SOCK_SEQPACKET socketpair, one JSON message per
//! packet, with fds as SCM_RIGHTS. Every request with a `tag` is answered with `Spawned` or `Failed`
//! (same tag; `Spawned` may carry fds). `Exited` is sent unprompted when a tracked process is reaped;
//! a process's `Spawned` always precedes its `Exited`. When the runtime's end closes, the spawner kills
//! every tracked process, reaps them and exits: nothing it started outlives it unsupervised.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use crate::ns;
use crate::sandbox_init::{self, InitError, InitPlan, ProcessPlan};
use crate::userns::IdMap;

const MAX_MESSAGE: usize = 256 * 1024;
const MAX_FDS: usize = 8;
/// Statuses of reaped processes nobody tracked yet, kept for a late `Adopt`.
const ORPHAN_MEMORY: usize = 256;
const PR_SET_MEMORY_MERGE: libc::c_int = 67;

/// A non-sandbox program the spawner runs as a tracked child (criu restore, criu lazy-pages).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HelperPlan {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    /// `cgroup.procs` files to join before exec (a restored tree inherits them).
    pub cgroup_procs: Vec<PathBuf>,
    /// Run under PR_SET_MEMORY_MERGE, so KSM may merge the pages of what it restores.
    pub memory_merge: bool,
    /// Where each passed fd goes in the helper, in order (e.g. [1, 2, 9, 10]).
    pub fd_targets: Vec<RawFd>,
    /// A criu restore's `--root`: the sandbox rootfs, mounted `nodev` on the host. The helper remounts
    /// it allowing devices in a mount namespace of its own, as the sandbox's first process does.
    #[serde(default)]
    pub sandbox_root: Option<PathBuf>,
    /// After joining `cgroup_procs`, enter a new cgroup namespace rooted there (the restored tree
    /// inherits it; criu with --manage-cgroups=ignore does not restore one).
    #[serde(default)]
    pub cgroup_ns: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
enum Request {
    /// A sandbox's first process, in new namespaces. fds: stdio.
    Spawn {
        tag: u64,
        plan: InitPlan,
    },
    /// A process in the namespaces of the running sandbox whose first process is `target`. fds: stdio.
    Exec {
        tag: u64,
        target: i32,
        plan: ProcessPlan,
    },
    /// A helper program. fds: as `plan.fd_targets` says.
    Helper {
        tag: u64,
        plan: HelperPlan,
    },
    /// A fresh network namespace with lo up; answered with its fd.
    NewNetns {
        tag: u64,
    },
    /// Track a process re-parented to the spawner (a tree criu restored).
    Adopt {
        pid: i32,
    },
    /// Set the hostname in the uts namespace of `target`.
    SetHostname {
        tag: u64,
        target: i32,
        name: String,
    },
    Kill {
        pid: i32,
        signal: i32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "camelCase")]
enum Event {
    Spawned { tag: u64, pid: i32 },
    Failed { tag: u64, error: SpawnFailure },
    Exited { pid: i32, status: ExitStatus },
}

/// Why a process did not reach exec (or a namespace could not be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SpawnFailure {
    #[error(transparent)]
    Init(InitError),
    #[error("clone3 into new namespaces failed: {}", Errno::from_raw(*errno).desc())]
    Clone { errno: i32 },
    #[error("fork failed: {}", Errno::from_raw(*errno).desc())]
    Fork { errno: i32 },
    #[error("creating a sync pipe failed: {}", Errno::from_raw(*errno).desc())]
    Pipe { errno: i32 },
    #[error("moving the sandbox process into {path} failed: {}", Errno::from_raw(*errno).desc())]
    Attach { path: PathBuf, errno: i32 },
    #[error("the request carried {got} fds, expected {expected}")]
    Fds { expected: usize, got: usize },
    #[error("the sandbox (pid {target}) is gone: {}", Errno::from_raw(*errno).desc())]
    Target { target: i32, errno: i32 },
    #[error("starting {program} failed: {}", Errno::from_raw(*errno).desc())]
    Helper { program: String, errno: i32 },
    #[error("creating a network namespace failed: {}", Errno::from_raw(*errno).desc())]
    Netns { errno: i32 },
    #[error("writing the sandbox's user namespace id maps failed: {}", Errno::from_raw(*errno).desc())]
    IdMap { errno: i32 },
}

/// How a process ended: exactly one of the two is set (neither, for an adopted process whose status
/// was lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// Forks the spawner. Call before any thread exists; returns the runtime's end of the channel. With
/// `userns`, every sandbox it clones runs in a user namespace of its own with that id map.
pub fn start(userns: Option<IdMap>) -> io::Result<OwnedFd> {
    let (ours, theirs) = socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::SeqPacket,
        None,
        socket::SockFlag::SOCK_CLOEXEC,
    )?;
    // SAFETY: called while the process is single-threaded (main, before the tokio runtime is built).
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            serve(theirs, userns)
        }
        nix::unistd::ForkResult::Parent { .. } => {
            drop(theirs);
            Ok(ours)
        }
    }
}

struct Spawner {
    sock: OwnedFd,
    children: HashMap<i32, OwnedFd>,
    orphans: VecDeque<(i32, ExitStatus)>,
    /// Helpers of clone_via_helper, reaped without a report (not waited for: an exiting helper frees
    /// the namespaces it made, which can wait for an RCU grace period).
    helpers: HashSet<i32>,
    userns: Option<IdMap>,
}

fn serve(sock: OwnedFd, userns: Option<IdMap>) -> ! {
    set_process_name(b"forkspace-spawn\0");
    // Every process forked from here starts as a copy of the runtime's memory: none may be ptraced or
    // have its memory read (sandbox processes until their exec), and none shares the keyring of the
    // host session that started the runtime (criu restores, whose trees inherit it).
    // SAFETY: prctl(PR_SET_DUMPABLE) sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let _ = sandbox_init::join_fresh_session_keyring();
    // Keep only stdio and our socket: the runtime's data-dir lock, catalog and listening sockets must
    // close when the runtime dies, even while the spawner is still busy killing sandboxes.
    let keep = sock.as_raw_fd();
    // SAFETY: close_range(2) on fds of this process that nothing in the spawner refers to.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3, keep - 1, 0);
        libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0);
    }
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER): orphans below us (criu-restored trees) are re-parented to
    // this process, which reaps them, instead of to the host's init.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    // Signals meant for the runtime (a terminal's SIGINT, `pkill forkspace-rt`) must not kill the
    // spawner: the runtime shuts it down by closing the socket, after stopping the sandboxes.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: setting a signal disposition to ignore; no handler code runs.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let Ok(sigfd) = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        exit_now(1);
    };
    let mut sp = Spawner { sock, children: HashMap::new(), orphans: VecDeque::new(), helpers: HashSet::new(), userns };
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let mut fds = [
            libc::pollfd { fd: sp.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sigfd.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: poll(2) on two pollfd structs we own, for as long as the call lasts.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue; // EINTR
        }
        if fds[1].revents != 0 {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            sp.reap();
        }
        if fds[0].revents != 0 {
            match recv(&sp.sock, &mut buf) {
                Ok(None) | Err(_) => sp.shutdown(),
                Ok(Some((len, received))) => match serde_json::from_slice::<Request>(&buf[..len]) {
                    Ok(request) => sp.handle(request, received),
                    Err(_) => {} // a malformed packet from our own runtime: nothing sensible to answer
                },
            }
        }
    }
}

impl Spawner {
    fn handle(&mut self, request: Request, fds: Vec<OwnedFd>) {
        let (tag, outcome) = match request {
            Request::Spawn { tag, plan } => (tag, self.spawn(&plan, fds)),
            Request::Exec { tag, target, plan } => (tag, self.exec_into(target, &plan, fds)),
            Request::Helper { tag, plan } => (tag, self.helper(&plan, fds)),
            Request::NewNetns { tag } => match new_netns(self.userns.is_some()) {
                Ok(fd) => {
                    send_event(&self.sock, &Event::Spawned { tag, pid: 0 }, &[fd.as_raw_fd()]);
                    return;
                }
                Err(errno) => (tag, Err(SpawnFailure::Netns { errno: errno as i32 })),
            },
            Request::Adopt { pid } => return self.adopt(pid),
            Request::SetHostname { tag, target, name } => (tag, set_hostname_of(target, &name).map(|()| 0)),
            Request::Kill { pid, signal } => {
                if let Some(pidfd) = self.children.get(&pid) {
                    let _ = pidfd_send_signal(pidfd.as_fd(), signal);
                    // Every process is a session (and group) leader, so its children share its group:
                    // signal them too, or a killed shell's children keep its pipes open. The group id
                    // cannot be reused while the unreaped leader exists.
                    // SAFETY: kill(2) of a process group; ESRCH when it is empty is harmless.
                    unsafe { libc::kill(-pid, signal) };
                }
                return;
            }
        };
        let event = match outcome {
            Ok(pid) => Event::Spawned { tag, pid },
            Err(error) => Event::Failed { tag, error },
        };
        send_event(&self.sock, &event, &[]);
    }

    fn spawn(&mut self, plan: &InitPlan, fds: Vec<OwnedFd>) -> Result<i32, SpawnFailure> {
        check_stdio(&plan.process, &fds)?;
        let sync = SyncPipes::new()?;
        let stdio: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let (go, err) = (sync.go_r.as_raw_fd(), sync.err_w.as_raw_fd());
        let (pid, pidfd, sync) = match self.userns {
            None => match ns::clone_into_namespaces(ns::SANDBOX_NAMESPACES) {
                Err(e) => return Err(SpawnFailure::Clone { errno: e as i32 }),
                Ok(ns::Forked::Child) => sandbox_init::init_in_child(plan, &stdio, go, err, false),
                Ok(ns::Forked::Parent { pid, pidfd }) => (pid, pidfd, sync),
            },
            Some(ids) => {
                let root = plan.rootfs.as_path();
                let (pid, helper, sync) = clone_via_helper(
                    sync,
                    || prepare_for_user_ns(root),
                    ns::SANDBOX_NAMESPACES_USERNS,
                    || {
                        sandbox_init::init_in_child(plan, &stdio, go, err, true);
                    },
                )?;
                self.helpers.insert(helper);
                let pidfd = pidfd_open(pid).map_err(|e| SpawnFailure::Clone { errno: e as i32 })?;
                // The child waits for the go-ahead before it uses any id, so the maps are in place first.
                if let Err(errno) = write_id_maps(pid, ids) {
                    let _ = pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                    let _ = waitpid(Pid::from_raw(pid), None);
                    return Err(SpawnFailure::IdMap { errno });
                }
                (pid, pidfd, sync)
            }
        };
        drop(fds);
        self.release(pid, pidfd, &plan.process.cgroup_procs, sync)
    }

    /// Joins `target`'s namespaces in a forked helper, which clones the process as a sibling (a child of
    /// the spawner, so it is reaped here) and exits.
    fn exec_into(&mut self, target: i32, plan: &ProcessPlan, fds: Vec<OwnedFd>) -> Result<i32, SpawnFailure> {
        check_stdio(plan, &fds)?;
        // Opened before any setns: afterwards /proc is the sandbox's. The mount namespace comes after the
        // others because joining it changes our root. The user namespace, when the sandbox has one of its
        // own, comes last: every other setns is then done with the initial one's privileges (the
        // sandbox's network namespace, and a restored sandbox's cgroup namespace, belong to it).
        let mut ns_fds = Vec::new();
        for name in ["ipc", "uts", "net", "cgroup", "pid", "mnt", "user"] {
            let path = format!("/proc/{target}/ns/{name}");
            let fd = nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| SpawnFailure::Target { target, errno: e as i32 })?;
            if name == "user" && is_own_namespace(&fd, "user") {
                continue;
            }
            ns_fds.push((name, fd));
        }
        let user_ns = ns_fds.iter().any(|(name, _)| *name == "user");
        let sync = SyncPipes::new()?;
        let stdio: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let (go, err) = (sync.go_r.as_raw_fd(), sync.err_w.as_raw_fd());
        let joined = || {
            for (name, fd) in &ns_fds {
                nix::sched::setns(fd, nix::sched::CloneFlags::empty())
                    .map_err(|e| InitError::Setns { ns: (*name).into(), errno: e as i32 })?;
            }
            // Root of the sandbox's user namespace before the process exists: it never runs there as
            // host root.
            if user_ns {
                sandbox_init::enter_user_ns_as_root()?;
            }
            Ok(())
        };
        let (pid, helper, sync) = clone_via_helper(sync, joined, 0, || {
            sandbox_init::exec_in_child(plan, &stdio, go, err, user_ns);
        })?;
        self.helpers.insert(helper);
        drop((fds, ns_fds));
        let pidfd = pidfd_open(pid).map_err(|e| SpawnFailure::Target { target, errno: e as i32 })?;
        self.release(pid, pidfd, &plan.cgroup_procs, sync)
    }

    /// Puts a cloned process into its cgroups, lets it continue, and waits until it has exec'd.
    fn release(
        &mut self,
        pid: i32,
        pidfd: OwnedFd,
        cgroup_procs: &[PathBuf],
        sync: SyncPipes,
    ) -> Result<i32, SpawnFailure> {
        let SyncPipes { go_r, go_w, err_r, err_w } = sync;
        drop((go_r, err_w));
        for path in cgroup_procs {
            if let Err(e) = std::fs::write(path, pid.to_string()) {
                let _ = pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                return Err(SpawnFailure::Attach { path: path.clone(), errno });
            }
        }
        let _ = nix::unistd::write(&go_w, b"g");
        drop(go_w);
        let report = read_to_end(err_r.as_raw_fd());
        if report.is_empty() {
            self.children.insert(pid, pidfd);
            return Ok(pid);
        }
        let _ = waitpid(Pid::from_raw(pid), None);
        Err(init_failure(&report))
    }

    fn helper(&mut self, plan: &HelperPlan, fds: Vec<OwnedFd>) -> Result<i32, SpawnFailure> {
        if fds.len() != plan.fd_targets.len() {
            return Err(SpawnFailure::Fds { expected: plan.fd_targets.len(), got: fds.len() });
        }
        let program = plan.argv.first().cloned().unwrap_or_default();
        let argv = cstrings(&plan.argv);
        let env = cstrings(&plan.env);
        let (err_r, err_w) = pipe()?;
        // SAFETY: the spawner is single-threaded, so the child may do anything before exec.
        match unsafe { nix::unistd::fork() } {
            Err(e) => Err(SpawnFailure::Fork { errno: e as i32 }),
            Ok(nix::unistd::ForkResult::Child) => {
                let errno = run_helper_in_child(plan, &fds, &argv, &env, err_w.as_raw_fd());
                let _ = nix::unistd::write(&err_w, &errno.to_ne_bytes());
                exit_now(127)
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                drop((err_w, fds));
                let report = read_to_end(err_r.as_raw_fd());
                if report.len() == 4 {
                    let _ = waitpid(child, None);
                    let errno = i32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
                    return Err(SpawnFailure::Helper { program, errno });
                }
                let pidfd =
                    pidfd_open(child.as_raw()).map_err(|e| SpawnFailure::Helper { program, errno: e as i32 })?;
                self.children.insert(child.as_raw(), pidfd);
                Ok(child.as_raw())
            }
        }
    }

    fn adopt(&mut self, pid: i32) {
        if let Some(i) = self.orphans.iter().position(|(p, _)| *p == pid) {
            let (_, status) = self.orphans.remove(i).unwrap_or((pid, ExitStatus { code: None, signal: None }));
            send_event(&self.sock, &Event::Exited { pid, status }, &[]);
            return;
        }
        match pidfd_open(pid) {
            Ok(pidfd) => {
                self.children.insert(pid, pidfd);
            }
            Err(_) => {
                send_event(&self.sock, &Event::Exited { pid, status: ExitStatus { code: None, signal: None } }, &[])
            }
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, status) = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), ExitStatus { code: Some(code), signal: None }),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid.as_raw(), ExitStatus { code: None, signal: Some(sig as i32) })
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if self.children.remove(&pid).is_some() {
                send_event(&self.sock, &Event::Exited { pid, status }, &[]);
            } else if self.helpers.remove(&pid) {
                // A helper of clone_via_helper: nobody waits for it.
            } else {
                // Re-parented to us (subreaper) before anyone asked to adopt it: remember briefly.
                self.orphans.push_back((pid, status));
                if self.orphans.len() > ORPHAN_MEMORY {
                    self.orphans.pop_front();
                }
            }
        }
    }

    fn shutdown(&mut self) -> ! {
        for (pid, pidfd) in &self.children {
            let _ = pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            // A paused sandbox's processes sit in a frozen v1 freezer, where SIGKILL waits for a thaw:
            // without one, the waitpid below (and the sandbox's pid namespace teardown) never ends.
            thaw_v1_freezer(*pid);
        }
        for pid in self.children.keys() {
            let _ = waitpid(Pid::from_raw(*pid), None);
        }
        exit_now(0)
    }
}

/// The go-ahead pipe (spawner → child) and the error pipe (child → spawner, closed by exec).
struct SyncPipes {
    go_r: OwnedFd,
    go_w: OwnedFd,
    err_r: OwnedFd,
    err_w: OwnedFd,
}

impl SyncPipes {
    fn new() -> Result<SyncPipes, SpawnFailure> {
        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        Ok(SyncPipes { go_r, go_w, err_r, err_w })
    }
}

/// Forks a helper that runs `prepare` (joining or making namespaces), then clones a process into
/// `namespaces` as the spawner's child (CLONE_PARENT), reports its pid and exits; the process runs
/// `child`, which must not return. Returns the pid, the helper's (for the caller to reap) and the sync
/// pipes for `release`, or what the helper reported on the error pipe when it failed before the clone.
fn clone_via_helper(
    sync: SyncPipes,
    prepare: impl FnOnce() -> Result<(), InitError>,
    namespaces: u64,
    child: impl FnOnce(),
) -> Result<(i32, i32, SyncPipes), SpawnFailure> {
    let (pid_r, pid_w) = pipe()?;
    // SAFETY: the spawner is single-threaded, so the child may do anything before exec.
    let helper = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(SpawnFailure::Fork { errno: e as i32 }),
        Ok(nix::unistd::ForkResult::Child) => {
            let err = sync.err_w.as_raw_fd();
            if let Err(e) = prepare() {
                sandbox_init::report_and_exit(err, &e);
            }
            match ns::clone_sibling(namespaces) {
                Err(e) => sandbox_init::report_and_exit(err, &InitError::Clone { errno: e as i32 }),
                Ok(None) => {
                    // The spawner reads the pid pipe to its end: this copy must not hold it open.
                    // SAFETY: closing an fd this process owns; the OwnedFd is never dropped here,
                    // because `child` does not return.
                    unsafe { libc::close(pid_w.as_raw_fd()) };
                    child();
                    exit_now(127) // `child` execs or exits; it never returns
                }
                Ok(Some(pid)) => {
                    let _ = nix::unistd::write(&pid_w, &pid.to_ne_bytes());
                    exit_now(0)
                }
            }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
    };
    drop(pid_w);
    // The pipe ends when the helper's fds close, early in its exit.
    let got = read_to_end(pid_r.as_raw_fd());
    match <[u8; 4]>::try_from(got.as_slice()) {
        Ok(raw) => Ok((i32::from_ne_bytes(raw), helper.as_raw(), sync)),
        Err(_) => {
            let _ = waitpid(helper, None);
            // The helper failed before cloning; its report is on the error pipe.
            let SyncPipes { go_w, err_r, err_w, .. } = sync;
            drop((go_w, err_w));
            Err(init_failure(&read_to_end(err_r.as_raw_fd())))
        }
    }
}

/// In the helper of a sandbox with a user namespace, before the clone: its network namespace, owned
/// by the initial user namespace (lo up, low ports bindable, see ns::new_network), and a mount namespace
/// of the helper's own in which the rootfs allows the environment's device nodes. The sandbox's mount
/// namespace is copied from it: a copy into a user namespace keeps (and locks) each mount's flags, so
/// the rootfs stays nosuid there, and the sandbox could not clear `nodev` itself.
fn prepare_for_user_ns(rootfs: &std::path::Path) -> Result<(), InitError> {
    ns::new_network(true).map_err(|e| InitError::Netns { errno: e as i32 })?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .and_then(|()| crate::rootfs::allow_devices_in_child(rootfs))
        .map_err(|e| InitError::Remount { path: rootfs.display().to_string(), errno: e as i32 })
}

/// Writes the user namespace maps of `pid` (as root of the initial namespace: any range, and
/// setgroups(2) stays allowed inside, which package managers and sshd use to drop privileges).
fn write_id_maps(pid: i32, ids: IdMap) -> Result<(), i32> {
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{file}"), ids.line()).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    }
    Ok(())
}

/// Whether `fd` (an nsfs file) is the spawner's own namespace of that kind.
fn is_own_namespace(fd: &OwnedFd, kind: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (nix::sys::stat::fstat(fd), std::fs::metadata(format!("/proc/self/ns/{kind}"))) {
        (Ok(a), Ok(b)) => a.st_ino == b.ino() && a.st_dev == b.dev(),
        _ => false,
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnFailure> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SpawnFailure::Pipe { errno: e as i32 })
}

fn check_stdio(plan: &ProcessPlan, fds: &[OwnedFd]) -> Result<(), SpawnFailure> {
    let expected = if plan.stdin_null { 2 } else { 3 };
    if fds.len() != expected {
        return Err(SpawnFailure::Fds { expected, got: fds.len() });
    }
    Ok(())
}

fn init_failure(report: &[u8]) -> SpawnFailure {
    serde_json::from_slice::<InitError>(report)
        .map(SpawnFailure::Init)
        .unwrap_or(SpawnFailure::Init(InitError::Sync { errno: libc::EPROTO }))
}

fn cstrings(items: &[String]) -> Vec<std::ffi::CString> {
    items.iter().filter_map(|s| std::ffi::CString::new(s.as_bytes()).ok()).collect()
}

/// In the forked helper child: cgroups, KSM, fds, signals, exec. Returns the errno if exec failed.
fn run_helper_in_child(
    plan: &HelperPlan,
    fds: &[OwnedFd],
    argv: &[std::ffi::CString],
    env: &[std::ffi::CString],
    err: RawFd,
) -> i32 {
    let pid = std::process::id().to_string();
    // criu writes logs, pidfiles and sockets into the data dir; restored tasks get their own umask back.
    // SAFETY: umask(2) changes only this process's file mode mask.
    unsafe { libc::umask(0o077) };
    for path in &plan.cgroup_procs {
        if let Err(e) = std::fs::write(path, &pid) {
            return e.raw_os_error().unwrap_or(libc::EIO);
        }
    }
    if plan.cgroup_ns {
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
            return e as i32;
        }
    }
    if let Some(root) = &plan.sandbox_root {
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .and_then(|()| crate::rootfs::make_private_in_child())
            .and_then(|()| crate::rootfs::allow_devices_in_child(root))
        {
            return e as i32;
        }
    }
    if plan.memory_merge {
        // SAFETY: prctl(PR_SET_MEMORY_MERGE) only sets a flag of this process (inherited across exec and
        // fork); EINVAL on kernels without it is harmless.
        unsafe { libc::prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) };
    }
    // Move the passed fds above the target range, then into place; keep the error pipe.
    let mut high = Vec::new();
    for fd in fds {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd we hold.
        let h = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 200) };
        if h < 0 {
            return Errno::last() as i32;
        }
        high.push(h);
    }
    // SAFETY: fcntl on our own error-pipe fd.
    let err_high = unsafe { libc::fcntl(err, libc::F_DUPFD_CLOEXEC, 300) };
    for (src, dst) in high.iter().zip(&plan.fd_targets) {
        // SAFETY: dup2(2) on fds we own; the target loses CLOEXEC, which is what we want.
        if unsafe { libc::dup2(*src, *dst) } < 0 {
            return Errno::last() as i32;
        }
    }
    // Everything else (the spawner's socket, sandboxes' pidfds) closes at exec.
    for fd in 3..200 {
        if !plan.fd_targets.contains(&fd) {
            // SAFETY: marking fds close-on-exec; invalid fds return EBADF harmlessly.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    let _ = err_high;
    // SAFETY: resetting our own signal mask and dispositions before exec (see sandbox_init).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let Some(path) = argv.first() else { return libc::EINVAL };
    match nix::unistd::execve(path, argv, env) {
        Ok(never) => match never {},
        Err(e) => e as i32,
    }
}

/// Sets the hostname inside the uts namespace of `target`, from a forked helper (setns must not touch
/// the spawner's own namespaces).
fn set_hostname_of(target: i32, name: &str) -> Result<(), SpawnFailure> {
    let path = format!("/proc/{target}/ns/uts");
    let fd = nix::fcntl::open(
        path.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| SpawnFailure::Target { target, errno: e as i32 })?;
    // SAFETY: the spawner is single-threaded, so the child may do anything.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(SpawnFailure::Fork { errno: e as i32 }),
        Ok(nix::unistd::ForkResult::Child) => {
            let ok = nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWUTS).is_ok()
                && nix::unistd::sethostname(name).is_ok();
            exit_now(if ok { 0 } else { 1 })
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            _ => Err(SpawnFailure::Target { target, errno: libc::EPERM }),
        },
    }
}

/// A new network namespace with lo up (and, for sandboxes in user namespaces, low ports bindable),
/// held by the returned fd: a helper process makes it, the spawner opens it through /proc, and the
/// helper exits.
fn new_netns(low_ports: bool) -> Result<OwnedFd, Errno> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the spawner is single-threaded, so the child may do anything.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop((ready_r, hold_w));
            let ok = ns::new_network(low_ports).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"y" } else { b"n" });
            drop(ready_w); // the spawner reads the ready pipe to its end
            let _ = read_to_end(hold_r.as_raw_fd());
            exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop((ready_w, hold_r));
            let ready = read_to_end(ready_r.as_raw_fd());
            let fd = if ready == b"y" {
                let path = format!("/proc/{}/ns/net", child.as_raw());
                nix::fcntl::open(
                    path.as_str(),
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
            } else {
                Err(Errno::EPERM)
            };
            drop(hold_w);
            let _ = waitpid(child, None);
            fd
        }
    }
}

/// Thaws the v1 freezer cgroup `pid` is in, if it is in a frozen one (read from /proc/<pid>/cgroup).
fn thaw_v1_freezer(pid: i32) {
    let Ok(cgroups) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else { return };
    let Some(path) = cgroups.lines().find_map(|l| l.split_once(":freezer:").map(|(_, p)| p.to_string())) else {
        return;
    };
    let state = PathBuf::from("/sys/fs/cgroup/freezer").join(path.trim_start_matches('/')).join("freezer.state");
    if std::fs::read_to_string(&state).is_ok_and(|s| s.trim() != "THAWED") {
        let _ = std::fs::write(&state, "THAWED");
    }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) ends this process without running the parent's atexit handlers or destructors,
    // which belong to the runtime process we were forked from.
    unsafe { libc::_exit(code) }
}

fn set_process_name(name: &[u8]) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from a live buffer.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open(2) returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal(2) with a pidfd we hold and no siginfo.
    let rc =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0) };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn read_to_end(fd: RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: read(2) into a stack buffer we own.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
        match n {
            0 => return out,
            n if n > 0 => out.extend_from_slice(&chunk[..n as usize]),
            _ if Errno::last() == Errno::EINTR => {}
            _ => return out,
        }
    }
}

fn send_event(sock: &OwnedFd, event: &Event, fds: &[RawFd]) {
    if let Ok(bytes) = serde_json::to_vec(event) {
        let iov = [IoSlice::new(&bytes)];
        let cmsgs: Vec<ControlMessage> = if fds.is_empty() { vec![] } else { vec![ControlMessage::ScmRights(fds)] };
        let _ = socket::sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None);
    }
}

/// One packet and the fds that came with it; `None` at end of stream.
fn recv(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Option<(usize, Vec<OwnedFd>)>> {
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: SCM_RIGHTS fds were just installed in our table by the kernel; we take ownership.
            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    if msg.bytes == 0 {
        return Ok(None);
    }
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "spawner packet larger than its buffer"));
    }
    Ok(Some((msg.bytes, fds)))
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Failure(#[from] SpawnFailure),
    #[error("the spawn request is too large ({size} bytes, at most {MAX_MESSAGE}): shorten argv and env")]
    TooLarge { size: usize },
    #[error("cannot reach the spawner process: {source}")]
    Send { source: io::Error },
    #[error("the spawner process is gone; restart forkspace-rt")]
    Gone,
}

/// A process the spawner started (or adopted); `exit` resolves when it has been reaped.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitStatus>,
}

type Reply = Result<(i32, Vec<OwnedFd>), SpawnFailure>;

#[derive(Default)]
struct ClientState {
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    exits: HashMap<i32, oneshot::Sender<ExitStatus>>,
    /// Exit receivers of just-spawned processes, until the requester collects them.
    waiters: HashMap<i32, oneshot::Receiver<ExitStatus>>,
    gone: bool,
}

/// The runtime's handle on the spawner.
pub struct SpawnerClient {
    fd: AsyncFd<OwnedFd>,
    state: Mutex<ClientState>,
    next_tag: AtomicU64,
}

impl SpawnerClient {
    /// Wraps the runtime's end of the channel and starts the task that reads events. Needs a tokio runtime.
    pub fn new(fd: OwnedFd) -> io::Result<Arc<SpawnerClient>> {
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        let client = Arc::new(SpawnerClient {
            // SAFETY: the OwnedFd moves into the AsyncFd, which owns it until dropped; nothing else
            // closes or re-registers this fd.
            fd: unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?,
            state: Mutex::new(ClientState::default()),
            next_tag: AtomicU64::new(1),
        });
        let reader = client.clone();
        tokio::spawn(async move { reader.read_events().await });
        Ok(client)
    }

    /// Clones a sandbox's first process from `plan`, with `stdio` (stdin unless the plan says
    /// /dev/null, stdout, stderr). Resolves once the process has exec'd, or with why it could not.
    pub async fn spawn(&self, plan: &InitPlan, stdio: &[BorrowedFd<'_>]) -> Result<Spawned, SpawnError> {
        self.started(|tag| Request::Spawn { tag, plan: plan.clone() }, stdio).await
    }

    /// Starts a process inside the running sandbox whose first process is `target` (a host pid).
    pub async fn exec(&self, target: i32, plan: &ProcessPlan, stdio: &[BorrowedFd<'_>]) -> Result<Spawned, SpawnError> {
        self.started(|tag| Request::Exec { tag, target, plan: plan.clone() }, stdio).await
    }

    /// Runs a helper program as a tracked child.
    pub async fn helper(&self, plan: &HelperPlan, fds: &[BorrowedFd<'_>]) -> Result<Spawned, SpawnError> {
        self.started(|tag| Request::Helper { tag, plan: plan.clone() }, fds).await
    }

    /// A new network namespace (lo up), as an fd that keeps it alive.
    pub async fn new_netns(&self) -> Result<OwnedFd, SpawnError> {
        let (_, mut fds) = self.request(|tag| Request::NewNetns { tag }, &[]).await?;
        fds.pop().ok_or(SpawnError::Failure(SpawnFailure::Netns { errno: libc::EBADF }))
    }

    /// Sets the hostname of the sandbox whose first process is `target`.
    pub async fn set_hostname(&self, target: i32, name: &str) -> Result<(), SpawnError> {
        self.request(|tag| Request::SetHostname { tag, target, name: name.to_string() }, &[]).await.map(|_| ())
    }

    /// Tracks a process that was re-parented to the spawner; resolves its exit.
    pub async fn adopt(&self, pid: i32) -> Result<oneshot::Receiver<ExitStatus>, SpawnError> {
        let (tx, rx) = oneshot::channel();
        self.lock().exits.insert(pid, tx);
        let bytes = serde_json::to_vec(&Request::Adopt { pid }).unwrap_or_default();
        self.send(&bytes, &[]).await.map_err(|source| SpawnError::Send { source })?;
        Ok(rx)
    }

    /// Sends `signal` to a process the spawner tracks, through its pidfd (so never to a reused pid).
    pub async fn kill(&self, pid: i32, signal: i32) -> Result<(), SpawnError> {
        let bytes = serde_json::to_vec(&Request::Kill { pid, signal }).unwrap_or_default();
        self.send(&bytes, &[]).await.map_err(|source| SpawnError::Send { source })
    }

    async fn started(&self, make: impl FnOnce(u64) -> Request, fds: &[BorrowedFd<'_>]) -> Result<Spawned, SpawnError> {
        let (pid, _) = self.request(make, fds).await?;
        // The exit waiter was registered by the reader when it saw `Spawned`, before anyone could see
        // the process's `Exited`.
        let exit = self.lock().waiters.remove(&pid);
        match exit {
            Some(exit) => Ok(Spawned { pid, exit }),
            None => Err(SpawnError::Gone),
        }
    }

    async fn request(
        &self,
        make: impl FnOnce(u64) -> Request,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(i32, Vec<OwnedFd>), SpawnError> {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            if state.gone {
                return Err(SpawnError::Gone);
            }
            state.pending.insert(tag, tx);
        }
        let bytes = serde_json::to_vec(&make(tag)).unwrap_or_default();
        if bytes.len() > MAX_MESSAGE {
            self.lock().pending.remove(&tag);
            return Err(SpawnError::TooLarge { size: bytes.len() });
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        if let Err(source) = self.send(&bytes, &raw).await {
            self.lock().pending.remove(&tag);
            return Err(SpawnError::Send { source });
        }
        match rx.await {
            Ok(reply) => Ok(reply?),
            Err(_) => Err(SpawnError::Gone),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            let iov = [IoSlice::new(bytes)];
            let cmsgs: Vec<ControlMessage> = if fds.is_empty() { vec![] } else { vec![ControlMessage::ScmRights(fds)] };
            match guard.try_io(|inner| {
                socket::sendmsg::<()>(inner.get_ref().as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)
                    .map_err(io::Error::from)
            }) {
                Ok(result) => return result.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    async fn read_events(self: Arc<Self>) {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let packet = match self.fd.readable().await {
                Ok(mut guard) => match guard.try_io(|inner| recv(inner.get_ref(), &mut buf)) {
                    Ok(r) => r,
                    Err(_would_block) => continue,
                },
                Err(e) => Err(e),
            };
            let (len, fds) = match packet {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => break,
            };
            let Ok(event) = serde_json::from_slice::<Event>(&buf[..len]) else { continue };
            let mut state = self.lock();
            match event {
                Event::Spawned { tag, pid } => {
                    if pid > 0 {
                        let (exit_tx, exit_rx) = oneshot::channel();
                        state.exits.insert(pid, exit_tx);
                        state.waiters.insert(pid, exit_rx);
                    }
                    if let Some(tx) = state.pending.remove(&tag) {
                        let _ = tx.send(Ok((pid, fds)));
                    }
                }
                Event::Failed { tag, error } => {
                    if let Some(tx) = state.pending.remove(&tag) {
                        let _ = tx.send(Err(error));
                    }
                }
                Event::Exited { pid, status } => {
                    if let Some(tx) = state.exits.remove(&pid) {
                        let _ = tx.send(status);
                    }
                }
            }
        }
        // The spawner died: fail everyone waiting. Dropping the senders wakes their receivers with Err.
        let mut state = self.lock();
        state.gone = true;
        state.pending.clear();
        state.exits.clear();
    }
}
