//! `lxprof record --lambda`: runs the emulated Lambda environment (crate
//! `lxprof-emulator`) under the recorder. Every process of every environment
//! is traced from its exec (the emulator adds it to the kernel's `traced` map
//! in its spawn gate, before the exec) and tagged with its role (`function`,
//! `extension:<name>`; descendants inherit it); lxprof's own process is
//! recorded as `emulator`, without the thread that reads the ring buffer.
//! The phase boundaries the emulator reports then attribute CPU, page faults
//! and allocations to each invocation and role.
//!
//! Threads: the emulator runs on its own tokio runtime in a scoped thread;
//! this thread drains the ring buffer, so a slow drain never delays a Lambda
//! API answer. Ctrl-C cancels the run: every environment is shut down, the
//! recording ends and the outputs are written.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lxprof_emulator::{EmulatorError, LambdaReport, PhaseEvent, Role, RunObserver};
use serde_json::Value;

use crate::export::lambda_attrib::{LambdaRun, attribute};
use crate::export::lambda_report::{lambda_section, render_role_summary};
use crate::export::{chrome, lambda_trace, report};
use crate::lambda::{self, Interruptible, LambdaRunError, LambdaRunOptions, Progress};
use crate::launch;
use crate::model::{Recording, RecordingInfo};
use crate::output::{OutputDir, Unwritten};
use crate::preflight;
use crate::probes::{AllocMode, EventReader, ProbeError, Probes};
use crate::rawlog::Meta;
use crate::record::{
    RecordError, SignalGuard, Sink, Stopped, monotonic_ns, stop_recording, write_outputs,
};

/// Longest wait for records between drains.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How often dead pids are pruned from the `traced` map.
const PRUNE_EVERY: Duration = Duration::from_millis(250);
pub use crate::export::lambda_attrib::EMULATOR_ROLE;

/// Options of `lxprof record --lambda`.
#[derive(Debug, Clone)]
pub struct LambdaRecordOptions {
    /// What to run (function, extensions, memory, invocations, output dir, progress…).
    pub run: LambdaRunOptions,
    /// Allocation probes.
    pub alloc: AllocMode,
    /// cpu-clock stack sampling frequency in Hz; None or 0: no sampling.
    pub freq: Option<u32>,
    /// Bytes of user stack copied per sample; None: the default.
    pub stack_bytes: Option<u32>,
    /// Size of the kernel ring buffer in bytes (power of two); default 16 MiB.
    pub ring_buffer_bytes: Option<u32>,
    /// Stints of a thread closer together than this share an on-CPU
    /// interval (0: one per stint); default 1 ms.
    pub oncpu_window_ns: Option<u64>,
}

impl LambdaRecordOptions {
    /// Recorder defaults around `run`.
    pub fn new(run: LambdaRunOptions) -> LambdaRecordOptions {
        LambdaRecordOptions {
            run,
            alloc: AllocMode::default(),
            freq: None,
            stack_bytes: None,
            ring_buffer_bytes: None,
            oncpu_window_ns: None,
        }
    }
}

/// What a finished Lambda recording produced.
#[derive(Debug)]
pub struct LambdaRecordOutcome {
    pub output_dir: PathBuf,
    /// `(label, path)` of every file written (trace, report, events, flamegraphs…).
    pub outputs: Vec<(String, PathBuf)>,
    /// The emulator's metrics (per invocation, summary).
    pub report: LambdaReport,
    /// The terminal summary.
    pub summary: String,
    /// Kernel records lost (ring buffer full).
    pub lost_events: u64,
    /// The model the outputs were written from (roles set).
    pub recording: Recording,
    /// What the emulator reported during the run.
    pub timeline: Timeline,
    /// SIGINT/SIGTERM/SIGHUP arrived (the run was cancelled, or the signal came
    /// while the outputs were written): a caller running several recordings stops.
    pub interrupted: bool,
    /// Outputs that could not be written (the others were).
    pub unwritten: Unwritten,
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaRecordError {
    #[error(transparent)]
    Run(#[from] LambdaRunError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
}

impl From<EmulatorError> for LambdaRecordError {
    fn from(e: EmulatorError) -> Self {
        LambdaRecordError::Run(e.into())
    }
}

/// What the emulator reported while running: who was spawned where, phase
/// boundaries and the environments' memory (absolute CLOCK_MONOTONIC ns).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// `(environment, pid, role)` of every process the emulator started, in order.
    pub spawned: Vec<(usize, u32, String)>,
    /// `(environment, event, ns)`.
    pub phases: Vec<(usize, PhaseEvent, u64)>,
    /// `(environment, ns, bytes)`: cgroup memory samples.
    pub memory: Vec<(usize, u64, u64)>,
}

/// The role name of an emulator [`Role`]: `function` or `extension:<name>`.
pub fn role_name(role: &Role) -> String {
    match role {
        Role::Function => "function".to_string(),
        Role::Extension(n) => format!("extension:{n}"),
    }
}

/// The observer given to the emulator: traces each spawned process before
/// its exec and keeps the timeline.
struct Recorder<'a> {
    probes: &'a Mutex<Probes>,
    timeline: Mutex<Timeline>,
    /// Roles not yet handed to the sink (the drain thread owns it).
    new_roles: Mutex<Vec<(u32, String)>>,
    /// Tracing failures (a full `traced` map): reported after the run.
    errors: Mutex<Vec<String>>,
    progress: Progress,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RunObserver for Recorder<'_> {
    fn process_spawned(&self, env: usize, pid: u32, role: &Role) {
        if let Err(e) = lock(self.probes).trace_pid(pid, pid) {
            lock(&self.errors).push(format!("pid {pid} ({role}): {e}"));
        }
        let name = role_name(role);
        lock(&self.new_roles).push((pid, name.clone()));
        lock(&self.timeline).spawned.push((env, pid, name));
    }

