//! Turns a `RunParams` into everything the runtime will do, before any syscall: validated limits, the
//! environment variables, the exec candidates, the files to place. Pure, so it is unit-tested directly.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::caps::CapSet;
use crate::cgroup::CgroupLimits;
use crate::sandbox_init::{InitPlan, ProcessPlan};
use crate::spec::{FileSpec, Limits, RunParams};

pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;
pub const DEFAULT_PIDS: u64 = 1024;
pub const MIN_MEMORY_BYTES: u64 = 8 << 20;
pub const MAX_PIDS: u64 = 1 << 22;
pub const MAX_TIMEOUT_MS: u64 = 7 * 24 * 3600 * 1000;
pub const MAX_ARGV_ENV_BYTES: usize = 128 * 1024;
pub const MAX_FILES_BYTES: usize = 64 << 20;
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_CWD: &str = "/root";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("argv is empty: give the command to run")]
    EmptyArgv,
    #[error("{field} contains a NUL byte")]
    NulByte { field: &'static str },
    #[error("environment variable name {name:?} is invalid: use letters, digits and '_', not starting with a digit")]
    EnvName { name: String },
    #[error("cwd {cwd:?} must be an absolute path")]
    RelativeCwd { cwd: String },
    #[error("{field} is {size} bytes, more than the {max} allowed")]
    TooLarge { field: &'static str, size: usize, max: usize },
    #[error("limits.{field} = {value} is invalid: {reason}")]
    Limit { field: &'static str, value: String, reason: &'static str },
    #[error("timeoutMs = {ms} is invalid: use 1 to {MAX_TIMEOUT_MS} ms")]
    Timeout { ms: u64 },
    #[error("{field} is not valid base64")]
    Base64 { field: String },
    #[error("file path {path:?} is invalid: it must name a file, without NUL bytes")]
    FilePath { path: String },
    #[error("execId {id:?} is invalid: use 1-64 of [A-Za-z0-9._-]")]
    ExecId { id: String },
}

/// Facts about the host that bound what a spec may ask for.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub cpus: usize,
    pub memory_bytes: u64,
    pub devices_confined: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FilePlan {
    /// Absolute path inside the sandbox.
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The first process; `cgroup_procs` is filled in once the cgroup exists.
    pub init: InitPlan,
    pub limits: CgroupLimits,
    pub files: Vec<FilePlan>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

pub fn build(params: &RunParams, sandbox_id: &str, rootfs: &Path, host: &HostFacts) -> Result<RunPlan, SpecError> {
    check_exec_id(&params.exec_id)?;
    let command =
        Command { argv: &params.argv, env: &params.env, cwd: params.cwd.as_deref(), stdin: params.stdin.as_deref() };
    let (process, stdin) = process(&command, sandbox_id, host)?;
    let files = files(&params.files, &process.cwd)?;
    Ok(RunPlan {
        init: InitPlan { rootfs: rootfs.to_path_buf(), hostname: sandbox_id.to_string(), process, pooled: false },
        limits: limits(&params.limits, host)?,
        files,
        stdin,
        timeout: timeout(params.timeout_ms)?,
    })
}

/// What to run, as any caller gives it: a sandbox's first process or a later exec.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub argv: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a str>,
    /// base64
    pub stdin: Option<&'a str>,
}

pub fn check_exec_id(id: &str) -> Result<(), SpecError> {
    if crate::ids::is_safe_id(id) {
        Ok(())
    } else {
        Err(SpecError::ExecId { id: id.to_string() })
    }
}

/// Validates a command and plans its process (cgroups left empty for the caller); also returns the
/// decoded stdin.
pub fn process(
    c: &Command<'_>,
    sandbox_id: &str,
    host: &HostFacts,
) -> Result<(ProcessPlan, Option<Vec<u8>>), SpecError> {
    if c.argv.is_empty() || c.argv[0].is_empty() {
        return Err(SpecError::EmptyArgv);
    }
    if c.argv.iter().any(|a| a.contains('\0')) {
        return Err(SpecError::NulByte { field: "argv" });
    }
    let env = environment(c.env, sandbox_id)?;
    let size: usize = c.argv.iter().chain(env.iter()).map(|s| s.len() + 1).sum();
    if size > MAX_ARGV_ENV_BYTES {
        return Err(SpecError::TooLarge { field: "argv and env", size, max: MAX_ARGV_ENV_BYTES });
    }
    let cwd = c.cwd.unwrap_or(DEFAULT_CWD).to_string();
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativeCwd { cwd });
    }
    if cwd.contains('\0') {
        return Err(SpecError::NulByte { field: "cwd" });
    }
    let path_var = env.iter().find_map(|kv| kv.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    let stdin = c.stdin.map(|s| decode(s, "stdin")).transpose()?;
    let plan = ProcessPlan {
        argv: c.argv.to_vec(),
        exec_candidates: exec_candidates(&c.argv[0], path_var),
        env,
        cwd,
        stdin_null: stdin.is_none(),
        keep_caps: CapSet::sandbox_default(host.devices_confined),
        cgroup_procs: Vec::new(),
        tty: false,
    };
    Ok((plan, stdin))
}

