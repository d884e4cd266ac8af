//! The durable catalog (SQLite): sandboxes, snapshots, and the branch tree their links form. The runtime
//! owns it; nothing durable lives only in the agent. Writes are single transactions; a snapshot is
//! inserted as `creating` before its images exist and becomes `ready` only once they are complete, so a
//! crash in between never leaves a broken snapshot listed as good (start-up reconciliation removes it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot open the catalog {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("catalog query failed ({what}): {source}")]
    Query { what: &'static str, source: rusqlite::Error },
    #[error("catalog row {id} holds invalid JSON in {column}: {source}")]
    Json { id: String, column: &'static str, source: serde_json::Error },
}

type Result<T> = std::result::Result<T, CatalogError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    /// Its processes run.
    Running,
    /// Frozen (cgroup freezer); resumes where it was.
    Paused,
    /// No processes; `sandbox/start` restores its last snapshot.
    Stopped,
    /// Its first process ended by itself; files are kept until it is destroyed.
    Exited,
    /// Lost its processes without a snapshot to come back from (the runtime died).
    Failed,
    /// Gone; the row stays so the branch tree keeps its links.
    Destroyed,
}

impl SandboxState {
    fn as_str(self) -> &'static str {
        match self {
            SandboxState::Running => "running",
            SandboxState::Paused => "paused",
            SandboxState::Stopped => "stopped",
            SandboxState::Exited => "exited",
            SandboxState::Failed => "failed",
            SandboxState::Destroyed => "destroyed",
        }
    }

    fn parse(s: &str) -> SandboxState {
        match s {
            "running" => SandboxState::Running,
            "paused" => SandboxState::Paused,
            "stopped" => SandboxState::Stopped,
            "exited" => SandboxState::Exited,
            "destroyed" => SandboxState::Destroyed,
            _ => SandboxState::Failed,
        }
    }
}

/// What a persistent sandbox runs and with which limits: enough to recreate it from a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    /// The disk limit its writable layer got (the default filled in), None where none is enforced.
    /// Absent from rows written before disk limits existed.
    #[serde(default)]
    pub disk_bytes: Option<u64>,
}

/// What ends a sandbox on its own, and what happens then.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Absolute lifetime from creation (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Lifetime without activity: no command or terminal running, no open stream or forwarded
    /// connection (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// What expiry (TTL or idle) does.
    #[serde(default)]
    pub on_expiry: Expiry,
    /// Started again from its last snapshot when the runtime starts (an instance).
    #[serde(default)]
    pub autostart: bool,
    /// The client that owns it; when that client is gone for the grace period, the sandbox is destroyed.
    /// None: owned by nobody in particular (created from the CLI or as an instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The API key it belongs to (the agent's per-key ownership; None: the agent's admin and local
    /// clients). Given when the sandbox is made (create, restore, branch) and kept for its life:
    /// `sandbox/policy` cannot change it. Its snapshots belong to the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expiry {
    /// End its processes; its files stay (state `exited`).
    Stop,
    /// Freeze it (state `paused`); `resume` thaws it.
    Pause,
    /// Snapshot, then end its processes (state `stopped`); `start` brings it back as it was.
    #[default]
    SnapshotThenStop,
    /// Remove it entirely (its snapshots stay).
    Destroy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRow {
    pub id: String,
    pub environment: String,
    pub state: SandboxState,
    /// The snapshot it was restored or branched from (the branch tree's upward link).
    pub origin_snapshot: Option<String>,
    pub last_snapshot: Option<String>,
    pub spec: SandboxSpec,
    pub labels: BTreeMap<String, String>,
    pub exit_code: Option<i32>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(default)]
    pub policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotState {
    Creating,
    Ready,
}

/// The fds of a sandbox a restore must supply again: its stdio pipes and its network namespace; and the
/// user namespace map its processes run under (its files must be mounted through the same one), absent
/// for a sandbox without a user namespace (--no-userns, or made before they existed). Every value is a
/// number, as clients of the runtime expect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIds {
    pub stdout_pipe: u64,
    pub stderr_pipe: u64,
    pub netns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    userns_base: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    userns_size: Option<u32>,
}

