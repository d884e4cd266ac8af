//! Port forwarding: a listener on the host (127.0.0.1 by default) whose connections the runtime relays
//! to a port inside a sandbox. The sandbox side of each connection is a socket created inside the
//! sandbox's network namespace (a short-lived thread joins it with setns and connects), so no veth, no
//! routes and no host-wide nftables rules are needed, and branches each get their own forwards.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

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

struct Forward {
    info: ForwardInfo,
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

    pub fn list(&self, sandbox_id: Option<&str>) -> Vec<ForwardInfo> {
        let mut v: Vec<ForwardInfo> = self
            .lock()
            .values()
            .filter(|f| sandbox_id.is_none_or(|s| f.info.sandbox_id == s))
            .map(|f| ForwardInfo { open_connections: f.open.load(Ordering::SeqCst), ..f.info.clone() })
            .collect();
        v.sort_by(|a, b| a.forward_id.cmp(&b.forward_id));
        v
    }

    /// Open relayed connections of a sandbox (activity, for idle timeouts).
    pub fn open_connections(&self, sandbox_id: &str) -> usize {
        self.lock().values().filter(|f| f.info.sandbox_id == sandbox_id).map(|f| f.open.load(Ordering::SeqCst)).sum()
    }

    pub fn remove(&self, forward_id: &str) -> bool {
        match self.lock().remove(forward_id) {
            Some(f) => {
                let _ = f.stop.send(true);
                true
            }
            None => false,
        }
    }

    /// Closes every forward of a sandbox (it stopped or was destroyed).
    pub fn remove_sandbox(&self, sandbox_id: &str) {
        let ids: Vec<String> = self
            .lock()
            .values()
            .filter(|f| f.info.sandbox_id == sandbox_id)
            .map(|f| f.info.forward_id.clone())
            .collect();
        for id in ids {
            self.remove(&id);
        }
    }
}

pub async fn forward(rt: &Arc<Runtime>, p: ForwardParams) -> Result<ForwardInfo, Error> {
    if p.port == 0 {
        return Err(Error::BadPort);
    }
    let live = live::running(rt, &p.sandbox_id)?;
    let netns = nix::fcntl::open(
        format!("/proc/{}/ns/net", live.pid1).as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::Io("open the network namespace of", p.sandbox_id.clone().into(), e.into()))?;
    let address = p.host_address.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let listener = TcpListener::bind(SocketAddr::new(address, p.host_port))
        .await
        .map_err(|e| Error::Io("listen on", format!("{address}:{}", p.host_port).into(), e))?;
    let host_port = listener.local_addr().map(|a| a.port()).unwrap_or(p.host_port);
    let info = ForwardInfo {
        forward_id: format!("fwd-{}", &crate::ids::new_sandbox_id()[4..]),
        sandbox_id: p.sandbox_id.clone(),
        port: p.port,
        host_address: address,
        host_port,
        open_connections: 0,
    };
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    rt.forwards.lock().insert(info.forward_id.clone(), Forward { info: info.clone(), open: open.clone(), stop });
    let netns = Arc::new(netns);
    let port = p.port;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((client, _)) = accepted else { continue };
                    let (netns, open) = (netns.clone(), open.clone());
                    open.fetch_add(1, Ordering::SeqCst);
                    let mut stopped = stopped.clone();
                    tokio::spawn(async move {
                        if let Ok(inside) = connect_inside(netns, port).await {
                            let (mut a, mut b) = (client, inside);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                                _ = stopped.changed() => {}
                            }
                        }
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
        }
    });
    Ok(info)
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
