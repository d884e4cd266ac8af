//! Turns a `RunParams` into everything the runtime will do, before any syscall: validated limits, the
//! environment variables, the exec candidates, the files to place. Pure, so it is unit-tested directly.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::caps::CapSet;
use crate::cgroup::CgroupLimits;
use crate::sandbox_init::{InitPlan, ProcessPlan};
use crate::sandbox_path::{check_text, PathError};
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
/// A sandbox's writable layer is bounded at this much unless it asks otherwise (and at a quarter of the
/// disk pool when the pool is smaller than 40 GiB).
pub const DEFAULT_DISK_BYTES: u64 = 10 << 30;
/// Smallest disk limit: the overlay's work directory and the filesystem's metadata need some room.
pub const MIN_DISK_BYTES: u64 = 16 << 20;
/// Where the kernel says how high pids may go on this host.
const PID_MAX_FILE: &str = "/proc/sys/kernel/pid_max";

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
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{field} = 0{mode:o} has the set-user-ID or set-group-ID bit (04000, 02000): the API does not make setuid or setgid files; use a mode without them (0{allowed:o})", allowed = mode & !0o6000)]
    SetIdMode { field: String, mode: u32 },
    #[error("limits.{field} = {value} is more than {what} ({max}); use at most {max}")]
    LimitOver { field: &'static str, value: u64, what: &'static str, max: u64 },
    #[error("limits.diskBytes = {value} cannot be enforced: this runtime keeps sandbox layers as plain copies (--fs-store copy, or no btrfs pool could be mounted), which have no quotas; run it with a btrfs pool (FORKSPACE_FS_STORE=btrfs) or leave diskBytes out")]
    DiskUnenforced { value: u64 },
}

/// Facts about the host that bound what a spec may ask for.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub cpus: usize,
    pub memory_bytes: u64,
    pub devices_confined: bool,
}

/// What the layer store can do about disk limits: enforce them (a btrfs pool with quotas) or not, and
/// how large the pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFacts {
    pub enforced: bool,
    pub pool_bytes: u64,
}

impl DiskFacts {
    /// The limit a sandbox gets when it asks for none: 10 GiB, or a quarter of a smaller pool.
    pub fn default_bytes(&self) -> u64 {
        DEFAULT_DISK_BYTES.min((self.pool_bytes / 4).max(MIN_DISK_BYTES))
    }
}

/// A disk limit asked for (or none) → the limit the sandbox's writable layer gets; None where the store
/// cannot enforce one (asking for one there is an error, not a silent no-op).
pub fn disk_limit(requested: Option<u64>, disk: &DiskFacts) -> Result<Option<u64>, SpecError> {
    if !disk.enforced {
        return match requested {
            Some(value) => Err(SpecError::DiskUnenforced { value }),
            None => Ok(None),
        };
    }
    match requested {
        None => Ok(Some(disk.default_bytes())),
        Some(v) if v < MIN_DISK_BYTES => {
            Err(SpecError::Limit { field: "diskBytes", value: v.to_string(), reason: "at least 16 MiB" })
        }
        Some(v) if disk.pool_bytes > 0 && v > disk.pool_bytes => Err(SpecError::LimitOver {
            field: "diskBytes",
            value: v,
            what: "the size of this runtime's disk pool",
            max: disk.pool_bytes,
        }),
        Some(v) => Ok(Some(v)),
    }
}

/// The disk limit of a sandbox made from a snapshot: its own when it asks for one, otherwise the one
/// the snapshot's sandbox had (the default for snapshots from before disk limits). None where the store
/// enforces none (an inherited limit is then not an error: it just is not enforced).
pub fn inherited_disk_limit(
    requested: Option<u64>,
    inherited: Option<u64>,
    disk: &DiskFacts,
) -> Result<Option<u64>, SpecError> {
    match requested {
        Some(_) => disk_limit(requested, disk),
        None if !disk.enforced => Ok(None),
        None => Ok(Some(inherited.unwrap_or_else(|| disk.default_bytes()))),
    }
}