impl ExternalIds {
    pub fn new(stdout_pipe: u64, stderr_pipe: u64, netns: u64, userns: Option<crate::userns::IdMap>) -> ExternalIds {
        let (userns_base, userns_size) = (userns.map(|m| m.base), userns.map(|m| m.size));
        ExternalIds { stdout_pipe, stderr_pipe, netns, userns_base, userns_size }
    }

    /// The user namespace map of the sandbox's processes.
    pub fn userns(&self) -> Option<crate::userns::IdMap> {
        Some(crate::userns::IdMap { base: self.userns_base?, size: self.userns_size? })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRow {
    pub id: String,
    /// The sandbox it was taken from.
    pub sandbox_id: String,
    /// That sandbox's origin snapshot when this was taken (the branch tree's upward link).
    pub parent_snapshot: Option<String>,
    pub environment: String,
    pub state: SnapshotState,
    pub label: Option<String>,
    pub spec: SandboxSpec,
    /// Read-only filesystem layers of the snapshot, top first, above the environment.
    pub layers: Vec<PathBuf>,
    pub external: ExternalIds,
    /// Bytes of memory pages in the CRIU image.
    pub memory_bytes: u64,
    /// Bytes of files the snapshot's writable layer holds (changes over the environment).
    pub fs_bytes: u64,
    pub created_at_ms: u64,
}

pub struct Catalog {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sandboxes (
  id TEXT PRIMARY KEY,
  environment TEXT NOT NULL,
  state TEXT NOT NULL,
  origin_snapshot TEXT,
  last_snapshot TEXT,
  spec TEXT NOT NULL,
  labels TEXT NOT NULL,
  exit_code INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  policy TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS snapshots (
  id TEXT PRIMARY KEY,
  sandbox_id TEXT NOT NULL,
  parent_snapshot TEXT,
  environment TEXT NOT NULL,
  state TEXT NOT NULL,
  label TEXT,
  spec TEXT NOT NULL,
  layers TEXT NOT NULL,
  external TEXT NOT NULL,
  memory_bytes INTEGER NOT NULL,
  fs_bytes INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS environments (
  name TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  source TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  built_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
  key TEXT PRIMARY KEY,
  result TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  used_at INTEGER NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cache_by_use ON cache(used_at);
CREATE INDEX IF NOT EXISTS snapshots_by_sandbox ON snapshots(sandbox_id);
CREATE INDEX IF NOT EXISTS sandboxes_by_origin ON sandboxes(origin_snapshot);
";

/// Brings a catalog written by an older runtime up to the current schema.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_fs_bytes =
        conn.prepare("SELECT 1 FROM pragma_table_info('snapshots') WHERE name = 'fs_bytes'")?.exists([])?;
    if !has_fs_bytes {
        conn.execute_batch("ALTER TABLE snapshots ADD COLUMN fs_bytes INTEGER NOT NULL DEFAULT 0")?;
    }
    let has_policy = conn.prepare("SELECT 1 FROM pragma_table_info('sandboxes') WHERE name = 'policy'")?.exists([])?;
    if !has_policy {
        conn.execute_batch("ALTER TABLE sandboxes ADD COLUMN policy TEXT NOT NULL DEFAULT '{}'")?;
    }
    Ok(())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn q(what: &'static str) -> impl FnOnce(rusqlite::Error) -> CatalogError {
    move |source| CatalogError::Query { what, source }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Catalog> {
        let open_err = |source| CatalogError::Open { path: path.into(), source };
        // It holds sandboxes' environment values: 0600, which SQLite gives its -wal and -shm files too.
        crate::data_dir::private_file(path).map_err(|e| {
            open_err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN), Some(e.to_string())))
        })?;
        let conn = Connection::open(path).map_err(open_err)?;
        // WAL: readers never block the writer; NORMAL: a committed transaction survives the process being
        // killed (only a power loss can drop the newest commits).
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        migrate(&conn).map_err(open_err)?;
        Ok(Catalog { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert_sandbox(&self, s: &SandboxRow) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO sandboxes (id, environment, state, origin_snapshot, last_snapshot, spec, labels, exit_code, created_at, updated_at, policy)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(id) DO UPDATE SET state = ?3, origin_snapshot = ?4, last_snapshot = ?5, spec = ?6,
                   labels = ?7, exit_code = ?8, updated_at = ?10, policy = ?11",
                params![
                    s.id,
                    s.environment,
                    s.state.as_str(),
                    s.origin_snapshot,
                    s.last_snapshot,
                    to_json(&s.spec),
                    to_json(&s.labels),
                    s.exit_code,
                    s.created_at_ms as i64,
                    s.updated_at_ms as i64,
                    to_json(&s.policy)
                ],
            )
            .map_err(q("insert sandbox"))?;
        Ok(())
    }

    pub fn set_sandbox_state(&self, id: &str, state: SandboxState, exit_code: Option<i32>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE sandboxes SET state = ?2, exit_code = COALESCE(?3, exit_code), updated_at = ?4 WHERE id = ?1",
                params![id, state.as_str(), exit_code, now_ms() as i64],
            )
            .map_err(q("update sandbox state"))?;
        Ok(())
    }

    pub fn set_sandbox_policy(&self, id: &str, policy: &Policy) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE sandboxes SET policy = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, to_json(policy), now_ms() as i64],
            )
            .map_err(q("update sandbox policy"))?;
        Ok(())
    }

