//! The runtime's state and its method table: what each JSON-RPC method does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::catalog::{Catalog, Policy, SandboxState, SnapshotState};
use crate::cgroup::Layout;
use crate::config::Config;
use crate::envs::{self, EnvStore};
use crate::error::Error;
use crate::exec::{self, ExecRegistry};
use crate::files;
use crate::layers::Store;
use crate::lifecycle;
use crate::live::{self, Registry};
use crate::merge;
use crate::plan::HostFacts;
use crate::ports;
use crate::rpc::Hub;
use crate::rpc::{BoxFuture, Connection, Service};
use crate::snapshots;
use crate::spawner::SpawnerClient;
use crate::spec::RunParams;
use crate::terminal;

/// Every method the runtime serves. `agent/src/protocol/runtime.ts` lists the same names; a test
/// compares the two through `forkspace-rt methods`.
pub const METHODS: &[&str] = &[
    "runtime/info",
    "runtime/shutdown",
    "env/list",
    "env/build",
    "sandbox/run",
    "exec/list",
    "exec/kill",
    "sandbox/create",
    "sandbox/exec",
    "sandbox/get",
    "sandbox/list",
    "sandbox/pause",
    "sandbox/resume",
    "sandbox/stop",
    "sandbox/start",
    "sandbox/destroy",
    "sandbox/policy",
    "sandbox/hold",
    "sandbox/release",
    "owner/gone",
    "snapshot/create",
    "snapshot/restore",
    "snapshot/branch",
    "snapshot/get",
    "snapshot/list",
    "snapshot/delete",
    "branch/diff",
    "branch/merge",
    "files/write",
    "files/read",
    "files/list",
    "files/remove",
    "cache/get",
    "cache/put",
    "cache/stats",
    "cache/clear",
    "terminal/open",
    "terminal/input",
    "terminal/resize",
    "terminal/close",
    "port/forward",
    "port/expose",
    "port/unforward",
    "port/list",
    "pool/configure",
    "pool/list",
    "pool/snapshot",
];

/// Notifications the runtime sends.
pub const NOTIFICATIONS: &[&str] = &[
    "exec/started",
    "exec/output",
    "env/progress",
    "sandbox/output",
    "sandbox/changed",
    "sandbox/expired",
    "snapshot/changed",
    "terminal/output",
    "terminal/exit",
];

/// Most branches one request may make.
pub const MAX_BRANCHES: usize = 64;