/// A file mode given through the API (default 0644): the permission bits, without the file type, and
/// never set-user-ID or set-group-ID. The sticky bit is allowed.
pub fn file_mode(mode: Option<u32>, field: &str) -> Result<u32, SpecError> {
    let m = mode.unwrap_or(0o644) & 0o7777;
    if m & 0o6000 != 0 {
        return Err(SpecError::SetIdMode { field: field.into(), mode: m });
    }
    Ok(m)
}

/// This host's highest pid (/proc/sys/kernel/pid_max), read when asked: a sysctl can change it.
pub fn host_pid_max() -> u64 {
    std::fs::read_to_string(PID_MAX_FILE).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(MAX_PIDS)
}

/// A pids limit against the host's maximum: more could never be reached, and says the caller misread
/// what the host can do.
pub fn check_pids(pids: u64, pid_max: u64) -> Result<u64, SpecError> {
    if pids == 0 {
        return Err(SpecError::Limit { field: "pids", value: pids.to_string(), reason: "at least 1" });
    }
    let max = pid_max.min(MAX_PIDS);
    if pids > max {
        return Err(SpecError::LimitOver {
            field: "pids",
            value: pids,
            what: "this host's maximum number of processes (/proc/sys/kernel/pid_max)",
            max,
        });
    }
    Ok(pids)
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
    /// Bound of the writable layer, where the store enforces one.
    pub disk_bytes: Option<u64>,
}

pub fn build(
    params: &RunParams,
    sandbox_id: &str,
    rootfs: &Path,
    host: &HostFacts,
    disk: &DiskFacts,
) -> Result<RunPlan, SpecError> {
    check_exec_id(&params.exec_id)?;
    let command =
        Command { argv: &params.argv, env: &params.env, cwd: params.cwd.as_deref(), stdin: params.stdin.as_deref() };
    let (process, stdin) = process(&command, sandbox_id, host)?;
    let files = files(&params.files, &process.cwd)?;
    collect_paths(&params.collect)?;
    Ok(RunPlan {
        init: InitPlan { rootfs: rootfs.to_path_buf(), hostname: sandbox_id.to_string(), process, pooled: false },
        limits: limits(&params.limits, host)?,
        files,
        stdin,
        timeout: timeout(params.timeout_ms)?,
        disk_bytes: disk_limit(params.limits.disk_bytes, disk)?,
    })
}

