//! Warm pools of environment sandboxes. A warm sandbox has everything a run needs but the command: its
//! overlay is mounted, its cgroup made, its namespaces (the network one is the slow one) exist, and its
//! first process has entered its root and waits on a socket. Taking one for `sandbox/run` writes the
//! run's limits and files, then hands the command over: the waiting process becomes the command (pid 1,
//! like a cold start) with the run's stdin and a fresh error pipe, so a command that cannot start fails
//! exactly as it would cold.
//!
//! Pools size themselves between `min` and `max`: a run that finds its pool empty raises the target by
//! one, a minute without runs lowers it by one, and refills stop while the host's available memory is
//! below a tenth of its total.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::envs::{self, EnvDef};
use crate::error::Error;
use crate::exec::Started;
use crate::plan::{self, Command, RunPlan};
use crate::sandbox::Sandbox;
use crate::sandbox_init::{Handover, InitPlan};
use crate::service::Runtime;
use crate::spawner::{ExitStatus, SpawnError, SpawnFailure};
use crate::spec::Limits;

/// Runs in a row without one that found the pool empty before the target shrinks.
const SHRINK_AFTER: Duration = Duration::from_secs(60);
/// How long a refill waits for no run to be in flight before it goes ahead anyway.
const REFILL_PATIENCE: Duration = Duration::from_millis(15);
/// Below this share of total memory available, pools stop growing.
const MIN_AVAILABLE_FRACTION: f64 = 0.10;

pub struct Warm {
    pub id: String,
    pub sandbox: Sandbox,
    /// The limits its cgroup has now (the defaults it was made with).
    limits: crate::cgroup::CgroupLimits,
    /// The disk limit its layer has now.
    disk_bytes: Option<u64>,
    /// The sandbox's mount namespace, held open so that freeing it (which waits for an RCU grace
    /// period) happens at release, off the run's path, not while its first process exits.
    pub mount_ns: Vec<OwnedFd>,
    /// The waiting first process, until it is handed a command.
    process: Option<Waiting>,
}

struct Waiting {
    pid: i32,
    exit: tokio::sync::oneshot::Receiver<ExitStatus>,
    control: OwnedFd,
    out_r: OwnedFd,
    err_r: OwnedFd,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Size {
    pub min: usize,
    pub max: usize,
}

#[derive(Default)]
struct EnvPool {
    ready: VecDeque<Warm>,
    filling: usize,
    size: Size,
    target: usize,
    last_miss: Option<Instant>,
    hits: u64,
    misses: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolInfo {
    pub environment: &'static str,
    pub min: usize,
    pub max: usize,
    pub target: usize,
    pub ready: usize,
    pub filling: usize,
    pub hits: u64,
    pub misses: u64,
}

#[derive(Default)]
pub struct EnvPools {
    pools: Mutex<HashMap<&'static str, EnvPool>>,
    wake: Notify,
    /// Sandboxes of finished pooled runs still being torn down (shutdown waits for them).
    pub releasing: AtomicUsize,
}

impl EnvPools {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, EnvPool>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn configure(&self, def: &EnvDef, size: Size) -> Result<PoolInfo, Error> {
        if size.min > size.max || size.max > MAX_POOL {
            return Err(Error::BadPolicy(format!(
                "pool size min {} max {}: need min <= max <= {MAX_POOL}",
                size.min, size.max
            )));
        }
        let info = {
            let mut pools = self.lock();
            let p = pools.entry(def.name).or_default();
            p.size = size;
            p.target = p.target.clamp(size.min, size.max.max(size.min));
            if p.target < size.min {
                p.target = size.min;
            }
            info(def.name, p)
        };
        self.wake.notify_one();
        Ok(info)
    }

    pub fn list(&self) -> Vec<PoolInfo> {
        let mut v: Vec<PoolInfo> = self.lock().iter().map(|(n, p)| info(n, p)).collect();
        v.sort_by_key(|i| i.environment);
        v
    }

    /// A ready sandbox of `environment`, if the pool has one; an empty enabled pool grows.
    pub fn take(&self, environment: &'static str) -> Option<Warm> {
        let mut pools = self.lock();
        let p = pools.get_mut(environment)?;
        if p.size.max == 0 {
            return None;
        }
        match p.ready.pop_front() {
            Some(w) => {
                p.hits += 1;
                drop(pools);
                self.wake.notify_one();
                Some(w)
            }
            None => {
                p.misses += 1;
                p.last_miss = Some(Instant::now());
                p.target = (p.target + 1).min(p.size.max);
                drop(pools);
                self.wake.notify_one();
                None
            }
        }
    }

