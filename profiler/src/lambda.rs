//! `lxprof run --lambda`: runs a function and its extensions in the emulated
//! Lambda execution environment (crate `lxprof-emulator`) and writes Lambda's
//! metrics: `report.json` (`lambda` section) and a dashboard-like summary.
//!
//! Presets (`header-counter`, `rust-event-collector`, …) resolve from the
//! extensions build directory; event collectors get S3 settings from
//! `--s3-endpoint`, from a running `scripts/local-s3.sh` server, or from the
//! caller's AWS credentials, in that order.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use lxprof_emulator::{
    CancellationToken, EmulatorConfig, EmulatorError, InvocationMetrics, LambdaReport, RunObserver,
    Stats, Status, Summary,
    presets::{self, ExtensionSource, PresetError},
    sandbox::{self, CleanupReport},
};
use serde::Serialize;

use crate::output::{OutputDir, OutputError, Unwritten};
use crate::record::SignalGuard;

/// The function run when none is given.
pub const DEFAULT_FUNCTION: &str = "header-counter";
/// The bucket event collectors write to when none is given.
pub const DEFAULT_BUCKET: &str = "lxprof-events";

/// Options of `lxprof run --lambda` (the CLI translates its flags into this).
#[derive(Debug, Clone)]
pub struct LambdaRunOptions {
    /// Preset name or deployment package directory (holding `bootstrap`).
    pub function: String,
    /// Preset names or executable files.
    pub extensions: Vec<String>,
    /// Layer directories (their `extensions/*` are started).
    pub layers: Vec<PathBuf>,
    pub memory_mb: u32,
    pub timeout: Duration,
    /// Size of `/tmp` in MB (Lambda's ephemeral storage).
    pub ephemeral_storage_mb: u32,
    pub invocations: u32,
    /// Requests in flight.
    pub concurrency: u32,
    /// Most environments; None: `concurrency`.
    pub max_environments: Option<u32>,
    /// Event file; default: an API Gateway REST proxy event.
    pub event: Option<PathBuf>,
    /// Extra environment for the function and extensions.
    pub env: Vec<(String, String)>,
    /// S3-compatible endpoint for the event collectors.
    pub s3_endpoint: Option<String>,
    /// Bucket for the event collectors (default [`DEFAULT_BUCKET`]).
    pub bucket: Option<String>,
    /// Cap CPU at memory/1769 MB of one CPU, as Lambda does (default true).
    pub cpu_cap: bool,
    /// Output directory; default `./lxprof-out/<UTC timestamp>/`.
    pub output_dir: Option<PathBuf>,
    /// Print function and extension log lines.
    pub print_logs: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Print each invocation's REPORT line on stderr (default true).
    pub print_reports: bool,
}

impl LambdaRunOptions {
    /// Lambda's defaults: 128 MB, 3 s timeout, one invocation, one environment.
    pub fn new() -> LambdaRunOptions {
        LambdaRunOptions {
            function: DEFAULT_FUNCTION.to_string(),
            extensions: Vec::new(),
            layers: Vec::new(),
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            ephemeral_storage_mb: 512,
            invocations: 1,
            concurrency: 1,
            max_environments: None,
            event: None,
            env: Vec::new(),
            s3_endpoint: None,
            bucket: None,
            cpu_cap: true,
            output_dir: None,
            print_logs: false,
            progress: true,
            print_reports: true,
        }
    }
}

impl Default for LambdaRunOptions {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaRunError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error("cannot read event file {path}: {source}")]
    Event {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--event {path}: {source}")]
    BadEvent {
        path: PathBuf,
        source: lxprof_emulator::ConfigError,
    },
    #[error(
        "{extension} writes to S3 but no S3 is configured: start a local one with \
         `scripts/local-s3.sh start`, give --s3-endpoint URL, or export AWS credentials"
    )]
    NoS3 { extension: String },
    #[error(
        "the emulated Lambda environment needs root (cgroups, mount namespaces; BPF to record): run lxprof with sudo"
    )]
    NotRoot,
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What a finished run produced.
#[derive(Debug)]
pub struct LambdaRunOutcome {
    pub output_dir: PathBuf,
    /// `report.json`, unless it could not be written (then in `unwritten`).
    pub report_path: Option<PathBuf>,
    pub report: LambdaReport,
    /// The terminal summary.
    pub summary: String,
    /// A signal cut the run short (exit 130): the report holds the
    /// invocations that finished.
    pub interrupted: bool,
    /// Outputs that could not be written.
    pub unwritten: Unwritten,
}

