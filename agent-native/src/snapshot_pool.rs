//! Snapshot pools: for a hot snapshot, K copies already restored by CRIU and frozen (their identical pages
//! merged by KSM), so a branch is a thaw plus registration instead of a restore. Each copy already has
//! its own network namespace, cgroup, writable layer and hostname; taking it only makes it known. The pool
//! refills in the background; deleting the snapshot empties it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

use crate::catalog::{Policy, SnapshotState};
use crate::error::Error;
use crate::service::Runtime;
use crate::snapshots::{self, Restored, RestoredParts};

/// Most frozen copies one snapshot's pool may hold.
pub const MAX_COPIES: usize = 64;

#[derive(Default)]
struct SnapPool {
    ready: VecDeque<RestoredParts>,
    size: usize,
    filling: usize,
    hits: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPoolInfo {
    pub snapshot_id: String,
    pub size: usize,
    pub ready: usize,
    pub filling: usize,
    pub hits: u64,
}

#[derive(Default)]
pub struct SnapshotPools {
    pools: Mutex<HashMap<String, SnapPool>>,
    wake: Notify,
}

impl SnapshotPools {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SnapPool>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn list(&self) -> Vec<SnapshotPoolInfo> {
        let mut v: Vec<_> = self.lock().iter().map(|(id, p)| info(id, p)).collect();
        v.sort_by(|a, b| a.snapshot_id.cmp(&b.snapshot_id));
        v
    }

    /// Up to `count` ready copies of `snapshot_id`, thawed by the caller.
    fn take(&self, snapshot_id: &str, count: usize) -> Vec<RestoredParts> {
        let mut pools = self.lock();
        let Some(p) = pools.get_mut(snapshot_id) else { return Vec::new() };
        let n = count.min(p.ready.len());
        p.hits += n as u64;
        let taken = p.ready.drain(..n).collect();
        drop(pools);
        self.wake.notify_one();
        taken
    }

    /// Every copy of a snapshot's pool (it is being deleted), or of all pools (shutdown).
    fn remove(&self, snapshot_id: Option<&str>) -> Vec<RestoredParts> {
        let mut pools = self.lock();
        match snapshot_id {
            Some(id) => pools.remove(id).map(|p| p.ready.into_iter().collect()).unwrap_or_default(),
            None => pools.drain().flat_map(|(_, p)| p.ready).collect(),
        }
    }
}

fn info(id: &str, p: &SnapPool) -> SnapshotPoolInfo {
    SnapshotPoolInfo { snapshot_id: id.into(), size: p.size, ready: p.ready.len(), filling: p.filling, hits: p.hits }
}

/// Sets how many frozen copies of a snapshot to keep (0 removes the pool).
pub async fn configure(rt: &Arc<Runtime>, snapshot_id: &str, size: usize) -> Result<SnapshotPoolInfo, Error> {
    if size > MAX_COPIES {
        return Err(Error::BadCount { count: size, max: MAX_COPIES });
    }
    match rt.catalog.snapshot(snapshot_id).map_err(Error::Catalog)? {
        Some(s) if s.state == SnapshotState::Ready => {}
        _ => return Err(Error::SnapshotNotFound(snapshot_id.into())),
    }
    if size == 0 {
        discard_all(rt, rt.snapshot_pools.remove(Some(snapshot_id))).await;
        return Ok(SnapshotPoolInfo { snapshot_id: snapshot_id.into(), size: 0, ready: 0, filling: 0, hits: 0 });
    }
    let (info, extra) = {
        let mut pools = rt.snapshot_pools.lock();
        let p = pools.entry(snapshot_id.to_string()).or_default();
        p.size = size;
        let keep = size.saturating_sub(p.filling);
        let extra: Vec<_> = if p.ready.len() > keep { p.ready.drain(keep..).collect() } else { Vec::new() };
        (info(snapshot_id, p), extra)
    };
    discard_all(rt, extra).await;
    rt.snapshot_pools.wake.notify_one();
    Ok(info)
}

/// The snapshot is going away: so do its copies.
pub async fn forget(rt: &Arc<Runtime>, snapshot_id: &str) {
    discard_all(rt, rt.snapshot_pools.remove(Some(snapshot_id))).await;
}

pub async fn shutdown(rt: &Arc<Runtime>) {
    discard_all(rt, rt.snapshot_pools.remove(None)).await;
}

async fn discard_all(rt: &Arc<Runtime>, copies: Vec<RestoredParts>) {
    if copies.is_empty() {
        return;
    }
    let rt = rt.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for c in copies {
            c.discard(&rt);
        }
    })
    .await;
}