/// Paths to collect after a run: checked like any path (they are read from the host side).
pub fn collect_paths(paths: &[String]) -> Result<(), SpecError> {
    for (i, p) in paths.iter().enumerate() {
        crate::sandbox_path::SandboxPath::parse(&format!("collect[{i}]"), p)?;
    }
    Ok(())
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
    check_text("cwd", &cwd)?;
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
    let pids = match l.pids {
        Some(p) => check_pids(p, host_pid_max())?,
        None => DEFAULT_PIDS.min(host_pid_max()),
    };
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
    for (i, f) in given.iter().enumerate() {
        let invalid = || SpecError::FilePath { path: f.path.clone() };
        check_text(&format!("files[{i}].path"), &f.path)?;
        if f.path.is_empty() || f.path.ends_with('/') {
            return Err(invalid());
        }
        let joined = if f.path.starts_with('/') { PathBuf::from(&f.path) } else { Path::new(cwd).join(&f.path) };
        let path = normalize(&joined).ok_or_else(invalid)?;
        let content = decode(&f.content_base64, &format!("files[{}].contentBase64", f.path))?;
        total += content.len();
        if total > MAX_FILES_BYTES {
            return Err(SpecError::TooLarge { field: "files", size: total, max: MAX_FILES_BYTES });
        }
        out.push(FilePlan { path, content, mode: file_mode(f.mode, &format!("files[{i}].mode"))? });
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

    fn disk() -> DiskFacts {
        DiskFacts { enforced: true, pool_bytes: 64 << 30 }
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
        let plan = build(&params(&["python3", "-c", "1"]), "sbx-1", Path::new("/r"), &host(), &disk()).unwrap();
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
        let plan = build(&p, "s", Path::new("/r"), &host(), &disk()).unwrap();
        assert_eq!(plan.init.process.exec_candidates, vec!["/opt/bin/tool", "/usr/bin/tool"]);
        assert!(plan.init.process.env.contains(&"FOO=bar baz".to_string()));
        let slash = build(&params(&["./run.sh"]), "s", Path::new("/r"), &host(), &disk()).unwrap();
        assert_eq!(slash.init.process.exec_candidates, vec!["./run.sh"]);
    }

    #[test]
    fn limits_are_converted_and_bounded() {
        let mut p = params(&["true"]);
        p.limits = Limits { memory_bytes: Some(64 << 20), cpus: Some(0.5), pids: Some(20), disk_bytes: Some(1 << 30) };
        let plan = build(&p, "s", Path::new("/r"), &host(), &disk()).unwrap();
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
            (Limits { disk_bytes: Some(1 << 20), ..Default::default() }, "diskBytes"),
        ] {
            let mut p = params(&["true"]);
            p.limits = limits;
            match build(&p, "s", Path::new("/r"), &host(), &disk()) {
                Err(SpecError::Limit { field: f, .. } | SpecError::LimitOver { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected a {field} limit error, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_input_is_refused_before_anything_runs() {
        let h = host();
        let r = Path::new("/r");
        assert_eq!(build(&params(&[]), "s", r, &h, &disk()).unwrap_err(), SpecError::EmptyArgv);
        assert_eq!(build(&params(&["a\0b"]), "s", r, &h, &disk()).unwrap_err(), SpecError::NulByte { field: "argv" });
        let mut p = params(&["true"]);
        p.env.insert("1BAD".into(), "x".into());
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::EnvName { .. })));
        let mut p = params(&["true"]);
        p.cwd = Some("rel/dir".into());
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::RelativeCwd { .. })));
        let mut p = params(&["true"]);
        p.timeout_ms = Some(0);
        assert_eq!(build(&p, "s", r, &h, &disk()).unwrap_err(), SpecError::Timeout { ms: 0 });
        let mut p = params(&["true"]);
        p.stdin = Some("not base64!".into());
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::Base64 { .. })));
        let mut p = params(&["true"]);
        p.exec_id = "../x".into();
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::ExecId { .. })));
        let mut p = params(&["true"]);
        p.env.insert("BIG".into(), "x".repeat(MAX_ARGV_ENV_BYTES));
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::TooLarge { .. })));
    }

    #[test]
    fn file_paths_resolve_against_cwd_and_stay_inside() {
        let mut p = params(&["true"]);
        p.cwd = Some("/work".into());
        p.files = vec![
            crate::spec::FileSpec { path: "main.py".into(), content_base64: "cHJpbnQoMSk=".into(), mode: None },
            crate::spec::FileSpec { path: "../../../etc/x".into(), content_base64: "".into(), mode: Some(0o100755) },
        ];
        let plan = build(&p, "s", Path::new("/r"), &host(), &disk()).unwrap();
        assert_eq!(
            plan.files[0],
            FilePlan { path: "/work/main.py".into(), content: b"print(1)".to_vec(), mode: 0o644 }
        );
        assert_eq!(plan.files[1].path, "/etc/x");
        assert_eq!(plan.files[1].mode, 0o755);
        p.files = vec![crate::spec::FileSpec { path: "/..".into(), content_base64: "".into(), mode: None }];
        assert!(matches!(build(&p, "s", Path::new("/r"), &host(), &disk()), Err(SpecError::FilePath { .. })));
    }

    #[test]
    fn disk_limits_default_and_are_bounded_by_the_pool() {
        let big = DiskFacts { enforced: true, pool_bytes: 64 << 30 };
        assert_eq!(disk_limit(None, &big), Ok(Some(DEFAULT_DISK_BYTES)));
        assert_eq!(disk_limit(Some(1 << 30), &big), Ok(Some(1 << 30)));
        let small = DiskFacts { enforced: true, pool_bytes: 8 << 30 };
        assert_eq!(disk_limit(None, &small), Ok(Some(2 << 30)), "a quarter of a small pool");
        let over = disk_limit(Some(9 << 30), &small).unwrap_err();
        assert!(matches!(over, SpecError::LimitOver { field: "diskBytes", max, .. } if max == 8 << 30), "{over}");
        assert!(disk_limit(Some(1 << 20), &big).unwrap_err().to_string().contains("at least 16 MiB"));
        // Where the store cannot enforce a limit: none by default, and asking for one says why not.
        let copy = DiskFacts { enforced: false, pool_bytes: 0 };
        assert_eq!(disk_limit(None, &copy), Ok(None));
        let e = disk_limit(Some(1 << 30), &copy).unwrap_err().to_string();
        assert!(e.contains("cannot be enforced") && e.contains("FORKSPACE_FS_STORE=btrfs"), "{e}");
        let mut p = params(&["true"]);
        assert_eq!(build(&p, "s", Path::new("/r"), &host(), &big).unwrap().disk_bytes, Some(DEFAULT_DISK_BYTES));
        p.limits.disk_bytes = Some(64 << 20);
        assert_eq!(build(&p, "s", Path::new("/r"), &host(), &big).unwrap().disk_bytes, Some(64 << 20));
    }

    #[test]
    fn pids_above_the_hosts_pid_max_are_refused_with_the_maximum() {
        assert_eq!(check_pids(100, 32768), Ok(100));
        assert_eq!(check_pids(32768, 32768), Ok(32768));
        let e = check_pids(32769, 32768).unwrap_err();
        assert!(matches!(e, SpecError::LimitOver { field: "pids", max: 32768, .. }));
        assert!(e.to_string().contains("pid_max") && e.to_string().contains("use at most 32768"), "{e}");
        assert!(check_pids(0, 32768).is_err());
        // Through the real host's pid_max.
        let mut p = params(&["true"]);
        p.limits.pids = Some(host_pid_max() + 1);
        assert!(matches!(
            build(&p, "s", Path::new("/r"), &host(), &disk()),
            Err(SpecError::LimitOver { field: "pids", .. })
        ));
    }

    #[test]
    fn setuid_and_setgid_modes_are_refused_naming_the_field() {
        assert_eq!(file_mode(None, "mode"), Ok(0o644));
        assert_eq!(file_mode(Some(0o1777), "mode"), Ok(0o1777), "sticky stays allowed");
        assert_eq!(file_mode(Some(0o100755), "mode"), Ok(0o755), "file type bits are dropped");
        for bad in [0o4755, 0o2755, 0o6755, 0o106755] {
            let e = file_mode(Some(bad), "mode").unwrap_err();
            assert!(e.to_string().starts_with("mode = 0"), "{e}");
            assert!(e.to_string().contains("set-user-ID or set-group-ID"), "{e}");
        }
        let mut p = params(&["true"]);
        p.files = vec![
            crate::spec::FileSpec { path: "a".into(), content_base64: "".into(), mode: Some(0o755) },
            crate::spec::FileSpec { path: "b".into(), content_base64: "".into(), mode: Some(0o4755) },
        ];
        let e = build(&p, "s", Path::new("/r"), &host(), &disk()).unwrap_err();
        assert_eq!(e, SpecError::SetIdMode { field: "files[1].mode".into(), mode: 0o4755 });
        assert!(e.to_string().contains("use a mode without them (0755)"), "{e}");
    }

    #[test]
    fn control_characters_in_any_path_are_refused() {
        let h = host();
        let r = Path::new("/r");
        let mut p = params(&["true"]);
        p.files = vec![crate::spec::FileSpec { path: "a\nb".into(), content_base64: "".into(), mode: None }];
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::Path(e)) if e.field == "files[0].path"));
        let mut p = params(&["true"]);
        p.collect = vec!["/ok".into(), "/tmp/\0x".into()];
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::Path(e)) if e.field == "collect[1]"));
        let mut p = params(&["true"]);
        p.cwd = Some("/tmp/\u{1b}".into());
        assert!(matches!(build(&p, "s", r, &h, &disk()), Err(SpecError::Path(e)) if e.field == "cwd"));
    }
}