/// `report.json` of a run.
#[derive(Serialize)]
struct RunReport<'a> {
    lxprof_version: &'static str,
    command: Vec<String>,
    lambda: &'a LambdaReport,
}

/// Resolves presets and S3 settings into the emulator's configuration.
pub fn emulator_config(opts: &LambdaRunOptions) -> Result<EmulatorConfig, LambdaRunError> {
    let build = presets::build_dir();
    let function = presets::resolve_function(&opts.function, build.as_deref())?;
    let mut config = EmulatorConfig::new(function);
    for ext in &opts.extensions {
        match presets::resolve_extension(ext, build.as_deref())? {
            ExtensionSource::File(f) => config.extensions.push(f),
            ExtensionSource::Layer(l) => config.layers.push(l),
        }
    }
    // The sandbox mounts layers by absolute path.
    config.layers.extend(
        opts.layers
            .iter()
            .map(|l| std::fs::canonicalize(l).unwrap_or_else(|_| l.clone())),
    );
    config.memory_mb = opts.memory_mb;
    config.timeout = opts.timeout;
    config.ephemeral_storage_mb = opts.ephemeral_storage_mb;
    config.invocations = opts.invocations;
    config.concurrency = opts.concurrency;
    config.max_environments = opts.max_environments;
    config.cpu_cap = opts.cpu_cap;
    config.print_logs = opts.print_logs;
    config.print_reports = opts.print_reports;
    if let Some(path) = &opts.event {
        let bytes = std::fs::read(path).map_err(|source| LambdaRunError::Event {
            path: path.clone(),
            source,
        })?;
        lxprof_emulator::config::check_event(&bytes).map_err(|source| {
            LambdaRunError::BadEvent {
                path: path.clone(),
                source,
            }
        })?;
        config.event = Some(bytes);
    }
    config.env = s3_env(opts)?;
    config.env.extend(opts.env.iter().cloned());
    for warning in hidden_env_paths(&opts.env) {
        eprintln!("lxprof: warning: {warning}");
    }
    Ok(config)
}

/// `--env` values naming a host file or directory that the environment cannot
/// see, because one of its own mounts (`/tmp`, `/var/task`, `/opt`) covers it:
/// the function would find its own, different, file there.
fn hidden_env_paths(env: &[(String, String)]) -> Vec<String> {
    env.iter()
        .filter_map(|(k, v)| {
            let path = Path::new(v);
            if !path.is_absolute() || !path.exists() {
                return None;
            }
            let mount = sandbox::hidden_inside(&std::fs::canonicalize(path).ok()?)?;
            Some(format!(
                "--env {k}={v}: the function and extensions do not see this host path: the \
                 environment has its own {mount} (as Lambda does); use a path outside {mount}"
            ))
        })
        .collect()
}

fn has_env(env: &[(String, String)], key: &str) -> bool {
    env.iter().any(|(k, _)| k == key)
}

