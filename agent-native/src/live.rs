//! Persistent sandboxes while they have processes: made from an environment (`create`) or from a
//! snapshot (snapshots.rs), with commands run inside them (`exec`), frozen and thawed, and torn down.
//! The catalog holds what must outlive the runtime; this registry holds what only lives with it (pids,
//! pipes, mounts). Lifecycle operations on one sandbox are serialized by its `op` lock.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::catalog::{now_ms, ExternalIds, Policy, SandboxRow, SandboxSpec, SandboxState};
use crate::cgroup::SandboxCgroup;
use crate::envs::{self, remove_tree};
use crate::error::Error;
use crate::exec::{self, Ended, Launch};
use crate::layers::Layer;
use crate::overlay;
use crate::plan::{self, Command};
use crate::rpc::Connection;
use crate::safe_fs;
use crate::service::Runtime;
use crate::spawner::ExitStatus;
use crate::spec::{FileSpec, Limits};
use crate::userns::{self, IdMap};

/// pid 1 of a sandbox started without a command: a shell that idles, in every environment.
pub const KEEPALIVE: [&str; 3] = ["/bin/sh", "-c", "while :; do sleep 3600; done"];

pub struct LiveSandbox {
    pub id: String,
    pub environment: &'static str,
    pub env_root: PathBuf,
    /// Read-only layers between the writable layer and the environment, top first.
    pub lowers: Vec<PathBuf>,
    pub layer: Layer,
    /// The overlay mount point.
    pub rootfs: PathBuf,
    pub cgroup: SandboxCgroup,
    pub pid1: i32,
    pub external: ExternalIds,
    pub origin_snapshot: Option<String>,
    pub spec: SandboxSpec,
    pub labels: BTreeMap<String, String>,
    pub created_at_ms: u64,
    paused: Mutex<bool>,
    pub policy: Mutex<Policy>,
    /// When something last happened in or with it (ms since the epoch), for idle timeouts.
    pub last_activity_ms: AtomicU64,
    pub running_execs: AtomicUsize,
    /// Serializes snapshot, pause, stop and destroy of this sandbox.
    pub op: tokio::sync::Mutex<()>,
    /// Set while the runtime itself ends the processes (stop, destroy), so the exit watcher does not
    /// record it as the sandbox exiting on its own.
    pub ending: Mutex<bool>,
}

impl LiveSandbox {
    /// A sandbox whose processes CRIU just restored from `origin`.
    #[allow(clippy::too_many_arguments)]
    pub fn restored(
        id: String,
        environment: &'static str,
        env_root: PathBuf,
        lowers: Vec<PathBuf>,
        layer: Layer,
        rootfs: PathBuf,
        cgroup: SandboxCgroup,
        pid1: i32,
        external: ExternalIds,
        origin: String,
        spec: SandboxSpec,
    ) -> LiveSandbox {
        LiveSandbox {
            id,
            environment,
            env_root,
            lowers,
            layer,
            rootfs,
            cgroup,
            pid1,
            external,
            origin_snapshot: Some(origin),
            spec,
            labels: BTreeMap::new(),
            created_at_ms: now_ms(),
            paused: Mutex::new(false),
            policy: Mutex::new(Policy::default()),
            last_activity_ms: AtomicU64::new(now_ms()),
            running_execs: AtomicUsize::new(0),
            op: tokio::sync::Mutex::new(()),
            ending: Mutex::new(false),
        }
    }

    pub fn touch(&self) {
        self.last_activity_ms.store(now_ms(), Ordering::SeqCst);
    }

