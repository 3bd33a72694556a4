//! `lxprof suite`: the AWS experiment's matrix — the function alone and with
//! each extension, at each memory size — each scenario recorded by
//! [`record_lambda`] into `DIR/<memory>mb/<scenario>/`, its figures read back
//! from that recording's `report.json`, and the whole written as `suite.md`
//! (tables in the AWS dashboard's terms) and `suite.json`.
//!
//! A scenario that cannot run (preset not built, AOT images missing, no S3,
//! a failed recording) is an error row, not the end of the suite. Ctrl-C
//! stops after the current scenario (a recording in progress shuts its
//! environments down) and the tables still hold what finished.

pub mod charts;
pub mod html;
pub mod insight;
pub mod markdown;
pub mod results;
pub mod scenario;
pub mod seed;
pub mod versus;
pub mod why;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lxprof_emulator::{EmulatorError, presets};
use serde::Serialize;

use crate::lambda::{LambdaRunError, LambdaRunOptions};
use crate::output::{OutputDir, OutputError};
use crate::preflight::{self, PreflightError};
use crate::probes::AllocMode;
use crate::record::SignalGuard;
use crate::record::lambda::{LambdaRecordError, LambdaRecordOptions, record_lambda};

pub use results::ScenarioMetrics;

/// The main job's load: requests per scenario and how many in flight. The
/// seed sent 5,000 with 250 in flight; on a 2-core machine 200 with 10 in
/// flight keeps `scripts/demo.sh` within 10 minutes and still cold-starts
/// 10 or more environments per scenario (`--invocations 5000 --concurrency
/// 250` runs the seed's load where a machine allows).
pub const DEFAULT_INVOCATIONS: u32 = 200;
pub const DEFAULT_CONCURRENCY: u32 = 10;
pub use scenario::{DEFAULT_SCENARIOS, DEFAULT_SUITE_FUNCTION, NO_EXTENSION, Scenario};

/// Options of `lxprof suite`.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The function (preset name or package directory).
    pub function: String,
    /// The matrix's columns, in order (default: [`Scenario::defaults`]).
    pub scenarios: Vec<Scenario>,
    /// Memory sizes in MB, in order.
    pub memory_mb: Vec<u32>,
    /// Invocations per scenario.
    pub invocations: u32,
    /// Requests in flight per scenario.
    pub concurrency: u32,
    /// Most environments per scenario (Lambda's concurrency limit).
    pub max_environments: u32,
    /// Function timeout (the whole invoke phase).
    pub timeout: Duration,
    /// Extra environment for every function and extension.
    pub env: Vec<(String, String)>,
    /// S3-compatible endpoint for the event collectors (default: a running
    /// `scripts/local-s3.sh` server, as `lxprof run` resolves it).
    pub s3_endpoint: Option<String>,
    pub bucket: Option<String>,
    /// Allocation probes of each recording.
    pub alloc: AllocMode,
    /// Stack sampling frequency of each recording; None: off.
    pub freq: Option<u32>,
    /// Output directory; default `./lxprof-out/<UTC timestamp>/`.
    pub output_dir: Option<PathBuf>,
    /// A progress bar over the scenarios on stderr.
    pub progress: bool,
}

impl SuiteOptions {
    /// The AWS experiment scaled to one machine: every scenario at 128 and
    /// 512 MB, [`DEFAULT_INVOCATIONS`] requests with [`DEFAULT_CONCURRENCY`]
    /// in flight and up to twice that many environments, a 30 s timeout (slow
    /// extensions show as long durations rather than timeouts), default
    /// recording settings.
    pub fn new() -> SuiteOptions {
        SuiteOptions {
            function: DEFAULT_SUITE_FUNCTION.to_string(),
            scenarios: Scenario::defaults(),
            memory_mb: vec![128, 512],
            invocations: DEFAULT_INVOCATIONS,
            concurrency: DEFAULT_CONCURRENCY,
            max_environments: 2 * DEFAULT_CONCURRENCY,
            timeout: Duration::from_secs(30),
            env: Vec::new(),
            s3_endpoint: None,
            bucket: None,
            alloc: AllocMode::default(),
            freq: Some(499),
            output_dir: None,
            progress: false,
        }
    }

