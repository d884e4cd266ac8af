//! Control groups: detect the v1 / v2 / hybrid layout at start, then create one cgroup per sandbox with its
//! limits, attach processes, read what happened (OOM kills, peak memory, CPU time), kill and remove.
//!
//! Each controller is driven in exactly one hierarchy: v2 when the unified hierarchy offers it, else v1.
//! The unified hierarchy is joined whenever it is mounted, even with no controllers, because its core
//! files (`cgroup.kill`, `cgroup.freeze`) work without any (SANDBOX-FACTS.md §3).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("no cgroup hierarchy offers the {controller} controller (looked in /proc/self/mountinfo); mount cgroup v2 with it enabled, or the v1 {controller} hierarchy")]
    MissingController { controller: &'static str },
    #[error("cannot create cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write { path: PathBuf, value: String, source: io::Error },
    #[error("cannot move pid {pid} into {path}: {source}")]
    Attach { path: PathBuf, pid: i32, source: io::Error },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("the sandbox's processes did not {} within {waited:?} ({stuck}); a process in uninterruptible sleep (I/O, a hung mount) cannot be frozen until it returns: retry", if *.frozen { "freeze" } else { "thaw" })]
    Freeze { frozen: bool, waited: Duration, stuck: String },
}

type Result<T> = std::result::Result<T, CgroupError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
    Freezer,
    Devices,
    /// v1 CPU accounting (v2 reports usage in cpu.stat); often mounted apart from cpu.
    Cpuacct,
}

impl Controller {
    pub const ALL: [Controller; 6] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Pids,
        Controller::Freezer,
        Controller::Devices,
        Controller::Cpuacct,
    ];
    /// Controllers a sandbox cannot run without: its limits would silently not hold.
    pub const REQUIRED: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
            Controller::Devices => "devices",
            Controller::Cpuacct => "cpuacct",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// Where each controller lives on this host.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// v1 controller → the mount point of its hierarchy.
    pub v1: BTreeMap<Controller, PathBuf>,
    /// The unified (v2) hierarchy's mount point, if mounted.
    pub unified: Option<PathBuf>,
    /// Controllers the unified hierarchy offers (its root `cgroup.controllers`).
    pub v2: Vec<Controller>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutInfo {
    /// "v1", "v2" or "hybrid".
    pub mode: &'static str,
    pub controllers: BTreeMap<&'static str, Version>,
    pub unified: Option<PathBuf>,
}

