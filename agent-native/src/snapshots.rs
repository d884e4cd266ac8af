//! Snapshots of running sandboxes and sandboxes made from them. A snapshot freezes the sandbox's cgroup,
//! dumps its process tree with CRIU (left running, or not for a stop), snapshots its writable layer while
//! still frozen, then thaws: memory and files are consistent with each other. A restore (and each
//! branch) gets its own writable layer from the snapshot, its own network namespace and cgroup, and new
//! console pipes handed to CRIU in place of the old ones; large images restore with lazy pages.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::catalog::{now_ms, Policy, SandboxState, SnapshotRow, SnapshotState};
use crate::criu::{self, Dump, Restore};
use crate::envs::{self, remove_tree};
use crate::error::Error;
use crate::live::{self, LiveSandbox, StdioPipes, Undo};
use crate::overlay;
use crate::plan;
use crate::service::Runtime;
use crate::spawner::HelperPlan;

/// Images with more memory than this restore lazily (userfaultfd): time to running no longer grows
/// with size (SANDBOX-FACTS.md §1.8).
pub const LAZY_THRESHOLD_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotTimings {
    /// How long the sandbox's processes were frozen.
    pub pause_ms: f64,
    pub dump_ms: f64,
    pub fs_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub snapshot: SnapshotRow,
    pub timings: SnapshotTimings,
}

pub fn snapshot_dir(rt: &Runtime, id: &str) -> PathBuf {
    rt.config.data_dir.join("snapshots").join(id)
}

/// Snapshots a running or paused sandbox. With `leave_running` false the sandbox stops afterwards (its
/// state is the snapshot's, and `start` brings it back).
pub async fn create(
    rt: &Arc<Runtime>,
    sandbox_id: &str,
    leave_running: bool,
    label: Option<String>,
) -> Result<Created, Error> {
    let live = rt.live.get(sandbox_id).ok_or_else(|| live::not_live(rt, sandbox_id))?;
    let _op = live.op.lock().await;
    if rt.live.get(sandbox_id).is_none() {
        return Err(live::not_live(rt, sandbox_id)); // it exited while we waited for the lock
    }
    let busy = live.running_execs.load(Ordering::SeqCst);
    if busy > 0 {
        return Err(Error::SandboxBusy { id: sandbox_id.into(), execs: busy });
    }
    criu::check_installed(&rt.config.criu).map_err(Error::Criu)?;
    let id = crate::ids::new_snapshot_id();
    let dir = snapshot_dir(rt, &id);
    let images = dir.join("criu");
    let row = SnapshotRow {
        id: id.clone(),
        sandbox_id: sandbox_id.into(),
        parent_snapshot: live.origin_snapshot.clone(),
        environment: live.environment.into(),
        state: SnapshotState::Creating,
        label,
        spec: live.spec.clone(),
        layers: Vec::new(),
        external: live.external.clone(),
        memory_bytes: 0,
        fs_bytes: 0,
        created_at_ms: now_ms(),
    };
    rt.catalog.begin_snapshot(&row).map_err(Error::Catalog)?;
    let was_paused = live.paused();
    let t0 = Instant::now();
    let outcome = freeze_and_capture(rt, &live, &id, &images, leave_running, was_paused).await;
    if leave_running && !was_paused {
        let _ = live::set_frozen(&live.cgroup, false).await;
    }
    let pause = t0.elapsed();
    let (dump, fs_time, layers) = match outcome {
        Ok(o) => o,
        Err(e) => {
            let _ = rt.store.remove_snapshot(&id);
            let _ = remove_tree(&dir);
            let _ = rt.catalog.delete_snapshot(&id);
            if !leave_running && rt.live.get(sandbox_id).is_some() {
                let _ = live::set_frozen(&live.cgroup, false).await;
            }
            return Err(e);
        }
    };
    let memory_bytes = criu::image_pages_bytes(&images);
    // A walk of the whole layer: off the async workers (a sandbox may have left millions of files).
    let top = layers.first().cloned();
    let fs_bytes = tokio::task::spawn_blocking(move || top.map(|l| crate::envs::tree_size(&l)).unwrap_or(0))
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    rt.catalog.finish_snapshot(&id, sandbox_id, &layers, memory_bytes, fs_bytes).map_err(Error::Catalog)?;
    if !leave_running {
        // CRIU killed the tree after dumping it: the sandbox is stopped at this snapshot.
        *live.ending.lock().unwrap_or_else(|p| p.into_inner()) = true;
        rt.live.remove(sandbox_id);
        rt.forwards.remove_sandbox(sandbox_id);
        live::release_processes(&live);
        let _ = rt.store.remove_layer(sandbox_id);
        rt.catalog.set_sandbox_state(sandbox_id, SandboxState::Stopped, None).map_err(Error::Catalog)?;
        live::changed(rt, sandbox_id, SandboxState::Stopped).await;
    }
    let snapshot =
        rt.catalog.snapshot(&id).map_err(Error::Catalog)?.ok_or_else(|| Error::SnapshotNotFound(id.clone()))?;
    rt.hub.broadcast("snapshot/changed", serde_json::json!({ "snapshotId": id, "state": "ready" })).await;
    Ok(Created {
        snapshot,
        timings: SnapshotTimings {
            pause_ms: ms(pause),
            dump_ms: ms(dump),
            fs_ms: ms(fs_time),
            total_ms: ms(t0.elapsed()),
        },
    })
}

