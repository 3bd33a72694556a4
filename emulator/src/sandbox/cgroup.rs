//! Per-environment cgroups: creation, limits, accounting, freezer and kill, for cgroup v1
//! (one directory per controller hierarchy) and cgroup v2 (one unified directory).
//!
//! Every environment lives under a parent group named [`PARENT`] in each hierarchy used.
//! Detection: if `/sys/fs/cgroup` itself is a cgroup2 mount the v2 backend is used; otherwise
//! the v1 `memory`, `cpu`, `cpuacct` and `freezer` hierarchies are looked up in
//! `/proc/self/mountinfo` (a hybrid machine's controller-less `unified` mount is not used for
//! limits).

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::SandboxError;
pub use super::layout::{Layout, is_cgroup2};

/// Name of the parent cgroup holding every environment, in each hierarchy.
pub const PARENT: &str = "lxprof";
const CFS_PERIOD_US: u64 = 100_000;

/// Resource limits applied when the group is created.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory limit in bytes (swap is not allowed on top).
    pub memory_bytes: u64,
    /// Fraction of one CPU; `None` = no cap.
    pub cpu_limit: Option<f64>,
}

/// The v1 hierarchies (each a directory of this environment's group) or the v2 group.
#[derive(Debug)]
pub enum Cgroup {
    /// cgroup v1: one group per controller hierarchy.
    V1 {
        /// `<memory mount>/lxprof/<name>`.
        memory: PathBuf,
        /// `<cpu mount>/lxprof/<name>` (may equal `cpuacct` when co-mounted).
        cpu: PathBuf,
        /// `<cpuacct mount>/lxprof/<name>`.
        cpuacct: PathBuf,
        /// `<freezer mount>/lxprof/<name>`.
        freezer: PathBuf,
        /// Whether `memory.memsw.*` (memory+swap) files exist.
        has_memsw: bool,
    },
    /// cgroup v2: one group, `<mount>/lxprof/<name>`.
    V2 {
        /// The group directory.
        path: PathBuf,
        /// Peak-memory baseline fallback when `memory.peak` cannot be reset per fd.
        peak: V2Peak,
    },
}

/// How the v2 memory peak is reset.
#[derive(Debug)]
pub enum V2Peak {
    /// Kernel ≥ 6.12: an open `memory.peak` fd, written to reset; reads report the peak since.
    Fd(fs::File),
    /// Older kernels: `memory.peak` is the peak since creation; no reset is possible.
    SinceCreation,
    /// No memory controller (controller-less v2 hierarchy).
    Unavailable,
}

pub(super) fn err(path: &Path, what: &str, e: io::Error) -> SandboxError {
    SandboxError::Cgroup {
        path: path.to_path_buf(),
        what: what.to_string(),
        source: e,
    }
}

fn write_file(path: &Path, value: &str) -> Result<(), SandboxError> {
    fs::write(path, value).map_err(|e| err(path, &format!("write {value:?} to"), e))
}

fn read_file(path: &Path) -> Result<String, SandboxError> {
    fs::read_to_string(path).map_err(|e| err(path, "read", e))
}

fn read_u64(path: &Path) -> Result<u64, SandboxError> {
    let text = read_file(path)?;
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| {
        err(
            path,
            "parse an integer from",
            io::Error::other(t.to_string()),
        )
    })
}

/// Reads `key value` lines (cpu.stat, memory.events, memory.oom_control) and returns `key`.
fn read_key(path: &Path, key: &str) -> Result<Option<u64>, SandboxError> {
    let text = read_file(path)?;
    Ok(text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next().and_then(|v| v.parse().ok()))
            .flatten()
    }))
}

fn mkdir(path: &Path) -> Result<(), SandboxError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(path, "create the cgroup directory", e)),
    }
}

