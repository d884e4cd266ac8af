//! What ends sandboxes on their own: an absolute TTL, an idle timeout that understands activity, and
//! the reaping of orphans (sandboxes whose owning client went away). A reaper task checks every live
//! sandbox each tick; it also starts `autostart` instances again when the runtime comes up.
//!
//! Activity is a running command or terminal, a hold (an open stream a client keeps on the sandbox, see
//! `sandbox/hold`) or an open forwarded connection (SSH sessions arrive as those). API calls alone
//! count only through the commands they run.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::catalog::{now_ms, Expiry, Policy, SandboxState};
use crate::error::Error;
use crate::live::{self, LiveSandbox};
use crate::service::Runtime;
use crate::snapshots;

pub const TICK: Duration = Duration::from_millis(250);

/// Which clients own sandboxes, and since when each is gone. Owners are names the agent picks; one is
/// alive while the runtime connection that named it is open and the agent has not said it is gone.
#[derive(Default)]
pub struct Owners {
    map: Mutex<HashMap<String, OwnerState>>,
}

#[derive(Clone, Copy)]
struct OwnerState {
    conn: Option<u64>,
    gone_since_ms: Option<u64>,
}

impl Owners {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OwnerState>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `owner` is alive for as long as connection `conn` is open (or until `gone`).
    pub fn bind(&self, owner: &str, conn: u64) {
        self.lock().insert(owner.into(), OwnerState { conn: Some(conn), gone_since_ms: None });
    }

    pub fn gone(&self, owner: &str) {
        let mut map = self.lock();
        let s = map.entry(owner.into()).or_insert(OwnerState { conn: None, gone_since_ms: None });
        s.conn = None;
        s.gone_since_ms.get_or_insert(now_ms());
    }

    pub fn connection_closed(&self, conn: u64) {
        let now = now_ms();
        for s in self.lock().values_mut().filter(|s| s.conn == Some(conn)) {
            s.conn = None;
            s.gone_since_ms.get_or_insert(now);
        }
    }

    /// How long `owner` has been gone; an owner this runtime never saw (its sandboxes outlived an
    /// earlier runtime) counts as gone from the first time it is asked about.
    pub fn gone_for_ms(&self, owner: &str, now: u64) -> Option<u64> {
        let mut map = self.lock();
        let s = map.entry(owner.into()).or_insert(OwnerState { conn: None, gone_since_ms: Some(now) });
        s.gone_since_ms.map(|t| now.saturating_sub(t))
    }
}

/// Holds: open streams that keep a sandbox active, each tied to the runtime connection that made it.
#[derive(Default)]
pub struct Holds {
    map: Mutex<HashMap<String, (String, u64)>>,
}

