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
    Stats, Status,
    presets::{self, ExtensionSource, PresetError},
};
use serde::Serialize;

use crate::output::{OutputDir, OutputError};

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
    pub report_path: PathBuf,
    pub report: LambdaReport,
    /// The terminal summary.
    pub summary: String,
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
    config.layers.extend(opts.layers.iter().cloned());
    config.memory_mb = opts.memory_mb;
    config.timeout = opts.timeout;
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
        config.event = Some(bytes);
    }
    config.env = s3_env(opts)?;
    config.env.extend(opts.env.iter().cloned());
    Ok(config)
}

fn has_env(env: &[(String, String)], key: &str) -> bool {
    env.iter().any(|(k, _)| k == key)
}

/// Settings for extensions that write to S3 (none when no extension does).
fn s3_env(opts: &LambdaRunOptions) -> Result<Vec<(String, String)>, LambdaRunError> {
    let collector = opts
        .extensions
        .iter()
        .find(|e| e.contains("event-collector"));
    let user_endpoint =
        has_env(&opts.env, "AWS_ENDPOINT_URL_S3") || has_env(&opts.env, "AWS_ENDPOINT_URL");
    let local = local_s3_text();
    let local_endpoint = local.as_deref().and_then(parse_s3_state);
    let endpoint = match (&opts.s3_endpoint, collector) {
        (Some(url), _) => Some((url.clone(), opts.bucket.clone())),
        (None, Some(_)) if !user_endpoint => local_endpoint
            .clone()
            .map(|(url, bucket)| (url, opts.bucket.clone().or(bucket))),
        _ => None,
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
            if collector.is_some() || user_endpoint {
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

/// Runs the emulator as configured and writes `report.json`.
pub fn run_lambda(
    opts: &LambdaRunOptions,
    command: Vec<String>,
) -> Result<LambdaRunOutcome, LambdaRunError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LambdaRunError::NotRoot);
    }
    let config = emulator_config(opts)?;
    config.validate().map_err(EmulatorError::from)?;
    let out = OutputDir::create(opts.output_dir.clone())?;
    let function_label = label(&opts.function);
    let extension_labels: Vec<String> = opts.extensions.iter().map(|e| label(e)).collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LambdaRunError::Runtime)?;
    let observer = Progress::new(opts.progress, opts.invocations);
    let cancel = CancellationToken::new();
    let result = rt.block_on(async {
        let ctrl_c = cancel.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            eprintln!("lxprof: stopping: shutting every environment down");
            ctrl_c.cancel();
        });
        lxprof_emulator::run_cancellable(config, &observer, &cancel).await
    });
    observer.finish();
    let mut report = result?;
    report.function = function_label;
    report.extensions = extension_labels;
    let json = serde_json::to_vec_pretty(&RunReport {
        lxprof_version: env!("CARGO_PKG_VERSION"),
        command,
        lambda: &report,
    })
    .map_err(|e| EmulatorError::Internal(format!("serializing report.json: {e}")))?;
    let report_path = out.write_atomic("report.json", &json)?;
    let summary = render_summary(&report, &report_path);
    Ok(LambdaRunOutcome {
        output_dir: out.path().to_path_buf(),
        report_path,
        report,
        summary,
    })
}

/// A preset name as is; a path by its file name.
pub(crate) fn label(arg: &str) -> String {
    Path::new(arg)
        .file_name()
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

/// The AWS sample's dashboard, in words, then the report's path.
pub fn render_summary(report: &LambdaReport, report_path: &Path) -> String {
    let mut out = render_dashboard(report);
    out += &format!("outputs:\n  report  {}\n", report_path.display());
    out
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
            "  {} {}: {}\n",
            f.status.as_str(),
            f.request_id,
            f.error_type.as_deref().unwrap_or("-")
        );
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
    fn labels_are_file_names() {
        assert_eq!(label("rust-blank"), "rust-blank");
        assert_eq!(label("/x/y/my-ext"), "my-ext");
    }
}
