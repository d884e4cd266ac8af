//! The runtime's state and its method table: what each JSON-RPC method does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::cgroup::Layout;
use crate::config::Config;
use crate::envs::{self, EnvStore};
use crate::error::Error;
use crate::exec::{self, ExecRegistry};
use crate::plan::HostFacts;
use crate::rpc::{BoxFuture, Connection, Service};
use crate::spawner::SpawnerClient;
use crate::spec::RunParams;

/// Every method the runtime serves. `agent/src/protocol/runtime.ts` lists the same names; a test
/// compares the two through `forkspace-rt methods`.
pub const METHODS: [&str; 7] =
    ["runtime/info", "runtime/shutdown", "env/list", "env/build", "sandbox/run", "sandbox/list", "exec/kill"];

/// Notifications the runtime sends.
pub const NOTIFICATIONS: [&str; 3] = ["exec/started", "exec/output", "env/progress"];

pub struct Runtime {
    pub config: Config,
    pub layout: Layout,
    pub host: HostFacts,
    pub envs: EnvStore,
    pub spawner: Arc<SpawnerClient>,
    pub execs: ExecRegistry,
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

impl Runtime {
    pub fn new(
        config: Config,
        layout: Layout,
        host: HostFacts,
        spawner: Arc<SpawnerClient>,
        criu_version: Option<String>,
    ) -> Runtime {
        let envs = EnvStore { dir: config.env_dir.clone(), mirror: config.debian_mirror.clone() };
        Runtime {
            config,
            layout,
            host,
            envs,
            spawner,
            execs: ExecRegistry::default(),
            criu_version,
            started: Instant::now(),
            shutdown: Notify::new(),
            shutting_down: AtomicBool::new(false),
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
            "sandbox/list" => {
                parse::<NoParams>(method, params)?;
                Ok(json!({ "sandboxes": self.execs.list() }))
            }
            "exec/kill" => {
                let p: ExecKillParams = parse(method, params)?;
                if let Some(pid) = self.execs.mark_killed(&p.exec_id)? {
                    self.spawner.kill(pid, libc::SIGKILL).await?;
                }
                Ok(json!({ "killed": true }))
            }
            other => Err(Error::MethodNotFound(other.to_string())),
        }
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
        Ok(json!({ "name": def.name, "manifest": manifest }))
    }
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