/// Settings for extensions that write to S3: the event-collector presets, and any
/// extension of the user's own (`--extension FILE`, `--layer DIR`), which may be one.
/// None when no extension can be.
fn s3_env(opts: &LambdaRunOptions) -> Result<Vec<(String, String)>, LambdaRunError> {
    let collector = opts
        .extensions
        .iter()
        .find(|e| e.contains("event-collector"));
    let own = !opts.layers.is_empty() || opts.extensions.iter().any(|e| Path::new(e).is_file());
    let wants_s3 = collector.is_some() || own;
    let user_endpoint =
        has_env(&opts.env, "AWS_ENDPOINT_URL_S3") || has_env(&opts.env, "AWS_ENDPOINT_URL");
    let local = local_s3_text();
    let local_endpoint = local.as_deref().and_then(parse_s3_state);
    let endpoint = match &opts.s3_endpoint {
        Some(url) => Some((url.clone(), opts.bucket.clone())),
        None if wants_s3 && !user_endpoint => local_endpoint
            .clone()
            .map(|(url, bucket)| (url, opts.bucket.clone().or(bucket))),
        None => None,
    };
    // A local server over TLS: its CA, trusted through each runtime's standard setting.
    let trust = match (&endpoint, &local_endpoint, local.as_deref()) {
        (Some((url, _)), Some((local_url, _)), Some(text)) if url == local_url => {
            parse_s3_trust(text)
        }
        _ => Vec::new(),
    };
    let mut env = Vec::new();
    let bucket = opts
        .bucket
        .clone()
        .unwrap_or_else(|| DEFAULT_BUCKET.to_string());
    match endpoint {
        Some((url, b)) => {
            env.push(("AWS_ENDPOINT_URL_S3".into(), url));
            env.push(("EVENT_COLLECTOR_BUCKET".into(), b.unwrap_or(bucket)));
            for (k, v) in trust {
                if !has_env(&opts.env, &k) {
                    env.push((k, v));
                }
            }
            // A local S3 accepts any credentials; real ones from the caller win.
            for (k, default) in [
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
            ] {
                let v = std::env::var(k).unwrap_or_else(|_| default.to_string());
                env.push((k.into(), v));
            }
        }
        None => {
            if wants_s3 || user_endpoint {
                env.push(("EVENT_COLLECTOR_BUCKET".into(), bucket));
            }
            // Real AWS: pass the caller's credentials through, as Lambda gives its role's.
            for k in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_REGION",
            ] {
                if let Ok(v) = std::env::var(k) {
                    env.push((k.into(), v));
                }
            }
            if let Some(ext) = collector
                && !user_endpoint
                && !has_env(&env, "AWS_ACCESS_KEY_ID")
                && !has_env(&opts.env, "AWS_ACCESS_KEY_ID")
            {
                return Err(LambdaRunError::NoS3 {
                    extension: ext.clone(),
                });
            }
        }
    }
    Ok(env)
}

/// The endpoint of a running `scripts/local-s3.sh` server, if any.
pub(crate) fn local_s3_endpoint() -> Option<String> {
    parse_s3_state(&local_s3_text()?).map(|(url, _)| url)
}

/// The state file of `scripts/local-s3.sh` (`LXPROF_S3_STATE` or its default), if any.
fn local_s3_text() -> Option<String> {
    let path = std::env::var_os("LXPROF_S3_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("lxprof-local-s3.state"));
    std::fs::read_to_string(path).ok()
}

/// A TLS server's trust settings from its state file: SSL_CERT_FILE (the system's CAs plus
/// its CA: rustls-native-certs, OpenSSL, .NET), NODE_EXTRA_CA_CERTS (Node) and
/// XDG_CONFIG_HOME (Mono's certificate store). Empty for plain HTTP.
fn parse_s3_trust(text: &str) -> Vec<(String, String)> {
    let get = |key: &str| state_value(text, key);
    [
        ("SSL_CERT_FILE", "CA_BUNDLE"),
        ("NODE_EXTRA_CA_CERTS", "CA_FILE"),
        ("XDG_CONFIG_HOME", "MONO_CONFIG_HOME"),
    ]
    .into_iter()
    .filter_map(|(var, key)| Some((var.to_string(), get(key)?)))
    .collect()
}

/// `KEY=value` (or `export KEY="value"`) of a shell-sourceable state file.
fn state_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches("export ");
        let v = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

/// Parses the shell-sourceable state file; only a live PID counts.
fn parse_s3_state(text: &str) -> Option<(String, Option<String>)> {
    let get = |key: &str| state_value(text, key);
    let pid: i32 = get("PID")?.parse().ok()?;
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return None;
    }
    Some((get("ENDPOINT")?, get("BUCKET")))
}

