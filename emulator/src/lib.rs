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

/// Phase boundaries reported to [`RunObserver::phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseEvent {
    /// Init began.
    InitStart,
    /// Init ended (or failed).
    InitEnd,
    /// The event was handed out.
    InvokeStart,
    /// The runtime answered (or failed).
    RuntimeDone,
    /// Runtime and extensions all called next.
    InvokeEnd,
    /// Every extension registered: extension init is over, the runtime starts (init only).
    ExtensionsRegistered,
    /// The runtime called next after answering: the post-runtime extension time begins.
    RuntimeNext,
    /// The environment was frozen (between invocations).
    Frozen,
    /// The environment was thawed (an invocation or the shutdown follows).
    Thawed,
    /// Shutdown began (SHUTDOWN sent to extensions, SIGTERM to the runtime).
    ShutdownStart,
    /// Shutdown ended: every process is gone.
    ShutdownEnd,
}

/// Callbacks during a run; all default to no-ops.
pub trait RunObserver: Send + Sync {
    /// A process was created in environment `env`; called before it execs.
    fn process_spawned(&self, _env: usize, _pid: u32, _role: &Role) {}
    /// A phase boundary at CLOCK_MONOTONIC `ns`.
    fn phase(&self, _env: usize, _event: PhaseEvent, _ns: u64) {}
    /// An invocation finished.
    fn invocation_done(&self, _m: &InvocationMetrics) {}
    /// `done` of `total` invocations finished.
    fn progress(&self, _done: u32, _total: u32) {}
    /// A line the function or an extension wrote on stdout or stderr.
    fn log_line(&self, _env: usize, _role: &Role, _line: &str) {}
}

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
