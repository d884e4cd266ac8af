//! Branch diff and merge: what two sandboxes did to their files since their common ancestor snapshot,
//! and a three-way merge of one into the other. Text files merge line by line; binaries, symlinks,
//! directories and type changes merge whole. When both sides changed a file differently the merge
//! reports a conflict with both sides and never silently picks one, unless the caller chose a strategy:
//! `fail` applies nothing, `ours` keeps the target's version, `theirs` takes the source's. Processes are
//! not merged: the result is written into the target's files while it runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::envs;
use crate::error::Error;
use crate::safe_fs::{self, Entry};
use crate::service::Runtime;
use crate::views::{env_view, view, View};

/// Files bigger than this are compared and merged as wholes, never line by line.
const TEXT_MERGE_LIMIT: u64 = 4 << 20;

/// The snapshots above a sandbox or snapshot, nearest first.
fn ancestors(rt: &Runtime, id: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut next = match rt.catalog.sandbox(id).map_err(Error::Catalog)? {
        Some(row) => row.origin_snapshot,
        None => Some(id.to_string()),
    };
    while let Some(snap) = next {
        if out.contains(&snap) {
            break;
        }
        let row = rt.catalog.snapshot(&snap).map_err(Error::Catalog)?;
        out.push(snap);
        next = match row {
            Some(s) => rt
                .catalog
                .sandbox(&s.sandbox_id)
                .map_err(Error::Catalog)?
                .and_then(|sb| sb.origin_snapshot)
                .or(s.parent_snapshot),
            None => None,
        };
    }
    Ok(out)
}

