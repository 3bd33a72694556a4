//! Lambda execution environments built from Linux primitives (no Docker): a cgroup per
//! environment (memory limit, CPU quota, freezer, accounting; v1 or v2) and, per process, a
//! private mount namespace showing the function at `/var/task`, layers and extensions at `/opt`,
//! a shared writable `/tmp` and an `/etc/hosts` resolving `sandbox.localdomain`. Processes keep
//! host pids and the host network (the APIs listen on the host's loopback).
//!
//! [`Sandbox::spawn`] blocks the calling thread until the child has exec'd; from async code use
//! [`Sandbox::spawn_async`] (or call `spawn` inside `tokio::task::spawn_blocking`).
//!
//! ```no_run
//! use lxprof_emulator::sandbox::{Sandbox, SandboxCommand, SandboxSpec};
//! # async fn demo() -> Result<(), lxprof_emulator::sandbox::SandboxError> {
//! let _ = lxprof_emulator::sandbox::cleanup_stale(); // leftovers of crashed runs
//! let sb = std::sync::Arc::new(Sandbox::create(SandboxSpec {
//!     name: "env-0".into(),
//!     memory_mb: 128,
//!     cpu_limit: Some(128.0 / 1769.0),
//!     function_dir: "/path/to/package".into(), // holds `bootstrap`
//!     layers: vec![],
//!     extra_extensions: vec!["/path/to/rust-blank".into()],
//!     run_as: None, // nobody
//!     tmp_mb: Some(512), // /tmp of Lambda's default ephemeral storage
//! })?);
//! for ext in sb.extension_paths() {
//!     let cmd = SandboxCommand { program: ext, args: vec![], env: vec![], cwd: "/".into() };
//!     let _child = sb.spawn_async(cmd, |pid| println!("start tracing {pid}")).await?;
//! }
//! sb.freeze()?; // between invocations
//! sb.thaw()?;
//! let max_memory_used_mb = sb.memory_peak_bytes()? / (1024 * 1024);
//! # let _ = max_memory_used_mb;
//! drop(sb); // kills everything, removes the cgroups and the state directory
//! # Ok(()) }
//! ```

pub mod cgroup;
pub mod ephemeral;
pub mod layout;
pub mod mounts;
pub mod spawn;
pub mod stale;

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use mounts::hidden_inside;
pub use nix::sys::signal::Signal;
pub use stale::{CleanupReport, cleanup_stale, lxprof_parents};

use cgroup::{Cgroup, Layout, Limits};
use mounts::StateDir;
use spawn::EnvPlan;

/// The default unprivileged user: nobody.
pub const NOBODY: (u32, u32) = (65534, 65534);
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// What an environment looks like.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Unique name: 1–64 of `[A-Za-z0-9_.-]`, not starting with `.`.
    pub name: String,
    /// Memory limit in MB (no swap on top).
    pub memory_mb: u32,
    /// Fraction of one CPU (e.g. 128/1769); `None` = no cap.
    pub cpu_limit: Option<f64>,
    /// Host directory shown read-only at `/var/task`.
    pub function_dir: PathBuf,
    /// Host directories merged read-only into `/opt`, in order (later wins).
    pub layers: Vec<PathBuf>,
    /// Executables exposed as `/opt/extensions/<file name>` (copied into the state dir).
    pub extra_extensions: Vec<PathBuf>,
    /// uid:gid the processes run as; `None` = nobody (65534:65534).
    pub run_as: Option<(u32, u32)>,
    /// Size of `/tmp` in MB (Lambda's ephemeral storage: 512 by default, up to 10,240): an
    /// ext4 image of that size, loop-mounted; `None` = a plain directory, unlimited.
    pub tmp_mb: Option<u32>,
}

/// A process to start inside the environment.
#[derive(Debug, Clone)]
pub struct SandboxCommand {
    /// In-sandbox path of the executable (e.g. `/var/task/bootstrap`).
    pub program: PathBuf,
    /// Arguments (without argv\[0\]).
    pub args: Vec<String>,
    /// The exact environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// In-sandbox working directory.
    pub cwd: PathBuf,
}

