//! The spawner: a single-threaded process forked from forkspace-rt before its async runtime starts.
//! clone3 into new namespaces is only safe from a single-threaded process (a copy of another thread's
//! held lock would deadlock the child), so every sandbox's first process is cloned here. The spawner is
//! also their parent: it reaps them and reports each exit. It talks to the runtime over a SOCK_SEQPACKET
//! socketpair, one JSON message per packet, with stdio fds passed as SCM_RIGHTS.
//!
//! Channel design: the runtime sends `Request`s; the spawner answers each `Spawn` with `Spawned` or
//! `Failed` (same `tag`), and sends `Exited` unprompted when a child it spawned is reaped. `Spawned`
//! always precedes that child's `Exited`. When the runtime's end closes, the spawner kills every child,
//! reaps them and exits: nothing it started outlives it unsupervised.

use std::collections::HashMap;
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
use crate::sandbox_init::{self, InitError, InitPlan};

const MAX_MESSAGE: usize = 256 * 1024;
const MAX_FDS: usize = 3;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
enum Request {
    Spawn { tag: u64, plan: InitPlan },
    Kill { pid: i32, signal: i32 },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "camelCase")]
enum Event {
    Spawned { tag: u64, pid: i32 },
    Failed { tag: u64, error: SpawnFailure },
    Exited { pid: i32, status: ExitStatus },
}

/// Why a sandbox's first process did not reach exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SpawnFailure {
    #[error(transparent)]
    Init(InitError),
    #[error("clone3 into new namespaces failed: {}", Errno::from_raw(*errno).desc())]
    Clone { errno: i32 },
    #[error("creating a sync pipe failed: {}", Errno::from_raw(*errno).desc())]
    Pipe { errno: i32 },
    #[error("moving the sandbox process into {path} failed: {}", Errno::from_raw(*errno).desc())]
    Attach { path: PathBuf, errno: i32 },
    #[error("the spawn request carried {got} fds, expected {expected}")]
    Fds { expected: usize, got: usize },
}

/// How a process ended: exactly one of the two is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// Forks the spawner. Call before any thread exists; returns the runtime's end of the channel.
pub fn start() -> io::Result<OwnedFd> {
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
            serve(theirs)
        }
        nix::unistd::ForkResult::Parent { .. } => {
            drop(theirs);
            Ok(ours)
        }
    }
}

struct Child {
    pidfd: OwnedFd,
}

fn serve(sock: OwnedFd) -> ! {
    set_process_name(b"forkspace-spawn\0");
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER): orphans below us (CRIU-restored trees) are re-parented to
    // this process, which reaps them, instead of to the host's init.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    // SIGINT from a terminal belongs to the runtime, which shuts us down by closing the socket.
    // SAFETY: setting a signal disposition to ignore; no handler code runs.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let Ok(sigfd) = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        exit_now(1);
    };
    let mut children: HashMap<i32, Child> = HashMap::new();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let mut fds = [
            libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sigfd.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: poll(2) on two pollfd structs we own, for as long as the call lasts.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue; // EINTR
        }
        if fds[1].revents != 0 {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            reap(&sock, &mut children);
        }
        if fds[0].revents != 0 {
            match recv(&sock, &mut buf) {
                Ok(None) | Err(_) => shutdown(children),
                Ok(Some((len, received))) => {
                    let request = serde_json::from_slice::<Request>(&buf[..len]);
                    match request {
                        Ok(Request::Spawn { tag, plan }) => {
                            let event = spawn(tag, &plan, received, &mut children);
                            send_event(&sock, &event);
                        }
                        Ok(Request::Kill { pid, signal }) => {
                            if let Some(child) = children.get(&pid) {
                                let _ = pidfd_send_signal(child.pidfd.as_fd(), signal);
                            }
                        }
                        Err(_) => {} // a malformed packet from our own runtime: nothing sensible to answer
                    }
                }
            }
        }
    }
}