pub fn timeout(ms: Option<u64>) -> Result<Option<Duration>, SpecError> {
    match ms {
        None => Ok(None),
        Some(ms) if ms == 0 || ms > MAX_TIMEOUT_MS => Err(SpecError::Timeout { ms }),
        Some(ms) => Ok(Some(Duration::from_millis(ms))),
    }
}

/// Defaults first, then the caller's variables on top.
fn environment(given: &BTreeMap<String, String>, sandbox_id: &str) -> Result<Vec<String>, SpecError> {
    let mut vars: BTreeMap<String, String> = [
        ("PATH", DEFAULT_PATH),
        ("HOME", "/root"),
        ("HOSTNAME", sandbox_id),
        ("LANG", "C.UTF-8"),
        // Output is streamed live; Python would otherwise hold it back in a block buffer on a pipe.
        ("PYTHONUNBUFFERED", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in given {
        let valid = !k.is_empty()
            && !k.as_bytes()[0].is_ascii_digit()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(SpecError::EnvName { name: k.clone() });
        }
        if v.contains('\0') {
            return Err(SpecError::NulByte { field: "env" });
        }
        vars.insert(k.clone(), v.clone());
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

pub fn limits(l: &Limits, host: &HostFacts) -> Result<CgroupLimits, SpecError> {
    let memory = l.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES);
    if memory < MIN_MEMORY_BYTES {
        return Err(SpecError::Limit { field: "memoryBytes", value: memory.to_string(), reason: "at least 8 MiB" });
    }
    if host.memory_bytes > 0 && memory > host.memory_bytes {
        return Err(SpecError::Limit {
            field: "memoryBytes",
            value: memory.to_string(),
            reason: "more than this host's memory",
        });
    }
    let cpu_millis = match l.cpus {
        None => None,
        Some(c) if !c.is_finite() || c < 0.01 => {
            return Err(SpecError::Limit { field: "cpus", value: c.to_string(), reason: "at least 0.01" })
        }
        Some(c) if c > host.cpus as f64 => {
            return Err(SpecError::Limit { field: "cpus", value: c.to_string(), reason: "more than this host's CPUs" })
        }
        Some(c) => Some((c * 1000.0).round() as u64),
    };
    let pids = l.pids.unwrap_or(DEFAULT_PIDS);
    if pids == 0 || pids > MAX_PIDS {
        return Err(SpecError::Limit { field: "pids", value: pids.to_string(), reason: "use 1 to 4194304" });
    }
    Ok(CgroupLimits {
        memory_bytes: Some(memory),
        cpu_millis,
        pids: Some(pids),
        restrict_devices: host.devices_confined,
    })
}

fn exec_candidates(argv0: &str, path_var: &str) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_string()];
    }
    path_var.split(':').filter(|d| d.starts_with('/')).map(|d| format!("{}/{argv0}", d.trim_end_matches('/'))).collect()
}

fn decode(s: &str, field: &str) -> Result<Vec<u8>, SpecError> {
    base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| SpecError::Base64 { field: field.to_string() })
}

pub fn files(given: &[FileSpec], cwd: &str) -> Result<Vec<FilePlan>, SpecError> {
    let mut total = 0usize;
    let mut out = Vec::with_capacity(given.len());
    for f in given {
        let invalid = || SpecError::FilePath { path: f.path.clone() };
        if f.path.is_empty() || f.path.contains('\0') || f.path.ends_with('/') {
            return Err(invalid());
        }
        let joined = if f.path.starts_with('/') { PathBuf::from(&f.path) } else { Path::new(cwd).join(&f.path) };
        let path = normalize(&joined).ok_or_else(invalid)?;
        let content = decode(&f.content_base64, &format!("files[{}].contentBase64", f.path))?;
        total += content.len();
        if total > MAX_FILES_BYTES {
            return Err(SpecError::TooLarge { field: "files", size: total, max: MAX_FILES_BYTES });
        }
        out.push(FilePlan { path, content, mode: f.mode.unwrap_or(0o644) & 0o7777 });
    }
    Ok(out)
}