    /// Every ready sandbox, for shutdown.
    pub fn drain(&self) -> Vec<Warm> {
        let mut pools = self.lock();
        pools.values_mut().flat_map(|p| p.ready.drain(..)).collect()
    }
}

/// Most sandboxes one environment's pool may hold.
pub const MAX_POOL: usize = 64;

fn info(name: &'static str, p: &EnvPool) -> PoolInfo {
    PoolInfo {
        environment: name,
        min: p.size.min,
        max: p.size.max,
        target: p.target,
        ready: p.ready.len(),
        filling: p.filling,
        hits: p.hits,
        misses: p.misses,
    }
}

/// Keeps every pool at its target until the runtime shuts down.
pub async fn filler(rt: Arc<Runtime>) {
    loop {
        tokio::select! {
            () = rt.pools.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if rt.is_shutting_down() {
            return;
        }
        // Making a sandbox competes with running ones for the CPU and the kernel's namespace locks:
        // wait (a little) for a moment without runs in flight.
        let quiet_deadline = Instant::now() + REFILL_PATIENCE;
        while !rt.execs.is_empty() && Instant::now() < quiet_deadline {
            // Coarse steps: a tight poll would itself take CPU from the run it waits for.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut shrunk = Vec::new();
        let wanted: Vec<&'static str> = {
            let mut pools = rt.pools.lock();
            for p in pools.values_mut() {
                if p.target > p.size.min && p.last_miss.is_none_or(|t| t.elapsed() > SHRINK_AFTER) {
                    p.target -= 1;
                    p.last_miss = Some(Instant::now()); // one step per quiet minute
                }
                while p.ready.len() + p.filling > p.target {
                    match p.ready.pop_back() {
                        Some(w) => shrunk.push(w),
                        None => break,
                    }
                }
            }
            pools
                .iter_mut()
                .filter(|(_, p)| p.ready.len() + p.filling < p.target)
                .map(|(n, p)| {
                    p.filling += 1;
                    *n
                })
                .collect()
        };
        for w in shrunk {
            discard(&rt, w).await;
        }
        for env in wanted {
            let made = if memory_allows() { make(&rt, env).await } else { Err(Error::Task("low memory".into())) };
            let leftover = {
                let mut pools = rt.pools.lock();
                let p = pools.entry(env).or_default();
                p.filling -= 1;
                match made {
                    Ok(w) if !rt.is_shutting_down() => {
                        p.ready.push_back(w);
                        None
                    }
                    Ok(w) => Some(Ok(w)),
                    Err(e) => Some(Err(e)),
                }
            };
            match leftover {
                None => rt.pools.wake.notify_one(), // more may be wanted
                Some(Ok(w)) => discard(&rt, w).await,
                Some(Err(e)) => {
                    crate::log!("warm pool {env}: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn memory_allows() -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else { return true };
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (field("MemAvailable:"), field("MemTotal:")) {
        (Some(a), Some(t)) if t > 0.0 => a / t >= MIN_AVAILABLE_FRACTION,
        _ => true,
    }
}

/// A new warm sandbox of `environment`.
async fn make(rt: &Arc<Runtime>, environment: &'static str) -> Result<Warm, Error> {
    let def = envs::resolve(environment)?;
    let env_root = rt.envs.built_rootfs(def)?;
    let id = crate::ids::new_sandbox_id();
    let rootfs = rt.config.sandbox_dir(&id).join("rootfs");
    let argv = vec!["/bin/sh".to_string()];
    let empty = Default::default();
    let (mut process, _) = plan::process(&Command { argv: &argv, env: &empty, cwd: None, stdin: None }, &id, &rt.host)?;
    process.stdin_null = false; // fd 0 is the handover socket
    let plan = RunPlan {
        init: InitPlan { rootfs, hostname: id.clone(), process, pooled: true },
        limits: plan::limits(&Limits::default(), &rt.host)?,
        files: Vec::new(),
        stdin: None,
        timeout: None,
        disk_bytes: plan::disk_limit(None, &rt.store.disk_facts())?,
    };
    let (prepared, plan) = {
        let (rt, id) = (rt.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            let mut plan = plan;
            let r = Sandbox::prepare(&rt.config, &rt.layout, &rt.store, &id, &[env_root.as_path()], &mut plan);
            (r, plan)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    };
    let mut sandbox = prepared?;
    match start_waiting(rt, &plan.init).await {
        Ok(process) => {
            let mount_ns = ["mnt", "ipc", "uts", "net", "pid"]
                .iter()
                .filter_map(|n| std::fs::File::open(format!("/proc/{}/ns/{n}", process.pid)).ok().map(OwnedFd::from))
                .collect();
            Ok(Warm {
                id,
                sandbox,
                limits: plan.limits.clone(),
                disk_bytes: plan.disk_bytes,
                mount_ns,
                process: Some(process),
            })
        }
        Err(e) => {
            let _ = tokio::task::spawn_blocking(move || sandbox.release()).await;
            Err(e)
        }
    }
}

async fn start_waiting(rt: &Arc<Runtime>, init: &InitPlan) -> Result<Waiting, Error> {
    let (control, child_end) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::Pipe)?;
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::Pipe);
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let spawned = rt.spawner.spawn(init, &[child_end.as_fd(), out_w.as_fd(), err_w.as_fd()]).await?;
    Ok(Waiting { pid: spawned.pid, exit: spawned.exit, control, out_r, err_r })
}

/// Ends a warm sandbox that was never used (closing its socket lets its process exit).
pub async fn discard(rt: &Arc<Runtime>, w: Warm) {
    let Warm { mut sandbox, process, .. } = w;
    if let Some(Waiting { control, pid, exit, .. }) = process {
        drop(control);
        if tokio::time::timeout(Duration::from_millis(500), exit).await.is_err() {
            let _ = rt.spawner.kill(pid, libc::SIGKILL).await;
        }
    }
    let _ = tokio::task::spawn_blocking(move || sandbox.release()).await;
}

/// Hands `plan`'s command to a warm sandbox, whose resources stay in `w` for the caller to release after
/// the run. On success the command runs as the sandbox's pid 1; an error that says the command could not
/// start is the same as a cold start's.
pub async fn hand_over(w: &mut Warm, plan: &mut RunPlan) -> Result<Started, Error> {
    let io = |e: std::io::Error| Error::Io("hand a command to", w_dir(&w.sandbox), e);
    let waiting = w.process.take().ok_or_else(|| Error::Task("the warm sandbox was already used".into()))?;
    if plan.limits != w.limits {
        if let Some(cg) = &w.sandbox.cgroup {
            cg.apply(&plan.limits).map_err(|e| Error::Sandbox(e.into()))?;
        }
    }
    if plan.disk_bytes != w.disk_bytes {
        if let Some(bytes) = plan.disk_bytes {
            w.sandbox.set_disk_limit(bytes).map_err(Error::Sandbox)?;
        }
    }
    if !plan.files.is_empty() {
        let (root, files) = (w.sandbox.overlay.rootfs.clone(), std::mem::take(&mut plan.files));
        crate::live::place_files(w.sandbox.ids, root, files).await?;
    }
    let p = &plan.init.process;
    let handover = Handover {
        argv: p.argv.clone(),
        env: p.env.clone(),
        exec_candidates: p.exec_candidates.clone(),
        cwd: p.cwd.clone(),
        stdin_null: p.stdin_null,
    };
    let json = serde_json::to_vec(&handover).map_err(|e| Error::Task(e.to_string()))?;
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::Pipe);
    let (report_r, report_w) = pipe()?;
    let stdin = match plan.stdin.take() {
        Some(bytes) => Some((pipe()?, bytes)),
        None => None,
    };
    let mut fds = vec![report_w.as_raw_fd()];
    if let Some(((r, _), _)) = &stdin {
        fds.push(r.as_raw_fd());
    }
    let len = (json.len() as u32).to_le_bytes();
    // Usually the whole handover fits the socket buffer and goes in this one call; the rest follows.
    let sent = nix::sys::socket::sendmsg::<()>(
        waiting.control.as_raw_fd(),
        &[IoSlice::new(&len), IoSlice::new(&json)],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(Error::Pipe)?;
    let rest = &json[sent.saturating_sub(len.len()).min(json.len())..];
    if sent < len.len() {
        return Err(Error::Task("the warm sandbox's socket took a partial length".into()));
    }
    drop(report_w);
    let stdin = stdin.map(|((r, w), bytes)| {
        drop(r);
        (w, bytes)
    });
    let Waiting { pid, exit, control, out_r, err_r } = waiting;
    if !rest.is_empty() {
        let std_sock = std::os::unix::net::UnixStream::from(control);
        std_sock.set_nonblocking(true).map_err(io)?;
        let mut sock = tokio::net::UnixStream::from_std(std_sock).map_err(io)?;
        sock.write_all(rest).await.map_err(io)?;
    }
    // The error pipe closes at exec (close-on-exec); a report means the command could not start.
    let mut report = Vec::new();
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(report_r).map_err(io)?;
    let _ = rx.read_to_end(&mut report).await;
    if !report.is_empty() {
        let failure = serde_json::from_slice(&report)
            .map(SpawnFailure::Init)
            .unwrap_or(SpawnFailure::Init(crate::sandbox_init::InitError::Sync { errno: libc::EPROTO }));
        return Err(Error::Spawn(SpawnError::Failure(failure)));
    }
    Ok(Started { pid, exit, out_r, err_r, stdin })
}

fn w_dir(s: &Sandbox) -> PathBuf {
    s.dir.clone()
}