/// A bar on stderr counting `len` `what`s ("invocations 3/10 [00:02] ███ msg").
pub(crate) fn counting_bar(what: &str, len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} [{{elapsed}}] {{wide_bar}} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Progress of the invocations on stderr (a bar; nothing when disabled).
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar over `invocations`, or nothing when `enabled` is false.
    pub(crate) fn new(enabled: bool, invocations: u32) -> Progress {
        let bar = enabled.then(|| counting_bar("invocations", invocations.into()));
        Progress { bar }
    }

    /// `done` of `total` invocations finished.
    pub(crate) fn set(&self, done: u32, total: u32) {
        if let Some(bar) = &self.bar {
            bar.set_length(total.into());
            bar.set_position(done.into());
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl RunObserver for Progress {
    fn progress(&self, done: u32, total: u32) {
        self.set(done, total);
    }
}

/// How often [`run_interruptible`] looks for a signal when its caller has
/// nothing else to do.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Forwards every callback to `inner` and keeps the invocations that finished,
/// so that a cancelled run still has them.
struct Keeping<'a> {
    inner: &'a dyn RunObserver,
    done: std::sync::Mutex<Vec<InvocationMetrics>>,
}

impl RunObserver for Keeping<'_> {
    fn process_spawned(&self, env: usize, pid: u32, role: &lxprof_emulator::Role) {
        self.inner.process_spawned(env, pid, role);
    }
    fn phase(&self, env: usize, event: lxprof_emulator::PhaseEvent, ns: u64) {
        self.inner.phase(env, event, ns);
    }
    fn memory(&self, env: usize, ns: u64, bytes: u64) {
        self.inner.memory(env, ns, bytes);
    }
    fn invocation_done(&self, m: &InvocationMetrics) {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(m.clone());
        self.inner.invocation_done(m);
    }
    fn progress(&self, done: u32, total: u32) {
        self.inner.progress(done, total);
    }
    fn log_line(&self, env: usize, role: &lxprof_emulator::Role, line: &str) {
        self.inner.log_line(env, role, line);
    }
}

/// Removes what crashed or killed runs left behind (their cgroups, processes and
/// `/run/lxprof/sandbox/<env>` directories); environments whose creating lxprof
/// still runs are left alone (see `sandbox::cleanup_stale`).
pub fn clean() -> Result<CleanupReport, LambdaRunError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LambdaRunError::NotRoot);
    }
    sandbox::cleanup_stale().map_err(|e| LambdaRunError::Emulator(e.into()))
}

/// What [`clean`] did, in words.
pub fn render_cleanup(r: &CleanupReport) -> String {
    if r.cgroups_removed.is_empty() && r.state_dirs_removed.is_empty() {
        return "lxprof: nothing to clean\n".to_string();
    }
    let mut out = format!(
        "lxprof: removed {} cgroup(s) and {} environment directory(ies) of crashed runs ({} process(es) killed)\n",
        r.cgroups_removed.len(),
        r.state_dirs_removed.len(),
        r.processes_killed
    );
    for p in r.cgroups_removed.iter().chain(&r.state_dirs_removed) {
        out += &format!("  {}\n", p.display());
    }
    out
}