fn environment_of(rt: &Runtime, id: &str) -> Result<String, Error> {
    if let Some(l) = rt.live.get(id) {
        return Ok(l.environment.into());
    }
    if let Some(r) = rt.catalog.sandbox(id).map_err(Error::Catalog)? {
        return Ok(r.environment);
    }
    rt.catalog
        .snapshot(id)
        .map_err(Error::Catalog)?
        .map(|s| s.environment)
        .ok_or_else(|| Error::SandboxNotFound(id.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Unchanged,
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathChange {
    pub path: String,
    pub a: Change,
    pub b: Change,
    /// Both sides changed it, differently.
    pub conflict: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub a: String,
    pub b: String,
    /// The common ancestor snapshot, or the environment's name when there is none.
    pub base: String,
    pub changes: Vec<PathChange>,
}

struct Sides {
    base_id: String,
    base: View,
    a: View,
    b: View,
}

fn sides(rt: &Runtime, a: &str, b: &str) -> Result<Sides, Error> {
    let (ea, eb) = (environment_of(rt, a)?, environment_of(rt, b)?);
    if envs::resolve(&ea)?.name != envs::resolve(&eb)?.name {
        return Err(Error::Unrelated {
            a: a.into(),
            b: b.into(),
            why: format!("they run different environments ({ea}, {eb})"),
        });
    }
    let up_a = ancestors(rt, a)?;
    let up_b: BTreeSet<String> = ancestors(rt, b)?.into_iter().collect();
    let common = up_a.into_iter().find(|s| up_b.contains(s));
    let (base_id, base) = match common {
        Some(s) => (s.clone(), view(rt, &s)?),
        None => (ea.clone(), env_view(rt, &ea)?),
    };
    Ok(Sides { base_id, base, a: view(rt, a)?, b: view(rt, b)? })
}

/// Paths any layer holds: only these can differ from the environment, so only these can differ at all.
fn candidates(views: &[&View]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for v in views {
        for layer in &v.layers {
            walk(layer, Path::new(""), &mut out);
        }
    }
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeSet<String>) {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else { return };
    for e in rd.flatten() {
        let child = rel.join(e.file_name());
        out.insert(format!("/{}", child.display()));
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(root, &child, out);
        }
    }
}

/// One side's state of a path, with the content for files.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Missing,
    Dir(u32),
    File(u32, Vec<u8>),
    Symlink(PathBuf),
    Other(u32),
}

fn state(v: &View, path: &str) -> Result<State, Error> {
    let err = |e| Error::Sandbox(crate::sandbox::SandboxError::Files(e));
    Ok(match safe_fs::entry(&v.root, path).map_err(err)? {
        Entry::Missing => State::Missing,
        Entry::Dir { mode } => State::Dir(mode),
        Entry::File { mode, .. } => State::File(mode, safe_fs::read_file(&v.root, path).map_err(err)?),
        Entry::Symlink { target } => State::Symlink(target),
        Entry::Other { mode } => State::Other(mode),
    })
}

fn change(base: &State, side: &State) -> Change {
    match (base, side) {
        (x, y) if x == y => Change::Unchanged,
        (State::Missing, _) => Change::Added,
        (_, State::Missing) => Change::Deleted,
        _ => Change::Modified,
    }
}

pub fn diff(rt: &Arc<Runtime>, a: &str, b: &str) -> Result<Diff, Error> {
    let s = sides(rt, a, b)?;
    let mut changes = Vec::new();
    for path in candidates(&[&s.base, &s.a, &s.b]) {
        let (base, sa, sb) = (state(&s.base, &path)?, state(&s.a, &path)?, state(&s.b, &path)?);
        let (ca, cb) = (change(&base, &sa), change(&base, &sb));
        if ca == Change::Unchanged && cb == Change::Unchanged {
            continue;
        }
        let conflict = matches!(resolve(&base, &sa, &sb), Resolution::Conflict { .. });
        changes.push(PathChange { path, a: ca, b: cb, conflict });
    }
    Ok(Diff { a: a.into(), b: b.into(), base: s.base_id, changes })
}

/// What merging `theirs` into `ours` means for one path.
enum Resolution {
    /// Nothing to do: theirs did not change it, or both ended the same.
    Keep,
    /// Write this state into ours.
    Take(State),
    Conflict {
        reason: String,
        detail: String,
    },
}

fn resolve(base: &State, ours: &State, theirs: &State) -> Resolution {
    let (co, ct) = (change(base, ours), change(base, theirs));
    if ct == Change::Unchanged || ours == theirs || is_dir_pair(ours, theirs) {
        // (both keep a directory: its entries are merged one by one)
        return Resolution::Keep;
    }
    if co == Change::Unchanged {
        return Resolution::Take(theirs.clone());
    }
    if let (State::File(_, b), State::File(mo, ob), State::File(mt, tb)) = (base, ours, theirs) {
        if is_text(b) && is_text(ob) && is_text(tb) {
            return match diffy::merge(&text(b), &text(ob), &text(tb)) {
                Ok(merged) => Resolution::Take(State::File(if mo == mt { *mo } else { *mt }, merged.into_bytes())),
                Err(with_markers) => {
                    Resolution::Conflict { reason: "both sides changed the same lines".into(), detail: with_markers }
                }
            };
        }
    }
    Resolution::Conflict {
        reason: conflict_reason(co, ct, ours, theirs),
        detail: format!("into: {}\nfrom: {}", describe(ours), describe(theirs)),
    }
}

fn is_dir_pair(x: &State, y: &State) -> bool {
    matches!((x, y), (State::Dir(_), State::Dir(_)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Any conflict: apply nothing, report them all.
    Fail,
    /// Conflicts keep the target's (`into`) version.
    Ours,
    /// Conflicts take the source's (`from`) version.
    Theirs,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub path: String,
    /// What each side did since the base.
    pub into: Change,
    pub from: Change,
    pub reason: String,
    /// For text: both sides, as diff3-style conflict markers. For others: a description of each side.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Merged {
    pub from: String,
    pub into: String,
    pub base: String,
    pub strategy: Strategy,
    /// Paths written into the target.
    pub applied: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// True when the strategy was `fail` and there were conflicts: nothing was written.
    pub aborted: bool,
}

enum Action {
    Write(String, State),
}

/// Merges what `from` changed since the common base into `into` (which must be running or paused).
pub fn merge(rt: &Arc<Runtime>, from: &str, into: &str, strategy: Strategy) -> Result<Merged, Error> {
    let target = rt.live.get(into).ok_or_else(|| crate::live::not_live(rt, into))?;
    let s = sides(rt, into, from)?;
    let (ours, theirs) = (&s.a, &s.b);
    let mut actions = Vec::new();
    let mut conflicts = Vec::new();
    for path in candidates(&[&s.base, ours, theirs]) {
        let (base, o, t) = (state(&s.base, &path)?, state(ours, &path)?, state(theirs, &path)?);
        match resolve(&base, &o, &t) {
            Resolution::Keep => {}
            Resolution::Take(st) => actions.push(Action::Write(path, st)),
            Resolution::Conflict { reason, detail } => {
                conflicts.push(Conflict {
                    path: path.clone(),
                    into: change(&base, &o),
                    from: change(&base, &t),
                    reason,
                    detail,
                });
                if strategy == Strategy::Theirs {
                    actions.push(Action::Write(path, t));
                }
            }
        }
    }
    let aborted = strategy == Strategy::Fail && !conflicts.is_empty();
    let mut applied = Vec::new();
    if !aborted {
        // Parents before children, deletions of whole trees first (their entries then need nothing).
        actions.sort_by(|Action::Write(a, _), Action::Write(b, _)| a.cmp(b));
        for Action::Write(path, st) in actions {
            crate::userns::as_sandbox_owner(target.external.userns(), || apply(&target.rootfs, &path, &st))?;
            applied.push(path);
        }
    }
    Ok(Merged { from: from.into(), into: into.into(), base: s.base_id, strategy, applied, conflicts, aborted })
}

fn apply(root: &Path, path: &str, st: &State) -> Result<(), Error> {
    let err = |e| Error::Sandbox(crate::sandbox::SandboxError::Files(e));
    match st {
        State::Missing => safe_fs::remove(root, path).map_err(err),
        State::Dir(mode) => {
            if !matches!(safe_fs::entry(root, path).map_err(err)?, Entry::Dir { .. }) {
                safe_fs::remove(root, path).map_err(err)?;
            }
            safe_fs::make_dir(root, path, *mode).map_err(err)
        }
        State::File(mode, bytes) => {
            if matches!(safe_fs::entry(root, path).map_err(err)?, Entry::Dir { .. } | Entry::Symlink { .. }) {
                safe_fs::remove(root, path).map_err(err)?;
            }
            safe_fs::write_file(root, path, bytes, *mode).map_err(err)
        }
        State::Symlink(target) => safe_fs::make_symlink(root, path, target).map_err(err),
        State::Other(_) => Ok(()), // device nodes and fifos are not carried over
    }
}

fn conflict_reason(into: Change, from: Change, o: &State, t: &State) -> String {
    match (into, from) {
        (Change::Deleted, _) => "deleted in the target, changed in the source".into(),
        (_, Change::Deleted) => "changed in the target, deleted in the source".into(),
        _ if matches!((o, t), (State::File(..), State::File(..))) => {
            "both sides changed a binary file differently".into()
        }
        _ => "both sides changed it into different things".into(),
    }
}

fn describe(s: &State) -> String {
    match s {
        State::Missing => "deleted".into(),
        State::Dir(m) => format!("directory, mode {m:o}"),
        State::File(m, b) => format!("file, {} bytes, mode {m:o}{}", b.len(), if is_text(b) { "" } else { ", binary" }),
        State::Symlink(t) => format!("symlink to {}", t.display()),
        State::Other(m) => format!("special file, mode {m:o}"),
    }
}

fn is_text(b: &[u8]) -> bool {
    b.len() as u64 <= TEXT_MERGE_LIMIT && !b[..b.len().min(8192)].contains(&0) && std::str::from_utf8(b).is_ok()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_classified_against_the_base() {
        let f = |s: &str| State::File(0o644, s.as_bytes().to_vec());
        assert_eq!(change(&f("a"), &f("a")), Change::Unchanged);
        assert_eq!(change(&State::Missing, &f("a")), Change::Added);
        assert_eq!(change(&f("a"), &State::Missing), Change::Deleted);
        assert_eq!(change(&f("a"), &f("b")), Change::Modified);
        assert_eq!(change(&f("a"), &State::File(0o755, b"a".to_vec())), Change::Modified);
    }

    #[test]
    fn text_detection_refuses_binaries() {
        assert!(is_text(b"hello\nworld\n"));
        assert!(!is_text(b"ab\0cd"));
        assert!(!is_text(&[0xff, 0xfe, 0x41]));
    }

    #[test]
    fn line_merge_combines_disjoint_edits_and_marks_overlaps() {
        let base = "one\ntwo\nthree\nfour\nfive\n";
        let ours = "ONE\ntwo\nthree\nfour\nfive\n";
        let theirs = "one\ntwo\nthree\nfour\nFIVE\n";
        assert_eq!(diffy::merge(base, ours, theirs).unwrap(), "ONE\ntwo\nthree\nfour\nFIVE\n");
        let clash = diffy::merge(base, "one\n2\nthree\nfour\nfive\n", "one\nTWO\nthree\nfour\nfive\n").unwrap_err();
        assert!(clash.contains("<<<<<<<") && clash.contains("2") && clash.contains("TWO"), "{clash}");
    }
}