    /// The recording options of one scenario.
    fn record_options(&self, sc: &Scenario, memory_mb: u32, dir: PathBuf) -> LambdaRecordOptions {
        let mut run = LambdaRunOptions::new();
        run.function = sc.function.clone().unwrap_or_else(|| self.function.clone());
        run.extensions = sc.extension.iter().cloned().collect();
        run.memory_mb = memory_mb;
        run.timeout = self.timeout;
        run.invocations = self.invocations;
        run.concurrency = self.concurrency;
        run.max_environments = Some(self.max_environments);
        run.env = self.env.clone();
        run.s3_endpoint = self.s3_endpoint.clone();
        run.bucket = self.bucket.clone();
        run.output_dir = Some(dir);
        run.progress = false;
        // One line per scenario, not a REPORT line per invocation under the bar.
        run.print_reports = false;
        let mut o = LambdaRecordOptions::new(run);
        o.alloc = self.alloc;
        o.freq = self.freq.filter(|&f| f > 0);
        o
    }
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ScenarioStatus {
    /// Recorded; the figures of its report.json.
    Ok { metrics: ScenarioMetrics },
    /// Could not run or its recording failed.
    Failed { error: String },
    /// Stopped by Ctrl-C while recording (nothing written for it).
    Interrupted,
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    pub memory_mb: u32,
    /// `no-extension`, `rust-blank`, …
    pub scenario: String,
    /// The extension argument (None: the function alone).
    pub extension: Option<String>,
    /// The recording's directory, relative to the suite's.
    pub dir: PathBuf,
    /// The extension's files on disk (None: no extension, or not found).
    pub extension_size_bytes: Option<u64>,
    /// Wall-clock time of the recording.
    pub seconds: f64,
    #[serde(flatten)]
    pub status: ScenarioStatus,
    /// SIGINT/SIGTERM arrived during the recording (it finished anyway):
    /// the suite stops after it.
    #[serde(skip)]
    pub interrupted: bool,
}

/// The settings written at the top of suite.md and in suite.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteSettings {
    pub function: String,
    pub memory_mb: Vec<u32>,
    pub invocations: u32,
    pub concurrency: u32,
    pub max_environments: u32,
    pub timeout_s: f64,
    pub freq: Option<u32>,
    pub alloc: String,
    /// Ctrl-C stopped the suite early.
    pub interrupted: bool,
    /// Where the event collectors wrote (the endpoint's scheme and host, or
    /// "AWS S3"); None when not known.
    pub s3: Option<String>,
    /// This machine's CPU model (`/proc/cpuinfo`).
    pub cpu: Option<String>,
    /// CPUs this process may run on.
    pub cpus: usize,
}

/// What a finished (or interrupted) suite produced.
#[derive(Debug)]
pub struct SuiteOutcome {
    pub output_dir: PathBuf,
    /// `(label, path)`: suite.md, suite.json.
    pub outputs: Vec<(String, PathBuf)>,
    /// Every scenario that ran, in order.
    pub results: Vec<ScenarioResult>,
    /// suite.md's text, for the terminal.
    pub summary: String,
    /// Ctrl-C stopped the suite before every scenario ran.
    pub interrupted: bool,
}