/// Errors of environment creation and control; each names the path or step and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The spec is unusable.
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    /// A cgroup file operation failed.
    #[error(
        "cgroup: cannot {what} {path}: {source} (run as root with cgroups mounted under /sys/fs/cgroup)"
    )]
    Cgroup {
        /// The cgroup file or directory.
        path: PathBuf,
        /// The operation.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// A needed controller is missing.
    #[error(
        "cgroup controller {controller} is not available: mount the v1 hierarchy (mount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller}) or enable it in the cgroup2 hierarchy"
    )]
    NoController {
        /// The controller (and where it was looked for).
        controller: String,
    },
    /// A cgroup or state directory of this name exists.
    #[error(
        "{path} already exists: another lxprof run uses it, or a crashed run left it behind (`lxprof clean` removes what no running lxprof owns)"
    )]
    Exists {
        /// The existing path.
        path: PathBuf,
    },
    /// Waiting for the kernel timed out.
    #[error("timed out waiting for {what} ({path})")]
    Timeout {
        /// The cgroup file or directory.
        path: PathBuf,
        /// What was awaited.
        what: String,
    },
    /// A file operation on the host failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operation.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// `spawn` was called while the environment is frozen.
    #[error("environment {name} is frozen: call thaw() before spawning into it")]
    Frozen {
        /// The environment name.
        name: String,
    },
    /// `spawn` was called outside a tokio runtime.
    #[error(
        "Sandbox::spawn needs a tokio runtime context: call it inside tokio::task::spawn_blocking"
    )]
    NoRuntime,
    /// The child failed while entering the environment.
    #[error("starting {program} in the sandbox: {step} failed: {source}")]
    ChildSetup {
        /// The in-sandbox program.
        program: PathBuf,
        /// The failing step.
        step: String,
        /// The child's errno.
        source: io::Error,
    },
    /// fork/exec failed (e.g. the program does not exist inside the sandbox).
    #[error(
        "starting {program} in the sandbox: {source} (is it an executable under /var/task or /opt?)"
    )]
    Spawn {
        /// The in-sandbox program.
        program: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// One execution environment: its cgroup(s) and state directory; removed on drop.
#[derive(Debug)]
pub struct Sandbox {
    spec: SandboxSpec,
    cgroup: Cgroup,
    state: StateDir,
    plan: Arc<EnvPlan>,
    frozen: AtomicBool,
}

fn validate(spec: &SandboxSpec) -> Result<(), SandboxError> {
    let n = &spec.name;
    let ok = !n.is_empty()
        && n.len() <= 64
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(SandboxError::InvalidSpec(format!(
            "name {n:?} must be 1-64 characters of [A-Za-z0-9_.-] not starting with '.'"
        )));
    }
    if spec.memory_mb == 0 {
        return Err(SandboxError::InvalidSpec(
            "memory_mb must be at least 1".into(),
        ));
    }
    if let Some(c) = spec.cpu_limit
        && !(c.is_finite() && c > 0.0)
    {
        return Err(SandboxError::InvalidSpec(format!(
            "cpu_limit {c} must be a positive fraction of one CPU"
        )));
    }
    if !spec.function_dir.is_dir() {
        return Err(SandboxError::InvalidSpec(format!(
            "function_dir {} is not a directory (it becomes /var/task)",
            spec.function_dir.display()
        )));
    }
    for l in &spec.layers {
        if !l.is_dir() {
            return Err(SandboxError::InvalidSpec(format!(
                "layer {} is not a directory",
                l.display()
            )));
        }
        let s = l.to_string_lossy();
        if s.contains([':', ',', '\\', '\n']) || !l.is_absolute() {
            return Err(SandboxError::InvalidSpec(format!(
                "layer path {s} must be absolute and free of ':' ',' '\\' (overlayfs lowerdir syntax)"
            )));
        }
    }
    for e in &spec.extra_extensions {
        if !e.is_file() {
            return Err(SandboxError::InvalidSpec(format!(
                "extension {} is not a file",
                e.display()
            )));
        }
    }
    // Files the environment reaches through a symlink must not point under a path its own
    // mounts hide (a checkout under /tmp, say).
    mounts::check_link_visible(&spec.function_dir.join("bootstrap"))?;
    for l in &spec.layers {
        for e in fs::read_dir(l.join("extensions"))
            .into_iter()
            .flatten()
            .flatten()
        {
            mounts::check_link_visible(&e.path())?;
        }
    }
    Ok(())
}

