//! Reaching ports inside sandboxes. The sandbox side of each connection is a socket created inside the
//! sandbox's network namespace (a short-lived thread joins it with setns and connects), so no veth, no
//! routes and no host-wide nftables rules are needed, and branches each get their own. The host side is
//! one of:
//!   - a forward (`port/forward`): a TCP listener on the host (127.0.0.1 by default) that anyone who can
//!     reach it may use, as `docker -p` does: what a user asks for to point a local tool at a sandbox;
//!   - an exposure (`port/expose`): a unix socket in a directory only the runtime's user can enter (0700,
//!     the socket 0600), which the agent relays authenticated HTTP to. No TCP listener is behind an
//!     exposure, so nothing on the host reaches it without the agent's key check, and its path is never
//!     reused: a request after the sandbox went finds no socket rather than someone else's server.
//!
//! Both end with their sandbox (stop, destroy, exit, expiry): `remove_sandbox`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener};

use crate::error::Error;
use crate::live;
use crate::service::Runtime;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardParams {
    pub sandbox_id: String,
    pub port: u16,
    /// 0 or absent: any free port.
    #[serde(default)]
    pub host_port: u16,
    /// Default 127.0.0.1; anything else exposes the sandbox port beyond this machine.
    #[serde(default)]
    pub host_address: Option<IpAddr>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardInfo {
    pub forward_id: String,
    pub sandbox_id: String,
    pub port: u16,
    pub host_address: IpAddr,
    pub host_port: u16,
    pub open_connections: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExposeParams {
    pub sandbox_id: String,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExposureInfo {
    /// Removed with `port/unforward`, like a forward.
    pub forward_id: String,
    pub sandbox_id: String,
    pub port: u16,
    /// The unix socket to connect to (only the runtime's user can).
    pub socket_path: PathBuf,
}

enum HostSide {
    Tcp(ForwardInfo),
    Unix(PathBuf),
}

struct Forward {
    sandbox_id: String,
    host: HostSide,
    open: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
pub struct Forwards {
    map: Mutex<HashMap<String, Forward>>,
}

impl Forwards {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Forward>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The TCP forwards (exposures are the agent's to list).
    pub fn list(&self, sandbox_id: Option<&str>) -> Vec<ForwardInfo> {
        let mut v: Vec<ForwardInfo> = self
            .lock()
            .values()
            .filter(|f| sandbox_id.is_none_or(|s| f.sandbox_id == s))
            .filter_map(|f| match &f.host {
                HostSide::Tcp(info) => {
                    Some(ForwardInfo { open_connections: f.open.load(Ordering::SeqCst), ..info.clone() })
                }
                HostSide::Unix(_) => None,
            })
            .collect();
        v.sort_by(|a, b| a.forward_id.cmp(&b.forward_id));
        v
    }

    /// Open relayed connections of a sandbox (activity, for idle timeouts).
    pub fn open_connections(&self, sandbox_id: &str) -> usize {
        self.lock().values().filter(|f| f.sandbox_id == sandbox_id).map(|f| f.open.load(Ordering::SeqCst)).sum()
    }

    /// Stops a forward or exposure: its listener closes (an exposure's socket file goes) and its open
    /// connections end.
    pub fn remove(&self, forward_id: &str) -> bool {
        let Some(f) = self.lock().remove(forward_id) else { return false };
        if let HostSide::Unix(path) = &f.host {
            let _ = std::fs::remove_file(path);
        }
        let _ = f.stop.send(true);
        true
    }

    /// Closes every forward and exposure of a sandbox (it stopped, exited or was destroyed).
    pub fn remove_sandbox(&self, sandbox_id: &str) {
        let ids: Vec<String> =
            self.lock().iter().filter(|(_, f)| f.sandbox_id == sandbox_id).map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.remove(&id);
        }
    }
}

pub async fn forward(rt: &Arc<Runtime>, p: ForwardParams) -> Result<ForwardInfo, Error> {
    let netns = sandbox_netns(rt, &p.sandbox_id, p.port)?;
    let address = p.host_address.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let listener = TcpListener::bind(SocketAddr::new(address, p.host_port))
        .await
        .map_err(|e| Error::Io("listen on", format!("{address}:{}", p.host_port).into(), e))?;
    let host_port = listener.local_addr().map(|a| a.port()).unwrap_or(p.host_port);
    let info = ForwardInfo {
        forward_id: new_forward_id(),
        sandbox_id: p.sandbox_id.clone(),
        port: p.port,
        host_address: address,
        host_port,
        open_connections: 0,
    };
    serve(rt, &p.sandbox_id, &info.forward_id, HostSide::Tcp(info.clone()), Accept::Tcp(listener), netns, p.port);
    still_live(rt, &p.sandbox_id, &info.forward_id)?;
    Ok(info)
}

pub async fn expose(rt: &Arc<Runtime>, p: ExposeParams) -> Result<ExposureInfo, Error> {
    let netns = sandbox_netns(rt, &p.sandbox_id, p.port)?;
    let dir = exposure_dir(rt)?;
    let forward_id = new_forward_id();
    let socket_path = dir.join(format!("{forward_id}.sock"));
    let listener = UnixListener::bind(&socket_path).map_err(|e| Error::Io("listen on", socket_path.clone(), e))?;
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::Io("restrict", socket_path.clone(), e))?;
    let info = ExposureInfo { forward_id, sandbox_id: p.sandbox_id.clone(), port: p.port, socket_path };
    let host = HostSide::Unix(info.socket_path.clone());
    serve(rt, &p.sandbox_id, &info.forward_id, host, Accept::Unix(listener), netns, p.port);
    still_live(rt, &p.sandbox_id, &info.forward_id)?;
    Ok(info)
}

/// A sandbox that ended while its forward was being made took its forwards with it, except this one.
fn still_live(rt: &Runtime, sandbox_id: &str, forward_id: &str) -> Result<(), Error> {
    if rt.live.get(sandbox_id).is_some() {
        return Ok(());
    }
    rt.forwards.remove(forward_id);
    Err(Error::SandboxNotFound(sandbox_id.into()))
}

fn new_forward_id() -> String {
    format!("fwd-{}", &crate::ids::new_sandbox_id()[4..])
}

/// The network namespace of a running sandbox, to connect inside it.
fn sandbox_netns(rt: &Arc<Runtime>, sandbox_id: &str, port: u16) -> Result<Arc<OwnedFd>, Error> {
    if port == 0 {
        return Err(Error::BadPort);
    }
    let live = live::running(rt, sandbox_id)?;
    let fd = nix::fcntl::open(
        format!("/proc/{}/ns/net", live.pid1).as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::Io("open the network namespace of", sandbox_id.into(), e.into()))?;
    Ok(Arc::new(fd))
}

/// `exposures/` beside the runtime's own socket: made owner-only, and emptied of the sockets of an
/// earlier runtime process the first time this one exposes something.
fn exposure_dir(rt: &Runtime) -> Result<PathBuf, Error> {
    static SWEPT: OnceLock<()> = OnceLock::new();
    let dir = rt.config.socket.parent().unwrap_or(Path::new("/")).join("exposures");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| Error::Io("make the exposure directory", dir.clone(), e))?;
    SWEPT.get_or_init(|| {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".sock") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    });
    Ok(dir)
}

enum Accept {
    Tcp(TcpListener),
    Unix(UnixListener),
}

trait Relayed: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Relayed for T {}

impl Accept {
    async fn accept(&self) -> std::io::Result<Box<dyn Relayed>> {
        Ok(match self {
            Accept::Tcp(l) => Box::new(l.accept().await?.0),
            Accept::Unix(l) => Box::new(l.accept().await?.0),
        })
    }
}

/// Registers the forward and relays each accepted connection into the sandbox until it is removed.
fn serve(
    rt: &Arc<Runtime>,
    sandbox_id: &str,
    forward_id: &str,
    host: HostSide,
    listener: Accept,
    netns: Arc<OwnedFd>,
    port: u16,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let forward = Forward { sandbox_id: sandbox_id.into(), host, open: open.clone(), stop };
    rt.forwards.lock().insert(forward_id.into(), forward);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok(mut client) = accepted else { continue };
                    let (netns, open) = (netns.clone(), open.clone());
                    open.fetch_add(1, Ordering::SeqCst);
                    let mut stopped = stopped.clone();
                    tokio::spawn(async move {
                        if let Ok(mut inside) = connect_inside(netns, port).await {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut inside) => {}
                                _ = stopped.changed() => {}
                            }
                        }
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
        }
    });
}

/// A TCP connection to 127.0.0.1:port inside a network namespace.
async fn connect_inside(netns: Arc<OwnedFd>, port: u16) -> std::io::Result<TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A thread of its own joins the sandbox's netns for the socket() call and then ends: no thread that
    // runs anything else ever sits in a sandbox's namespace.
    std::thread::spawn(move || {
        let result = nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)
            .and_then(|()| std::net::TcpStream::connect(("127.0.0.1", port)));
        let _ = tx.send(result);
    });
    let std = rx.await.map_err(std::io::Error::other)??;
    std.set_nonblocking(true)?;
    TcpStream::from_std(std)
}