    pub fn policy(&self) -> Policy {
        self.policy.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn paused(&self) -> bool {
        *self.paused.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> SandboxState {
        if self.paused() {
            SandboxState::Paused
        } else {
            SandboxState::Running
        }
    }

    pub fn row(&self) -> SandboxRow {
        SandboxRow {
            id: self.id.clone(),
            environment: self.environment.into(),
            state: self.state(),
            origin_snapshot: self.origin_snapshot.clone(),
            last_snapshot: None,
            spec: self.spec.clone(),
            labels: self.labels.clone(),
            exit_code: None,
            created_at_ms: self.created_at_ms,
            updated_at_ms: now_ms(),
            policy: self.policy(),
        }
    }
}

#[derive(Default)]
pub struct Registry {
    map: Mutex<HashMap<String, Arc<LiveSandbox>>>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<Arc<LiveSandbox>> {
        self.lock().get(id).cloned()
    }

    pub fn insert(&self, s: Arc<LiveSandbox>) {
        self.lock().insert(s.id.clone(), s);
    }

    pub fn remove(&self, id: &str) -> Option<Arc<LiveSandbox>> {
        self.lock().remove(id)
    }

    pub fn all(&self) -> Vec<Arc<LiveSandbox>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveSandbox>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateParams {
    pub environment: String,
    /// pid 1; the keep-alive shell when absent.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub policy: Policy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecParams {
    pub exec_id: String,
    pub sandbox_id: String,
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub stdin: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Placed into the sandbox's files before the command starts.
    #[serde(default)]
    pub files: Vec<FileSpec>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecResult {
    pub sandbox_id: String,
    pub exit_code: i32,
    pub signal: Option<String>,
    pub timed_out: bool,
    pub killed: bool,
    pub duration_ms: f64,
}

/// Directory of a persistent sandbox on the data dir: its rootfs mount point, console log, criu work.
pub fn sandbox_dir(rt: &Runtime, id: &str) -> PathBuf {
    rt.config.sandbox_dir(id)
}

/// The spec recorded for a sandbox: what was asked, and the disk limit it actually got (None where
/// none is enforced), so its branches get the same one.
pub fn spec_of(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&str>,
    limits: &Limits,
    disk_bytes: Option<u64>,
) -> SandboxSpec {
    SandboxSpec {
        argv: argv.to_vec(),
        env: env.clone(),
        cwd: cwd.map(String::from),
        memory_bytes: limits.memory_bytes,
        cpus: limits.cpus,
        pids: limits.pids,
        disk_bytes,
    }
}

pub fn limits_of(spec: &SandboxSpec) -> Limits {
    Limits { memory_bytes: spec.memory_bytes, cpus: spec.cpus, pids: spec.pids, disk_bytes: spec.disk_bytes }
}

/// Places files into a sandbox's root off the async workers (the disk, and whatever the sandbox left at
/// those paths, may take their time).
pub async fn place_files(ids: Option<IdMap>, root: PathBuf, files: Vec<plan::FilePlan>) -> Result<(), Error> {
    if files.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        userns::as_sandbox_owner(ids, || {
            files.iter().try_for_each(|f| safe_fs::write_file(&root, &f.path, &f.content, f.mode))
        })
        .map_err(|e| Error::Sandbox(e.into()))
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
}

/// Creates a persistent sandbox from an environment and starts its first process.
pub async fn create(rt: &Arc<Runtime>, p: CreateParams) -> Result<Arc<LiveSandbox>, Error> {
    crate::lifecycle::check(&p.policy)?;
    let def = envs::resolve(&p.environment)?;
    let env_root = rt.envs.built_rootfs(def)?;
    let id = crate::ids::new_sandbox_id();
    let argv: Vec<String> = p.argv.clone().unwrap_or_else(|| KEEPALIVE.iter().map(|s| s.to_string()).collect());
    let command = Command { argv: &argv, env: &p.env, cwd: p.cwd.as_deref(), stdin: None };
    let (mut process, _) = plan::process(&command, &id, &rt.host)?;
    let limits = plan::limits(&p.limits, &rt.host)?;
    let disk_bytes = plan::disk_limit(p.limits.disk_bytes, &rt.store.disk_facts())?;
    let files = plan::files(&p.files, &process.cwd)?;
    let spec = spec_of(&argv, &p.env, p.cwd.as_deref(), &p.limits, disk_bytes);

    let dir = sandbox_dir(rt, &id);
    let rootfs = dir.join("rootfs");
    let layer = {
        let (rt, id) = (rt.clone(), id.clone());
        tokio::task::spawn_blocking(move || rt.store.new_layer(&id, disk_bytes))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(Error::Layer)?
    };
    let mut undo = Undo::new(rt, &id);
    undo.layer = true;
    crate::data_dir::create_private_dir(&rootfs)
        .map_err(|e| Error::Io("create the sandbox directory", rootfs.clone(), e))?;
    let overlay_dirs =
        overlay::OverlayDirs { upper: layer.upper.clone(), work: layer.work.clone(), rootfs: rootfs.clone() };
    overlay::mount_overlay(&[env_root.as_path()], &overlay_dirs, rt.config.userns.as_deref())
        .map_err(|e| Error::Sandbox(e.into()))?;
    undo.mounted = Some(rootfs.clone());
    place_files(rt.config.ids(), rootfs.clone(), files).await?;
    let cgroup = rt.layout.create(&rt.config.cgroup_parent, &id, &limits).map_err(|e| Error::Sandbox(e.into()))?;
    undo.cgroup = Some(cgroup.clone());
    process.cgroup_procs = cgroup.procs_files();
    let init = crate::sandbox_init::InitPlan { rootfs: rootfs.clone(), hostname: id.clone(), process, pooled: false };
    let pipes = StdioPipes::new()?;
    let spawned = rt.spawner.spawn(&init, &[pipes.out_w.as_fd(), pipes.err_w.as_fd()]).await?;
    let external =
        ExternalIds::new(pipes.stdout_ino(), pipes.stderr_ino(), netns_inode(spawned.pid).unwrap_or(0), rt.config.ids());
    undo.disarm();
    let live = Arc::new(LiveSandbox {
        id: id.clone(),
        environment: def.name,
        env_root,
        lowers: Vec::new(),
        layer,
        rootfs,
        cgroup,
        pid1: spawned.pid,
        external,
        origin_snapshot: None,
        spec,
        labels: p.labels,
        created_at_ms: now_ms(),
        paused: Mutex::new(false),
        policy: Mutex::new(p.policy),
        last_activity_ms: AtomicU64::new(now_ms()),
        running_execs: AtomicUsize::new(0),
        op: tokio::sync::Mutex::new(()),
        ending: Mutex::new(false),
    });
    register(rt, live.clone(), pipes, spawned.exit).await?;
    Ok(live)
}

/// Records a sandbox whose first process runs (created or restored), streams its console, and watches
/// for its exit.
pub async fn register(
    rt: &Arc<Runtime>,
    live: Arc<LiveSandbox>,
    pipes: StdioPipes,
    exit: tokio::sync::oneshot::Receiver<ExitStatus>,
) -> Result<(), Error> {
    let mut row = live.row();
    if let Some(prev) = rt.catalog.sandbox(&live.id).map_err(Error::Catalog)? {
        row.created_at_ms = prev.created_at_ms; // a restart of a stopped sandbox keeps its identity
        row.last_snapshot = prev.last_snapshot;
        row.origin_snapshot = prev.origin_snapshot.or(row.origin_snapshot);
        if row.policy == Policy::default() {
            row.policy = prev.policy; // a started (restored) sandbox keeps its instance policy
            *live.policy.lock().unwrap_or_else(|p| p.into_inner()) = row.policy.clone();
        }
    }
    rt.catalog.insert_sandbox(&row).map_err(Error::Catalog)?;
    rt.live.insert(live.clone());
    let StdioPipes { out_r, err_r, .. } = pipes;
    let log = sandbox_dir(rt, &live.id).join("console.log");
    let seq = Arc::new(tokio::sync::Mutex::new(0u64));
    for (fd, stream) in [(out_r, "stdout"), (err_r, "stderr")] {
        tokio::spawn(console_pump(rt.clone(), live.id.clone(), fd, stream, log.clone(), seq.clone()));
    }
    let (rt2, live2) = (rt.clone(), live.clone());
    tokio::spawn(async move {
        let status = exit.await.ok();
        on_exit(&rt2, &live2, status).await;
    });
    changed(rt, &live.id, live.state()).await;
    Ok(())
}

pub async fn changed(rt: &Runtime, id: &str, state: SandboxState) {
    rt.hub.broadcast("sandbox/changed", json!({ "sandboxId": id, "state": state })).await;
}

/// pid 1 ended. Unless the runtime ended it (stop, destroy), the sandbox exited on its own: its
/// processes and mount go, its files stay until it is destroyed.
async fn on_exit(rt: &Arc<Runtime>, live: &Arc<LiveSandbox>, status: Option<ExitStatus>) {
    // A stop or destroy in progress holds the lock and sets `ending`; wait for it before deciding.
    let _op = live.op.lock().await;
    if *live.ending.lock().unwrap_or_else(|p| p.into_inner()) {
        return;
    }
    rt.live.remove(&live.id);
    rt.forwards.remove_sandbox(&live.id);
    release_processes(live);
    let code = status.map(|s| s.code.unwrap_or_else(|| 128 + s.signal.unwrap_or(0)));
    let _ = rt.catalog.set_sandbox_state(&live.id, SandboxState::Exited, code);
    changed(rt, &live.id, SandboxState::Exited).await;
}

/// Kills whatever still runs and removes the cgroup and the mount; the writable layer stays.
pub fn release_processes(live: &LiveSandbox) {
    live.cgroup.kill_all();
    let _ = overlay::unmount(&live.rootfs);
    let _ = live.cgroup.remove(Duration::from_secs(5));
}

async fn console_pump(
    rt: Arc<Runtime>,
    id: String,
    fd: OwnedFd,
    stream: &'static str,
    log: PathBuf,
    seq: Arc<tokio::sync::Mutex<u64>>,
) {
    let Ok(mut rx) = pipe::Receiver::from_owned_fd(fd) else { return };
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await.ok();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(f) = file.as_mut() {
                    use tokio::io::AsyncWriteExt;
                    let _ = f.write_all(&buf[..n]).await;
                }
                let mut s = seq.lock().await;
                *s += 1;
                let data = base64::engine::general_purpose::STANDARD.encode(&buf[..n]);
                rt.hub
                    .broadcast(
                        "sandbox/output",
                        json!({ "sandboxId": id, "stream": stream, "seq": *s, "dataBase64": data }),
                    )
                    .await;
            }
        }
    }
}

/// Places files into a sandbox's rootfs, owned by sandbox root.
/// A running (not paused) sandbox, or why not.
pub fn running(rt: &Runtime, id: &str) -> Result<Arc<LiveSandbox>, Error> {
    match rt.live.get(id) {
        Some(l) if !l.paused() => Ok(l),
        Some(_) => Err(Error::SandboxState { id: id.into(), state: "paused", need: "running (resume it first)" }),
        None => Err(not_live(rt, id)),
    }
}

/// The error for a sandbox that has no processes: unknown, or in which state it is.
pub fn not_live(rt: &Runtime, id: &str) -> Error {
    match rt.catalog.sandbox(id) {
        Ok(Some(row)) if row.state != SandboxState::Destroyed => {
            let state = match row.state {
                SandboxState::Stopped => "stopped",
                SandboxState::Exited => "exited",
                SandboxState::Failed => "failed",
                _ => "not running",
            };
            Error::SandboxState { id: id.into(), state, need: "running" }
        }
        _ => Error::SandboxNotFound(id.into()),
    }
}

/// Runs a command inside a running sandbox.
pub async fn exec(rt: &Arc<Runtime>, conn: &Arc<Connection>, p: ExecParams) -> Result<ExecResult, Error> {
    plan::check_exec_id(&p.exec_id)?;
    let live = running(rt, &p.sandbox_id)?;
    let command = Command { argv: &p.argv, env: &p.env, cwd: p.cwd.as_deref(), stdin: p.stdin.as_deref() };
    let (mut process, stdin) = plan::process(&command, &live.id, &rt.host)?;
    process.cgroup_procs = live.cgroup.procs_files();
    let timeout = plan::timeout(p.timeout_ms)?;
    place_files(live.external.userns(), live.rootfs.clone(), plan::files(&p.files, &process.cwd)?).await?;
    let registration = rt.execs.register(&p.exec_id, conn.id, &live.id, live.environment)?;
    live.running_execs.fetch_add(1, Ordering::SeqCst);
    live.touch();
    let ended = exec::supervise(
        rt,
        conn,
        &p.exec_id,
        &live.id,
        &registration,
        Launch::Exec { target: live.pid1, plan: &process },
        stdin,
        timeout,
    )
    .await;
    live.running_execs.fetch_sub(1, Ordering::SeqCst);
    live.touch();
    let Ended { status, elapsed, timed_out } = ended?;
    Ok(ExecResult {
        sandbox_id: live.id.clone(),
        exit_code: status.code.unwrap_or_else(|| 128 + status.signal.unwrap_or(0)),
        signal: status.signal.map(exec::signal_name),
        timed_out,
        killed: registration.killed() && !timed_out,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
    })
}

/// Freezes or thaws a sandbox's cgroup off the async workers (waiting for a freeze can take seconds).
pub async fn set_frozen(cgroup: &crate::cgroup::SandboxCgroup, frozen: bool) -> Result<(), Error> {
    let cgroup = cgroup.clone();
    tokio::task::spawn_blocking(move || cgroup.set_frozen(frozen))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(|e| Error::Sandbox(e.into()))
}

pub async fn set_paused(rt: &Arc<Runtime>, id: &str, pause: bool) -> Result<SandboxState, Error> {
    let live = rt.live.get(id).ok_or_else(|| not_live(rt, id))?;
    let _op = live.op.lock().await;
    if pause {
        let cgroup = live.cgroup.clone();
        tokio::task::spawn_blocking(move || crate::quiesce::freeze(&cgroup, crate::quiesce::Goal::Frozen, true))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(Error::Quiesce)?;
    } else {
        set_frozen(&live.cgroup, false).await?;
    }
    *live.paused.lock().unwrap_or_else(|p| p.into_inner()) = pause;
    let state = live.state();
    rt.catalog.set_sandbox_state(id, state, None).map_err(Error::Catalog)?;
    changed(rt, id, state).await;
    Ok(state)
}

/// Ends a running sandbox's processes without a snapshot (an expiry's `stop`): its files stay, its state
/// becomes `exited`.
pub async fn end(rt: &Arc<Runtime>, id: &str) -> Result<(), Error> {
    let live = rt.live.get(id).ok_or_else(|| not_live(rt, id))?;
    let _op = live.op.lock().await;
    *live.ending.lock().unwrap_or_else(|p| p.into_inner()) = true;
    rt.live.remove(id);
    rt.forwards.remove_sandbox(id);
    release_processes(&live);
    rt.catalog.set_sandbox_state(id, SandboxState::Exited, Some(128 + libc::SIGKILL)).map_err(Error::Catalog)?;
    changed(rt, id, SandboxState::Exited).await;
    Ok(())
}

/// Destroys a sandbox in any state: processes, mount, cgroup, writable layer, directory. Its snapshots
/// stay (they are separate objects), and so does its catalog row, marked destroyed, for the tree.
pub async fn destroy(rt: &Arc<Runtime>, id: &str) -> Result<(), Error> {
    let row = rt.catalog.sandbox(id).map_err(Error::Catalog)?;
    let live = rt.live.get(id);
    if live.is_none() && !row.as_ref().is_some_and(|r| r.state != SandboxState::Destroyed) {
        return Err(Error::SandboxNotFound(id.into()));
    }
    if let Some(live) = live {
        let _op = live.op.lock().await;
        *live.ending.lock().unwrap_or_else(|p| p.into_inner()) = true;
        rt.live.remove(id);
        rt.forwards.remove_sandbox(id);
        release_processes(&live);
    }
    let (rt2, id2) = (rt.clone(), id.to_string());
    tokio::task::spawn_blocking(move || {
        rt2.store.remove_layer(&id2).map_err(Error::Layer)?;
        let dir = sandbox_dir(&rt2, &id2);
        remove_tree(&dir).map_err(|e| Error::Io("remove the sandbox directory", dir, e))
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    rt.catalog.set_sandbox_state(id, SandboxState::Destroyed, None).map_err(Error::Catalog)?;
    changed(rt, id, SandboxState::Destroyed).await;
    Ok(())
}

/// The pipes a sandbox's first process writes its console to.
pub struct StdioPipes {
    pub out_r: OwnedFd,
    pub out_w: OwnedFd,
    pub err_r: OwnedFd,
    pub err_w: OwnedFd,
}

impl StdioPipes {
    pub fn new() -> Result<StdioPipes, Error> {
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::Pipe);
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        Ok(StdioPipes { out_r, out_w, err_r, err_w })
    }

    pub fn stdout_ino(&self) -> u64 {
        inode(&self.out_r)
    }

    pub fn stderr_ino(&self) -> u64 {
        inode(&self.err_r)
    }
}

fn inode(fd: &OwnedFd) -> u64 {
    nix::sys::stat::fstat(fd).map(|s| s.st_ino).unwrap_or(0)
}

pub fn netns_inode(pid: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/net")).ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// Undoes a half-made sandbox when creation fails part way.
pub struct Undo<'a> {
    rt: &'a Runtime,
    id: String,
    pub layer: bool,
    pub mounted: Option<PathBuf>,
    pub cgroup: Option<SandboxCgroup>,
    armed: bool,
}

impl<'a> Undo<'a> {
    pub fn new(rt: &'a Runtime, id: &str) -> Undo<'a> {
        Undo { rt, id: id.into(), layer: false, mounted: None, cgroup: None, armed: true }
    }

    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
            let _ = cg.remove(Duration::from_secs(2));
        }
        if let Some(m) = &self.mounted {
            let _ = overlay::unmount(m);
        }
        if self.layer {
            let _ = self.rt.store.remove_layer(&self.id);
        }
        let _ = remove_tree(&sandbox_dir(self.rt, &self.id));
    }
}