impl SuiteOutcome {
    /// True when every scenario recorded and all its invocations succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.results.iter().all(|r| match &r.status {
            ScenarioStatus::Ok { metrics } => metrics.failures.is_empty(),
            _ => false,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("lxprof suite needs root (BPF, cgroups, mount namespaces): run it with sudo")]
    NotRoot,
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("{0}; build the presets with extensions/build.sh (scripts/setup.sh runs it)")]
    Function(#[from] presets::PresetError),
    #[error("nothing to run: give at least one memory size and one scenario")]
    Empty,
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("cannot serialize suite.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs the matrix; `command` is recorded in each report.json.
pub fn run_suite(opts: &SuiteOptions, command: Vec<String>) -> Result<SuiteOutcome, SuiteError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(SuiteError::NotRoot);
    }
    preflight::check_system()?;
    let build = presets::build_dir();
    presets::resolve_function(&opts.function, build.as_deref())?;
    let mut memory: Vec<u32> = Vec::new();
    for &m in &opts.memory_mb {
        if !memory.contains(&m) {
            memory.push(m);
        }
    }
    if memory.is_empty() || opts.scenarios.is_empty() {
        return Err(SuiteError::Empty);
    }
    let out = OutputDir::create(opts.output_dir.clone())?;
    let total = memory.len() * opts.scenarios.len();
    let bar = progress_bar(opts.progress, total);
    // Between recordings a signal stops the suite; during one, the
    // recording cancels its run and reports it (`interrupted`).
    let signals = SignalGuard::install();
    let mut results = Vec::new();
    let mut interrupted = false;
    'matrix: for &mem in &memory {
        for sc in &opts.scenarios {
            if let Some(b) = &bar {
                b.set_message(format!("{mem} MB {}", sc.name));
            }
            let rel = PathBuf::from(format!("{mem}mb")).join(&sc.name);
            let r = run_scenario(opts, sc, mem, build.as_deref(), out.path(), rel, &command);
            let line = format!("[{}/{total}] {}", results.len() + 1, one_line(&r));
            match &bar {
                Some(b) => {
                    b.println(line);
                    b.inc(1);
                }
                None => eprintln!("{line}"),
            }
            let stop = r.status == ScenarioStatus::Interrupted
                || r.interrupted
                || SignalGuard::take().is_some();
            results.push(r);
            if stop {
                interrupted = true;
                break 'matrix;
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    drop(signals);
    let settings = SuiteSettings {
        function: crate::lambda::label(&opts.function),
        memory_mb: memory,
        invocations: opts.invocations,
        concurrency: opts.concurrency,
        max_environments: opts.max_environments,
        timeout_s: opts.timeout.as_secs_f64(),
        freq: opts.freq.filter(|&f| f > 0),
        alloc: format!("{:?}", opts.alloc).to_lowercase(),
        interrupted,
        s3: s3_description(opts),
        cpu: cpu_model(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let (diffs, notes) = why::write_diffs(out.path(), &results);
    for n in &notes {
        eprintln!("lxprof suite: {n}");
    }
    let mut charts = Vec::new();
    for &mem in &settings.memory_mb {
        let rows: Vec<&ScenarioResult> = results.iter().filter(|r| r.memory_mb == mem).collect();
        charts.extend(why::charts(mem, &rows));
    }
    if !charts.is_empty() {
        let dir = OutputDir::create(Some(out.path().join("charts")))?;
        for c in &charts {
            let name = c.file.strip_prefix("charts/").unwrap_or(&c.file);
            dir.write_atomic(name, c.svg.as_bytes())?;
        }
    }
    let summary = markdown::render(&settings, &results, &charts, &diffs);
    let page = html::render(
        &format!("lxprof suite: {}", settings.function),
        &summary,
        &charts,
    );
    let json = serde_json::to_vec_pretty(&SuiteJson {
        lxprof_version: env!("CARGO_PKG_VERSION"),
        command: &command,
        settings: &settings,
        scenarios: &results,
    })?;
    let outputs = vec![
        (
            "suite".to_string(),
            out.write_atomic("suite.md", summary.as_bytes())?,
        ),
        (
            "suite-html".to_string(),
            out.write_atomic("suite.html", page.as_bytes())?,
        ),
        (
            "suite-json".to_string(),
            out.write_atomic("suite.json", &json)?,
        ),
    ];
    Ok(SuiteOutcome {
        output_dir: out.path().to_path_buf(),
        outputs,
        results,
        summary,
        interrupted,
    })
}

/// Where the collectors write: the scheme and host of the endpoint given or
/// found (a running `scripts/local-s3.sh`), else real S3.
fn s3_description(opts: &SuiteOptions) -> Option<String> {
    let url = opts
        .s3_endpoint
        .clone()
        .or_else(crate::lambda::local_s3_endpoint)?;
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next().unwrap_or(rest);
    Some(format!("{scheme}://{host}"))
}

/// The CPU model of this machine, as `/proc/cpuinfo` names it.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let model = text.lines().find_map(|l| {
        l.strip_prefix("model name")?
            .split_once(':')
            .map(|(_, v)| v.trim().to_string())
    })?;
    Some(model)
}

#[derive(Serialize)]
struct SuiteJson<'a> {
    lxprof_version: &'static str,
    command: &'a [String],
    settings: &'a SuiteSettings,
    scenarios: &'a [ScenarioResult],
}