impl Cgroup {
    /// Creates `lxprof/<name>` in every hierarchy of `layout` and applies `limits`.
    /// On failure, what was created is removed again.
    pub fn create(layout: &Layout, name: &str, limits: Limits) -> Result<Cgroup, SandboxError> {
        let cg = match layout {
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
                freezer,
            } => {
                let g = |m: &PathBuf| m.join(PARENT).join(name);
                Cgroup::V1 {
                    memory: g(memory),
                    cpu: g(cpu),
                    cpuacct: g(cpuacct),
                    freezer: g(freezer),
                    has_memsw: memory.join("memory.memsw.limit_in_bytes").exists(),
                }
            }
            Layout::V2 { root } => Cgroup::V2 {
                path: root.join(PARENT).join(name),
                peak: V2Peak::Unavailable,
            },
        };
        let mut cg = cg;
        for p in cg.paths() {
            if p.exists() {
                return Err(SandboxError::Exists { path: p });
            }
        }
        let result = cg.setup(layout, limits);
        if let Err(e) = result {
            let _ = cg.remove(Duration::from_secs(2));
            return Err(e);
        }
        Ok(cg)
    }

    fn setup(&mut self, layout: &Layout, limits: Limits) -> Result<(), SandboxError> {
        // Another environment's drop may remove the empty parent between our mkdirs: retry.
        let mut tries = 0;
        loop {
            for parent in layout.parents() {
                mkdir(&parent)?;
            }
            if let Layout::V2 { root } = layout {
                enable_v2_controllers(root, &root.join(PARENT), limits)?;
            }
            let made = self
                .paths()
                .iter()
                .try_for_each(|p| match fs::create_dir(p) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                    r => r.map_err(|e| (p.clone(), e)),
                });
            match made {
                Ok(()) => break,
                Err((_, e)) if e.kind() == io::ErrorKind::NotFound && tries < 5 => tries += 1,
                Err((p, e)) => return Err(err(&p, "create the cgroup directory", e)),
            }
        }
        match self {
            Cgroup::V1 {
                memory,
                cpu,
                has_memsw,
                ..
            } => {
                let bytes = limits.memory_bytes.to_string();
                write_file(&memory.join("memory.limit_in_bytes"), &bytes)?;
                if *has_memsw {
                    write_file(&memory.join("memory.memsw.limit_in_bytes"), &bytes)?;
                }
                let _ = fs::write(memory.join("memory.swappiness"), "0");
                if let Some(f) = limits.cpu_limit {
                    write_file(&cpu.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                    write_file(&cpu.join("cpu.cfs_quota_us"), &quota_us(f).to_string())?;
                }
            }
            Cgroup::V2 { path, peak } => {
                let controllers = read_file(&path.join("cgroup.controllers"))?;
                let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
                if !has("memory") {
                    return Err(SandboxError::NoController {
                        controller: format!("memory (cgroup v2 at {})", path.display()),
                    });
                }
                write_file(&path.join("memory.max"), &limits.memory_bytes.to_string())?;
                let swap = path.join("memory.swap.max");
                if swap.exists() {
                    write_file(&swap, "0")?;
                }
                *peak = open_v2_peak(path);
                if let Some(f) = limits.cpu_limit {
                    if !has("cpu") {
                        return Err(SandboxError::NoController {
                            controller: format!("cpu (cgroup v2 at {})", path.display()),
                        });
                    }
                    write_file(
                        &path.join("cpu.max"),
                        &format!("{} {CFS_PERIOD_US}", quota_us(f)),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// A v2 group without controllers (for the freezer, kill and CPU accounting of a hybrid
    /// machine's `unified` mount). Used by tests to exercise the v2 code paths here.
    pub fn create_v2_core(root: &Path, name: &str) -> Result<Cgroup, SandboxError> {
        let path = root.join(PARENT).join(name);
        if path.exists() {
            return Err(SandboxError::Exists { path });
        }
        mkdir(&root.join(PARENT))?;
        mkdir(&path)?;
        Ok(Cgroup::V2 {
            path,
            peak: V2Peak::Unavailable,
        })
    }

    /// The group directories, deduplicated (co-mounted v1 controllers share one).
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut v = match self {
            Cgroup::V1 {
                memory,
                cpu,
                cpuacct,
                freezer,
                ..
            } => {
                vec![
                    memory.clone(),
                    cpu.clone(),
                    cpuacct.clone(),
                    freezer.clone(),
                ]
            }
            Cgroup::V2 { path, .. } => vec![path.clone()],
        };
        v.sort();
        v.dedup();
        v
    }

    /// The `cgroup.procs` files a new process writes `0` into to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.paths()
            .iter()
            .map(|p| p.join("cgroup.procs"))
            .collect()
    }

    fn procs_dir(&self) -> &Path {
        match self {
            Cgroup::V1 { memory, .. } => memory,
            Cgroup::V2 { path, .. } => path,
        }
    }

    /// Pids of every process in the group (sorted; from the memory hierarchy on v1).
    pub fn pids(&self) -> Vec<u32> {
        pids_in(self.procs_dir())
    }

    /// Freezes the group and waits (up to 5 s) until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), SandboxError> {
        self.set_frozen(true)
    }

    /// Thaws the group and waits until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<(), SandboxError> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), SandboxError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        match self {
            Cgroup::V1 { freezer, .. } => {
                let f = freezer.join("freezer.state");
                let want = if frozen { "FROZEN" } else { "THAWED" };
                loop {
                    // Re-writing FROZEN retries the freeze of tasks that were busy.
                    write_file(&f, want)?;
                    if read_file(&f)?.trim() == want {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(SandboxError::Timeout {
                            path: f,
                            what: format!("freezer.state to become {want}"),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Cgroup::V2 { path, .. } => {
                write_file(&path.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let ev = path.join("cgroup.events");
                loop {
                    if read_key(&ev, "frozen")? == Some(u64::from(frozen)) {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(SandboxError::Timeout {
                            path: ev,
                            what: format!("frozen {}", u8::from(frozen)),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Current memory use in bytes.
    pub fn memory_current_bytes(&self) -> Result<u64, SandboxError> {
        match self {
            Cgroup::V1 { memory, .. } => read_u64(&memory.join("memory.usage_in_bytes")),
            Cgroup::V2 { path, .. } => read_u64(&path.join("memory.current")),
        }
    }

    /// Peak memory use in bytes since creation or the last [`Cgroup::reset_memory_peak`].
    pub fn memory_peak_bytes(&self) -> Result<u64, SandboxError> {
        match self {
            Cgroup::V1 { memory, .. } => read_u64(&memory.join("memory.max_usage_in_bytes")),
            Cgroup::V2 { path, peak } => match peak {
                V2Peak::Fd(f) => {
                    let mut f: &fs::File = f;
                    let mut s = String::new();
                    let p = path.join("memory.peak");
                    f.rewind()
                        .and_then(|_| f.read_to_string(&mut s))
                        .map_err(|e| err(&p, "read", e))?;
                    s.trim()
                        .parse()
                        .map_err(|_| err(&p, "parse", io::Error::other(s.clone())))
                }
                _ => read_u64(&path.join("memory.peak")),
            },
        }
    }

    /// Resets the peak to the current use (v1: write 0; v2 ≥ 6.12: write to the held fd;
    /// older v2 kernels cannot reset: the peak stays the peak since creation).
    pub fn reset_memory_peak(&self) -> Result<(), SandboxError> {
        match self {
            Cgroup::V1 { memory, .. } => write_file(&memory.join("memory.max_usage_in_bytes"), "0"),
            Cgroup::V2 { path, peak } => match peak {
                V2Peak::Fd(f) => (&*f)
                    .write_all(b"0")
                    .map_err(|e| err(&path.join("memory.peak"), "reset", e)),
                _ => Ok(()),
            },
        }
    }

    /// Number of OOM kills in the group.
    pub fn oom_kills(&self) -> Result<u64, SandboxError> {
        match self {
            Cgroup::V1 { memory, .. } => {
                let f = memory.join("memory.oom_control");
                Ok(read_key(&f, "oom_kill")?.unwrap_or(0))
            }
            Cgroup::V2 { path, .. } => {
                Ok(read_key(&path.join("memory.events"), "oom_kill")?.unwrap_or(0))
            }
        }
    }

    /// CPU time used by the group, in nanoseconds.
    pub fn cpu_usage_ns(&self) -> Result<u64, SandboxError> {
        match self {
            Cgroup::V1 { cpuacct, .. } => read_u64(&cpuacct.join("cpuacct.usage")),
            Cgroup::V2 { path, .. } => {
                let f = path.join("cpu.stat");
                let us = read_key(&f, "usage_usec")?
                    .ok_or_else(|| err(&f, "find usage_usec in", io::Error::other("missing")))?;
                Ok(us.saturating_mul(1000))
            }
        }
    }

    /// Sends `signal` to every process of the group.
    pub fn signal_all(&self, signal: i32) {
        for pid in self.pids() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    }

    /// SIGKILLs everything in the group (thawing it so the kill is delivered) and waits until
    /// it is empty, up to `timeout`.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), SandboxError> {
        let deadline = Instant::now() + timeout;
        if let Cgroup::V2 { path, .. } = self {
            let _ = fs::write(path.join("cgroup.kill"), "1");
        }
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            self.signal_all(libc::SIGKILL);
            let _ = self.thaw();
            if Instant::now() > deadline {
                return Err(SandboxError::Timeout {
                    path: self.procs_dir().to_path_buf(),
                    what: format!("processes {pids:?} to exit after SIGKILL"),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills everything and removes the group directories (not the `lxprof` parents).
    pub fn remove(&self, timeout: Duration) -> Result<(), SandboxError> {
        let killed = self.kill_all(timeout);
        let mut first = killed.err();
        for p in self.paths() {
            if let Err(e) = rmdir_retry(&p) {
                first.get_or_insert(e);
            }
        }
        // The shared parents go when the last environment goes (EBUSY otherwise: ignored).
        for p in self.paths() {
            if let Some(parent) = p.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Removes a cgroup directory, retrying briefly while exiting tasks are still accounted.
pub fn rmdir_retry(p: &Path) -> Result<(), SandboxError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs::remove_dir(p) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(err(p, "remove the cgroup directory", e));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Pids listed in `dir/cgroup.procs` (empty if unreadable).
pub fn pids_in(dir: &Path) -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    v.sort_unstable();
    v
}

fn quota_us(fraction: f64) -> u64 {
    // The kernel's minimum quota is 1 ms.
    ((fraction * CFS_PERIOD_US as f64).round() as u64).max(1000)
}

fn open_v2_peak(path: &Path) -> V2Peak {
    let p = path.join("memory.peak");
    if !p.exists() {
        return V2Peak::Unavailable;
    }
    match fs::OpenOptions::new().read(true).write(true).open(&p) {
        Ok(mut f) => {
            // Kernels before 6.12 have a read-only memory.peak: the write fails.
            if f.write_all(b"0").is_ok() {
                V2Peak::Fd(f)
            } else {
                V2Peak::SinceCreation
            }
        }
        Err(_) => V2Peak::SinceCreation,
    }
}

fn enable_v2_controllers(root: &Path, parent: &Path, limits: Limits) -> Result<(), SandboxError> {
    let mut want = vec!["memory"];
    if limits.cpu_limit.is_some() {
        want.push("cpu");
    }
    for dir in [root, parent] {
        let ctl = dir.join("cgroup.subtree_control");
        let enabled = read_file(&ctl)?;
        for c in &want {
            if !enabled.split_whitespace().any(|x| x == *c) {
                let mut r = fs::write(&ctl, format!("+{c}"));
                if dir == root
                    && r.as_ref()
                        .is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY))
                {
                    // A container's cgroup namespace root holding processes ("no internal
                    // processes"): move them into a leaf, as container init systems do.
                    move_procs_to_leaf(root)?;
                    r = fs::write(&ctl, format!("+{c}"));
                }
                r.map_err(|e| {
                    err(
                        &ctl,
                        &format!("enable the {c} controller (is it bound to a v1 hierarchy?) in"),
                        e,
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Moves every process of `root` into `root/lxprof-init` so that controllers can be enabled
/// for `root`'s children.
fn move_procs_to_leaf(root: &Path) -> Result<(), SandboxError> {
    let leaf = root.join("lxprof-init");
    mkdir(&leaf)?;
    let procs = leaf.join("cgroup.procs");
    for pid in pids_in(root) {
        // A process may exit meanwhile; kernel threads cannot move: ignore those failures.
        let _ = fs::write(&procs, pid.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_fraction_of_period_with_kernel_minimum() {
        assert_eq!(quota_us(0.25), 25_000);
        assert_eq!(quota_us(128.0 / 1769.0), 7236);
        assert_eq!(quota_us(0.001), 1000);
    }

    #[test]
    fn layout_detection_finds_a_backend() {
        if let Ok(l) = Layout::detect() {
            assert!(!l.parents().is_empty());
            assert!(l.parents().iter().all(|p| p.ends_with(PARENT)));
        }
    }
}