impl Sandbox {
    /// Creates the environment: validates the spec, creates the cgroup(s) with the limits and the
    /// state directory. Processes are started with [`Sandbox::spawn`].
    pub fn create(spec: SandboxSpec) -> Result<Sandbox, SandboxError> {
        validate(&spec)?;
        let spec = SandboxSpec {
            function_dir: absolute(&spec.function_dir)?,
            layers: spec
                .layers
                .iter()
                .map(|l| absolute(l))
                .collect::<Result<_, _>>()?,
            ..spec
        };
        let (uid, gid) = spec.run_as.unwrap_or(NOBODY);
        mounts::ensure_mount_points()?;
        let layout = Layout::detect()?;
        let state = StateDir::create(&spec, uid, gid)?;
        let limits = Limits {
            memory_bytes: u64::from(spec.memory_mb) * 1024 * 1024,
            cpu_limit: spec.cpu_limit,
        };
        let cgroup = match Cgroup::create(&layout, &spec.name, limits) {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&state.root);
                return Err(e);
            }
        };
        Self::assemble(spec, cgroup, state)
    }

    /// Like [`Sandbox::create`] but with a caller-made cgroup (tests use it to exercise the v2
    /// backend on a controller-less cgroup2 mount).
    pub fn create_with_cgroup(spec: SandboxSpec, cgroup: Cgroup) -> Result<Sandbox, SandboxError> {
        validate(&spec)?;
        let (uid, gid) = spec.run_as.unwrap_or(NOBODY);
        mounts::ensure_mount_points()?;
        let state = match StateDir::create(&spec, uid, gid) {
            Ok(s) => s,
            Err(e) => {
                let _ = cgroup.remove(KILL_TIMEOUT);
                return Err(e);
            }
        };
        Self::assemble(spec, cgroup, state)
    }

    fn assemble(
        spec: SandboxSpec,
        cgroup: Cgroup,
        state: StateDir,
    ) -> Result<Sandbox, SandboxError> {
        let (uid, gid) = spec.run_as.unwrap_or(NOBODY);
        let plan = (|| {
            let procs = cgroup
                .procs_files()
                .iter()
                .map(|p| {
                    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| {
                        SandboxError::InvalidSpec(format!("cgroup path {} has a NUL", p.display()))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(EnvPlan {
                procs,
                mounts: state.mount_plan(&spec)?,
                uid,
                gid,
            })
        })();
        match plan {
            Ok(plan) => Ok(Sandbox {
                spec,
                cgroup,
                state,
                plan: Arc::new(plan),
                frozen: AtomicBool::new(false),
            }),
            Err(e) => {
                let _ = cgroup.remove(KILL_TIMEOUT);
                let _ = fs::remove_dir_all(&state.root);
                Err(e)
            }
        }
    }

    /// The spec this environment was created from.
    pub fn spec(&self) -> &SandboxSpec {
        &self.spec
    }

    /// In-sandbox paths of every `/opt/extensions/*` file, sorted (what Lambda starts).
    pub fn extension_paths(&self) -> Vec<PathBuf> {
        self.state.extension_paths(&self.spec)
    }

    /// The host path behind an in-sandbox path (see [`StateDir::host_path`]), e.g. to read a
    /// binary named in `/proc/PID/maps` after the process exited. Extra extensions are copies in
    /// the state directory: resolve them before the sandbox is dropped.
    pub fn host_path(&self, in_sandbox: &Path) -> Option<PathBuf> {
        self.state.host_path(&self.spec, in_sandbox)
    }

    /// Host path of the environment's `/tmp`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.state.tmp()
    }

    /// Host path of the state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state.root
    }

    /// Starts `cmd` in the environment. The child joins the cgroup(s), enters its mount
    /// namespace, drops to `run_as`, then waits until `gate(pid)` has returned here, and only
    /// then execs. stdout/stderr are piped, stdin is null, the child is killed on drop.
    /// Blocks until the exec: call it from `spawn_blocking` in async code. Fails on a frozen
    /// environment (the child would freeze before exec): thaw first.
    pub fn spawn(
        &self,
        cmd: SandboxCommand,
        gate: impl FnOnce(u32),
    ) -> Result<tokio::process::Child, SandboxError> {
        if self.frozen.load(Ordering::SeqCst) {
            return Err(SandboxError::Frozen {
                name: self.spec.name.clone(),
            });
        }
        spawn::spawn(&self.plan, cmd, gate)
    }

    /// [`Sandbox::spawn`] on tokio's blocking pool, for async callers.
    pub async fn spawn_async(
        self: &Arc<Self>,
        cmd: SandboxCommand,
        gate: impl FnOnce(u32) + Send + 'static,
    ) -> Result<tokio::process::Child, SandboxError> {
        let me = Arc::clone(self);
        let program = cmd.program.clone();
        tokio::task::spawn_blocking(move || me.spawn(cmd, gate))
            .await
            .map_err(|e| SandboxError::Spawn {
                program,
                source: io::Error::other(format!("the spawning task failed: {e}")),
            })?
    }

    /// Freezes every process (cgroup freezer) and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), SandboxError> {
        self.frozen.store(true, Ordering::SeqCst);
        self.cgroup.freeze()
    }

    /// Thaws the environment and waits until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<(), SandboxError> {
        self.cgroup.thaw()?;
        self.frozen.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the environment is frozen (between [`Sandbox::freeze`] and [`Sandbox::thaw`]).
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// Peak memory use (bytes) since creation or the last [`Sandbox::reset_memory_peak`].
    pub fn memory_peak_bytes(&self) -> Result<u64, SandboxError> {
        self.cgroup.memory_peak_bytes()
    }

    /// Resets the peak to the current use (v2 kernels before 6.12 cannot: the peak stays the
    /// peak since creation).
    pub fn reset_memory_peak(&self) -> Result<(), SandboxError> {
        self.cgroup.reset_memory_peak()
    }

    /// Current memory use in bytes.
    pub fn memory_current_bytes(&self) -> Result<u64, SandboxError> {
        self.cgroup.memory_current_bytes()
    }

    /// OOM kills in this environment so far.
    pub fn oom_kills(&self) -> Result<u64, SandboxError> {
        self.cgroup.oom_kills()
    }

    /// CPU time consumed by the environment, in nanoseconds.
    pub fn cpu_usage_ns(&self) -> Result<u64, SandboxError> {
        self.cgroup.cpu_usage_ns()
    }

    /// Host pids of every process in the environment, sorted.
    pub fn pids(&self) -> Vec<u32> {
        self.cgroup.pids()
    }

    /// Sends `signal` to every process in the environment.
    pub fn signal_all(&self, signal: Signal) {
        self.cgroup.signal_all(signal as i32)
    }

    /// SIGKILLs every process (thawing first) and waits up to 5 s until the cgroup is empty.
    pub fn kill_all(&self) -> Result<(), SandboxError> {
        self.cgroup.kill_all(KILL_TIMEOUT)?;
        self.thaw()
    }

    /// The environment's cgroup directories.
    pub fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.cgroup.paths()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.cgroup.remove(KILL_TIMEOUT) {
            eprintln!("lxprof sandbox {}: {e}", self.spec.name);
        }
        if let Err(e) = self.state.remove() {
            eprintln!(
                "lxprof sandbox {}: cannot remove {}: {e}",
                self.spec.name,
                self.state.root.display()
            );
        }
    }
}

fn absolute(p: &Path) -> Result<PathBuf, SandboxError> {
    fs::canonicalize(p).map_err(|e| SandboxError::Io {
        path: p.to_path_buf(),
        what: "resolve".into(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> SandboxSpec {
        SandboxSpec {
            name: name.into(),
            memory_mb: 128,
            cpu_limit: None,
            function_dir: std::env::temp_dir(),
            layers: vec![],
            extra_extensions: vec![],
            run_as: None,
            tmp_mb: None,
        }
    }

    #[test]
    fn sandbox_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Sandbox>();
    }

    #[test]
    fn names_are_validated() {
        assert!(validate(&spec("env-1_a.b")).is_ok());
        for bad in ["", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(
                matches!(validate(&spec(bad)), Err(SandboxError::InvalidSpec(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cpu_limit_must_be_positive() {
        let mut s = spec("c");
        s.cpu_limit = Some(0.0);
        assert!(validate(&s).is_err());
        s.cpu_limit = Some(0.5);
        assert!(validate(&s).is_ok());
    }
}