    pub fn set_labels(&self, id: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE sandboxes SET labels = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, to_json(labels), now_ms() as i64],
            )
            .map_err(q("update labels"))?;
        Ok(())
    }

    pub fn sandbox(&self, id: &str) -> Result<Option<SandboxRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("{SANDBOX_COLUMNS} WHERE id = ?1")).map_err(q("select sandbox"))?;
        let raw = stmt.query_row([id], raw_sandbox).optional().map_err(q("select sandbox"))?;
        raw.map(sandbox_from_raw).transpose()
    }

    pub fn sandboxes(&self) -> Result<Vec<SandboxRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("{SANDBOX_COLUMNS} ORDER BY created_at, id")).map_err(q("list sandboxes"))?;
        let rows = stmt.query_map([], raw_sandbox).map_err(q("list sandboxes"))?;
        rows.map(|r| r.map_err(q("list sandboxes")).and_then(sandbox_from_raw)).collect()
    }

    /// Inserts a snapshot as `creating` and points its sandbox at it... only once it is ready.
    pub fn begin_snapshot(&self, s: &SnapshotRow) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO snapshots (id, sandbox_id, parent_snapshot, environment, state, label, spec, layers, external, memory_bytes, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'creating', ?5, ?6, ?7, ?8, 0, ?9)",
                params![
                    s.id,
                    s.sandbox_id,
                    s.parent_snapshot,
                    s.environment,
                    s.label,
                    to_json(&s.spec),
                    to_json(&s.layers),
                    to_json(&s.external),
                    s.created_at_ms as i64
                ],
            )
            .map_err(q("insert snapshot"))?;
        Ok(())
    }

    /// Marks a snapshot ready (with its final layers and sizes) and records it as its sandbox's last, in
    /// one transaction.
    pub fn finish_snapshot(
        &self,
        id: &str,
        sandbox_id: &str,
        layers: &[PathBuf],
        memory_bytes: u64,
        fs_bytes: u64,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("finish snapshot"))?;
        tx.execute(
            "UPDATE snapshots SET state = 'ready', layers = ?2, memory_bytes = ?3, fs_bytes = ?4 WHERE id = ?1",
            params![id, to_json(&layers), memory_bytes as i64, fs_bytes as i64],
        )
        .map_err(q("finish snapshot"))?;
        tx.execute(
            "UPDATE sandboxes SET last_snapshot = ?2, updated_at = ?3 WHERE id = ?1",
            params![sandbox_id, id, now_ms() as i64],
        )
        .map_err(q("finish snapshot"))?;
        tx.commit().map_err(q("finish snapshot"))
    }

    /// Records a built environment (mirrors its manifest, so the catalog lists what sandboxes run on).
    pub fn upsert_environment(&self, m: &crate::envs::Manifest) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO environments (name, version, source, size_bytes, built_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET version = ?2, source = ?3, size_bytes = ?4, built_at = ?5",
                params![m.name, m.version, m.source, m.size_bytes as i64, m.built_at_ms as i64],
            )
            .map_err(q("record environment"))?;
        Ok(())
    }

    pub fn environment_names(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT name FROM environments ORDER BY name").map_err(q("list environments"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(q("list environments"))?;
        rows.map(|r| r.map_err(q("list environments"))).collect()
    }

    /// A cached result, marking it used (LRU).
    pub fn cache_get(&self, key: &str) -> Result<Option<String>> {
        let conn = self.conn();
        let found: Option<String> = conn
            .query_row("SELECT result FROM cache WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(q("read cache"))?;
        if found.is_some() {
            conn.execute(
                "UPDATE cache SET used_at = ?2, hits = hits + 1 WHERE key = ?1",
                params![key, now_ms() as i64],
            )
            .map_err(q("read cache"))?;
        }
        Ok(found)
    }

    /// Stores a result, then evicts least-recently-used entries until the cache fits `max_bytes`.
    /// Returns how many entries were evicted.
    pub fn cache_put(&self, key: &str, result: &str, max_bytes: u64) -> Result<usize> {
        if result.len() as u64 > max_bytes {
            return Ok(0); // larger than the whole cache: not kept, and nothing else evicted for it
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("write cache"))?;
        let now = now_ms() as i64;
        tx.execute(
            "INSERT INTO cache (key, result, size_bytes, created_at, used_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(key) DO UPDATE SET result = ?2, size_bytes = ?3, created_at = ?4, used_at = ?4",
            params![key, result, result.len() as i64, now],
        )
        .map_err(q("write cache"))?;
        let mut evicted = 0;
        loop {
            let total: i64 = tx
                .query_row("SELECT COALESCE(SUM(size_bytes), 0) FROM cache", [], |r| r.get(0))
                .map_err(q("write cache"))?;
            if total as u64 <= max_bytes {
                break;
            }
            let oldest: Option<String> = tx
                .query_row("SELECT key FROM cache WHERE key != ?1 ORDER BY used_at, created_at LIMIT 1", [key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(q("write cache"))?;
            match oldest {
                Some(k) => {
                    tx.execute("DELETE FROM cache WHERE key = ?1", [k]).map_err(q("write cache"))?;
                    evicted += 1;
                }
                None => break,
            }
        }
        tx.commit().map_err(q("write cache"))?;
        Ok(evicted)
    }

    /// Entries, total bytes and total hits.
    pub fn cache_stats(&self) -> Result<(u64, u64, u64)> {
        self.conn()
            .query_row("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0), COALESCE(SUM(hits), 0) FROM cache", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64))
            })
            .map_err(q("cache stats"))
    }

    pub fn cache_clear(&self) -> Result<u64> {
        let n = self.conn().execute("DELETE FROM cache", []).map_err(q("clear cache"))?;
        Ok(n as u64)
    }

    pub fn delete_snapshot(&self, id: &str) -> Result<()> {
        self.conn().execute("DELETE FROM snapshots WHERE id = ?1", [id]).map_err(q("delete snapshot"))?;
        Ok(())
    }

    pub fn snapshot(&self, id: &str) -> Result<Option<SnapshotRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("{SNAPSHOT_COLUMNS} WHERE id = ?1")).map_err(q("select snapshot"))?;
        let raw = stmt.query_row([id], raw_snapshot).optional().map_err(q("select snapshot"))?;
        raw.map(snapshot_from_raw).transpose()
    }

    pub fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("{SNAPSHOT_COLUMNS} ORDER BY created_at, id")).map_err(q("list snapshots"))?;
        let rows = stmt.query_map([], raw_snapshot).map_err(q("list snapshots"))?;
        rows.map(|r| r.map_err(q("list snapshots")).and_then(snapshot_from_raw)).collect()
    }
}