impl Layout {
    /// Reads the host's layout from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Layout> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(|source| CgroupError::Read { path: path.into(), source })?;
        let mut layout = Layout::from_mountinfo(&text);
        if let Some(unified) = &layout.unified {
            let path = unified.join("cgroup.controllers");
            let names = fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })?;
            layout.v2 = parse_v2_controllers(&names);
        }
        Ok(layout)
    }

    /// Parses mountinfo text; v2 controllers are filled in by `detect`.
    pub fn from_mountinfo(text: &str) -> Layout {
        let mut layout = Layout::default();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let mount_point = left.split(' ').nth(4).map(unescape_mountinfo);
            let mut right = right.split(' ');
            let (fstype, _source, options) = (right.next(), right.next(), right.next().unwrap_or(""));
            let Some(mount_point) = mount_point else { continue };
            match fstype {
                Some("cgroup2") if layout.unified.is_none() => layout.unified = Some(PathBuf::from(mount_point)),
                Some("cgroup") => {
                    for opt in options.split(',') {
                        let controller = match opt {
                            "memory" => Controller::Memory,
                            "cpu" => Controller::Cpu,
                            "pids" => Controller::Pids,
                            "freezer" => Controller::Freezer,
                            "devices" => Controller::Devices,
                            "cpuacct" => Controller::Cpuacct,
                            _ => continue,
                        };
                        layout.v1.entry(controller).or_insert_with(|| PathBuf::from(&mount_point));
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// The hierarchy that drives `controller`: v2 when offered there, else v1.
    pub fn version_of(&self, controller: Controller) -> Option<Version> {
        if self.unified.is_some() && self.v2.contains(&controller) {
            return Some(Version::V2);
        }
        if self.v1.contains_key(&controller) {
            return Some(Version::V1);
        }
        // cgroup.freeze is a core v2 file: every non-root v2 cgroup has it, no controller needed.
        (controller == Controller::Freezer && self.unified.is_some()).then_some(Version::V2)
    }

    pub fn check_required(&self) -> Result<()> {
        for c in Controller::REQUIRED {
            if self.version_of(c).is_none() {
                return Err(CgroupError::MissingController { controller: c.name() });
            }
        }
        Ok(())
    }

    pub fn info(&self) -> LayoutInfo {
        let mode = match (self.v1.is_empty(), self.unified.is_some()) {
            (true, _) => "v2",
            (false, false) => "v1",
            (false, true) => "hybrid",
        };
        let controllers = Controller::ALL.iter().filter_map(|c| Some((c.name(), self.version_of(*c)?))).collect();
        LayoutInfo { mode, controllers, unified: self.unified.clone() }
    }

    /// The v1 directories (one per distinct hierarchy) and the unified directory for `rel`.
    fn dirs_for(&self, rel: &Path) -> (BTreeMap<Controller, PathBuf>, Option<PathBuf>) {
        let mut v1 = BTreeMap::new();
        for c in Controller::ALL {
            if self.version_of(c) == Some(Version::V1) {
                if let Some(mount) = self.v1.get(&c) {
                    v1.insert(c, mount.join(rel));
                }
            }
        }
        (v1, self.unified.as_ref().map(|u| u.join(rel)))
    }

    /// Prepares `<hierarchy>/<parent>` everywhere, enabling the v2 controllers we drive for its children.
    pub fn prepare_parent(&self, parent: &str) -> Result<()> {
        let (v1, unified) = self.dirs_for(Path::new(parent));
        for dir in unique(v1.values()) {
            create_dir(&dir)?;
        }
        if let Some(dir) = unified {
            create_dir(&dir)?;
            let wanted: Vec<String> = [Controller::Memory, Controller::Cpu, Controller::Pids]
                .into_iter()
                .filter(|c| self.version_of(*c) == Some(Version::V2))
                .map(|c| format!("+{}", c.name()))
                .collect();
            if !wanted.is_empty() {
                let root = self.unified.clone().unwrap_or_default();
                write(&root.join("cgroup.subtree_control"), &wanted.join(" "))?;
                write(&dir.join("cgroup.subtree_control"), &wanted.join(" "))?;
            }
        }
        Ok(())
    }

    /// Creates the cgroup of one sandbox under `parent` and applies `limits`. On error nothing is left.
    pub fn create(&self, parent: &str, id: &str, limits: &CgroupLimits) -> Result<SandboxCgroup> {
        let cg = self.sandbox_cgroup(parent, id);
        if let Err(e) = cg.create_dirs().and_then(|()| cg.apply(limits)) {
            let _ = cg.remove(Duration::from_millis(0));
            return Err(e);
        }
        Ok(cg)
    }

    /// The (possibly not yet existing) cgroup of sandbox `id` under `parent`.
    fn sandbox_cgroup(&self, parent: &str, id: &str) -> SandboxCgroup {
        let (v1, unified) = self.dirs_for(&Path::new(parent).join(id));
        SandboxCgroup {
            v1,
            unified,
            memory: self.version_of(Controller::Memory),
            cpu: self.version_of(Controller::Cpu),
            pids: self.version_of(Controller::Pids),
            freezer: self.version_of(Controller::Freezer),
            devices: self.version_of(Controller::Devices),
        }
    }

    /// The cgroups of every sandbox left under `parent` (by id), for reconciliation after a crash.
    pub fn leftovers(&self, parent: &str) -> BTreeMap<String, SandboxCgroup> {
        let mut ids = std::collections::BTreeSet::new();
        let (v1, unified) = self.dirs_for(Path::new(parent));
        for dir in v1.values().chain(unified.iter()) {
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        ids.insert(e.file_name().to_string_lossy().into_owned());
                    }
                }
            }
        }
        ids.into_iter()
            .map(|id| {
                let cg = self.sandbox_cgroup(parent, &id);
                (id, cg)
            })
            .collect()
    }

    /// Removes `<hierarchy>/<parent>` everywhere if it is empty (used by tests and `serve --cleanup`).
    pub fn remove_parent(&self, parent: &str) {
        let (v1, unified) = self.dirs_for(Path::new(parent));
        for dir in unique(v1.values()).into_iter().chain(unified) {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Limits as the cgroup files want them. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory_bytes: Option<u64>,
    /// CPU quota in thousandths of a CPU (500 = half a core).
    pub cpu_millis: Option<u64>,
    pub pids: Option<u64>,
    /// Restrict device access to the sandbox's own nodes (v1 devices controller).
    pub restrict_devices: bool,
}

pub const CPU_PERIOD_US: u64 = 100_000;

/// Device nodes a sandbox may use: null, zero, full, random, urandom, tty, ptmx and its own ptys.
pub const ALLOWED_DEVICES: [&str; 8] =
    ["c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"];

/// Removes the (empty) child groups below `dir`, deepest first; what is still busy stays for `remove`.
fn remove_children(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_children(&entry.path());
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// The cgroup directories of one sandbox.
#[derive(Debug, Clone)]
pub struct SandboxCgroup {
    v1: BTreeMap<Controller, PathBuf>,
    unified: Option<PathBuf>,
    memory: Option<Version>,
    cpu: Option<Version>,
    pids: Option<Version>,
    freezer: Option<Version>,
    devices: Option<Version>,
}

/// What a sandbox's cgroup recorded about its run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CgroupStats {
    pub oom_killed: bool,
    pub memory_peak_bytes: Option<u64>,
    pub cpu_time_ns: Option<u64>,
    pub pids_limit_hit: bool,
}

impl SandboxCgroup {
    /// Every directory this cgroup owns, deduplicated (v1 cpu and cpuacct share one, for instance).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = unique(self.v1.values());
        dirs.extend(self.unified.iter().cloned());
        dirs
    }

    /// The `cgroup.procs` files a new process must be written into before it runs user code.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().into_iter().map(|d| d.join("cgroup.procs")).collect()
    }

    fn dir(&self, c: Controller, v: Option<Version>) -> Option<PathBuf> {
        match v? {
            Version::V1 => self.v1.get(&c).cloned(),
            Version::V2 => self.unified.clone(),
        }
    }

    fn create_dirs(&self) -> Result<()> {
        for d in self.dirs() {
            match fs::create_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(CgroupError::Create { path: d, source }),
            }
        }
        Ok(())
    }

    /// Writes the limits (at creation, or when a warm sandbox is taken from a pool).
    pub fn apply(&self, limits: &CgroupLimits) -> Result<()> {
        if let Some(dir) = self.dir(Controller::Memory, self.memory) {
            match (self.memory, limits.memory_bytes) {
                (Some(Version::V1), Some(bytes)) => {
                    write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    // Without this, a host with swap would let the sandbox page out past its limit.
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &bytes.to_string())?;
                    }
                }
                (Some(Version::V2), Some(bytes)) => {
                    write(&dir.join("memory.max"), &bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write(&swap, "0")?;
                    }
                }
                _ => {}
            }
        }
        if let (Some(dir), Some(millis)) = (self.dir(Controller::Cpu, self.cpu), limits.cpu_millis) {
            let quota = millis * CPU_PERIOD_US / 1000;
            match self.cpu {
                Some(Version::V1) => {
                    write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
                Some(Version::V2) => write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?,
                None => {}
            }
        }
        if let (Some(dir), Some(pids)) = (self.dir(Controller::Pids, self.pids), limits.pids) {
            write(&dir.join("pids.max"), &pids.to_string())?;
        }
        if limits.restrict_devices && self.devices == Some(Version::V1) {
            if let Some(dir) = self.dir(Controller::Devices, self.devices) {
                write(&dir.join("devices.deny"), "a")?;
                for rule in ALLOWED_DEVICES {
                    write(&dir.join("devices.allow"), rule)?;
                }
            }
        }
        Ok(())
    }

    /// The directory CRIU's `--freeze-cgroup` wants: the v1 freezer cgroup, or the v2 cgroup.
    pub fn freezer_dir(&self) -> Option<PathBuf> {
        self.dir(Controller::Freezer, self.freezer)
    }

    /// True when the v1 devices controller confines this sandbox's device access.
    pub fn confines_devices(&self) -> bool {
        self.devices == Some(Version::V1)
    }

    pub fn attach(&self, pid: i32) -> Result<()> {
        for f in self.procs_files() {
            fs::write(&f, pid.to_string()).map_err(|source| CgroupError::Attach { path: f.clone(), pid, source })?;
        }
        Ok(())
    }

    /// Host pids of every process in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let mut all = Vec::new();
        for f in self.procs_files() {
            if let Ok(text) = fs::read_to_string(&f) {
                all.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn stats(&self) -> CgroupStats {
        let mut stats = CgroupStats::default();
        match (self.memory, self.dir(Controller::Memory, self.memory)) {
            (Some(Version::V1), Some(dir)) => {
                stats.oom_killed = read_keyed(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0) > 0;
                stats.memory_peak_bytes = read_u64(&dir.join("memory.max_usage_in_bytes"));
            }
            (Some(Version::V2), Some(dir)) => {
                stats.oom_killed = read_keyed(&dir.join("memory.events"), "oom_kill").unwrap_or(0) > 0;
                stats.memory_peak_bytes = read_u64(&dir.join("memory.peak"));
            }
            _ => {}
        }
        match self.cpu {
            Some(Version::V1) => {
                stats.cpu_time_ns = self.v1.get(&Controller::Cpuacct).and_then(|d| read_u64(&d.join("cpuacct.usage")));
            }
            Some(Version::V2) => {
                stats.cpu_time_ns = self
                    .unified
                    .as_ref()
                    .and_then(|d| read_keyed(&d.join("cpu.stat"), "usage_usec"))
                    .map(|us| us * 1000);
            }
            None => {}
        }
        if let Some(dir) = self.dir(Controller::Pids, self.pids) {
            stats.pids_limit_hit = read_keyed(&dir.join("pids.events"), "max").unwrap_or(0) > 0;
        }
        stats
    }

    /// Freezes (true) or thaws (false) every process in the sandbox, waiting until the state is reached.
    /// A freeze that does not complete is undone (nothing is left half-frozen) and reported with the
    /// processes that held it up. Blocks for up to `FREEZE_PATIENCE`: call it off the async workers. A
    /// sandbox may be in the middle of a vfork, which can keep a freeze from completing: `quiesce` handles it.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        self.request_frozen(frozen)?;
        if wait_until(FREEZE_PATIENCE, || self.reached(frozen)) {
            return Ok(());
        }
        Err(self.undo_freeze(frozen))
    }

    /// Asks the freezer for a state without waiting for it.
    pub fn request_frozen(&self, frozen: bool) -> Result<()> {
        match (self.freezer, self.dir(Controller::Freezer, self.freezer)) {
            (Some(Version::V1), Some(dir)) => write(&dir.join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" }),
            (Some(Version::V2), Some(dir)) => write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" }),
            _ => Ok(()),
        }
    }

    /// True once every process is frozen (`frozen`) or none is.
    pub fn reached(&self, frozen: bool) -> bool {
        match (self.freezer, self.dir(Controller::Freezer, self.freezer)) {
            (Some(Version::V1), Some(dir)) => {
                read_trim(&dir.join("freezer.state")).as_deref() == Some(if frozen { "FROZEN" } else { "THAWED" })
            }
            (Some(Version::V2), Some(dir)) => read_keyed(&dir.join("cgroup.events"), "frozen") == Some(u64::from(frozen)),
            _ => true,
        }
    }

    /// The error for a freeze (or thaw) that did not complete in time; a freeze is undone first.
    pub fn undo_freeze(&self, frozen: bool) -> CgroupError {
        let stuck = describe_processes(&self.pids());
        if frozen {
            let _ = self.set_frozen(false);
        }
        CgroupError::Freeze { frozen, waited: FREEZE_PATIENCE, stuck }
    }

    /// SIGKILLs every process in the sandbox. v2's `cgroup.kill` does it atomically; on v1 the group is
    /// frozen first so nothing can fork while we walk `cgroup.procs`. Either way a v1 freezer is thawed
    /// at the end: a process frozen there does not act on SIGKILL (a paused sandbox would never die).
    pub fn kill_all(&self) {
        if let Some(dir) = &self.unified {
            if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                if self.freezer == Some(Version::V1) {
                    let _ = self.set_frozen(false);
                }
                return;
            }
        }
        let _ = self.set_frozen(true);
        for pid in self.pids() {
            // SAFETY: kill(2) with a pid read from cgroup.procs; at worst the pid has exited (ESRCH). The
            // cgroup is frozen, so the pid cannot be reaped and reused while we signal it.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.set_frozen(false);
    }

    /// Removes the directories, retrying for up to `patience` while exiting processes leave.
    pub fn remove(&self, patience: Duration) -> Result<()> {
        let start = Instant::now();
        for dir in self.dirs() {
            // Child groups the sandbox made under its own (only possible if it could mount cgroupfs,
            // which seccomp refuses) go first: rmdir of a group with children fails with EBUSY.
            remove_children(&dir);
            loop {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < patience => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(source) => return Err(CgroupError::Remove { path: dir, source }),
                }
            }
        }
        Ok(())
    }
}

