//! A local AWS Lambda execution environment: Runtime, Extensions and Telemetry APIs over
//! sandboxes with Lambda's memory and CPU limits, its lifecycle and its metrics.
//!
//! Entry point: [`run`] with an [`EmulatorConfig`] and a [`RunObserver`].
pub mod api;
pub mod config;
pub mod driver;
pub mod environment;
pub mod envvars;
pub mod event;
pub mod lifecycle;
pub mod metrics;
mod observe;
pub mod presets;
pub mod sandbox;

pub use config::{ConfigError, EmulatorConfig};
pub use driver::{request_shutdown, run, run_cancellable};
pub use metrics::{InvocationMetrics, LambdaReport, PhaseTimes, Stats, Status, Summary};
pub use tokio_util::sync::CancellationToken;

/// What a process in an environment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The runtime (`/var/task/bootstrap`).
    Function,
    /// An extension, by file name.
    Extension(String),
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Function => f.write_str("function"),
            Role::Extension(n) => write!(f, "extension {n}"),
        }
    }
}

/// Phase boundaries reported to [`RunObserver::phase`], each with its CLOCK_MONOTONIC ns.
///
/// Per environment, an init / invoke / shutdown cycle reads (ns never decrease):
/// `InitStart ≤ ExtensionsRegistered ≤ InitEnd` (cold starts), then for each invocation
/// `[Thawed ≤] InvokeStart ≤ RuntimeDone ≤ RuntimeNext ≤ InvokeEnd ≤ Frozen`, and at the end
/// (spindown, a reset after a crash/timeout/OOM, a failed init, a cancelled run)
/// `[Thawed ≤] ShutdownStart ≤ ShutdownEnd`. A reset environment starts again at `InitStart`.
/// Events that did not happen are not reported (no `RuntimeDone`/`RuntimeNext` when the
/// runtime never answered, no `Frozen` before a reset, no `ExtensionsRegistered` when an
/// extension failed to register, no `Thawed` when the environment was not frozen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseEvent {
    /// Init began: the environment's cgroup exists, its API server listens; no process yet.
    /// Reported at once.
    InitStart,
    /// Init ended: the runtime and every extension called next (or init failed). Reported at
    /// once.
    InitEnd,
    /// The event was handed out (INVOKE queued for the extensions and the runtime). Reported
    /// at once.
    InvokeStart,
    /// The runtime posted its response or error. Reported when the invoke phase ends.
    RuntimeDone,
    /// The runtime and every extension called next again (or the phase was cut short by a
    /// crash or timeout). Reported when the emulator sees it.
    InvokeEnd,
    /// Every extension registered: extension init is over, the runtime is spawned next (init
    /// only; with no extensions it equals `InitStart`). Reported at once.
    ExtensionsRegistered,
    /// The runtime called next after answering: the post-runtime extension time begins.
    /// Reported when the invoke phase ends, before `InvokeEnd`.
    RuntimeNext,
    /// The environment was frozen (after an invocation; the freezer reported it). Reported at
    /// once.
    Frozen,
    /// The environment was thawed (an invocation or the shutdown follows). Reported at once.
    Thawed,
    /// Shutdown began (SHUTDOWN queued for extensions, SIGTERM sent to the runtime; or the
    /// kill of a cancelled run). Reported at once.
    ShutdownStart,
    /// Shutdown ended: every process of the environment is gone (its cgroup is removed right
    /// after). Reported at once.
    ShutdownEnd,
}

/// Callbacks during a run; all default to no-ops. They are called from the task that drives
/// the environment, so a slow callback slows that environment down.
pub trait RunObserver: Send + Sync {
    /// A process was created in environment `env`; called before it execs.
    fn process_spawned(&self, _env: usize, _pid: u32, _role: &Role) {}
    /// A phase boundary at CLOCK_MONOTONIC `ns` (see [`PhaseEvent`] for when each comes).
    fn phase(&self, _env: usize, _event: PhaseEvent, _ns: u64) {}
    /// The environment's cgroup memory use (`memory.usage_in_bytes` v1, `memory.current` v2:
    /// page cache included) was `bytes` at CLOCK_MONOTONIC `ns`. Sampled every
    /// [`MEMORY_SAMPLE_PERIOD`] while the environment is live and thawed (init, invokes,
    /// shutdown); nothing while it is frozen (its memory cannot change then).
    fn memory(&self, _env: usize, _ns: u64, _bytes: u64) {}
    /// An invocation finished.
    fn invocation_done(&self, _m: &InvocationMetrics) {}
    /// `done` of `total` invocations finished.
    fn progress(&self, _done: u32, _total: u32) {}
    /// A line the function or an extension wrote on stdout or stderr.
    fn log_line(&self, _env: usize, _role: &Role, _line: &str) {}
}

/// How often [`RunObserver::memory`] samples a thawed environment.
pub const MEMORY_SAMPLE_PERIOD: std::time::Duration = std::time::Duration::from_millis(10);

/// An observer that does nothing.
pub struct NoObserver;
impl RunObserver for NoObserver {}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Sandbox creation or control failed.
    #[error("environment: {0}")]
    Sandbox(#[from] sandbox::SandboxError),
    /// The API server could not listen on loopback.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(std::io::Error),
    /// The event file could not be read.
    #[error("cannot read event file {path}: {source}")]
    Event {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The run was cancelled ([`run_cancellable`], [`request_shutdown`]); everything it started
    /// was stopped and removed.
    #[error("cancelled: every environment was shut down")]
    Cancelled,
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}