impl Holds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, u64)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count(&self, sandbox_id: &str) -> usize {
        self.lock().values().filter(|(s, _)| s == sandbox_id).count()
    }

    /// Drops the holds of a closed connection; returns the sandboxes they held.
    pub fn connection_closed(&self, conn: u64) -> Vec<String> {
        let mut map = self.lock();
        let ids: Vec<String> = map.iter().filter(|(_, (_, c))| *c == conn).map(|(h, _)| h.clone()).collect();
        ids.into_iter().filter_map(|h| map.remove(&h)).map(|(s, _)| s).collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldParams {
    pub hold_id: String,
    pub sandbox_id: String,
}

pub fn hold(rt: &Runtime, conn: u64, p: HoldParams) -> Result<serde_json::Value, Error> {
    crate::plan::check_exec_id(&p.hold_id)?;
    let live = live::running(rt, &p.sandbox_id).or_else(|e| rt.live.get(&p.sandbox_id).ok_or(e))?;
    let mut map = rt.holds.lock();
    if map.contains_key(&p.hold_id) {
        return Err(Error::ExecIdInUse(p.hold_id));
    }
    map.insert(p.hold_id.clone(), (live.id.clone(), conn));
    live.touch();
    Ok(json!({ "holdId": p.hold_id, "sandboxId": live.id }))
}

pub fn release(rt: &Runtime, hold_id: &str) -> Result<serde_json::Value, Error> {
    let (sandbox_id, _) = rt.holds.lock().remove(hold_id).ok_or_else(|| Error::HoldNotFound(hold_id.into()))?;
    if let Some(live) = rt.live.get(&sandbox_id) {
        live.touch(); // the idle time starts when the stream ends
    }
    Ok(json!({ "released": true }))
}

/// Partial update of a sandbox's policy; absent fields stay. `owner: null` detaches it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyParams {
    pub sandbox_id: String,
    #[serde(default, with = "double_option")]
    pub ttl_ms: Option<Option<u64>>,
    #[serde(default, with = "double_option")]
    pub idle_timeout_ms: Option<Option<u64>>,
    #[serde(default)]
    pub on_expiry: Option<Expiry>,
    #[serde(default)]
    pub autostart: Option<bool>,
    #[serde(default, with = "double_option")]
    pub owner: Option<Option<String>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

pub fn set_policy(rt: &Runtime, conn: u64, p: PolicyParams) -> Result<Policy, Error> {
    let mut row = rt.catalog.sandbox(&p.sandbox_id).map_err(Error::Catalog)?;
    let row = row.as_mut().filter(|r| r.state != SandboxState::Destroyed);
    let row = row.ok_or_else(|| Error::SandboxNotFound(p.sandbox_id.clone()))?;
    let live = rt.live.get(&p.sandbox_id);
    let mut policy = live.as_ref().map(|l| l.policy()).unwrap_or_else(|| row.policy.clone());
    if let Some(v) = p.ttl_ms {
        policy.ttl_ms = v;
    }
    if let Some(v) = p.idle_timeout_ms {
        policy.idle_timeout_ms = v;
    }
    if let Some(v) = p.on_expiry {
        policy.on_expiry = v;
    }
    if let Some(v) = p.autostart {
        policy.autostart = v;
    }
    if let Some(v) = p.owner {
        if let Some(o) = &v {
            rt.owners.bind(o, conn);
        }
        policy.owner = v;
    }
    check(&policy)?;
    rt.catalog.set_sandbox_policy(&p.sandbox_id, &policy).map_err(Error::Catalog)?;
    if let Some(l) = live {
        *l.policy.lock().unwrap_or_else(|x| x.into_inner()) = policy.clone();
        l.touch();
    }
    Ok(policy)
}

/// Longest TTL or idle timeout (a year): larger values are almost surely a unit mistake.
const MAX_TIMEOUT_MS: u64 = 365 * 24 * 3600 * 1000;

pub fn check(p: &Policy) -> Result<(), Error> {
    for (name, v) in [("ttlMs", p.ttl_ms), ("idleTimeoutMs", p.idle_timeout_ms)] {
        if let Some(v) = v {
            if v == 0 || v > MAX_TIMEOUT_MS {
                return Err(Error::BadPolicy(format!("{name} must be between 1 and {MAX_TIMEOUT_MS} ms, not {v}")));
            }
        }
    }
    if let Some(o) = &p.owner {
        if o.is_empty() || o.len() > 200 {
            return Err(Error::BadPolicy("owner must be 1 to 200 characters".into()));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Ttl,
    Idle,
    Orphaned,
}

/// Whether a sandbox is in use right now.
pub fn busy(rt: &Runtime, live: &LiveSandbox) -> bool {
    live.running_execs.load(Ordering::SeqCst) > 0
        || rt.holds.count(&live.id) > 0
        || rt.forwards.open_connections(&live.id) > 0
}

/// What should happen to a live sandbox now, if anything.
pub fn due(
    policy: &Policy,
    paused: bool,
    busy: bool,
    created_ms: u64,
    last_activity_ms: u64,
    now: u64,
    orphaned: bool,
) -> Option<(Reason, Expiry)> {
    if orphaned {
        return Some((Reason::Orphaned, Expiry::Destroy));
    }
    if let Some(ttl) = policy.ttl_ms {
        if now.saturating_sub(created_ms) >= ttl && !(paused && policy.on_expiry == Expiry::Pause) {
            return Some((Reason::Ttl, policy.on_expiry));
        }
    }
    if let Some(idle) = policy.idle_timeout_ms {
        if !busy && !paused && now.saturating_sub(last_activity_ms) >= idle {
            return Some((Reason::Idle, policy.on_expiry));
        }
    }
    None
}

/// Runs until the runtime shuts down: every tick, expires what is due.
pub async fn reaper(rt: Arc<Runtime>) {
    for n in 0u64.. {
        tokio::time::sleep(TICK).await;
        if rt.is_shutting_down() {
            return;
        }
        // Sandboxes at rest change rarely: their orphans are looked for every 2 s, not every tick.
        tick(&rt, n % 8 == 0).await;
    }
}

async fn tick(rt: &Arc<Runtime>, resting_too: bool) {
    let now = now_ms();
    let grace = rt.config.orphan_grace_ms;
    let orphaned = |policy: &Policy| {
        policy.owner.as_deref().and_then(|o| rt.owners.gone_for_ms(o, now)).is_some_and(|gone| gone >= grace)
    };
    for live in rt.live.all() {
        let policy = live.policy();
        let busy = busy(rt, &live);
        if busy {
            live.touch();
        }
        let last = live.last_activity_ms.load(Ordering::SeqCst);
        if let Some((reason, action)) =
            due(&policy, live.paused(), busy, live.created_at_ms, last, now, orphaned(&policy))
        {
            expire(rt, &live.id, reason, action).await;
        }
    }
    // Orphans that no longer run (stopped, exited, failed) still hold files and snapshots' parents.
    if !resting_too {
        return;
    }
    let Ok(rows) = rt.catalog.sandboxes() else { return };
    for row in rows {
        let resting = matches!(row.state, SandboxState::Stopped | SandboxState::Exited | SandboxState::Failed);
        if resting && rt.live.get(&row.id).is_none() && orphaned(&row.policy) {
            expire(rt, &row.id, Reason::Orphaned, Expiry::Destroy).await;
        }
    }
}

/// Applies `action` to a sandbox and tells every client why.
pub async fn expire(rt: &Arc<Runtime>, id: &str, reason: Reason, action: Expiry) {
    let result = match action {
        Expiry::Pause => {
            // A TTL that pauses is spent: resuming the sandbox must not pause it again a tick later.
            if reason == Reason::Ttl {
                if let Some(l) = rt.live.get(id) {
                    let mut p = l.policy();
                    p.ttl_ms = None;
                    let _ = rt.catalog.set_sandbox_policy(id, &p);
                    *l.policy.lock().unwrap_or_else(|x| x.into_inner()) = p;
                }
            }
            live::set_paused(rt, id, true).await.map(|_| ())
        }
        Expiry::Stop => live::end(rt, id).await,
        Expiry::SnapshotThenStop => snapshots::stop(rt, id).await.map(|_| ()),
        Expiry::Destroy => live::destroy(rt, id).await,
    };
    match result {
        Ok(()) => {
            crate::log!("{id}: {reason:?}, {action:?}");
            rt.hub.broadcast("sandbox/expired", json!({ "sandboxId": id, "reason": reason, "action": action })).await;
        }
        Err(e) => {
            crate::log!("{id}: {reason:?}, {action:?} failed: {e}");
            // A snapshot that cannot be taken must not keep the sandbox alive forever.
            if action == Expiry::SnapshotThenStop && reason != Reason::Orphaned {
                let _ = live::end(rt, id).await;
            }
        }
    }
}

/// At start: instances that were running when the runtime last stopped (or died) run again.
pub async fn autostart(rt: &Arc<Runtime>, reconciled: &[String]) {
    let Ok(rows) = rt.catalog.sandboxes() else { return };
    let snapshots = rt.catalog.snapshots().unwrap_or_default();
    for row in rows.into_iter().filter(|r| r.policy.autostart && r.state == SandboxState::Stopped) {
        let stopped_by_shutdown = row
            .last_snapshot
            .as_ref()
            .and_then(|l| snapshots.iter().find(|s| &s.id == l))
            .is_some_and(|s| s.label.as_deref() == Some(snapshots::SHUTDOWN_LABEL));
        if !stopped_by_shutdown && !reconciled.contains(&row.id) {
            continue; // stopped on purpose
        }
        match snapshots::start(rt, &row.id).await {
            Ok(r) => crate::log!("{}: started again ({:.0} ms)", row.id, r.time_to_running_ms),
            Err(e) => crate::log!("{}: could not start again: {e}", row.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ttl: Option<u64>, idle: Option<u64>, on: Expiry) -> Policy {
        Policy { ttl_ms: ttl, idle_timeout_ms: idle, on_expiry: on, ..Policy::default() }
    }

    #[test]
    fn ttl_counts_from_creation_even_when_busy() {
        let p = policy(Some(1000), None, Expiry::Stop);
        assert_eq!(due(&p, false, true, 0, 999, 999, false), None);
        assert_eq!(due(&p, false, true, 0, 999, 1000, false), Some((Reason::Ttl, Expiry::Stop)));
    }

    #[test]
    fn idle_needs_no_activity_for_the_whole_timeout() {
        let p = policy(None, Some(500), Expiry::SnapshotThenStop);
        assert_eq!(due(&p, false, true, 0, 0, 10_000, false), None, "busy is never idle");
        assert_eq!(due(&p, false, false, 0, 9_600, 10_000, false), None);
        assert_eq!(due(&p, false, false, 0, 9_500, 10_000, false), Some((Reason::Idle, Expiry::SnapshotThenStop)));
        assert_eq!(due(&p, true, false, 0, 0, 10_000, false), None, "a paused sandbox is not idling");
    }

    #[test]
    fn orphans_are_destroyed_whatever_the_policy() {
        let p = policy(None, None, Expiry::Pause);
        assert_eq!(due(&p, false, true, 0, 0, 1, true), Some((Reason::Orphaned, Expiry::Destroy)));
    }

    #[test]
    fn a_ttl_that_paused_does_not_fire_again_while_paused() {
        let p = policy(Some(10), None, Expiry::Pause);
        assert_eq!(due(&p, true, false, 0, 0, 100, false), None);
    }

    #[test]
    fn owners_are_gone_when_their_connection_closes() {
        let o = Owners::default();
        o.bind("a", 1);
        o.bind("b", 2);
        assert_eq!(o.gone_for_ms("a", now_ms()), None);
        o.connection_closed(1);
        let now = now_ms();
        assert!(o.gone_for_ms("a", now + 50).is_some_and(|g| g >= 50));
        assert_eq!(o.gone_for_ms("b", now), None);
        assert_eq!(o.gone_for_ms("never-seen", now), Some(0));
    }

    #[test]
    fn policies_are_checked() {
        assert!(check(&policy(Some(0), None, Expiry::Stop)).is_err());
        assert!(check(&policy(None, Some(MAX_TIMEOUT_MS + 1), Expiry::Stop)).is_err());
        assert!(check(&policy(Some(1), Some(MAX_TIMEOUT_MS), Expiry::Stop)).is_ok());
    }
}