const SANDBOX_COLUMNS: &str = "SELECT id, environment, state, origin_snapshot, last_snapshot, spec, labels, exit_code, created_at, updated_at, policy FROM sandboxes";
const SNAPSHOT_COLUMNS: &str = "SELECT id, sandbox_id, parent_snapshot, environment, state, label, spec, layers, external, memory_bytes, created_at, fs_bytes FROM snapshots";

type RawSandbox =
    (String, String, String, Option<String>, Option<String>, String, String, Option<i32>, i64, i64, String);
type RawSnapshot =
    (String, String, Option<String>, String, String, Option<String>, String, String, String, i64, i64, i64);

fn raw_sandbox(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSandbox> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn raw_snapshot(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSnapshot> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn json<T: for<'de> Deserialize<'de>>(id: &str, column: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| CatalogError::Json { id: id.into(), column, source })
}

fn sandbox_from_raw(r: RawSandbox) -> Result<SandboxRow> {
    let (id, environment, state, origin_snapshot, last_snapshot, spec, labels, exit_code, created, updated, policy) = r;
    Ok(SandboxRow {
        policy: json(&id, "policy", &policy)?,
        spec: json(&id, "spec", &spec)?,
        labels: json(&id, "labels", &labels)?,
        state: SandboxState::parse(&state),
        id,
        environment,
        origin_snapshot,
        last_snapshot,
        exit_code,
        created_at_ms: created as u64,
        updated_at_ms: updated as u64,
    })
}

fn snapshot_from_raw(r: RawSnapshot) -> Result<SnapshotRow> {
    let (id, sandbox_id, parent_snapshot, environment, state, label, spec, layers, external, memory, created, fs_bytes) =
        r;
    Ok(SnapshotRow {
        spec: json(&id, "spec", &spec)?,
        layers: json(&id, "layers", &layers)?,
        external: json(&id, "external", &external)?,
        state: if state == "ready" { SnapshotState::Ready } else { SnapshotState::Creating },
        id,
        sandbox_id,
        parent_snapshot,
        environment,
        label,
        memory_bytes: memory as u64,
        fs_bytes: fs_bytes as u64,
        created_at_ms: created as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            argv: vec!["sleep".into(), "9".into()],
            env: BTreeMap::new(),
            cwd: None,
            memory_bytes: Some(1 << 28),
            cpus: None,
            pids: None,
            disk_bytes: Some(1 << 30),
        }
    }

    fn sandbox(id: &str, origin: Option<&str>) -> SandboxRow {
        SandboxRow {
            id: id.into(),
            environment: "busybox".into(),
            state: SandboxState::Running,
            origin_snapshot: origin.map(String::from),
            last_snapshot: None,
            spec: spec(),
            labels: BTreeMap::new(),
            exit_code: None,
            created_at_ms: 1,
            updated_at_ms: 1,
            policy: Policy::default(),
        }
    }

    fn snapshot(id: &str, sandbox_id: &str) -> SnapshotRow {
        SnapshotRow {
            id: id.into(),
            sandbox_id: sandbox_id.into(),
            parent_snapshot: None,
            environment: "busybox".into(),
            state: SnapshotState::Creating,
            label: Some("first".into()),
            spec: spec(),
            layers: vec![],
            external: ExternalIds::new(1, 2, 3, None),
            memory_bytes: 0,
            fs_bytes: 0,
            created_at_ms: 2,
        }
    }

    #[test]
    fn external_ids_keep_their_user_namespace_map_as_numbers() {
        let m = crate::userns::IdMap { base: 100_000, size: 65_536 };
        let json = serde_json::to_value(ExternalIds::new(1, 2, 3, Some(m))).unwrap();
        assert_eq!(json, serde_json::json!({"stdoutPipe": 1, "stderrPipe": 2, "netns": 3, "usernsBase": 100000, "usernsSize": 65536}));
        assert_eq!(serde_json::from_value::<ExternalIds>(json).unwrap().userns(), Some(m));
        let old: ExternalIds = serde_json::from_str(r#"{"stdoutPipe":1,"stderrPipe":2,"netns":3}"#).unwrap();
        assert_eq!(old.userns(), None, "a row from before user namespaces has none");
        assert_eq!(serde_json::to_value(old).unwrap().as_object().unwrap().len(), 3);
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used_within_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let v = "x".repeat(100);
        c.cache_put("a", &v, 250).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        c.cache_put("b", &v, 250).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(c.cache_get("a").unwrap().is_some()); // a is now more recent than b
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(c.cache_put("c", &v, 250).unwrap(), 1);
        assert!(c.cache_get("b").unwrap().is_none(), "the least recently used entry goes first");
        assert!(c.cache_get("a").unwrap().is_some() && c.cache_get("c").unwrap().is_some());
        assert_eq!(c.cache_stats().unwrap().0, 2);
        c.cache_put("huge", &"y".repeat(1000), 250).unwrap();
        assert!(c.cache_get("huge").unwrap().is_none(), "an entry larger than the cache is not kept");
        assert_eq!(c.cache_clear().unwrap(), 2);
    }

    #[test]
    fn an_older_catalog_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&SCHEMA.replace("  fs_bytes INTEGER NOT NULL DEFAULT 0,\n", "")).unwrap();
        }
        let c = Catalog::open(&path).unwrap();
        c.begin_snapshot(&snapshot("snap-old", "sbx-a")).unwrap();
        assert_eq!(c.snapshot("snap-old").unwrap().unwrap().fs_bytes, 0);
    }

    #[test]
    fn snapshots_become_ready_only_when_finished_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        {
            let c = Catalog::open(&path).unwrap();
            c.insert_sandbox(&sandbox("sbx-a", None)).unwrap();
            c.begin_snapshot(&snapshot("snap-1", "sbx-a")).unwrap();
            assert_eq!(c.snapshot("snap-1").unwrap().unwrap().state, SnapshotState::Creating);
            assert_eq!(c.sandbox("sbx-a").unwrap().unwrap().last_snapshot, None);
            c.finish_snapshot("snap-1", "sbx-a", &[PathBuf::from("/layer")], 4096, 10).unwrap();
            c.insert_sandbox(&sandbox("sbx-b", Some("snap-1"))).unwrap();
            c.set_sandbox_state("sbx-a", SandboxState::Paused, None).unwrap();
        }
        let c = Catalog::open(&path).unwrap();
        let s = c.snapshot("snap-1").unwrap().unwrap();
        assert_eq!(
            (s.state, s.memory_bytes, s.layers.clone()),
            (SnapshotState::Ready, 4096, vec![PathBuf::from("/layer")])
        );
        let a = c.sandbox("sbx-a").unwrap().unwrap();
        assert_eq!((a.state, a.last_snapshot.as_deref()), (SandboxState::Paused, Some("snap-1")));
        let all = c.sandboxes().unwrap();
        assert_eq!(all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["sbx-a", "sbx-b"]);
        assert_eq!(all[1].origin_snapshot.as_deref(), Some("snap-1"));
        c.delete_snapshot("snap-1").unwrap();
        assert!(c.snapshot("snap-1").unwrap().is_none());
    }
    #[test]
    fn the_owning_key_survives_reopening_and_policy_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        {
            let c = Catalog::open(&path).unwrap();
            let mut s = sandbox("sbx-k", None);
            s.policy.principal = Some("key-0123456789ab".into());
            c.insert_sandbox(&s).unwrap();
            let changed = Policy { ttl_ms: Some(5000), ..s.policy.clone() };
            c.set_sandbox_policy("sbx-k", &changed).unwrap();
        }
        let c = Catalog::open(&path).unwrap();
        let p = c.sandbox("sbx-k").unwrap().unwrap().policy;
        assert_eq!((p.principal.as_deref(), p.ttl_ms), (Some("key-0123456789ab"), Some(5000)));
    }
}