async fn freeze_and_capture(
    rt: &Arc<Runtime>,
    live: &LiveSandbox,
    snap_id: &str,
    images: &std::path::Path,
    leave_running: bool,
    was_paused: bool,
) -> Result<(Duration, Duration, Vec<PathBuf>), Error> {
    // Frozen before anything is captured, so memory and files are from the same instant. The layer is
    // snapshotted first: it is O(1) now, while after CRIU has written the image, its commit would queue
    // behind hundreds of MB of dirty pages on the same disk. CRIU leaves an already-frozen cgroup frozen.
    let cgroup = live.cgroup.clone();
    tokio::task::spawn_blocking(move || crate::quiesce::freeze(&cgroup, crate::quiesce::Goal::Dumpable, !was_paused))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(Error::Quiesce)?;
    let t = Instant::now();
    let (store_rt, id, lowers, snap) = (rt.clone(), live.id.clone(), live.lowers.clone(), snap_id.to_string());
    let layers = tokio::task::spawn_blocking(move || store_rt.store.snapshot(&id, &lowers, &snap))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(Error::Layer)?;
    let fs_time = t.elapsed();
    let dump = Dump {
        pid: live.pid1,
        images: images.to_path_buf(),
        netns_ino: live.external.netns,
        freezer: live.cgroup.freezer_dir().ok_or(Error::NoFreezer)?,
        leave_running,
        restorer_id: live.external.userns().map(|m| m.base),
    };
    let dump_time = criu::dump(&rt.config.criu, &dump).await.map_err(Error::Criu)?;
    Ok((dump_time, fs_time, layers))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    pub sandbox_id: String,
    pub snapshot_id: String,
    pub lazy: bool,
    /// From the request to the restored processes running.
    pub time_to_running_ms: f64,
    /// Where that time went, in order (layer, mount, cgroup, netns, lazy daemon, criu, adopt, register).
    pub phases_ms: Vec<(&'static str, f64)>,
    /// Taken from the snapshot's pool of restored, frozen copies (a thaw, not a CRIU restore).
    pub pooled: bool,
}

/// Records the time since the previous mark under a name.
pub struct Phases {
    last: Instant,
    marks: Vec<(&'static str, f64)>,
}

impl Default for Phases {
    fn default() -> Phases {
        Phases::new()
    }
}

impl Phases {
    pub fn new() -> Phases {
        Phases { last: Instant::now(), marks: Vec::new() }
    }

    pub fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.marks.push((name, ms(now - self.last)));
        self.last = now;
    }
}

/// Restores snapshot `snap_id` into a sandbox: a new one, or (for `start`) the stopped sandbox `into`.
/// `disk_bytes`: its own disk limit; by default the one its snapshot's sandbox had.
pub async fn restore(
    rt: &Arc<Runtime>,
    snap_id: &str,
    into: Option<&str>,
    policy: Policy,
    disk_bytes: Option<u64>,
) -> Result<Restored, Error> {
    let t0 = Instant::now();
    crate::lifecycle::check(&policy)?;
    let (parts, mut phases) = restore_parts(rt, snap_id, into, true, disk_bytes).await?;
    let (id, lazy) = (parts.id.clone(), parts.lazy);
    parts.register(rt, policy).await?;
    phases.mark("register");
    Ok(Restored {
        sandbox_id: id,
        snapshot_id: snap_id.into(),
        lazy,
        time_to_running_ms: ms(t0.elapsed()),
        phases_ms: phases.marks,
        pooled: false,
    })
}

/// A restored sandbox not yet known to anyone: its processes run (or sit frozen in a snapshot pool),
/// but it has no catalog row and no console pump until `register`.
pub struct RestoredParts {
    pub id: String,
    pub lazy: bool,
    environment: &'static str,
    env_root: PathBuf,
    lowers: Vec<PathBuf>,
    layer: crate::layers::Layer,
    rootfs: PathBuf,
    pub cgroup: crate::cgroup::SandboxCgroup,
    pid1: i32,
    external: crate::catalog::ExternalIds,
    origin: String,
    spec: crate::catalog::SandboxSpec,
    pipes: StdioPipes,
    pub exit: tokio::sync::oneshot::Receiver<crate::spawner::ExitStatus>,
}

impl RestoredParts {
    /// Makes it a live sandbox (created now, with `policy`): catalog row, console, exit watch.
    pub async fn register(self, rt: &Arc<Runtime>, policy: Policy) -> Result<(), Error> {
        let live = Arc::new(LiveSandbox::restored(
            self.id,
            self.environment,
            self.env_root,
            self.lowers,
            self.layer,
            self.rootfs,
            self.cgroup,
            self.pid1,
            self.external,
            self.origin,
            self.spec,
        ));
        *live.policy.lock().unwrap_or_else(|p| p.into_inner()) = policy;
        live::register(rt, live, self.pipes, self.exit).await
    }

    /// Gives it a disk limit of its own (a pooled copy taken by a branch that asked for one).
    pub fn set_disk_limit(&mut self, rt: &Runtime, requested: u64) -> Result<(), Error> {
        let disk = plan::disk_limit(Some(requested), &rt.store.disk_facts())?;
        rt.store.set_disk_limit(&self.id, disk).map_err(Error::Layer)?;
        self.spec.disk_bytes = disk;
        Ok(())
    }

    /// Ends it without it ever having been registered: processes, mount, cgroup, layer, directory.
    pub fn discard(self, rt: &Runtime) {
        let _ = self.cgroup.set_frozen(false);
        self.cgroup.kill_all();
        let _ = crate::overlay::unmount(&self.rootfs);
        let _ = self.cgroup.remove(Duration::from_secs(5));
        let _ = rt.store.remove_layer(&self.id);
        let _ = remove_tree(&live::sandbox_dir(rt, &self.id));
    }
}

/// Everything of `restore` but the registration. `allow_lazy`: large images may page in on demand (a
/// pool's copies restore eagerly: they wait, so their pages had better be there). `disk_bytes`: a disk
/// limit of its own instead of the snapshot's sandbox's.
pub async fn restore_parts(
    rt: &Arc<Runtime>,
    snap_id: &str,
    into: Option<&str>,
    allow_lazy: bool,
    disk_bytes: Option<u64>,
) -> Result<(RestoredParts, Phases), Error> {
    let mut phases = Phases::new();
    let snap = rt.catalog.snapshot(snap_id).map_err(Error::Catalog)?;
    let snap = match snap {
        Some(s) if s.state == SnapshotState::Ready => s,
        _ => return Err(Error::SnapshotNotFound(snap_id.into())),
    };
    criu::check_installed(&rt.config.criu).map_err(Error::Criu)?;
    let def = envs::resolve(&snap.environment)?;
    let env_root = rt.envs.built_rootfs(def)?;
    let userns = userns_of(rt, &snap)?;
    let id = into.map(String::from).unwrap_or_else(crate::ids::new_sandbox_id);
    let limits = plan::limits(&live::limits_of(&snap.spec), &rt.host)?;
    let disk = plan::inherited_disk_limit(disk_bytes, snap.spec.disk_bytes, &rt.store.disk_facts())?;
    let mut spec = snap.spec.clone();
    spec.disk_bytes = disk;

    let dir = live::sandbox_dir(rt, &id);
    let rootfs = dir.join("rootfs");
    let work = dir.join("criu");
    let mut undo = Undo::new(rt, &id);
    // A restart reuses the directory: the previous incarnation's criu files must not linger.
    remove_tree(&work).map_err(|e| Error::Io("clear the criu work directory", work.clone(), e))?;
    for d in [&rootfs, &work] {
        crate::data_dir::create_private_dir(d).map_err(|e| Error::Io("create the sandbox directory", d.clone(), e))?;
    }
    let lazy = allow_lazy && snap.memory_bytes > LAZY_THRESHOLD_BYTES;
    let r = Restore {
        images: snapshot_dir(rt, &snap.id).join("criu"),
        work: work.clone(),
        root: rootfs.clone(),
        pidfile: work.join("pid"),
        stdout_pipe: snap.external.stdout_pipe,
        stderr_pipe: snap.external.stderr_pipe,
        lazy,
        user_ns: snap.external.userns().is_some(),
    };
    // Opened here: criu starts inside the sandbox's devices cgroup, which refuses it the device.
    let dev_uffd = if r.needs_dev_uffd() { Some(open_dev_uffd()?) } else { None };
    let criu_bin = rt.config.criu.display().to_string();
    let helper = |args: Vec<String>, fds: Vec<i32>, cgroups: Vec<PathBuf>| HelperPlan {
        argv: std::iter::once(criu_bin.clone()).chain(args).collect(),
        env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
        cgroup_ns: !cgroups.is_empty(),
        sandbox_root: (!cgroups.is_empty()).then(|| rootfs.clone()),
        cgroup_procs: cgroups,
        memory_merge: true,
        fd_targets: fds,
    };
    // The lazy-pages daemon needs only the images: it starts first and comes up while the sandbox's
    // layer, mount, cgroup and network are made.
    let daemon =
        if lazy { Some(rt.spawner.helper(&helper(r.lazy_pages_args(), vec![], vec![]), &[]).await?) } else { None };
    let made = async {
        let (layer, lowers) = {
            let (rt2, s, layers, i) = (rt.clone(), snap.id.clone(), snap.layers.clone(), id.clone());
            tokio::task::spawn_blocking(move || rt2.store.layer_from_snapshot(&s, &layers, &i, disk))
                .await
                .map_err(|e| Error::Task(e.to_string()))?
                .map_err(Error::Layer)?
        };
        undo.layer = true;
        phases.mark("layer");
        let mut stack: Vec<&std::path::Path> = lowers.iter().map(PathBuf::as_path).collect();
        stack.push(&env_root);
        let dirs =
            overlay::OverlayDirs { upper: layer.upper.clone(), work: layer.work.clone(), rootfs: rootfs.clone() };
        overlay::mount_overlay(&stack, &dirs, userns.as_deref()).map_err(|e| Error::Sandbox(e.into()))?;
        undo.mounted = Some(rootfs.clone());
        phases.mark("mount");
        let cgroup = rt.layout.create(&rt.config.cgroup_parent, &id, &limits).map_err(|e| Error::Sandbox(e.into()))?;
        undo.cgroup = Some(cgroup.clone());
        phases.mark("cgroup");
        let netns = rt.netns.take().await?;
        phases.mark("netns");
        if let Some(d) = &daemon {
            wait_for_socket(&r.lazy_socket(), d.pid).await?;
            phases.mark("lazy-pages daemon");
        }
        Ok::<_, Error>((layer, lowers, cgroup, netns))
    }
    .await;
    let (layer, lowers, cgroup, netns) = match made {
        Ok(m) => m,
        Err(e) => {
            if let Some(d) = &daemon {
                let _ = rt.spawner.kill(d.pid, libc::SIGKILL).await;
            }
            return Err(e);
        }
    };
    let pipes = StdioPipes::new()?;
    let mut targets = vec![criu::NETNS_FD, criu::STDOUT_FD, criu::STDERR_FD];
    let mut fds = vec![netns.as_fd(), pipes.out_w.as_fd(), pipes.err_w.as_fd()];
    if let Some(f) = &dev_uffd {
        targets.push(criu::UFFD_DEV_FD);
        fds.push(f.as_fd());
    }
    let plan = helper(r.args(), targets, cgroup.procs_files());
    let criu_proc = rt.spawner.helper(&plan, &fds).await?;
    drop(fds);
    drop((dev_uffd, netns));
    let status = criu_proc.exit.await.map_err(|_| Error::Spawn(crate::spawner::SpawnError::Gone))?;
    phases.mark("criu restore");
    if status.code != Some(0) {
        if let Some(d) = &daemon {
            let _ = rt.spawner.kill(d.pid, libc::SIGKILL).await;
        }
        let log = work.join("restore.log");
        return Err(Error::Criu(criu::CriuError::Failed {
            op: "restore",
            status: format!("{status:?}"),
            tail: criu::log_tail(&log),
            log,
        }));
    }
    let pid1: i32 = std::fs::read_to_string(work.join("pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Io("read the restored pid", work.join("pid"), std::io::ErrorKind::NotFound.into()))?;
    let exit = rt.spawner.adopt(pid1).await?;
    // The restored uts namespace carries the snapshotted sandbox's hostname; a copy gets its own.
    let _ = rt.spawner.set_hostname(pid1, &id).await;
    phases.mark("adopt");
    undo.disarm();
    let parts = RestoredParts {
        id,
        lazy,
        environment: def.name,
        env_root,
        lowers,
        layer,
        rootfs,
        cgroup,
        pid1,
        external: crate::catalog::ExternalIds::new(
            pipes.stdout_ino(),
            pipes.stderr_ino(),
            live::netns_inode(pid1).unwrap_or(0),
            snap.external.userns(),
        ),
        origin: snap.id.clone(),
        spec,
        pipes,
        exit,
    };
    Ok((parts, phases))
}

/// /dev/userfaultfd for a lazy restore into a user namespace (criu::Restore::user_ns).
fn open_dev_uffd() -> Result<std::fs::File, Error> {
    let path = "/dev/userfaultfd";
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::Io("open (for a lazy restore into a user namespace)", path.into(), e))
}

/// The user namespace a snapshot's processes come back in: CRIU recreates the one they were dumped in,
/// so its files must be mounted through the same map. A snapshot without one (taken with --no-userns, or
/// before sandboxes had user namespaces) restores as it was taken, without one.
fn userns_of(rt: &Runtime, snap: &SnapshotRow) -> Result<Option<Arc<crate::userns::Userns>>, Error> {
    let mismatch = |why: String| Error::UsernsMismatch { snapshot: snap.id.clone(), why };
    match (snap.external.userns(), &rt.config.userns) {
        (None, Some(_)) => {
            crate::log!(
                "snapshot {} was taken without a user namespace: it restores without one (its root is host root)",
                snap.id
            );
            Ok(None)
        }
        (None, None) => Ok(None),
        (Some(m), Some(u)) if m == u.map => Ok(Some(u.clone())),
        (Some(m), Some(u)) => Err(mismatch(format!(
            "its processes run as host ids {}..{} and this runtime maps sandboxes to {}..{} (--userns-base); \
             restore it with a runtime started with --userns-base {} --userns-size {}",
            m.base,
            u64::from(m.base) + u64::from(m.size),
            u.map.base,
            u64::from(u.map.base) + u64::from(u.map.size),
            m.base,
            m.size
        ))),
        (Some(m), None) => Err(mismatch(format!(
            "its processes run in a user namespace (host ids from {}) and this runtime was started with \
             --no-userns; restore it with a runtime that has user namespaces",
            m.base
        ))),
    }
}

async fn wait_for_socket(path: &std::path::Path, daemon: i32) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(Error::Io(
                "wait for the lazy-pages daemon",
                path.to_path_buf(),
                std::io::ErrorKind::TimedOut.into(),
            ));
        }
        if !std::path::Path::new(&format!("/proc/{daemon}")).exists() {
            let log = path.with_file_name("lazy-pages.log");
            return Err(Error::Criu(criu::CriuError::Failed {
                op: "lazy-pages",
                status: "exited".into(),
                tail: criu::log_tail(&log),
                log,
            }));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Branched {
    pub snapshot_id: String,
    pub branches: Vec<Restored>,
    /// From the request until every branch runs.
    pub total_ms: f64,
}

/// `count` sandboxes restored from one snapshot at once. If one fails, the others are destroyed: a
/// branch operation is all or nothing. `disk_bytes`: their own disk limit instead of the one the
/// snapshot's sandbox had.
pub async fn branch(
    rt: &Arc<Runtime>,
    snap_id: &str,
    count: usize,
    policy: Policy,
    disk_bytes: Option<u64>,
) -> Result<Branched, Error> {
    let t0 = Instant::now();
    crate::lifecycle::check(&policy)?;
    if let Some(d) = disk_bytes {
        plan::disk_limit(Some(d), &rt.store.disk_facts())?; // refused before anything is made
    }
    // Frozen copies from the snapshot's pool first; CRIU restores for the rest.
    let mut results = crate::snapshot_pool::take(rt, snap_id, count, &policy, disk_bytes).await;
    let missing = count - results.len();
    if missing > 0 {
        results.extend(futures_join(rt, snap_id, missing, policy, disk_bytes).await);
    }
    if let Some(pos) = results.iter().position(Result::is_err) {
        for r in results.iter().flatten() {
            let _ = live::destroy(rt, &r.sandbox_id).await;
        }
        return Err(results.into_iter().nth(pos).and_then(Result::err).unwrap_or(Error::Task("branch failed".into())));
    }
    Ok(Branched {
        snapshot_id: snap_id.into(),
        branches: results.into_iter().flatten().collect(),
        total_ms: ms(t0.elapsed()),
    })
}

async fn futures_join(
    rt: &Arc<Runtime>,
    snap_id: &str,
    count: usize,
    policy: Policy,
    disk_bytes: Option<u64>,
) -> Vec<Result<Restored, Error>> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (rt, s, policy) = (rt.clone(), snap_id.to_string(), policy.clone());
            tokio::spawn(async move { restore(&rt, &s, None, policy, disk_bytes).await })
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| Err(Error::Task(e.to_string()))));
    }
    out
}

