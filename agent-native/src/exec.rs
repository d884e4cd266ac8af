//! Ephemeral execution: a fresh sandbox runs one command, its output streams to the caller as it comes,
//! and the sandbox is destroyed when the command ends, is killed, or times out.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

use crate::error::Error;
use crate::rpc::Connection;
use crate::sandbox::Sandbox;
use crate::service::Runtime;
use crate::spawner::ExitStatus;
use crate::spec::RunParams;
use crate::{envs, ids, plan};

/// How long to wait for output still in the pipes once the sandbox's processes are all gone.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub sandbox_id: String,
    /// The environment's canonical name (aliases resolved).
    pub environment: &'static str,
    /// The exit code, or 128 + the signal number when a signal ended the command (as shells report it).
    pub exit_code: i32,
    pub signal: Option<String>,
    pub oom_killed: bool,
    pub timed_out: bool,
    /// Ended by `exec/kill` (cancellation) or by its owner disconnecting.
    pub killed: bool,
    pub pids_limit_hit: bool,
    pub duration_ms: f64,
    pub memory_peak_bytes: Option<u64>,
    pub cpu_time_ms: Option<f64>,
    /// The files asked for with `collect`, as they were when the command ended.
    pub files: Vec<Collected>,
    /// The sandbox came ready from a warm pool.
    pub pooled: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collected {
    pub path: String,
    pub content_base64: String,
    pub size: u64,
    /// Larger than what is returned (MAX_COLLECT_BYTES in all), or missing when size is 0 and not found.
    pub truncated: bool,
    /// A regular file was there and was read. False when nothing was at the path, and when what was
    /// there is not a regular file (then `error` says what it is).
    pub found: bool,
    /// Why the path could not be collected when something other than "no such file" stopped it: a FIFO,
    /// socket, device, directory or symlink (only regular files are collected; a symlink is not followed),
    /// or a read error. The run's result stands either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Bytes of collected files one result may carry.
pub const MAX_COLLECT_BYTES: usize = 16 << 20;

/// Reads the files a run asked for, as they are after it ended. Blocking (the disk, and the sandbox may
/// have left anything at those paths): run it off the async workers, through `collect_off_workers`.
pub fn collect(root: &std::path::Path, paths: &[String]) -> Vec<Collected> {
    use crate::safe_fs::SafeFsError;
    let mut budget = MAX_COLLECT_BYTES;
    paths
        .iter()
        .map(|p| match crate::safe_fs::read_at(root, p, 0, budget) {
            Ok((bytes, size)) => {
                budget -= bytes.len();
                Collected {
                    path: p.clone(),
                    truncated: (bytes.len() as u64) < size,
                    content_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
                    size,
                    found: true,
                    error: None,
                }
            }
            Err(e) => {
                let missing = matches!(
                    e,
                    SafeFsError::Open { errno: nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR, .. }
                );
                Collected {
                    path: p.clone(),
                    content_base64: String::new(),
                    size: 0,
                    truncated: false,
                    found: false,
                    error: (!missing).then(|| e.to_string()),
                }
            }
        })
        .collect()
}

async fn collect_off_workers(root: std::path::PathBuf, paths: Vec<String>) -> Result<Vec<Collected>, Error> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    tokio::task::spawn_blocking(move || collect(&root, &paths)).await.map_err(|e| Error::Task(e.to_string()))
}