/// Removes the leftovers of crashed runs before a run starts, saying so on
/// stderr when there were any (a failure to remove them is a warning: the
/// run's own environments have fresh names).
fn clean_before_run() {
    match sandbox::cleanup_stale() {
        Ok(r) if !r.cgroups_removed.is_empty() || !r.state_dirs_removed.is_empty() => eprintln!(
            "lxprof: removed the leftovers of a crashed run ({} cgroup(s), {} environment directory(ies))",
            r.cgroups_removed.len(),
            r.state_dirs_removed.len()
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("leftovers of a crashed run not removed: {e}"),
    }
}

/// What [`run_interruptible`] ended with.
pub(crate) struct Interruptible {
    /// The report: all invocations, or after a signal the ones that finished.
    pub report: Result<LambdaReport, LambdaRunError>,
    /// SIGINT, SIGTERM or SIGHUP cancelled the run.
    pub signalled: bool,
}

/// The one cancellation path of `run --lambda` and `record --lambda`: runs the
/// emulator on its own tokio runtime in a scoped thread while this thread
/// calls `tick` (which must return within ~50 ms: the recorder drains its ring
/// buffer there) and watches for SIGINT/SIGTERM/SIGHUP ([`SignalGuard`]). A
/// signal shuts every environment down; the invocations that finished are
/// kept, labelled as the run's.
pub(crate) fn run_interruptible(
    opts: &LambdaRunOptions,
    config: EmulatorConfig,
    observer: &dyn RunObserver,
    mut tick: impl FnMut(),
) -> Interruptible {
    let _signals = SignalGuard::install();
    clean_before_run();
    let keeping = Keeping {
        inner: observer,
        done: std::sync::Mutex::new(Vec::new()),
    };
    let cancel = CancellationToken::new();
    let mut signalled = false;
    let run = std::thread::scope(|scope| {
        let emulator = std::thread::Builder::new()
            .name("lxprof-emulator".into())
            .spawn_scoped(scope, || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("lxprof-emulator")
                    .enable_all()
                    .build()
                    .map_err(LambdaRunError::Runtime)?;
                rt.block_on(lxprof_emulator::run_cancellable(config, &keeping, &cancel))
                    .map_err(LambdaRunError::from)
            })
            .map_err(LambdaRunError::Runtime)?;
        loop {
            tick();
            if let Some(caught) = SignalGuard::take() {
                if signalled {
                    tracing::warn!("second signal {}: still shutting down", caught.signal);
                } else {
                    eprintln!("lxprof: stopping: shutting every environment down");
                }
                signalled = true;
                cancel.cancel();
            }
            if emulator.is_finished() {
                break;
            }
        }
        emulator.join().unwrap_or_else(|_| {
            Err(EmulatorError::Internal("the emulator thread panicked".into()).into())
        })
    });
    let mut done = keeping.done.into_inner().unwrap_or_else(|p| p.into_inner());
    let report = match run {
        // Every environment was shut down; what finished is kept.
        Err(LambdaRunError::Emulator(EmulatorError::Cancelled)) if signalled => {
            done.sort_by_key(|m| m.phases.invoke_start_ns.max(m.phases.init_start_ns));
            Ok(LambdaReport {
                memory_mb: opts.memory_mb,
                function: String::new(),
                extensions: Vec::new(),
                summary: Summary::of(&done),
                invocations: done,
            })
        }
        other => other,
    };
    let report = report.map(|mut r| {
        r.function = label(&opts.function);
        r.extensions = extension_labels(opts);
        r
    });
    Interruptible { report, signalled }
}

/// The line above the dashboard of a run a signal cut short.
pub(crate) fn interrupted_line(report: &LambdaReport, invocations: u32) -> String {
    format!(
        "lxprof: interrupted: {} of {} invocations finished, recorded below\n",
        report.invocations.len(),
        invocations
    )
}

/// Runs the emulator as configured and writes `report.json`. SIGINT, SIGTERM
/// or SIGHUP shut every environment down; the invocations that finished are
/// still written and summarized (`interrupted` set).
pub fn run_lambda(
    opts: &LambdaRunOptions,
    command: Vec<String>,
) -> Result<LambdaRunOutcome, LambdaRunError> {
    // Configuration first: bad input is a clear error, root or not.
    let config = emulator_config(opts)?;
    config.validate().map_err(EmulatorError::from)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LambdaRunError::NotRoot);
    }
    let out = OutputDir::create(opts.output_dir.clone())?;
    let observer = Progress::new(opts.progress, opts.invocations);
    let Interruptible { report, signalled } =
        run_interruptible(opts, config, &observer, || std::thread::sleep(SIGNAL_POLL));
    observer.finish();
    let report = report?;
    let json = serde_json::to_vec_pretty(&RunReport {
        lxprof_version: env!("CARGO_PKG_VERSION"),
        command,
        lambda: &report,
    })
    .map_err(|e| EmulatorError::Internal(format!("serializing report.json: {e}")))?;
    let mut unwritten = Unwritten::default();
    let report_path = unwritten.keep(out.write_atomic("report.json", &json));
    let mut summary = String::new();
    if signalled {
        summary += &interrupted_line(&report, opts.invocations);
    }
    summary += &render_dashboard(&report);
    if let Some(path) = &report_path {
        summary += &format!("outputs:\n  report  {}\n", path.display());
    }
    Ok(LambdaRunOutcome {
        output_dir: out.path().to_path_buf(),
        report_path,
        report,
        summary,
        interrupted: signalled,
        unwritten,
    })
}