    fn phase(&self, env: usize, event: PhaseEvent, ns: u64) {
        lock(&self.timeline).phases.push((env, event, ns));
    }

    fn progress(&self, done: u32, total: u32) {
        self.progress.set(done, total);
    }

    fn memory(&self, env: usize, ns: u64, bytes: u64) {
        lock(&self.timeline).memory.push((env, ns, bytes));
    }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Records a Lambda run; see the module docs.
pub fn record_lambda(
    opts: &LambdaRecordOptions,
    command: Vec<String>,
) -> Result<LambdaRecordOutcome, LambdaRecordError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LambdaRunError::NotRoot.into());
    }
    // Configuration first: a typo in a preset name needs no probes.
    let mut config = lambda::emulator_config(&opts.run)?;
    // Make JIT'd code visible in any runtime the function or an extension
    // starts (a Mono/Node/JVM/.NET setting affects only its own runtime).
    crate::runtime_env::merge_env(&mut config.env, &crate::runtime_env::profiling_env(""));
    config.validate().map_err(EmulatorError::from)?;
    preflight::check_system().map_err(RecordError::from)?;
    let (probes, reader) = super::load_probes(
        opts.ring_buffer_bytes,
        opts.freq,
        opts.stack_bytes,
        opts.alloc,
        opts.oncpu_window_ns,
    )?;
    let out = OutputDir::create(opts.run.output_dir.clone()).map_err(RecordError::from)?;
    record_into(opts, config, command, probes, reader, &out)
}