fn spawn(tag: u64, plan: &InitPlan, fds: Vec<OwnedFd>, children: &mut HashMap<i32, Child>) -> Event {
    let expected = if plan.stdin_null { 2 } else { 3 };
    if fds.len() != expected {
        return Event::Failed { tag, error: SpawnFailure::Fds { expected, got: fds.len() } };
    }
    let pipes = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .and_then(|go| Ok((go, nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)));
    let ((go_r, go_w), (err_r, err_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return Event::Failed { tag, error: SpawnFailure::Pipe { errno: e as i32 } },
    };
    let stdio: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let (pid, pidfd) = match ns::clone_into_namespaces(ns::SANDBOX_NAMESPACES) {
        Err(e) => return Event::Failed { tag, error: SpawnFailure::Clone { errno: e as i32 } },
        Ok(ns::Forked::Child) => sandbox_init::init_in_child(plan, &stdio, go_r.as_raw_fd(), err_w.as_raw_fd()),
        Ok(ns::Forked::Parent { pid, pidfd }) => (pid, pidfd),
    };
    drop((go_r, err_w, fds));
    for path in &plan.cgroup_procs {
        if let Err(e) = std::fs::write(path, pid.to_string()) {
            let _ = pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            return Event::Failed { tag, error: SpawnFailure::Attach { path: path.clone(), errno } };
        }
    }
    let _ = nix::unistd::write(&go_w, b"g");
    drop(go_w);
    let report = read_to_end(err_r.as_raw_fd());
    if report.is_empty() {
        children.insert(pid, Child { pidfd });
        return Event::Spawned { tag, pid };
    }
    let _ = waitpid(Pid::from_raw(pid), None);
    let error = serde_json::from_slice::<InitError>(&report)
        .map(SpawnFailure::Init)
        .unwrap_or(SpawnFailure::Init(InitError::Sync { errno: libc::EPROTO }));
    Event::Failed { tag, error }
}

fn reap(sock: &OwnedFd, children: &mut HashMap<i32, Child>) {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => report_exit(sock, children, pid, Some(code), None),
            Ok(WaitStatus::Signaled(pid, sig, _)) => report_exit(sock, children, pid, None, Some(sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn report_exit(sock: &OwnedFd, children: &mut HashMap<i32, Child>, pid: Pid, code: Option<i32>, signal: Option<i32>) {
    // Orphans re-parented to us (subreaper) are reaped too, but only our own children are reported.
    if children.remove(&pid.as_raw()).is_some() {
        send_event(sock, &Event::Exited { pid: pid.as_raw(), status: ExitStatus { code, signal } });
    }
}

fn shutdown(children: HashMap<i32, Child>) -> ! {
    for child in children.values() {
        let _ = pidfd_send_signal(child.pidfd.as_fd(), libc::SIGKILL);
    }
    for pid in children.keys() {
        let _ = waitpid(Pid::from_raw(*pid), None);
    }
    exit_now(0)
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

fn send_event(sock: &OwnedFd, event: &Event) {
    if let Ok(bytes) = serde_json::to_vec(event) {
        let _ = socket::send(sock.as_raw_fd(), &bytes, MsgFlags::empty());
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

/// A process the spawner started; `exit` resolves when it has been reaped.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitStatus>,
}

#[derive(Default)]
struct ClientState {
    pending: HashMap<u64, oneshot::Sender<Result<Spawned, SpawnFailure>>>,
    exits: HashMap<i32, oneshot::Sender<ExitStatus>>,
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
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            if state.gone {
                return Err(SpawnError::Gone);
            }
            state.pending.insert(tag, tx);
        }
        let bytes = serde_json::to_vec(&Request::Spawn { tag, plan: plan.clone() }).unwrap_or_default();
        if bytes.len() > MAX_MESSAGE {
            self.lock().pending.remove(&tag);
            return Err(SpawnError::TooLarge { size: bytes.len() });
        }
        let raw: Vec<RawFd> = stdio.iter().map(|f| f.as_raw_fd()).collect();
        if let Err(source) = self.send(&bytes, &raw).await {
            self.lock().pending.remove(&tag);
            return Err(SpawnError::Send { source });
        }
        match rx.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(SpawnError::Gone),
        }
    }

    /// Sends `signal` to a process this spawner started, through its pidfd (so never to a reused pid).
    pub async fn kill(&self, pid: i32, signal: i32) -> Result<(), SpawnError> {
        let bytes = serde_json::to_vec(&Request::Kill { pid, signal }).unwrap_or_default();
        self.send(&bytes, &[]).await.map_err(|source| SpawnError::Send { source })
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
            let len = match packet {
                Ok(Some((len, _fds))) => len,
                Ok(None) | Err(_) => break,
            };
            let Ok(event) = serde_json::from_slice::<Event>(&buf[..len]) else { continue };
            let mut state = self.lock();
            match event {
                Event::Spawned { tag, pid } => {
                    // The exit waiter is registered here, before anyone else sees the pid, so an
                    // `Exited` that follows immediately is never missed.
                    let (exit_tx, exit_rx) = oneshot::channel();
                    state.exits.insert(pid, exit_tx);
                    if let Some(tx) = state.pending.remove(&tag) {
                        let _ = tx.send(Ok(Spawned { pid, exit: exit_rx }));
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
