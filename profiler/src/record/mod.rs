//! `lxprof record`: one recording from start to written outputs.
//!
//! [`record`] runs the preflight checks, loads the probes, launches the
//! command suspended (or attaches to `--pid` and its tree), drains the ring
//! buffer into the model builder and the raw log (`events.bin`) until the
//! tree is gone, the duration elapsed or a signal came, then writes
//! `trace.json` and `report.json` atomically.
//!
//! Stopping: SIGINT/SIGTERM are forwarded to a launched command (unless the
//! terminal sent it to the whole process group already: Ctrl-C is delivered
//! once, not twice) and the recording continues until its tree is gone (a second signal, or
//! [`SIGNAL_GRACE`], stops it at once); with `--pid` a signal stops the
//! recording and the process is left alone. `duration` on a launched command
//! stops the recording at the deadline and leaves the command running.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub mod lambda;
mod signals;
mod sink;

pub(crate) use signals::SignalGuard;
pub(crate) use sink::Sink;

use crate::counters::TreeCounters;
use crate::explain;
use crate::export::{chrome, report, summary};
use crate::launch::{self, LaunchError, Launched};
use crate::model::{ExitStatus, Recording, RecordingInfo, SeedProcess};
use crate::output::{OutputDir, OutputError, Unwritten};
use crate::preflight::{self, PreflightError};
use crate::probes::{AllocMode, EventReader, ProbeError, ProbeOptions, Probes};
use crate::rawlog::{Meta, RawLogError};

/// What to record.
#[derive(Debug, Clone)]
pub enum Target {
    /// Launch this command (program and arguments) and follow its process tree.
    Command(Vec<OsString>),
    /// Follow an existing process and its descendants.
    Pid(u32),
}

/// Options of one recording (the CLI translates its flags into this).
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub target: Target,
    /// Stop after this long (default: when the target exits, or on Ctrl-C).
    pub duration: Option<Duration>,
    /// Output directory; default `./lxprof-out/<UTC timestamp>/`.
    pub output_dir: Option<PathBuf>,
    /// Size of the kernel ring buffer in bytes (power of two); default 16 MiB.
    pub ring_buffer_bytes: Option<u32>,
    /// cpu-clock stack sampling frequency in Hz; None or 0: no sampling.
    pub freq: Option<u32>,
    /// Bytes of user stack copied per sample; None: the default.
    pub stack_bytes: Option<u32>,
    /// Allocation probes.
    pub alloc: AllocMode,
    /// Stints of a thread closer together than this share an on-CPU
    /// interval (0: one per stint); default 1 ms.
    pub oncpu_window_ns: Option<u64>,
    /// Also count the launched tree with inherited perf-event software
    /// counters (task-clock, faults, context switches) as a cross-check
    /// (`--perf-counters`); off by default: they cost every context switch.
    pub perf_counters: bool,
}

impl RecordOptions {
    /// Defaults for everything but the target.
    pub fn new(target: Target) -> RecordOptions {
        RecordOptions {
            target,
            duration: None,
            output_dir: None,
            ring_buffer_bytes: None,
            freq: None,
            stack_bytes: None,
            alloc: AllocMode::default(),
            oncpu_window_ns: None,
            perf_counters: false,
        }
    }
}

/// After a forwarded signal, how long to wait for the tree to exit.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(5);
/// Longest wait for records between drains (the kernel wakes the reader
/// earlier when a quarter of the ring buffer is full).
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How often dead pids are pruned from the `traced` map.
const PRUNE_EVERY: Duration = Duration::from_millis(250);