pub struct Runtime {
    pub config: Config,
    pub layout: Layout,
    pub host: HostFacts,
    pub envs: EnvStore,
    pub spawner: Arc<SpawnerClient>,
    /// Spare network namespaces for restores.
    pub netns: Arc<crate::netns_pool::NetnsPool>,
    pub execs: ExecRegistry,
    pub catalog: Catalog,
    pub store: Store,
    pub live: Registry,
    pub hub: Arc<Hub>,
    pub terminals: crate::terminal::Terminals,
    pub forwards: crate::ports::Forwards,
    pub owners: crate::lifecycle::Owners,
    pub holds: crate::lifecycle::Holds,
    pub pools: crate::pool::EnvPools,
    pub snapshot_pools: crate::snapshot_pool::SnapshotPools,
    pub criu_version: Option<String>,
    pub started: Instant,
    pub shutdown: Notify,
    shutting_down: AtomicBool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvBuildParams {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExecKillParams {
    exec_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SandboxIdParams {
    sandbox_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SnapshotIdParams {
    snapshot_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SnapshotCreateParams {
    sandbox_id: String,
    #[serde(default = "yes")]
    leave_running: bool,
    #[serde(default)]
    label: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForwardRef {
    forward_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PortListParams {
    #[serde(default)]
    sandbox_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TerminalRef {
    terminal_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CacheKeyParams {
    key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CachePutParams {
    key: String,
    result: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DiffParams {
    a: String,
    b: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MergeParams {
    from: String,
    into: String,
    strategy: merge::Strategy,
}

/// Limits a sandbox made from a snapshot may set for itself: the rest (memory, CPU, pids) come with the
/// restored processes.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RestoreLimits {
    #[serde(default)]
    disk_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BranchParams {
    snapshot_id: String,
    count: usize,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    limits: RestoreLimits,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RestoreParams {
    snapshot_id: String,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    limits: RestoreLimits,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SnapshotPoolParams {
    snapshot_id: String,
    size: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PoolParams {
    environment: String,
    min: usize,
    max: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HoldRef {
    hold_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OwnerParams {
    owner: String,
}

impl Runtime {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        layout: Layout,
        host: HostFacts,
        spawner: Arc<SpawnerClient>,
        criu_version: Option<String>,
        catalog: Catalog,
        store: Store,
        hub: Arc<Hub>,
    ) -> Runtime {
        let envs = EnvStore { dir: config.env_dir.clone(), mirror: config.debian_mirror.clone() };
        if !store.disk_facts().enforced {
            crate::log!(
                "warning: per-sandbox disk limits (limits.diskBytes) are NOT enforced: the {} layer store has no \
                 quotas, so one sandbox can fill {}; use a btrfs pool (FORKSPACE_FS_STORE=btrfs) to bound them",
                store.kind(),
                config.data_dir.display()
            );
        }
        Runtime {
            config,
            layout,
            host,
            envs,
            netns: crate::netns_pool::NetnsPool::new(spawner.clone(), 8),
            spawner,
            execs: ExecRegistry::default(),
            catalog,
            store,
            live: Registry::default(),
            hub,
            terminals: Default::default(),
            forwards: Default::default(),
            owners: Default::default(),
            holds: Default::default(),
            pools: Default::default(),
            snapshot_pools: Default::default(),
            criu_version,
            started: Instant::now(),
            shutdown: Notify::new(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Stops every persistent sandbox (snapshot, then end its processes), so a restarted runtime can start
    /// them again; a sandbox whose snapshot fails is left for reconciliation to mark failed.
    pub async fn stop_all(self: &Arc<Self>) {
        crate::snapshot_pool::shutdown(self).await;
        for w in self.pools.drain() {
            crate::pool::discard(self, w).await;
        }
        for _ in 0..500 {
            if self.pools.releasing.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for live in self.live.all() {
            if let Err(e) = snapshots::stop_for_shutdown(self, &live.id).await {
                crate::log!("stopping {} at shutdown: {e}", live.id);
            }
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The owner named in a policy stays alive as long as the connection that named it.
    fn bind_owner(&self, conn: &Connection, policy: &Policy) {
        if let Some(o) = &policy.owner {
            self.owners.bind(o, conn.id);
        }
    }

    /// Stops taking work, kills every running exec, and wakes `main` to finish the shutdown.
    pub async fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for pid in self.execs.mark_all_killed(None) {
            let _ = self.spawner.kill(pid, libc::SIGKILL).await;
        }
        self.shutdown.notify_one();
    }

    async fn dispatch(self: &Arc<Self>, conn: &Arc<Connection>, method: &str, params: Value) -> Result<Value, Error> {
        if self.shutting_down.load(Ordering::SeqCst) && method != "runtime/info" {
            return Err(Error::ShuttingDown);
        }
        match method {
            "runtime/info" => {
                parse::<NoParams>(method, params)?;
                Ok(self.info())
            }
            "runtime/shutdown" => {
                parse::<NoParams>(method, params)?;
                self.begin_shutdown().await;
                Ok(json!({}))
            }
            "env/list" => {
                parse::<NoParams>(method, params)?;
                // Environments built before content digests existed get one now (cached results are
                // keyed by it): once per environment and machine, about a second for Python.
                let store = self.envs.clone();
                tokio::task::spawn_blocking(move || store.backfill_digests())
                    .await
                    .map_err(|e| Error::Task(e.to_string()))?;
                Ok(json!({ "environments": self.envs.list() }))
            }
            "env/build" => {
                let p: EnvBuildParams = parse(method, params)?;
                self.build_env(conn, &p.name).await
            }
            "sandbox/run" => {
                let p: RunParams = parse(method, params)?;
                let result = exec::run_ephemeral(self, conn, p).await?;
                Ok(serde_json::to_value(result).unwrap_or(Value::Null))
            }
            "exec/list" => {
                parse::<NoParams>(method, params)?;
                Ok(json!({ "execs": self.execs.list() }))
            }
            "sandbox/create" => {
                let p: live::CreateParams = parse(method, params)?;
                self.bind_owner(conn, &p.policy);
                let s = live::create(self, p).await?;
                Ok(json!({ "sandbox": s.row() }))
            }
            "sandbox/exec" => {
                let p: live::ExecParams = parse(method, params)?;
                to_json(live::exec(self, conn, p).await?)
            }
            "sandbox/get" => {
                let p: SandboxIdParams = parse(method, params)?;
                let row = self.sandbox_row(&p.sandbox_id)?;
                Ok(json!({ "sandbox": row }))
            }
            "sandbox/list" => {
                parse::<NoParams>(method, params)?;
                Ok(json!({ "sandboxes": self.sandbox_rows()? }))
            }
            "sandbox/pause" | "sandbox/resume" => {
                let p: SandboxIdParams = parse(method, params)?;
                let state = live::set_paused(self, &p.sandbox_id, method == "sandbox/pause").await?;
                Ok(json!({ "sandboxId": p.sandbox_id, "state": state }))
            }
            "sandbox/stop" => {
                let p: SandboxIdParams = parse(method, params)?;
                to_json(snapshots::stop(self, &p.sandbox_id).await?)
            }
            "sandbox/start" => {
                let p: SandboxIdParams = parse(method, params)?;
                to_json(snapshots::start(self, &p.sandbox_id).await?)
            }
            "sandbox/destroy" => {
                let p: SandboxIdParams = parse(method, params)?;
                live::destroy(self, &p.sandbox_id).await?;
                Ok(json!({ "sandboxId": p.sandbox_id, "state": "destroyed" }))
            }
            "sandbox/policy" => {
                let p: lifecycle::PolicyParams = parse(method, params)?;
                let id = p.sandbox_id.clone();
                Ok(json!({ "sandboxId": id, "policy": lifecycle::set_policy(self, conn.id, p)? }))
            }
            "sandbox/hold" => lifecycle::hold(self, conn.id, parse(method, params)?),
            "sandbox/release" => {
                let p: HoldRef = parse(method, params)?;
                lifecycle::release(self, &p.hold_id)
            }
            "owner/gone" => {
                let p: OwnerParams = parse(method, params)?;
                self.owners.gone(&p.owner);
                Ok(json!({ "owner": p.owner, "graceMs": self.config.orphan_grace_ms }))
            }
            "snapshot/create" => {
                let p: SnapshotCreateParams = parse(method, params)?;
                to_json(snapshots::create(self, &p.sandbox_id, p.leave_running, p.label).await?)
            }
            "snapshot/restore" => {
                let p: RestoreParams = parse(method, params)?;
                self.bind_owner(conn, &p.policy);
                // A restore is a branch of one: a frozen copy from the snapshot's pool when there is one.
                let b = snapshots::branch(self, &p.snapshot_id, 1, p.policy, p.limits.disk_bytes).await?;
                to_json(b.branches.into_iter().next())
            }
            "snapshot/branch" => {
                let p: BranchParams = parse(method, params)?;
                if p.count == 0 || p.count > MAX_BRANCHES {
                    return Err(Error::BadCount { count: p.count, max: MAX_BRANCHES });
                }
                self.bind_owner(conn, &p.policy);
                to_json(snapshots::branch(self, &p.snapshot_id, p.count, p.policy, p.limits.disk_bytes).await?)
            }
            "snapshot/get" => {
                let p: SnapshotIdParams = parse(method, params)?;
                let s = self.catalog.snapshot(&p.snapshot_id).map_err(Error::Catalog)?;
                let s = s.filter(|s| s.state == SnapshotState::Ready).ok_or(Error::SnapshotNotFound(p.snapshot_id))?;
                Ok(json!({ "snapshot": s }))
            }
            "snapshot/list" => {
                parse::<NoParams>(method, params)?;
                let all = self.catalog.snapshots().map_err(Error::Catalog)?;
                let ready: Vec<_> = all.into_iter().filter(|s| s.state == SnapshotState::Ready).collect();
                Ok(json!({ "snapshots": ready }))
            }
            "snapshot/delete" => {
                let p: SnapshotIdParams = parse(method, params)?;
                snapshots::delete(self, &p.snapshot_id).await?;
                Ok(json!({ "snapshotId": p.snapshot_id, "deleted": true }))
            }
            "exec/kill" => {
                let p: ExecKillParams = parse(method, params)?;
                if let Some(pid) = self.execs.mark_killed(&p.exec_id)? {
                    self.spawner.kill(pid, libc::SIGKILL).await?;
                }
                Ok(json!({ "killed": true }))
            }
            "branch/diff" => {
                let p: DiffParams = parse(method, params)?;
                let rt = self.clone();
                let d = tokio::task::spawn_blocking(move || merge::diff(&rt, &p.a, &p.b))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))??;
                to_json(d)
            }
            "branch/merge" => {
                let p: MergeParams = parse(method, params)?;
                let rt = self.clone();
                let (from, into) = (p.from.clone(), p.into.clone());
                let m = tokio::task::spawn_blocking(move || merge::merge(&rt, &p.from, &p.into, p.strategy))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))??;
                if m.aborted {
                    let count = m.conflicts.len();
                    return Err(Error::MergeConflict {
                        from,
                        into,
                        count,
                        merged: serde_json::to_value(&m).unwrap_or_default(),
                    });
                }
                to_json(m)
            }
            "files/write" => {
                let p: files::WriteParams = parse(method, params)?;
                let rt = self.clone();
                blocking(move || files::write(&rt, p)).await
            }
            "files/read" => {
                let p: files::ReadParams = parse(method, params)?;
                let rt = self.clone();
                blocking(move || files::read(&rt, p).and_then(to_json)).await
            }
            "files/list" => {
                let p: files::PathParams = parse(method, params)?;
                let rt = self.clone();
                blocking(move || files::list(&rt, p).map(|entries| json!({ "entries": entries }))).await
            }
            "files/remove" => {
                let p: files::PathParams = parse(method, params)?;
                let rt = self.clone();
                blocking(move || files::remove(&rt, p).map(|()| json!({ "removed": true }))).await
            }
            "cache/get" => {
                let p: CacheKeyParams = parse(method, params)?;
                Ok(json!({ "result": self.catalog.cache_get(&p.key).map_err(Error::Catalog)? }))
            }
            "cache/put" => {
                let p: CachePutParams = parse(method, params)?;
                let evicted =
                    self.catalog.cache_put(&p.key, &p.result, self.config.cache_max_bytes).map_err(Error::Catalog)?;
                Ok(json!({ "evicted": evicted }))
            }
            "cache/stats" => {
                parse::<NoParams>(method, params)?;
                let (entries, bytes, hits) = self.catalog.cache_stats().map_err(Error::Catalog)?;
                Ok(json!({ "entries": entries, "bytes": bytes, "hits": hits, "maxBytes": self.config.cache_max_bytes }))
            }
            "cache/clear" => {
                parse::<NoParams>(method, params)?;
                Ok(json!({ "removed": self.catalog.cache_clear().map_err(Error::Catalog)? }))
            }
            "port/forward" => to_json(ports::forward(self, parse(method, params)?).await?),
            "port/expose" => to_json(ports::expose(self, parse(method, params)?).await?),
            "port/unforward" => {
                let p: ForwardRef = parse(method, params)?;
                if !self.forwards.remove(&p.forward_id) {
                    return Err(Error::ForwardNotFound(p.forward_id));
                }
                Ok(json!({ "removed": true }))
            }
            "port/list" => {
                let p: PortListParams = parse(method, params)?;
                Ok(json!({ "forwards": self.forwards.list(p.sandbox_id.as_deref()) }))
            }
            "pool/configure" => {
                let p: PoolParams = parse(method, params)?;
                let def = envs::resolve(&p.environment)?;
                self.envs.built_rootfs(def)?; // a pool of an environment that is not built would only fail
                to_json(self.pools.configure(def, crate::pool::Size { min: p.min, max: p.max })?)
            }
            "pool/list" => {
                parse::<NoParams>(method, params)?;
                Ok(json!({ "pools": self.pools.list(), "snapshots": self.snapshot_pools.list() }))
            }
            "pool/snapshot" => {
                let p: SnapshotPoolParams = parse(method, params)?;
                to_json(crate::snapshot_pool::configure(self, &p.snapshot_id, p.size).await?)
            }
            "terminal/open" => terminal::open(self, parse(method, params)?).await,
            "terminal/input" => terminal::input(self, parse(method, params)?).await,
            "terminal/resize" => terminal::resize(self, parse(method, params)?),
            "terminal/close" => {
                let p: TerminalRef = parse(method, params)?;
                terminal::close(self, &p.terminal_id).await
            }
            other => Err(Error::MethodNotFound(other.to_string())),
        }
    }

    /// A sandbox's catalog row with its live state.
    fn sandbox_row(&self, id: &str) -> Result<crate::catalog::SandboxRow, Error> {
        let row = self.catalog.sandbox(id).map_err(Error::Catalog)?;
        match row {
            Some(mut r) if r.state != SandboxState::Destroyed => {
                if let Some(l) = self.live.get(id) {
                    r.state = l.state();
                }
                Ok(r)
            }
            _ => Err(Error::SandboxNotFound(id.into())),
        }
    }

    fn sandbox_rows(&self) -> Result<Vec<crate::catalog::SandboxRow>, Error> {
        let mut rows = self.catalog.sandboxes().map_err(Error::Catalog)?;
        for r in &mut rows {
            if let Some(l) = self.live.get(&r.id) {
                r.state = l.state();
            }
        }
        Ok(rows)
    }

    fn info(&self) -> Value {
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "dataDir": self.config.data_dir,
            "envDir": self.config.env_dir,
            "cgroups": self.layout.info(),
            "criu": { "path": self.config.criu, "version": self.criu_version },
            "host": { "cpus": self.host.cpus, "memoryBytes": self.host.memory_bytes },
            "uptimeMs": self.started.elapsed().as_millis() as u64,
            "running": self.execs.list().len(),
            "sandboxes": self.live.all().len(),
            "snapshotStore": self.store.kind(),
            "diskQuota": {
                "mode": self.store.quota_mode(),
                "enforced": self.store.disk_facts().enforced,
                "poolBytes": self.store.disk_facts().pool_bytes,
                "defaultDiskBytes": self.store.disk_facts().enforced.then(|| self.store.disk_facts().default_bytes()),
            },
            "userns": self.config.ids(),
        })
    }

    async fn build_env(self: &Arc<Self>, conn: &Arc<Connection>, name: &str) -> Result<Value, Error> {
        let def = envs::resolve(name)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let store = self.envs.clone();
        let build = tokio::task::spawn_blocking(move || {
            store.build(def, &mut |line: &str| {
                let _ = tx.send(line.to_string());
            })
        });
        while let Some(line) = rx.recv().await {
            conn.notify("env/progress", json!({ "name": def.name, "message": line })).await;
        }
        let manifest = build.await.map_err(|e| Error::Task(e.to_string()))??;
        self.catalog.upsert_environment(&manifest).map_err(Error::Catalog)?;
        Ok(json!({ "name": def.name, "manifest": manifest }))
    }
}

/// Runs filesystem work off the async workers.
async fn blocking<F: FnOnce() -> Result<Value, Error> + Send + 'static>(f: F) -> Result<Value, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Task(e.to_string()))?
}

fn to_json<T: serde::Serialize>(v: T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Task(e.to_string()))
}

fn parse<T: DeserializeOwned>(method: &str, params: Value) -> Result<T, Error> {
    let params = if params.is_null() { json!({}) } else { params };
    serde_json::from_value(params).map_err(|source| Error::Params { method: method.to_string(), source })
}

impl Service for Runtime {
    fn call(self: Arc<Self>, conn: Arc<Connection>, method: String, params: Value) -> BoxFuture<Result<Value, Error>> {
        Box::pin(async move { self.dispatch(&conn, &method, params).await })
    }

    fn closed(&self, conn: &Connection) {
        // Owners named over this connection are gone (their sandboxes are reaped after the grace
        // period), and its holds end: the idle time of what they held starts now.
        self.owners.connection_closed(conn.id);
        for id in self.holds.connection_closed(conn.id) {
            if let Some(l) = self.live.get(&id) {
                l.touch();
            }
        }
        // Ephemeral runs die with the connection that asked for them: nobody is left to read them.
        let pids = self.execs.mark_all_killed(Some(conn.id));
        let spawner = self.spawner.clone();
        tokio::spawn(async move {
            for pid in pids {
                let _ = spawner.kill(pid, libc::SIGKILL).await;
            }
        });
    }
}