/// Checks, records and reads back one scenario.
fn run_scenario(
    opts: &SuiteOptions,
    sc: &Scenario,
    mem: u32,
    build: Option<&Path>,
    root: &Path,
    rel: PathBuf,
    command: &[String],
) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult {
        memory_mb: mem,
        scenario: sc.name.clone(),
        extension: sc.extension.clone(),
        dir: rel.clone(),
        extension_size_bytes: None,
        seconds: 0.0,
        status: ScenarioStatus::Interrupted,
        interrupted: false,
    };
    result.status = match scenario::check(sc, build) {
        Err(e) => ScenarioStatus::Failed {
            error: e.to_string(),
        },
        Ok(footprint) => {
            result.extension_size_bytes = footprint.map(|f| scenario::size_on_disk(f.path()));
            let ropts = opts.record_options(sc, mem, root.join(&rel));
            match record(&ropts, command.to_vec()) {
                // Ctrl-C: the recording kept the invocations that finished
                // (in its directory); the row says it was cut short.
                Ok((_, true)) => {
                    result.interrupted = true;
                    ScenarioStatus::Interrupted
                }
                Ok((report, false)) => match results::read_report(&report) {
                    Ok(metrics) => ScenarioStatus::Ok { metrics },
                    Err(e) => ScenarioStatus::Failed {
                        error: e.to_string(),
                    },
                },
                Err(LambdaRecordError::Run(LambdaRunError::Emulator(EmulatorError::Cancelled))) => {
                    ScenarioStatus::Interrupted
                }
                Err(e) => ScenarioStatus::Failed {
                    error: e.to_string(),
                },
            }
        }
    };
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// Records one scenario; returns its report.json.
fn record(
    opts: &LambdaRecordOptions,
    command: Vec<String>,
) -> Result<(PathBuf, bool), LambdaRecordError> {
    let outcome = record_lambda(opts, command)?;
    Ok((outcome.output_dir.join("report.json"), outcome.interrupted))
}

/// The line printed when a scenario ends.
fn one_line(r: &ScenarioResult) -> String {
    let head = format!("{} MB {}", r.memory_mb, r.scenario);
    match &r.status {
        ScenarioStatus::Ok { metrics: m } => {
            let mut s = format!(
                "{head}: Duration {} / {}, PostRuntimeExtensionsDuration {} / {}",
                markdown::ms(m.duration_ms.avg),
                markdown::ms(m.duration_ms.max),
                markdown::ms(m.post_runtime_extensions_duration_ms.avg),
                markdown::ms(m.post_runtime_extensions_duration_ms.max),
            );
            if m.cold_starts > 0 {
                s += &format!(", cold start {}", markdown::ms(m.init_duration_ms.avg));
            }
            if !m.failures.is_empty() {
                s += &format!(", {} of {} failed", m.failures.len(), m.invocations);
            }
            s + &format!(" ({:.1} s)", r.seconds)
        }
        ScenarioStatus::Failed { error } => format!("{head}: error: {error}"),
        ScenarioStatus::Interrupted => format!("{head}: interrupted"),
    }
}

fn progress_bar(enabled: bool, total: usize) -> Option<indicatif::ProgressBar> {
    enabled.then(|| {
        let bar = crate::lambda::counting_bar("scenarios", total as u64);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_options_follow_the_suite() {
        let mut o = SuiteOptions::new();
        o.env = vec![("K".into(), "V".into())];
        o.s3_endpoint = Some("http://127.0.0.1:9".into());
        o.freq = Some(0);
        let sc = Scenario::parse("rust-event-collector");
        let r = o.record_options(&sc, 512, "/tmp/x".into());
        assert_eq!(r.run.extensions, vec!["rust-event-collector".to_string()]);
        assert_eq!((r.run.memory_mb, r.run.invocations), (512, 200));
        assert_eq!((r.run.concurrency, r.run.max_environments), (10, Some(20)));
        assert_eq!(r.run.env, o.env);
        assert_eq!(r.run.s3_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert!(!r.run.progress);
        assert_eq!(r.freq, None);
        let none = o.record_options(&Scenario::parse(NO_EXTENSION), 128, "/tmp/y".into());
        assert!(none.run.extensions.is_empty());
        assert_eq!(none.run.function, DEFAULT_SUITE_FUNCTION);
        let rust = o.record_options(
            &Scenario::parse("none@header-counter"),
            128,
            "/tmp/z".into(),
        );
        assert_eq!(rust.run.function, "header-counter");
    }

    #[test]
    fn lines_name_the_cell_and_the_error() {
        let r = ScenarioResult {
            memory_mb: 128,
            scenario: "csharp-aot-event-collector".into(),
            extension: Some("csharp-aot-event-collector".into()),
            dir: "128mb/csharp-aot-event-collector".into(),
            extension_size_bytes: None,
            seconds: 0.0,
            status: ScenarioStatus::Failed {
                error: "AOT images missing".into(),
            },
            interrupted: false,
        };
        assert_eq!(
            one_line(&r),
            "128 MB csharp-aot-event-collector: error: AOT images missing"
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["status"], "failed");
        assert_eq!(json["error"], "AOT images missing");
    }
}