/// What a finished recording produced.
#[derive(Debug, Clone)]
pub struct RecordOutcome {
    pub output_dir: PathBuf,
    /// `(label, path)` of every file written: trace, report, events.
    pub outputs: Vec<(String, PathBuf)>,
    /// The terminal summary.
    pub summary: String,
    /// How the launched command ended (None with `--pid`, or when it was
    /// still running at the end of `duration`).
    pub exit_status: Option<ExitStatus>,
    /// The signal that stopped the recording, if any.
    pub stopped_by_signal: Option<i32>,
    /// Kernel records read, lost (ring buffer full), undecodable.
    pub records: u64,
    pub lost_events: u64,
    pub decode_errors: u64,
    /// Children or on-CPU intervals not followed because a kernel map was
    /// full (logged as a warning; 0 normally).
    pub map_full: u64,
    /// The model the outputs were written from.
    pub recording: Recording,
    /// Outputs that could not be written (the others were).
    pub unwritten: Unwritten,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("writing the raw event log: {0}")]
    RawLog(#[from] RawLogError),
    #[error("process {pid} and its tree exited before lxprof could follow them")]
    TargetGone { pid: u32 },
}

/// CLOCK_MONOTONIC now, in ns: the clock of `bpf_ktime_get_ns` and of the
/// emulator's phase times (one definition, shared with the emulator).
pub use lxprof_emulator::metrics::monotonic_ns;

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A started target: the launched child (if any), the perf counters (if
/// available), the root pid and the command line.
struct Started {
    launched: Option<Launched>,
    perf: Option<TreeCounters>,
    root_pid: u32,
    command: Vec<String>,
}

/// Launches the command or attaches to the pid and its tree.
fn start_target(
    opts: &RecordOptions,
    probes: &mut Probes,
    sink: &mut Sink,
) -> Result<Started, RecordError> {
    match &opts.target {
        Target::Command(argv) => {
            let name = argv.first().cloned().unwrap_or_default();
            let path = preflight::resolve_command(&name)?;
            let command: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            // Make JIT'd code visible: perf maps and frame pointers of known runtimes.
            let runtime_env = crate::runtime_env::profiling_env(&path.to_string_lossy());
            let child = launch::spawn_suspended(&path, argv, &runtime_env)?;
            let pid = child.pid();
            probes.trace_pid(pid, pid)?;
            // Inherited perf-event counters cost every context switch of the
            // tree (~20 % of a pipe ping-pong here): only on request.
            let counters = opts
                .perf_counters
                .then(|| {
                    TreeCounters::open_before_exec(pid)
                        .map_err(|e| tracing::warn!("{e}"))
                        .ok()
                })
                .flatten();
            let comm: String = path
                .file_name()
                .map(|n| n.to_string_lossy().chars().take(15).collect())
                .unwrap_or_default();
            sink.meta(Meta::Seed(SeedProcess {
                pid,
                ppid: std::process::id(),
                comm: comm.clone(),
                exe: None,
                cmdline: command.clone(),
                threads: vec![(pid, comm)],
            }));
            let launched = child.release()?;
            Ok(Started {
                launched: Some(launched),
                perf: counters,
                root_pid: pid,
                command,
            })
        }
        Target::Pid(pid) => {
            let pid = *pid;
            preflight::check_pid(pid)?;
            let mut seen = Vec::new();
            // Walk twice: processes forked during the first walk by a parent
            // not yet traced are caught by the second one.
            for _ in 0..2 {
                for p in launch::process_tree(pid) {
                    // `--pid` of lxprof's own shell: never trace ourselves
                    // (our ring-buffer reads would feed our own records).
                    if seen.contains(&p) || p == std::process::id() {
                        continue;
                    }
                    probes.trace_pid(p, pid)?;
                    seen.push(p);
                    if let Some(seed) = launch::seed(p) {
                        // The kernel counts their CPU from now on (threads
                        // running now have no switch-in record).
                        for (tid, _) in &seed.threads {
                            let now = monotonic_ns();
                            let running = launch::thread_state(*tid) == Some('R');
                            let cpu = launch::thread_cpu_ns(p, *tid);
                            if let (Some(cpu), Some(faults)) = (cpu, launch::thread_faults(p, *tid))
                            {
                                probes.seed_thread(p, *tid, running.then_some(now), cpu, faults);
                            }
                        }
                        sink.meta(Meta::Seed(seed));
                    }
                }
            }
            let command = launch::read_cmdline(pid);
            if launch::seed(pid).is_none() {
                return Err(RecordError::TargetGone { pid });
            }
            Ok(Started {
                launched: None,
                perf: None,
                root_pid: pid,
                command,
            })
        }
    }
}

/// Records `opts.target`; see the module docs.
pub fn record(opts: &RecordOptions) -> Result<RecordOutcome, RecordError> {
    // The target first: a typo is the likeliest mistake, and needs no root.
    match &opts.target {
        Target::Command(argv) => {
            let name = argv.first().map(|a| a.as_os_str()).unwrap_or_default();
            preflight::resolve_command(name)?;
        }
        Target::Pid(pid) => preflight::check_pid(*pid)?,
    }
    preflight::check_system()?;
    let (probes, reader) = load_probes(
        opts.ring_buffer_bytes,
        opts.freq,
        opts.stack_bytes,
        opts.alloc,
        opts.oncpu_window_ns,
    )?;
    let out = OutputDir::create(opts.output_dir.clone())?;
    let result = record_into(opts, probes, reader, &out);
    tracing::info!("lxprof's own CPU in all: {} ms", own_cpu_ns() / 1_000_000);
    result
}

/// Loads the probes (default ring size unless given; sampling when `freq` > 0)
/// and takes their ring-buffer reader.
pub(crate) fn load_probes(
    ring_buffer_bytes: Option<u32>,
    freq: Option<u32>,
    stack_bytes: Option<u32>,
    alloc: AllocMode,
    oncpu_window_ns: Option<u64>,
) -> Result<(Probes, EventReader), ProbeError> {
    let defaults = ProbeOptions::default();
    let probe_opts = ProbeOptions {
        ring_buffer_bytes: ring_buffer_bytes.unwrap_or(defaults.ring_buffer_bytes),
        sample_freq: freq.filter(|&f| f > 0),
        stack_bytes: stack_bytes.unwrap_or(defaults.stack_bytes),
        alloc,
        oncpu_window_ns: oncpu_window_ns.unwrap_or(defaults.oncpu_window_ns),
    };
    let mut probes = {
        let _span = tracing::info_span!("load_probes").entered();
        Probes::load(&probe_opts)?
    };
    let reader = probes.take_reader().ok_or(ProbeError::Missing {
        kind: "map",
        name: "events",
    })?;
    Ok((probes, reader))
}

/// The recording proper, once the probes are loaded and the directory exists.
fn record_into(
    opts: &RecordOptions,
    mut probes: Probes,
    mut reader: EventReader,
    out: &OutputDir,
) -> Result<RecordOutcome, RecordError> {
    let _signals = SignalGuard::install();

    let start_ns = monotonic_ns();
    let mut sink = Sink::new(
        start_ns,
        &out.path().join("events.bin"),
        opts.freq.is_some_and(|f| f > 0),
    );
    sink.set_alloc(opts.alloc);
    let Started {
        mut launched,
        mut perf,
        root_pid,
        command,
    } = start_target(opts, &mut probes, &mut sink)?;
    // Notice the command's exit at once, not at the next poll timeout.
    if let Some(fd) = launched.as_ref().and_then(Launched::pidfd) {
        reader.wake_once_on(fd);
    }
    let started = Instant::now();
    let deadline = opts.duration.map(|d| started + d);
    let mut stopped_by_signal = None;
    let mut grace_until: Option<Instant> = None;
    let mut last_prune = Instant::now();

    let recording_span = tracing::info_span!("recording", root_pid).entered();
    loop {
        reader.wait(POLL_EVERY);
        sink.drain(&mut reader);
        sink.watch_libcs(&mut probes);
        if let Some(caught) = SignalGuard::take() {
            let sig = caught.signal;
            tracing::info!("signal {sig}: stopping");
            if stopped_by_signal.is_some() || launched.is_none() {
                stopped_by_signal = Some(sig);
                break;
            }
            stopped_by_signal = Some(sig);
            if let Some(child) = launched.as_ref().filter(|_| !caught.group) {
                child.signal(sig);
            }
            grace_until = Some(Instant::now() + SIGNAL_GRACE);
        }
        if let Some(child) = launched.as_mut() {
            child.try_wait();
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) || grace_until.is_some_and(|g| now >= g) {
            break;
        }
        if now.duration_since(last_prune) >= PRUNE_EVERY {
            last_prune = now;
            if let Some(cap) = sink.stacks.as_mut() {
                cap.refresh();
            }
            for pid in probes.traced_pids() {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    probes.untrace_pid(pid);
                }
            }
        }
        // The tree is gone once the launched child is reaped (or, with
        // --pid, at once) and the kernel removed its last process.
        let child_done = launched.as_mut().is_none_or(|c| c.try_wait().is_some());
        if child_done && probes.traced_pids().is_empty() {
            break;
        }
    }
    drop(recording_span);
    let info = RecordingInfo {
        command,
        root_pid: Some(root_pid),
        perf: perf.as_mut().and_then(TreeCounters::read),
        ..Default::default()
    };
    let Stopped {
        recording,
        explained,
        events_path,
        records,
        decode_errors,
        map_full,
        mut unwritten,
    } = stop_recording(probes, reader, sink, info, start_ns, out, |_| {})?;
    let (outputs, summary) = write_outputs(
        out,
        &recording,
        |w| chrome::write_json(&recording, w),
        &report::to_json(&recording),
        events_path,
        explained.as_ref(),
        &mut unwritten,
    );
    Ok(RecordOutcome {
        output_dir: out.path().to_path_buf(),
        outputs,
        summary,
        exit_status: launched
            .as_mut()
            .and_then(Launched::try_wait)
            .map(ExitStatus::from_wait_status),
        stopped_by_signal,
        records,
        lost_events: recording.info.lost_events,
        decode_errors,
        map_full,
        recording,
        unwritten,
    })
}