/// Lexically resolves `.` and `..` inside the sandbox root (`..` at the root stays at the root, as the
/// kernel does). None when nothing is left to name a file.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts { cpus: 2, memory_bytes: 24 << 30, devices_confined: true }
    }

    fn params(argv: &[&str]) -> RunParams {
        RunParams {
            exec_id: "e1".into(),
            environment: "busybox".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            cwd: None,
            limits: Limits::default(),
            stdin: None,
            files: vec![],
            timeout_ms: None,
            collect: vec![],
        }
    }

    #[test]
    fn defaults_fill_env_limits_and_cwd() {
        let plan = build(&params(&["python3", "-c", "1"]), "sbx-1", Path::new("/r"), &host()).unwrap();
        assert_eq!(plan.init.process.cwd, "/root");
        assert!(plan.init.process.env.contains(&"HOSTNAME=sbx-1".to_string()));
        assert!(plan.init.process.env.contains(&"PYTHONUNBUFFERED=1".to_string()));
        assert_eq!(plan.limits.memory_bytes, Some(DEFAULT_MEMORY_BYTES));
        assert_eq!(plan.limits.pids, Some(DEFAULT_PIDS));
        assert_eq!(plan.limits.cpu_millis, None);
        assert!(plan.init.process.stdin_null);
        assert_eq!(plan.init.process.exec_candidates[0], "/usr/local/sbin/python3");
        assert_eq!(plan.init.process.exec_candidates.len(), 6);
    }

    #[test]
    fn caller_env_overrides_defaults_and_path_drives_candidates() {
        let mut p = params(&["tool"]);
        p.env.insert("PATH".into(), "/opt/bin:relative:/usr/bin/".into());
        p.env.insert("FOO".into(), "bar baz".into());
        let plan = build(&p, "s", Path::new("/r"), &host()).unwrap();
        assert_eq!(plan.init.process.exec_candidates, vec!["/opt/bin/tool", "/usr/bin/tool"]);
        assert!(plan.init.process.env.contains(&"FOO=bar baz".to_string()));
        let slash = build(&params(&["./run.sh"]), "s", Path::new("/r"), &host()).unwrap();
        assert_eq!(slash.init.process.exec_candidates, vec!["./run.sh"]);
    }

    #[test]
    fn limits_are_converted_and_bounded() {
        let mut p = params(&["true"]);
        p.limits = Limits { memory_bytes: Some(64 << 20), cpus: Some(0.5), pids: Some(20) };
        let plan = build(&p, "s", Path::new("/r"), &host()).unwrap();
        assert_eq!(
            plan.limits,
            CgroupLimits {
                memory_bytes: Some(64 << 20),
                cpu_millis: Some(500),
                pids: Some(20),
                restrict_devices: true
            }
        );

        for (limits, field) in [
            (Limits { memory_bytes: Some(1024), ..Default::default() }, "memoryBytes"),
            (Limits { memory_bytes: Some(48 << 30), ..Default::default() }, "memoryBytes"),
            (Limits { cpus: Some(0.0), ..Default::default() }, "cpus"),
            (Limits { cpus: Some(f64::NAN), ..Default::default() }, "cpus"),
            (Limits { cpus: Some(3.0), ..Default::default() }, "cpus"),
            (Limits { pids: Some(0), ..Default::default() }, "pids"),
        ] {
            let mut p = params(&["true"]);
            p.limits = limits;
            match build(&p, "s", Path::new("/r"), &host()) {
                Err(SpecError::Limit { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected a {field} limit error, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_input_is_refused_before_anything_runs() {
        let h = host();
        let r = Path::new("/r");
        assert_eq!(build(&params(&[]), "s", r, &h).unwrap_err(), SpecError::EmptyArgv);
        assert_eq!(build(&params(&["a\0b"]), "s", r, &h).unwrap_err(), SpecError::NulByte { field: "argv" });
        let mut p = params(&["true"]);
        p.env.insert("1BAD".into(), "x".into());
        assert!(matches!(build(&p, "s", r, &h), Err(SpecError::EnvName { .. })));
        let mut p = params(&["true"]);
        p.cwd = Some("rel/dir".into());
        assert!(matches!(build(&p, "s", r, &h), Err(SpecError::RelativeCwd { .. })));
        let mut p = params(&["true"]);
        p.timeout_ms = Some(0);
        assert_eq!(build(&p, "s", r, &h).unwrap_err(), SpecError::Timeout { ms: 0 });
        let mut p = params(&["true"]);
        p.stdin = Some("not base64!".into());
        assert!(matches!(build(&p, "s", r, &h), Err(SpecError::Base64 { .. })));
        let mut p = params(&["true"]);
        p.exec_id = "../x".into();
        assert!(matches!(build(&p, "s", r, &h), Err(SpecError::ExecId { .. })));
        let mut p = params(&["true"]);
        p.env.insert("BIG".into(), "x".repeat(MAX_ARGV_ENV_BYTES));
        assert!(matches!(build(&p, "s", r, &h), Err(SpecError::TooLarge { .. })));
    }

    #[test]
    fn file_paths_resolve_against_cwd_and_stay_inside() {
        let mut p = params(&["true"]);
        p.cwd = Some("/work".into());
        p.files = vec![
            crate::spec::FileSpec { path: "main.py".into(), content_base64: "cHJpbnQoMSk=".into(), mode: None },
            crate::spec::FileSpec { path: "../../../etc/x".into(), content_base64: "".into(), mode: Some(0o100755) },
        ];
        let plan = build(&p, "s", Path::new("/r"), &host()).unwrap();
        assert_eq!(
            plan.files[0],
            FilePlan { path: "/work/main.py".into(), content: b"print(1)".to_vec(), mode: 0o644 }
        );
        assert_eq!(plan.files[1].path, "/etc/x");
        assert_eq!(plan.files[1].mode, 0o755);
        p.files = vec![crate::spec::FileSpec { path: "/..".into(), content_base64: "".into(), mode: None }];
        assert!(matches!(build(&p, "s", Path::new("/r"), &host()), Err(SpecError::FilePath { .. })));
    }
}