/// A preset name as is; a path by its file name (a `bootstrap` by its package's).
pub(crate) fn label(arg: &str) -> String {
    let p = Path::new(arg);
    let p = match p.parent() {
        Some(dir) if p.file_name().is_some_and(|n| n == "bootstrap") => dir,
        _ => p,
    };
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| arg.to_string())
}

fn ms(s: &Stats) -> String {
    if s.max >= 1000.0 {
        format!("{:.0} ms / {:.2} s", s.avg, s.max / 1000.0)
    } else {
        format!("{:.2} ms / {:.2} ms", s.avg, s.max)
    }
}

/// The names of the run's extensions: each `--extension` (its file name) and the
/// `extensions/*` of each `--layer`, as Lambda starts them.
pub fn extension_labels(opts: &LambdaRunOptions) -> Vec<String> {
    let mut names: Vec<String> = opts.extensions.iter().map(|e| label(e)).collect();
    for layer in &opts.layers {
        let mut found: Vec<String> = std::fs::read_dir(layer.join("extensions"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        names.extend(found);
    }
    names
}

/// The AWS sample's dashboard, in words: avg/max Duration,
/// PostRuntimeExtensionsDuration, memory used, cold starts, failures.
pub fn render_dashboard(report: &LambdaReport) -> String {
    let s = &report.summary;
    let n = report.invocations.len();
    let ok = report
        .invocations
        .iter()
        .filter(|i| i.status == Status::Success)
        .count();
    let ext = if report.extensions.is_empty() {
        "no extension".to_string()
    } else {
        report.extensions.join(", ")
    };
    let mut out = format!(
        "lxprof: {} × {} at {} MB with {}: {} of {} succeeded\n",
        n, report.function, report.memory_mb, ext, ok, n
    );
    out += &format!(
        "  Duration (avg / max)                       {}\n",
        ms(&s.duration_ms)
    );
    out += &format!(
        "  PostRuntimeExtensionsDuration (avg / max)  {}\n",
        ms(&s.post_runtime_extensions_duration_ms)
    );
    out += &format!(
        "  Memory used (avg / max) vs allocated       {:.0} / {} MB of {} MB\n",
        s.max_memory_used_mb.avg, s.max_memory_used_mb.max, report.memory_mb
    );
    if s.cold_starts > 0 {
        out += &format!(
            "  Cold starts                                {} (init avg / max {})\n",
            s.cold_starts,
            ms(&s.init_duration_ms)
        );
    }
    let failed: Vec<&InvocationMetrics> = report
        .invocations
        .iter()
        .filter(|i| i.status != Status::Success)
        .collect();
    for f in failed.iter().take(5) {
        out += &format!(
            "  {} {}: {}",
            f.status.as_str(),
            f.request_id,
            f.error_type.as_deref().unwrap_or("-")
        );
        if let Some(m) = &f.error_message {
            out += &format!(" ({m})");
        }
        out.push('\n');
    }
    let warned: Vec<&InvocationMetrics> = report
        .invocations
        .iter()
        .filter(|i| !i.warnings.is_empty())
        .collect();
    for w in warned.iter().take(5) {
        out += &format!("  warning {}: {}\n", w.request_id, w.warnings.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_state_needs_a_live_pid() {
        let me = std::process::id();
        let live = format!("PID={me}\nPORT=5000\nBUCKET=b1\nENDPOINT=http://127.0.0.1:5000\n");
        assert_eq!(
            parse_s3_state(&live),
            Some(("http://127.0.0.1:5000".into(), Some("b1".into())))
        );
        // pid_max is at most 2^22 on Linux: this pid cannot exist.
        assert_eq!(parse_s3_state("PID=99999999\nENDPOINT=http://x\n"), None);
        assert_eq!(parse_s3_state("garbage"), None);
    }

    #[test]
    fn a_tls_state_gives_each_runtime_its_trust_setting() {
        let tls = "PID=1\nENDPOINT=https://127.0.0.1:5\nCA_FILE=/v/ca.pem\n\
                   CA_BUNDLE=/v/bundle.pem\nMONO_CONFIG_HOME=/v/mono\n";
        assert_eq!(
            parse_s3_trust(tls),
            vec![
                ("SSL_CERT_FILE".to_string(), "/v/bundle.pem".to_string()),
                ("NODE_EXTRA_CA_CERTS".to_string(), "/v/ca.pem".to_string()),
                ("XDG_CONFIG_HOME".to_string(), "/v/mono".to_string()),
            ]
        );
        assert!(parse_s3_trust("PID=1\nENDPOINT=http://127.0.0.1:5\n").is_empty());
    }

    #[test]
    fn explicit_endpoint_sets_collector_settings() {
        let mut o = LambdaRunOptions::new();
        o.extensions = vec!["rust-event-collector".into()];
        o.s3_endpoint = Some("http://127.0.0.1:9".into());
        let env = s3_env(&o).unwrap();
        assert!(env.contains(&("AWS_ENDPOINT_URL_S3".into(), "http://127.0.0.1:9".into())));
        assert!(env.contains(&("EVENT_COLLECTOR_BUCKET".into(), DEFAULT_BUCKET.into())));
    }

    #[test]
    fn own_layers_and_files_get_the_collector_settings_and_are_named() {
        let dir = std::env::temp_dir().join(format!("lxprof-own-layer-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("extensions")).expect("mkdir");
        std::fs::write(dir.join("extensions/my-collector"), b"#!/bin/sh\n").expect("write");
        let mut o = LambdaRunOptions::new();
        o.layers = vec![dir.clone()];
        o.s3_endpoint = Some("http://127.0.0.1:9".into());
        let env = s3_env(&o).unwrap();
        assert!(env.contains(&("EVENT_COLLECTOR_BUCKET".into(), DEFAULT_BUCKET.into())));
        assert!(env.contains(&("AWS_ENDPOINT_URL_S3".into(), "http://127.0.0.1:9".into())));
        let mut f = LambdaRunOptions::new();
        f.extensions = vec![dir.join("extensions/my-collector").display().to_string()];
        f.s3_endpoint = o.s3_endpoint.clone();
        assert!(
            s3_env(&f)
                .unwrap()
                .iter()
                .any(|(k, _)| k == "EVENT_COLLECTOR_BUCKET")
        );
        o.extensions = vec!["rust-blank".into()];
        assert_eq!(extension_labels(&o), vec!["rust-blank", "my-collector"]);
        // A preset that is no collector, without layers: no S3 settings.
        let mut b = LambdaRunOptions::new();
        b.extensions = vec!["rust-blank".into()];
        assert!(
            !s3_env(&b)
                .unwrap()
                .iter()
                .any(|(k, _)| k == "EVENT_COLLECTOR_BUCKET")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn env_paths_the_environment_cannot_see_are_named() {
        let env = vec![
            ("A".to_string(), "/tmp".to_string()),
            ("B".to_string(), "/etc/hostname".to_string()),
            ("C".to_string(), "/tmp/lxprof-no-such-file".to_string()),
            ("D".to_string(), "plain".to_string()),
        ];
        let w = hidden_env_paths(&env);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("--env A=/tmp:"), "{w:?}");
    }

    #[test]
    fn labels_are_file_names() {
        assert_eq!(label("rust-blank"), "rust-blank");
        assert_eq!(label("/x/y/my-ext"), "my-ext");
        assert_eq!(label("/x/pkg/bootstrap"), "pkg");
    }
}