/// What [`stop_recording`] produced.
pub(crate) struct Stopped {
    pub recording: Recording,
    /// Symbolized, classified samples and the flamegraph files (with sampling).
    pub explained: Option<explain::Explained>,
    /// `events.bin`, unless it could not be written (then in `unwritten`).
    pub events_path: Option<PathBuf>,
    /// Kernel records read, undecodable; children/intervals lost to full maps.
    pub records: u64,
    pub decode_errors: u64,
    pub map_full: u64,
    /// Outputs that could not be written so far.
    pub unwritten: Unwritten,
}

/// The end of a recording, shared by `record` and `record --lambda`: the
/// last drain, threads still on a CPU, sampled stacks, kernel counters, the
/// model (`info` gives command, root pid and perf counts; the rest is filled
/// here), `events.bin`, then `prepare` (e.g. roles) and, with samples, the
/// explanation (categories, flamegraphs, Perfetto trace). The probes are
/// detached before the model is built.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stop_recording(
    probes: Probes,
    mut reader: EventReader,
    mut sink: Sink,
    mut info: RecordingInfo,
    start_ns: u64,
    out: &OutputDir,
    prepare: impl FnOnce(&mut Recording),
) -> Result<Stopped, RecordError> {
    // Records reserved just before the stop: one last drain.
    sink.drain(&mut reader);
    let end_ns = monotonic_ns();
    // What the kernel holds for threads still alive: the CPU since their
    // last ON_CPU record (a thread on a CPU now) and faults not yet sent.
    for ev in end_of_recording_events(&probes, end_ns) {
        sink.record(&crate::rawlog::encode_event(&ev), Some(ev));
    }
    if let Some(c) = probes.sample_counters() {
        let u = sink.stacks.as_ref().map(|c| c.stats).unwrap_or_default();
        tracing::info!(
            "{} samples; stack failures: {} user copies, {} kernel ({} copies with a hole or shortened); \
             {} unwound, {} ended short of their root; {} bytes per sample ({} of user stack)",
            c.samples,
            c.user_stack_errors,
            c.kernel_stack_errors,
            c.shortened,
            u.samples,
            u.ended_short,
            u.record_bytes / u.samples.max(1),
            u.stack_bytes / u.samples.max(1),
        );
        if c.ring_busy > 0 {
            tracing::warn!(
                "{} of {} samples dropped: the ring buffer was more than half full \
                 (samples give way to the other records; a larger --ring-mib or a lower --freq keeps them)",
                c.ring_busy,
                c.samples
            );
        }
        if c.user_stack_errors + c.kernel_stack_errors > c.samples / 20 {
            tracing::warn!(
                "{} of {} samples lost a stack (user stack unreadable or kernel stack failed)",
                c.user_stack_errors + c.kernel_stack_errors,
                c.samples
            );
        }
    }
    let kernel = probes.counters()?;
    if kernel.map_full() > 0 {
        tracing::warn!(
            "{} children or on-CPU intervals were not followed: a kernel map was full",
            kernel.map_full()
        );
    }
    tracing::info!(
        "{} records written by the kernel, {} lost; lxprof's own CPU while recording: {} ms",
        kernel.events(),
        kernel.lost(),
        own_cpu_ns() / 1_000_000
    );
    let stats = reader.stats();
    // Detaching waits for the kernel (RCU grace periods per tracepoint):
    // done beside building the outputs, finished before this returns.
    let detach = std::thread::Builder::new()
        .name("lxprof-detach".into())
        .spawn(move || {
            let _span = tracing::info_span!("detach_probes").entered();
            drop(reader);
            drop(probes);
        });

    info.lost_events = kernel.lost();
    info.sched = crate::model::SchedCounters {
        no_switch_in: kernel.no_switch_in,
        cpu_carried: kernel.cpu_carried,
        map_full: kernel.map_full(),
        map_busy: kernel.map_busy,
        recursion_misses: kernel.recursion_misses.clone(),
    };
    if !kernel.recursion_misses.is_empty() {
        tracing::info!(
            "BPF program runs skipped (recursion): {:?}",
            kernel.recursion_misses
        );
    }
    info.lost_per_cpu = kernel.lost_per_cpu.clone();
    info.decode_errors = stats.decode_errors;
    info.kernel_release = kernel_release();
    if let Err(e) = sink.raw.write_meta(&Meta::Finish {
        end_ns,
        info: info.clone(),
    }) {
        sink.raw_error.get_or_insert(e);
    }
    let Sink {
        raw,
        raw_error,
        stacks,
        ..
    } = sink;
    let log = raw.into_bytes();
    let mut recording = {
        let _span = tracing::info_span!("build_model").entered();
        crate::rawlog::replay_bytes(&log, &out.path().join("events.bin"))?
    };
    // A failed events.bin (a full disk) loses neither the model nor the other outputs.
    let mut unwritten = Unwritten::default();
    let written = match raw_error {
        Some(e) => Err(OutputError::Write {
            path: out.path().join("events.bin"),
            source: std::io::Error::other(e.to_string()),
        }),
        None => out.write_atomic("events.bin", &log),
    };
    let events_path = match written {
        Ok(path) => Some(path),
        Err(e) => {
            unwritten.note(e);
            None
        }
    };
    prepare(&mut recording);
    let explained = stacks.map(|mut cap| {
        let _span = tracing::info_span!("explain").entered();
        explain::explain(&mut recording, start_ns, &mut cap.symbolizer, out.path())
    });
    if let Ok(handle) = detach {
        let _ = handle.join();
    }
    Ok(Stopped {
        recording,
        explained,
        events_path,
        records: stats.records,
        decode_errors: stats.decode_errors,
        map_full: kernel.map_full(),
        unwritten,
    })
}