pub async fn run_ephemeral(rt: &Arc<Runtime>, conn: &Arc<Connection>, params: RunParams) -> Result<RunResult, Error> {
    let def = envs::resolve(&params.environment)?;
    if let Some(warm) = rt.pools.take(def.name) {
        return run_warm(rt, conn, params, def.name, warm).await;
    }
    let env_root = rt.envs.built_rootfs(def)?;
    let sandbox_id = ids::new_sandbox_id();
    let rootfs = rt.config.sandbox_dir(&sandbox_id).join("rootfs");
    let plan = plan::build(&params, &sandbox_id, &rootfs, &rt.host, &rt.store.disk_facts())?;
    let registration = rt.execs.register(&params.exec_id, conn.id, &sandbox_id, def.name)?;

    let (prepared, mut plan) = {
        let (rt, id) = (rt.clone(), sandbox_id.clone());
        tokio::task::spawn_blocking(move || {
            let mut plan = plan;
            let r = Sandbox::prepare(&rt.config, &rt.layout, &rt.store, &id, &[env_root.as_path()], &mut plan);
            (r, plan)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    };
    let mut sandbox = prepared?;
    let stdin = plan.stdin.take();
    let outcome =
        supervise(rt, conn, &params.exec_id, &sandbox.id, &registration, Launch::Init(&plan.init), stdin, plan.timeout)
            .await;
    let stats = sandbox.cgroup.as_ref().map(|c| c.stats()).unwrap_or_default();
    let files = match &outcome {
        Ok(_) => collect_off_workers(sandbox.overlay.rootfs.clone(), params.collect.clone()).await,
        Err(_) => Ok(Vec::new()),
    };
    let released = tokio::task::spawn_blocking(move || sandbox.release().map(|()| sandbox))
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    if let Err(e) = released {
        crate::log!("sandbox {sandbox_id}: cleanup failed, the next start will retry it: {e}");
    }
    let Ended { status, elapsed, timed_out } = outcome?;
    let files = files?;
    let exit_code = status.code.unwrap_or_else(|| 128 + status.signal.unwrap_or(0));
    Ok(RunResult {
        sandbox_id,
        environment: def.name,
        exit_code,
        signal: status.signal.map(signal_name),
        oom_killed: stats.oom_killed,
        timed_out,
        killed: registration.killed() && !timed_out,
        pids_limit_hit: stats.pids_limit_hit,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        memory_peak_bytes: stats.memory_peak_bytes,
        cpu_time_ms: stats.cpu_time_ns.map(|ns| ns as f64 / 1e6),
        files,
        pooled: false,
    })
}

/// `run_ephemeral` in a sandbox from a warm pool: the command is handed to its waiting first process,
/// and the sandbox is torn down after the answer, off the caller's path.
async fn run_warm(
    rt: &Arc<Runtime>,
    conn: &Arc<Connection>,
    params: RunParams,
    environment: &'static str,
    mut warm: crate::pool::Warm,
) -> Result<RunResult, Error> {
    let sandbox_id = warm.id.clone();
    let rootfs = warm.sandbox.overlay.rootfs.clone();
    let run = async {
        let mut plan = plan::build(&params, &sandbox_id, &rootfs, &rt.host, &rt.store.disk_facts())?;
        let registration = rt.execs.register(&params.exec_id, conn.id, &sandbox_id, environment)?;
        let started = crate::pool::hand_over(&mut warm, &mut plan).await?;
        let ended = watch(rt, conn, &params.exec_id, &sandbox_id, &registration, started, plan.timeout).await?;
        Ok::<_, Error>((ended, registration))
    };
    let outcome = run.await;
    let stats = warm.sandbox.cgroup.as_ref().map(|c| c.stats()).unwrap_or_default();
    let files = match &outcome {
        Ok(_) => collect_off_workers(rootfs.clone(), params.collect.clone()).await,
        Err(_) => Ok(Vec::new()),
    };
    release_later(rt, warm.sandbox, warm.mount_ns);
    let (Ended { status, elapsed, timed_out }, registration) = outcome?;
    let files = files?;
    Ok(RunResult {
        sandbox_id,
        environment,
        exit_code: status.code.unwrap_or_else(|| 128 + status.signal.unwrap_or(0)),
        signal: status.signal.map(signal_name),
        oom_killed: stats.oom_killed,
        timed_out,
        killed: registration.killed() && !timed_out,
        pids_limit_hit: stats.pids_limit_hit,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        memory_peak_bytes: stats.memory_peak_bytes,
        cpu_time_ms: stats.cpu_time_ns.map(|ns| ns as f64 / 1e6),
        files,
        pooled: true,
    })
}

/// Tears a finished sandbox down in the background; shutdown waits for these.
fn release_later(rt: &Arc<Runtime>, mut sandbox: Sandbox, hold: Vec<OwnedFd>) {
    rt.pools.releasing.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let rt = rt.clone();
    tokio::task::spawn_blocking(move || {
        drop(hold);
        if let Err(e) = sandbox.release() {
            crate::log!("sandbox {}: cleanup failed, the next start will retry it: {e}", sandbox.id);
        }
        rt.pools.releasing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    });
}

/// How a supervised process starts: as a new sandbox's first process, or inside a running sandbox.
pub enum Launch<'a> {
    Init(&'a crate::sandbox_init::InitPlan),
    Exec { target: i32, plan: &'a crate::sandbox_init::ProcessPlan },
}

/// How a supervised process ended.
pub struct Ended {
    pub status: ExitStatus,
    pub elapsed: Duration,
    pub timed_out: bool,
}

/// Starts a process with piped stdio, streams its output as `exec/output`, feeds stdin, enforces the
/// timeout, and waits for it.
#[allow(clippy::too_many_arguments)]
pub async fn supervise(
    rt: &Arc<Runtime>,
    conn: &Arc<Connection>,
    exec_id: &str,
    sandbox_id: &str,
    registration: &Registration,
    launch: Launch<'_>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
) -> Result<Ended, Error> {
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::Pipe);
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin = match stdin {
        Some(bytes) => Some((pipe()?, bytes)),
        None => None,
    };
    let mut child_fds: Vec<&OwnedFd> = Vec::new();
    if let Some(((r, _), _)) = &stdin {
        child_fds.push(r);
    }
    child_fds.extend([&out_w, &err_w]);
    let borrowed: Vec<_> = child_fds.iter().map(|f| f.as_fd()).collect();
    let spawned = match launch {
        Launch::Init(plan) => rt.spawner.spawn(plan, &borrowed).await?,
        Launch::Exec { target, plan } => rt.spawner.exec(target, plan, &borrowed).await?,
    };
    // Our copies of the child's ends must close, or the pipes never reach end-of-file.
    drop(borrowed);
    drop((out_w, err_w));
    let stdin_w = stdin.map(|((r, w), bytes)| {
        drop(r);
        (w, bytes)
    });
    let process = Started { pid: spawned.pid, exit: spawned.exit, out_r, err_r, stdin: stdin_w };
    watch(rt, conn, exec_id, sandbox_id, registration, process, timeout).await
}

/// A process that runs, with the runtime's ends of its stdio.
pub struct Started {
    pub pid: i32,
    pub exit: tokio::sync::oneshot::Receiver<ExitStatus>,
    pub out_r: OwnedFd,
    pub err_r: OwnedFd,
    /// Our end of its stdin pipe and what to write into it.
    pub stdin: Option<(OwnedFd, Vec<u8>)>,
}

/// Streams a started process's output as `exec/output`, feeds its stdin, enforces the timeout (from
/// now), and waits for it.
pub async fn watch(
    rt: &Arc<Runtime>,
    conn: &Arc<Connection>,
    exec_id: &str,
    sandbox_id: &str,
    registration: &Registration,
    process: Started,
    timeout: Option<Duration>,
) -> Result<Ended, Error> {
    let Started { pid, exit, out_r, err_r, stdin } = process;
    let started = Instant::now();
    if registration.started(pid) {
        // exec/kill arrived before the process existed.
        let _ = rt.spawner.kill(pid, libc::SIGKILL).await;
    }
    conn.notify("exec/started", json!({ "execId": exec_id, "sandboxId": sandbox_id, "pid": pid })).await;

    let emitter =
        Arc::new(Emitter { exec_id: exec_id.to_string(), conn: conn.clone(), seq: tokio::sync::Mutex::new(0) });
    let pumps = [pump(out_r, "stdout", emitter.clone()), pump(err_r, "stderr", emitter)];
    let pumps: Vec<_> = pumps.into_iter().map(tokio::spawn).collect();
    if let Some((w, bytes)) = stdin {
        tokio::spawn(feed_stdin(w, bytes));
    }

    let mut exit = exit;
    let mut timed_out = false;
    let status = match timeout {
        None => (&mut exit).await,
        Some(limit) => tokio::select! {
            s = &mut exit => s,
            () = tokio::time::sleep(limit) => {
                timed_out = true;
                let _ = rt.spawner.kill(pid, libc::SIGKILL).await;
                (&mut exit).await
            }
        },
    }
    .map_err(|_| Error::Spawn(crate::spawner::SpawnError::Gone))?;
    let elapsed = started.elapsed();
    for p in pumps {
        let _ = tokio::time::timeout(DRAIN_LIMIT, p).await;
    }
    Ok(Ended { status, elapsed, timed_out })
}

struct Emitter {
    exec_id: String,
    conn: Arc<Connection>,
    /// One sequence across stdout and stderr; held while queueing so numbers go out in order.
    seq: tokio::sync::Mutex<u64>,
}

async fn pump(fd: OwnedFd, stream: &'static str, emitter: Arc<Emitter>) {
    let Ok(mut rx) = pipe::Receiver::from_owned_fd(fd) else { return };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut seq = emitter.seq.lock().await;
                *seq += 1;
                let data = base64::engine::general_purpose::STANDARD.encode(&buf[..n]);
                let params = json!({ "execId": emitter.exec_id, "stream": stream, "seq": *seq, "dataBase64": data });
                // A vanished peer stops being sent to, but the pipe is still drained so the command
                // never blocks on a full pipe.
                emitter.conn.notify("exec/output", params).await;
            }
        }
    }
}

