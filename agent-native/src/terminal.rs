//! Interactive terminals: a process inside a running sandbox on a pty of the sandbox's own devpts
//! instance (so `tty` inside shows /dev/pts/N), with input, resize and output streamed as notifications.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use tokio::io::unix::AsyncFd;

use crate::error::Error;
use crate::live;
use crate::plan::{self, Command};
use crate::service::Runtime;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenParams {
    pub terminal_id: String,
    pub sandbox_id: String,
    /// Default: the environment's shell.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    pub cols: u16,
    pub rows: u16,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
}

struct Terminal {
    master: Arc<AsyncFd<OwnedFd>>,
    pid: i32,
}

#[derive(Default)]
pub struct Terminals {
    open: Mutex<HashMap<String, Terminal>>,
}

impl Terminals {
    fn get(&self, id: &str) -> Result<(Arc<AsyncFd<OwnedFd>>, i32), Error> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(id).map(|t| (t.master.clone(), t.pid)).ok_or_else(|| Error::TerminalNotFound(id.into()))
    }
}

fn winsize(fd: &impl AsRawFd, cols: u16, rows: u16) -> io::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize struct we own, on a pty master we hold.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pty pair of the sandbox's devpts instance: the master for the runtime, the slave for the process.
/// The multiplexer is opened through safe_fs: resolved inside the sandbox's root (an absolute symlink the
/// sandbox planted cannot lead to a host path), and only if it is devpts's ptmx (never a FIFO that
/// would block the runtime, nor another device).
fn open_pty(pid1: i32) -> Result<(OwnedFd, OwnedFd), Error> {
    let root = std::path::PathBuf::from(format!("/proc/{pid1}/root"));
    let master = crate::safe_fs::open_ptmx(&root).map_err(|e| Error::Sandbox(e.into()))?;
    open_peer(master).map_err(|e| Error::Io("open a pty in", root.join("dev/pts"), e))
}

/// Unlocks a multiplexer's new pty and opens its peer (the slave side).
fn open_peer(master: OwnedFd) -> io::Result<(OwnedFd, OwnedFd)> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int we own; TIOCGPTPEER returns a new fd for the peer.
    let s = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(io::Error::last_os_error());
        }
        libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC)
    };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER returned a new fd that we own.
    Ok((master, unsafe { OwnedFd::from_raw_fd(s) }))
}