/// CPU time of lxprof's own process so far (user + system, all its threads).
fn own_cpu_ns() -> u64 {
    // SAFETY: zeroed rusage is valid; valid out pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The records the kernel would send if the live threads switched out now
/// (`end_ns`): their stints and faults not yet sent, and an ON_CPU for the
/// stint of a thread on a CPU now (its CPU since the last one accounted, read
/// from `/proc/.../schedstat`, the same counter).
fn end_of_recording_events(probes: &Probes, end_ns: u64) -> Vec<crate::events::Event> {
    use crate::events::{Event, Faults, Header, OnCpu};
    let mut out = Vec::new();
    for (tid, st) in probes.thread_states() {
        let header = Header {
            cpu: 0,
            ts_ns: end_ns,
            pid: st.pid,
            tid,
        };
        // Faults not yet sent, and those made since the kernel last read
        // the thread's counters (it is on a CPU now, or just exited).
        let (mut count, mut major) = (u64::from(st.faults), u64::from(st.faults_major));
        let mut last_ns = st.fault_last_ns;
        if let Some((min, maj)) = launch::thread_faults(st.pid, tid) {
            let newer = (min + maj).saturating_sub(st.flt_seen);
            if newer > 0 {
                count += newer;
                major += maj.saturating_sub(st.maj_seen);
                last_ns = end_ns;
            }
        }
        if count > 0 {
            out.push(Event::Faults(Faults {
                header: Header {
                    ts_ns: last_ns,
                    ..header
                },
                first_ns: if st.faults > 0 {
                    st.fault_first_ns
                } else {
                    st.fault_last_ns.max(st.start_ns).min(last_ns)
                },
                count: u32::try_from(count).unwrap_or(u32::MAX),
                major: u32::try_from(major).unwrap_or(u32::MAX),
            }));
        }
        // Stints the kernel keeps for the thread's next record.
        if st.batch_stints > 0 {
            out.push(Event::OnCpu(OnCpu {
                header: Header {
                    ts_ns: st.batch_last_ns,
                    ..header
                },
                start_ns: st.batch_first_ns,
                cpu_ns: st.batch_cpu_ns,
                cpu_total_ns: st.cpu_seen_ns,
                prev_state: st.batch_state,
                flags: st.batch_flags,
                stints: st.batch_stints,
            }));
        }
        // The stint in progress (a thread on a CPU now).
        let Some(total) = launch::thread_cpu_ns(st.pid, tid) else {
            continue;
        };
        let cpu_ns = total.saturating_sub(st.cpu_seen_ns);
        if cpu_ns == 0 {
            continue;
        }
        let on_cpu = st.start_ns != 0 && st.start_ns <= end_ns;
        out.push(Event::OnCpu(OnCpu {
            header,
            start_ns: if on_cpu {
                st.start_ns
            } else {
                end_ns.saturating_sub(cpu_ns)
            },
            cpu_ns,
            cpu_total_ns: total,
            prev_state: 0,
            flags: if on_cpu { 0 } else { OnCpu::NO_SWITCH_IN },
            stints: 1,
        }));
    }
    out
}

/// Writes `trace.json` and `report.json` atomically; returns every output
/// `(label, path)` written (with `events.bin` and the explanation's files) and
/// the terminal summary (with the explanation's sentences). A file that cannot
/// be written goes to `unwritten`; the others still are.
pub(crate) fn write_outputs(
    out: &OutputDir,
    recording: &Recording,
    write_trace: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    report_json: &[u8],
    events_path: Option<PathBuf>,
    explained: Option<&explain::Explained>,
    unwritten: &mut Unwritten,
) -> (Vec<(String, PathBuf)>, String) {
    let _span = tracing::info_span!("write_outputs").entered();
    // Streamed into its file: a long recording's trace is hundreds of MB.
    let trace = unwritten.keep(out.write_atomic_with("trace.json", write_trace));
    let report_path = unwritten.keep(out.write_atomic("report.json", report_json));
    let mut outputs: Vec<(String, PathBuf)> = [
        ("trace", trace),
        ("report", report_path),
        ("events", events_path),
    ]
    .into_iter()
    .filter_map(|(label, path)| Some((label.to_string(), path?)))
    .collect();
    if let Some(ex) = explained {
        outputs.extend(ex.outputs.iter().cloned());
    }
    let labelled: Vec<(&str, PathBuf)> = outputs
        .iter()
        .map(|(l, p)| (l.as_str(), p.clone()))
        .collect();
    let mut summary = summary::render(recording, &labelled);
    if let Some(ex) = explained {
        for line in &ex.sentences {
            summary.push_str(line);
            summary.push('\n');
        }
    }
    (outputs, summary)
}
