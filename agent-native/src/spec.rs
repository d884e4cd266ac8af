//! The sandbox spec as it arrives over JSON-RPC. Field names match `agent/src/protocol/runtime.ts`.
//! Unknown fields are refused, so a typo never silently drops a limit.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunParams {
    /// Caller-chosen id that tags this run's output notifications and lets `exec/kill` find it.
    pub exec_id: String,
    pub environment: String,
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    /// Bytes for the command's stdin, base64. Absent: stdin is /dev/null.
    #[serde(default)]
    pub stdin: Option<String>,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Files to return with the result, read after the command ends and before the sandbox goes.
    #[serde(default)]
    pub collect: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    /// Bound of the sandbox's writable layer (bytes it may add over its environment): writes past it
    /// fail inside with EDQUOT. Default 10 GiB (see plan::DiskFacts).
    pub disk_bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSpec {
    /// Absolute, or relative to the working directory.
    pub path: String,
    pub content_base64: String,
    #[serde(default)]
    pub mode: Option<u32>,
}