pub async fn open(rt: &Arc<Runtime>, p: OpenParams) -> Result<serde_json::Value, Error> {
    plan::check_exec_id(&p.terminal_id)?;
    if p.cols == 0 || p.rows == 0 {
        return Err(Error::BadSize { cols: p.cols, rows: p.rows });
    }
    let live = live::running(rt, &p.sandbox_id)?;
    if rt.terminals.open.lock().unwrap_or_else(|x| x.into_inner()).contains_key(&p.terminal_id) {
        return Err(Error::ExecIdInUse(p.terminal_id));
    }
    let argv = p.argv.clone().unwrap_or_else(|| vec!["/bin/sh".into(), "-l".into()]);
    let mut env = p.env.clone();
    env.entry("TERM".into()).or_insert_with(|| "xterm-256color".into());
    let command = Command { argv: &argv, env: &env, cwd: p.cwd.as_deref(), stdin: None };
    let (mut process, _) = plan::process(&command, &live.id, &rt.host)?;
    process.cgroup_procs = live.cgroup.procs_files();
    process.stdin_null = false;
    process.tty = true;
    // A pty slave belongs to whoever opens ptmx: opened as sandbox root, it is root's inside the sandbox.
    let (master, slave) = crate::userns::as_sandbox_owner(live.external.userns(), || open_pty(live.pid1))?;
    winsize(&master, p.cols, p.rows).map_err(|e| Error::Io("size the pty", "ptmx".into(), e))?;
    let spawned = rt.spawner.exec(live.pid1, &process, &[slave.as_fd(), slave.as_fd(), slave.as_fd()]).await?;
    drop(slave);
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
        .map_err(|e| Error::Io("configure the pty", "ptmx".into(), e.into()))?;
    // SAFETY: the OwnedFd moves into the AsyncFd, which owns it until dropped.
    let master = Arc::new(
        unsafe { AsyncFd::register(master) }.map_err(|e| Error::Io("watch the pty", "ptmx".into(), e.into()))?,
    );
    rt.terminals
        .open
        .lock()
        .unwrap_or_else(|x| x.into_inner())
        .insert(p.terminal_id.clone(), Terminal { master: master.clone(), pid: spawned.pid });
    live.running_execs.fetch_add(1, Ordering::SeqCst);

    let (rt2, id, live2) = (rt.clone(), p.terminal_id.clone(), live.clone());
    tokio::spawn(async move {
        let mut seq = 0u64;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let Ok(mut guard) = master.readable().await else { break };
            match guard.try_io(|inner| {
                // SAFETY: read(2) into our buffer, at most its length, from the pty master we own.
                let n = unsafe { libc::read(inner.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(Ok(0)) | Ok(Err(_)) => break, // EIO once every slave fd is closed: the session ended
                Ok(Ok(n)) => {
                    seq += 1;
                    let data = base64::engine::general_purpose::STANDARD.encode(&buf[..n]);
                    rt2.hub
                        .broadcast("terminal/output", json!({ "terminalId": id, "seq": seq, "dataBase64": data }))
                        .await;
                }
                Err(_would_block) => continue,
            }
        }
        let status = spawned.exit.await.ok();
        live2.running_execs.fetch_sub(1, Ordering::SeqCst);
        rt2.terminals.open.lock().unwrap_or_else(|x| x.into_inner()).remove(&id);
        let code = status.map(|s| s.code.unwrap_or_else(|| 128 + s.signal.unwrap_or(0)));
        rt2.hub.broadcast("terminal/exit", json!({ "terminalId": id, "exitCode": code })).await;
    });
    Ok(json!({ "terminalId": p.terminal_id, "sandboxId": live.id, "pid": spawned.pid }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputParams {
    pub terminal_id: String,
    pub data_base64: String,
}

pub async fn input(rt: &Runtime, p: InputParams) -> Result<serde_json::Value, Error> {
    let (master, _) = rt.terminals.get(&p.terminal_id)?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(&p.data_base64)
        .map_err(|_| Error::Spec(crate::plan::SpecError::Base64 { field: "dataBase64".into() }))?;
    let mut done = 0;
    while done < data.len() {
        let mut guard = master.writable().await.map_err(|e| Error::Io("write to", "the terminal".into(), e))?;
        match guard.try_io(|inner| {
            // SAFETY: write(2) of the rest of our buffer to the pty master we hold.
            let n =
                unsafe { libc::write(inner.get_ref().as_raw_fd(), data[done..].as_ptr().cast(), data.len() - done) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        }) {
            Ok(Ok(n)) => done += n,
            Ok(Err(e)) => return Err(Error::Io("write to", "the terminal".into(), e)),
            Err(_would_block) => continue,
        }
    }
    Ok(json!({ "written": done }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizeParams {
    pub terminal_id: String,
    pub cols: u16,
    pub rows: u16,
}

pub fn resize(rt: &Runtime, p: ResizeParams) -> Result<serde_json::Value, Error> {
    if p.cols == 0 || p.rows == 0 {
        return Err(Error::BadSize { cols: p.cols, rows: p.rows });
    }
    let (master, _) = rt.terminals.get(&p.terminal_id)?;
    // The kernel sends SIGWINCH to the terminal's foreground process group.
    winsize(master.get_ref(), p.cols, p.rows).map_err(|e| Error::Io("resize", "the terminal".into(), e))?;
    Ok(json!({ "cols": p.cols, "rows": p.rows }))
}

pub async fn close(rt: &Runtime, terminal_id: &str) -> Result<serde_json::Value, Error> {
    let (_, pid) = rt.terminals.get(terminal_id)?;
    rt.spawner.kill(pid, libc::SIGKILL).await?;
    Ok(json!({ "closed": true }))
}