async fn feed_stdin(fd: OwnedFd, bytes: Vec<u8>) {
    if let Ok(mut tx) = pipe::Sender::from_owned_fd(fd) {
        // EPIPE when the command exits without reading everything is normal.
        let _ = tx.write_all(&bytes).await;
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("SIG{sig}"))
}

/// Running execs by id, so `exec/kill` and a closing connection can reach them.
#[derive(Default)]
pub struct ExecRegistry {
    inner: Arc<Mutex<HashMap<String, ExecEntry>>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecEntry {
    pub exec_id: String,
    pub sandbox_id: String,
    pub environment: String,
    pub pid: Option<i32>,
    #[serde(skip)]
    pub conn: u64,
    pub killed: bool,
}

/// Removes its exec from the registry when the run ends.
pub struct Registration {
    id: String,
    inner: Arc<Mutex<HashMap<String, ExecEntry>>>,
}

impl Registration {
    /// Records the pid; true if a kill was requested before it existed.
    fn started(&self, pid: i32) -> bool {
        let mut map = lock(&self.inner);
        map.get_mut(&self.id).map(|e| {
            e.pid = Some(pid);
            e.killed
        }) == Some(true)
    }

    pub fn killed(&self) -> bool {
        lock(&self.inner).get(&self.id).is_some_and(|e| e.killed)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.inner).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ExecRegistry {
    pub fn register(
        &self,
        exec_id: &str,
        conn: u64,
        sandbox_id: &str,
        environment: &str,
    ) -> Result<Registration, Error> {
        let mut map = lock(&self.inner);
        if map.contains_key(exec_id) {
            return Err(Error::ExecIdInUse(exec_id.to_string()));
        }
        let entry = ExecEntry {
            exec_id: exec_id.into(),
            sandbox_id: sandbox_id.into(),
            environment: environment.into(),
            pid: None,
            conn,
            killed: false,
        };
        map.insert(exec_id.to_string(), entry);
        Ok(Registration { id: exec_id.to_string(), inner: self.inner.clone() })
    }

    /// Marks the exec killed; returns its pid if it has one yet.
    pub fn mark_killed(&self, exec_id: &str) -> Result<Option<i32>, Error> {
        let mut map = lock(&self.inner);
        let e = map.get_mut(exec_id).ok_or_else(|| Error::ExecNotFound(exec_id.to_string()))?;
        e.killed = true;
        Ok(e.pid)
    }

    /// Marks every exec of a connection (or all, for shutdown) killed and returns their pids.
    pub fn mark_all_killed(&self, conn: Option<u64>) -> Vec<i32> {
        let mut map = lock(&self.inner);
        map.values_mut()
            .filter(|e| conn.is_none_or(|c| e.conn == c))
            .filter_map(|e| {
                e.killed = true;
                e.pid
            })
            .collect()
    }

    pub fn list(&self) -> Vec<ExecEntry> {
        let mut v: Vec<ExecEntry> = lock(&self.inner).values().cloned().collect();
        v.sort_by(|a, b| a.exec_id.cmp(&b.exec_id));
        v
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.inner).is_empty()
    }
}