/// Label of the snapshot a runtime shutdown takes of each sandbox (instances start again from it).
pub const SHUTDOWN_LABEL: &str = "shutdown";

/// Stops a running sandbox: snapshots it and ends its processes. `start` restores it.
pub async fn stop(rt: &Arc<Runtime>, id: &str) -> Result<Created, Error> {
    create(rt, id, false, Some("stop".into())).await
}

/// `stop`, marked as done by a runtime shutdown rather than asked for.
pub async fn stop_for_shutdown(rt: &Arc<Runtime>, id: &str) -> Result<Created, Error> {
    create(rt, id, false, Some(SHUTDOWN_LABEL.into())).await
}

/// Starts a stopped sandbox again from its last snapshot, under the same id.
pub async fn start(rt: &Arc<Runtime>, id: &str) -> Result<Restored, Error> {
    let row = rt.catalog.sandbox(id).map_err(Error::Catalog)?.ok_or_else(|| Error::SandboxNotFound(id.into()))?;
    if rt.live.get(id).is_some() {
        return Err(Error::SandboxState { id: id.into(), state: "running", need: "stopped" });
    }
    if row.state != SandboxState::Stopped && row.state != SandboxState::Failed {
        let state = if row.state == SandboxState::Destroyed { "destroyed" } else { "exited" };
        return Err(Error::SandboxState { id: id.into(), state, need: "stopped" });
    }
    let snap = row.last_snapshot.ok_or(Error::SandboxState {
        id: id.into(),
        state: "failed without a snapshot",
        need: "stopped",
    })?;
    restore(rt, &snap, Some(id), Policy::default(), None).await
}

/// Deletes a snapshot's images and layers. Sandboxes restored from it keep running (their layers are
/// their own), and the tree keeps their link to its id.
pub async fn delete(rt: &Arc<Runtime>, snap_id: &str) -> Result<(), Error> {
    if rt.catalog.snapshot(snap_id).map_err(Error::Catalog)?.is_none() {
        return Err(Error::SnapshotNotFound(snap_id.into()));
    }
    crate::snapshot_pool::forget(rt, snap_id).await;
    rt.catalog.delete_snapshot(snap_id).map_err(Error::Catalog)?;
    let (rt2, id) = (rt.clone(), snap_id.to_string());
    tokio::task::spawn_blocking(move || {
        rt2.store.remove_snapshot(&id).map_err(Error::Layer)?;
        let dir = snapshot_dir(&rt2, &id);
        remove_tree(&dir).map_err(|e| Error::Io("remove the snapshot directory", dir, e))
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    rt.hub.broadcast("snapshot/changed", serde_json::json!({ "snapshotId": snap_id, "state": "deleted" })).await;
    Ok(())
}