fn parse_v2_controllers(text: &str) -> Vec<Controller> {
    text.split_whitespace()
        .filter_map(|n| match n {
            "memory" => Some(Controller::Memory),
            "cpu" => Some(Controller::Cpu),
            "pids" => Some(Controller::Pids),
            _ => None,
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

fn unique<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| CgroupError::Create { path: dir.into(), source })
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|source| CgroupError::Write { path: path.into(), value: value.into(), source })
}

fn read_trim(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn read_u64(path: &Path) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

/// Reads `key value` lines (memory.events, memory.oom_control, cpu.stat, pids.events).
fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// How long a freeze or thaw may take. Freezing waits for every process to leave the kernel, so one in
/// a long uninterruptible sleep (slow I/O) delays it; a freeze usually takes a few milliseconds.
pub const FREEZE_PATIENCE: Duration = Duration::from_secs(10);

/// True once `done` holds, false if it still does not after `limit`.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// "pid 12 `sh` (D in kernel_clone), ..." for the first few processes: what an error about them shows.
pub fn describe_processes(pids: &[i32]) -> String {
    let shown: Vec<String> = pids
        .iter()
        .take(4)
        .map(|pid| {
            let read = |f: &str| fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
            let stat = read("stat");
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').next()).unwrap_or("?").to_string();
            let wchan = read("wchan");
            let wchan = if wchan.is_empty() || wchan == "0" { String::new() } else { format!(" in {wchan}") };
            format!("pid {pid} `{}` ({state}{wchan})", read("comm").trim())
        })
        .collect();
    match pids.len() {
        0 => "no processes".into(),
        n if n > shown.len() => format!("{} and {} more", shown.join(", "), n - shown.len()),
        _ => shown.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 25 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
36 25 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
37 25 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
38 25 0:33 / /sys/fs/cgroup/pids rw,nosuid shared:13 - cgroup cgroup rw,pids
39 25 0:34 / /sys/fs/cgroup/freezer rw,nosuid shared:14 - cgroup cgroup rw,freezer
40 25 0:35 / /sys/fs/cgroup/devices rw,nosuid shared:15 - cgroup cgroup rw,devices
41 25 0:36 / /sys/fs/cgroup/cpuset rw,nosuid shared:16 - cgroup cgroup rw,cpuset
";
    const PURE_V2: &str = "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn hybrid_layout_drives_controllers_in_v1_and_joins_unified() {
        let mut l = Layout::from_mountinfo(HYBRID);
        l.v2 = parse_v2_controllers("hugetlb");
        assert_eq!(l.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(l.v1[&Controller::Cpu], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        for c in Controller::ALL {
            assert_eq!(l.version_of(c), Some(Version::V1), "{c:?}");
        }
        assert_eq!(l.info().mode, "hybrid");
        assert!(l.check_required().is_ok());
    }

    #[test]
    fn pure_v2_layout_uses_unified_for_everything_it_offers() {
        let mut l = Layout::from_mountinfo(PURE_V2);
        assert!(l.check_required().is_err(), "no controllers read yet");
        l.v2 = parse_v2_controllers("cpuset cpu io memory hugetlb pids rdma misc");
        assert_eq!(l.version_of(Controller::Memory), Some(Version::V2));
        assert_eq!(l.version_of(Controller::Freezer), Some(Version::V2));
        assert_eq!(l.version_of(Controller::Devices), None);
        assert_eq!(l.info().mode, "v2");
        assert!(l.check_required().is_ok());
    }

    #[test]
    fn missing_memory_controller_is_a_clear_error() {
        let l = Layout::from_mountinfo("38 25 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
        let err = l.check_required().unwrap_err().to_string();
        assert!(err.contains("memory controller"), "{err}");
    }

    fn fake_layout(root: &Path, v2: bool) -> Layout {
        let mut l = Layout::default();
        if v2 {
            l.unified = Some(root.join("unified"));
            l.v2 = vec![Controller::Memory, Controller::Cpu, Controller::Pids];
        } else {
            for c in Controller::ALL {
                l.v1.insert(c, root.join(c.name()));
            }
        }
        l
    }

    #[test]
    fn v1_limits_are_written_to_each_controller() {
        let tmp = tempfile::tempdir().unwrap();
        let l = fake_layout(tmp.path(), false);
        l.prepare_parent("fs").unwrap();
        let limits = CgroupLimits {
            memory_bytes: Some(64 << 20),
            cpu_millis: Some(500),
            pids: Some(32),
            restrict_devices: true,
        };
        let cg = l.create("fs", "sbx-1", &limits).unwrap();
        let read = |c: &str, f: &str| fs::read_to_string(tmp.path().join(c).join("fs/sbx-1").join(f)).unwrap();
        assert_eq!(read("memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids", "pids.max"), "32");
        // The fake file keeps only the last write; the real file appends rules.
        assert_eq!(read("devices", "devices.allow"), ALLOWED_DEVICES[ALLOWED_DEVICES.len() - 1]);
        assert!(cg.confines_devices());
        assert_eq!(cg.procs_files().len(), 6);
    }

    #[test]
    fn v2_limits_go_to_one_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let l = fake_layout(tmp.path(), true);
        l.prepare_parent("fs").unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("unified/fs/cgroup.subtree_control")).unwrap(),
            "+memory +cpu +pids"
        );
        let limits =
            CgroupLimits { memory_bytes: Some(1 << 30), cpu_millis: Some(2000), pids: None, ..Default::default() };
        let cg = l.create("fs", "b", &limits).unwrap();
        let dir = tmp.path().join("unified/fs/b");
        assert_eq!(fs::read_to_string(dir.join("memory.max")).unwrap(), (1u64 << 30).to_string());
        assert_eq!(fs::read_to_string(dir.join("cpu.max")).unwrap(), "200000 100000");
        assert!(!dir.join("pids.max").exists());
        assert_eq!(cg.dirs(), vec![dir]);
        assert!(!cg.confines_devices());
    }

    #[test]
    fn stats_read_oom_and_peak() {
        let tmp = tempfile::tempdir().unwrap();
        let l = fake_layout(tmp.path(), false);
        l.prepare_parent("fs").unwrap();
        let cg = l.create("fs", "s", &CgroupLimits::default()).unwrap();
        let mem = tmp.path().join("memory/fs/s");
        fs::write(mem.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n").unwrap();
        fs::write(mem.join("memory.max_usage_in_bytes"), "1234\n").unwrap();
        fs::write(tmp.path().join("pids/fs/s/pids.events"), "max 3\n").unwrap();
        let s = cg.stats();
        assert!(s.oom_killed);
        assert!(s.pids_limit_hit);
        assert_eq!(s.memory_peak_bytes, Some(1234));
    }

    #[test]
    fn leftovers_lists_sandbox_cgroups_under_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let l = fake_layout(tmp.path(), false);
        l.prepare_parent("fs").unwrap();
        l.create("fs", "a", &CgroupLimits::default()).unwrap();
        l.create("fs", "b", &CgroupLimits::default()).unwrap();
        let left: Vec<String> = l.leftovers("fs").into_keys().collect();
        assert_eq!(left, vec!["a".to_string(), "b".to_string()]);
    }
}
