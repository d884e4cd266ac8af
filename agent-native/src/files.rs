//! Files into and out of sandboxes (and out of snapshots), in chunks so no file is ever held whole:
//! every path is resolved by the kernel inside the sandbox's root (openat2 RESOLVE_IN_ROOT), so `..` and
//! symlinks cannot reach outside it. Only regular files are read or written (a FIFO, socket, device or
//! symlink the sandbox left at the path is refused, never opened: see safe_fs.rs), and modes with the
//! set-user-ID or set-group-ID bit are refused. These functions block on the disk: the service runs
//! them off the async workers.

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::safe_fs::{self, DirEntry};
use crate::service::Runtime;
use crate::userns::{as_sandbox_owner, IdMap};
use crate::views;

/// Largest chunk one request may carry or ask for.
pub const MAX_CHUNK: usize = 8 << 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteParams {
    pub sandbox_id: String,
    pub path: String,
    #[serde(default)]
    pub offset: u64,
    pub data_base64: String,
    #[serde(default)]
    pub mode: Option<u32>,
    /// Start the file afresh (first chunk). Without it, the chunk is written into the existing file.
    #[serde(default)]
    pub truncate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadParams {
    /// A sandbox or snapshot id.
    pub id: String,
    pub path: String,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub length: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathParams {
    pub id: String,
    pub path: String,
    #[serde(default)]
    pub recursive: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadResult {
    pub data_base64: String,
    pub offset: u64,
    pub size: u64,
    pub eof: bool,
}

fn files_err(e: safe_fs::SafeFsError) -> Error {
    Error::Sandbox(e.into())
}

/// The live root of a sandbox that may be written to (running or paused), and its user namespace map
/// (what the runtime writes there belongs to sandbox root).
fn writable_root(rt: &Runtime, id: &str) -> Result<(std::path::PathBuf, Option<IdMap>), Error> {
    let live = rt.live.get(id).ok_or_else(|| crate::live::not_live(rt, id))?;
    live.touch();
    Ok((live.rootfs.clone(), live.external.userns()))
}

pub fn write(rt: &Arc<Runtime>, p: WriteParams) -> Result<serde_json::Value, Error> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(&p.data_base64)
        .map_err(|_| Error::Spec(crate::plan::SpecError::Base64 { field: "dataBase64".into() }))?;
    if data.len() > MAX_CHUNK {
        return Err(Error::TooLarge { what: "a file chunk", size: data.len(), max: MAX_CHUNK });
    }
    let mode = crate::plan::file_mode(p.mode, "mode")?;
    let (root, ids) = writable_root(rt, &p.sandbox_id)?;
    as_sandbox_owner(ids, || safe_fs::write_at(&root, &p.path, p.offset, &data, mode, p.truncate))
        .map_err(files_err)?;
    Ok(serde_json::json!({ "path": p.path, "written": data.len(), "end": p.offset + data.len() as u64 }))
}

pub fn read(rt: &Arc<Runtime>, p: ReadParams) -> Result<ReadResult, Error> {
    let length = p.length.unwrap_or(MAX_CHUNK);
    if length > MAX_CHUNK {
        return Err(Error::TooLarge { what: "a read", size: length, max: MAX_CHUNK });
    }
    let view = views::view(rt, &p.id)?;
    let (data, size) = safe_fs::read_at(&view.root, &p.path, p.offset, length).map_err(files_err)?;
    let eof = p.offset + data.len() as u64 >= size;
    Ok(ReadResult { data_base64: base64::engine::general_purpose::STANDARD.encode(&data), offset: p.offset, size, eof })
}

pub fn list(rt: &Arc<Runtime>, p: PathParams) -> Result<Vec<DirEntry>, Error> {
    let view = views::view(rt, &p.id)?;
    safe_fs::list_dir(&view.root, &p.path).map_err(files_err)
}

pub fn remove(rt: &Arc<Runtime>, p: PathParams) -> Result<(), Error> {
    let (root, ids) = writable_root(rt, &p.id)?;
    if !p.recursive {
        if let safe_fs::Entry::Dir { .. } = safe_fs::entry(&root, &p.path).map_err(files_err)? {
            if !safe_fs::list_dir(&root, &p.path).map_err(files_err)?.is_empty() {
                return Err(Error::Sandbox(crate::sandbox::SandboxError::Files(safe_fs::SafeFsError::Open {
                    path: p.path,
                    errno: nix::errno::Errno::ENOTEMPTY,
                })));
            }
        }
    }
    as_sandbox_owner(ids, || safe_fs::remove(&root, &p.path)).map_err(files_err)
}