/// The recording proper, once the probes are loaded and the directory exists.
fn record_into(
    opts: &LambdaRecordOptions,
    config: lxprof_emulator::EmulatorConfig,
    command: Vec<String>,
    mut probes: Probes,
    mut reader: EventReader,
    out: &OutputDir,
) -> Result<LambdaRecordOutcome, LambdaRecordError> {
    let _signals = SignalGuard::install();
    let start_ns = monotonic_ns();
    let mut sink = Sink::new(
        start_ns,
        &out.path().join("events.bin"),
        opts.freq.is_some_and(|f| f > 0),
    );
    // lxprof itself is the emulator; this thread only reads the ring buffer.
    let self_pid = std::process::id();
    sink.skip_tid = Some(gettid());
    sink.set_alloc(opts.alloc);
    probes.trace_pid(self_pid, self_pid)?;
    if let Some(seed) = launch::seed(self_pid) {
        sink.meta(Meta::Seed(seed));
    }
    sink.meta(Meta::Role {
        pid: self_pid,
        role: EMULATOR_ROLE.to_string(),
    });

    let probes = Mutex::new(probes);
    let recorder = Recorder {
        probes: &probes,
        timeline: Mutex::new(Timeline::default()),
        new_roles: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        progress: Progress::new(opts.run.progress, opts.run.invocations),
    };
    let _span = tracing::info_span!("recording").entered();
    let mut last_prune = Instant::now();
    let Interruptible { report, signalled } =
        lambda::run_interruptible(&opts.run, config, &recorder, || {
            reader.wait(POLL_EVERY);
            sink.drain(&mut reader);
            // Processes that exec'd a libc not probed yet (`--alloc full`).
            sink.watch_libcs(&mut lock(&probes));
            for (pid, role) in std::mem::take(&mut *lock(&recorder.new_roles)) {
                sink.meta(Meta::Role { pid, role });
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                if let Some(cap) = sink.stacks.as_mut() {
                    cap.refresh();
                }
                let mut p = lock(&probes);
                for pid in p.traced_pids() {
                    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                        p.untrace_pid(pid);
                    }
                }
            }
        });
    drop(_span);
    recorder.progress.finish();
    for (pid, role) in std::mem::take(&mut *lock(&recorder.new_roles)) {
        sink.meta(Meta::Role { pid, role });
    }
    for e in lock(&recorder.errors).iter() {
        tracing::warn!("not traced: {e}");
    }
    let timeline = std::mem::take(&mut *lock(&recorder.timeline));
    drop(recorder);
    let probes = probes.into_inner().unwrap_or_else(|p| p.into_inner());
    let lambda_report = match report {
        Ok(r) => r,
        Err(e) => {
            // Detach the probes and leave nothing half-written.
            drop(probes);
            return Err(e.into());
        }
    };

    let info = RecordingInfo {
        command: command.clone(),
        root_pid: Some(self_pid),
        ..Default::default()
    };
    let spawned = timeline.spawned.clone();
    let Stopped {
        recording,
        explained,
        events_path,
        mut unwritten,
        ..
    } = stop_recording(probes, reader, sink, info, start_ns, out, |rec| {
        inherit_roles(rec, self_pid, &spawned)
    })?;

    let run = LambdaRun {
        rec: &recording,
        start_ns,
        spawned: &timeline.spawned,
        phases: &timeline.phases,
        report: &lambda_report,
        memory: &timeline.memory,
        samples: explained.as_ref().map_or(&[], |e| e.samples.as_slice()),
    };
    let attribution = {
        let _span = tracing::info_span!("attribute").entered();
        attribute(&run)
    };
    let lambda_events = lambda_trace::lambda_events(&run, &attribution);
    let mut report_json: Value =
        serde_json::from_slice(&report::to_json(&recording)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut report_json {
        map.insert(
            "lambda".into(),
            lambda_section(&lambda_report, &attribution),
        );
    }
    let report_bytes = serde_json::to_vec_pretty(&report_json).unwrap_or_default();
    let (outputs, record_summary) = write_outputs(
        out,
        &recording,
        |w| chrome::write_json_with(&recording, &lambda_events, w),
        &report_bytes,
        events_path,
        explained.as_ref(),
        &mut unwritten,
    );
    let interrupted = signalled || SignalGuard::take().is_some();
    let mut summary = String::new();
    if interrupted {
        summary += &lambda::interrupted_line(&lambda_report, opts.run.invocations);
    }
    summary += &lambda::render_dashboard(&lambda_report);
    summary.push_str(&render_role_summary(&attribution));
    summary.push_str(&record_summary);
    Ok(LambdaRecordOutcome {
        output_dir: out.path().to_path_buf(),
        outputs,
        report: lambda_report,
        summary,
        lost_events: recording.info.lost_events,
        recording,
        timeline,
        interrupted,
        unwritten,
    })
}

/// Sets each process's role: `emulator` for lxprof, the emulator's role for
/// the processes it spawned, and the nearest such ancestor's for the others
/// (a runtime's helper processes count as the runtime).
fn inherit_roles(rec: &mut Recording, self_pid: u32, spawned: &[(usize, u32, String)]) {
    let mut explicit: HashMap<u32, String> = spawned
        .iter()
        .map(|(_, pid, role)| (*pid, role.clone()))
        .collect();
    explicit.insert(self_pid, EMULATOR_ROLE.to_string());
    let roles = rec.nearest_ancestor_in(&explicit);
    for (p, role) in rec.processes.iter_mut().zip(roles) {
        if let Some(role) = role {
            p.role = role.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Process;

    fn proc(pid: u32, ppid: u32) -> Process {
        Process {
            pid,
            ppid,
            role: "descendant".into(),
            ..Default::default()
        }
    }

    #[test]
    fn roles_are_inherited_from_the_nearest_spawned_ancestor() {
        let mut rec = Recording {
            processes: vec![
                proc(10, 1),
                proc(20, 10),
                proc(30, 20),
                proc(40, 10),
                proc(50, 99),
            ],
            ..Default::default()
        };
        let spawned = vec![
            (0, 20, "function".to_string()),
            (0, 40, "extension:x".into()),
        ];
        inherit_roles(&mut rec, 10, &spawned);
        let roles: Vec<&str> = rec.processes.iter().map(|p| p.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "emulator",
                "function",
                "function",
                "extension:x",
                "descendant"
            ]
        );
    }

    #[test]
    fn role_names() {
        assert_eq!(role_name(&Role::Function), "function");
        assert_eq!(role_name(&Role::Extension("a".into())), "extension:a");
    }
}