/// Branch sandboxes taken from the pool: thawed and registered with `policy`. A copy whose processes
/// died while it waited is discarded and not counted.
pub async fn take(
    rt: &Arc<Runtime>,
    snapshot_id: &str,
    count: usize,
    policy: &Policy,
    disk_bytes: Option<u64>,
) -> Vec<Result<Restored, Error>> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    for mut copy in rt.snapshot_pools.take(snapshot_id, count) {
        if copy.exit.try_recv().is_ok() {
            let rt = rt.clone();
            let _ = tokio::task::spawn_blocking(move || copy.discard(&rt)).await;
            continue;
        }
        let id = copy.id.clone();
        let registered = async {
            if let Some(bytes) = disk_bytes {
                copy.set_disk_limit(rt, bytes)?;
            }
            copy.cgroup.set_frozen(false).map_err(|e| Error::Sandbox(e.into()))?;
            copy.register(rt, policy.clone()).await
        }
        .await;
        out.push(registered.map(|()| Restored {
            sandbox_id: id,
            snapshot_id: snapshot_id.into(),
            lazy: false,
            time_to_running_ms: t0.elapsed().as_secs_f64() * 1000.0,
            phases_ms: vec![("thaw and register", t0.elapsed().as_secs_f64() * 1000.0)],
            pooled: true,
        }));
    }
    out
}

/// Keeps every snapshot pool full until the runtime shuts down. Copies are made one at a time: a CRIU
/// restore is heavy, and branches being served come first.
pub async fn filler(rt: Arc<Runtime>) {
    loop {
        tokio::select! {
            () = rt.snapshot_pools.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        loop {
            if rt.is_shutting_down() {
                return;
            }
            let wanted = {
                let mut pools = rt.snapshot_pools.lock();
                let next = pools.iter_mut().find(|(_, p)| p.ready.len() + p.filling < p.size);
                next.map(|(id, p)| {
                    p.filling += 1;
                    id.clone()
                })
            };
            let Some(snapshot_id) = wanted else { break };
            let made = make(&rt, &snapshot_id).await;
            let leftover = {
                let mut pools = rt.snapshot_pools.lock();
                match pools.get_mut(&snapshot_id) {
                    Some(p) => {
                        p.filling -= 1;
                        match made {
                            Ok(copy) if !rt.is_shutting_down() && p.ready.len() < p.size => {
                                p.ready.push_back(copy);
                                None
                            }
                            other => Some(other),
                        }
                    }
                    None => Some(made), // the pool was removed meanwhile
                }
            };
            match leftover {
                None => {}
                Some(Ok(copy)) => discard_all(&rt, vec![copy]).await,
                Some(Err(e)) => {
                    crate::log!("snapshot pool {snapshot_id}: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    break;
                }
            }
        }
    }
}

/// One frozen copy: an eager restore, then frozen before anything of it runs on.
async fn make(rt: &Arc<Runtime>, snapshot_id: &str) -> Result<RestoredParts, Error> {
    let (copy, _) = snapshots::restore_parts(rt, snapshot_id, None, false, None).await?;
    if let Err(e) = copy.cgroup.set_frozen(true) {
        discard_all(rt, vec![copy]).await;
        return Err(Error::Sandbox(e.into()));
    }
    Ok(copy)
}
