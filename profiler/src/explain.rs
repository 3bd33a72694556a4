//! Why it costs: the stack samples of a recording symbolized, classified
//! (app / JIT / GC / runtime / kernel) and turned into per-process
//! `categories`, per-role flamegraphs, `trace.perfetto-trace` and one
//! sentence per process.
//!
//! Each sample weighs its process's exact CPU time divided by its number of
//! samples, so flamegraphs and Perfetto show nanoseconds of CPU and the
//! categories sum to `cpu_ns`. That weight is also the sampling interval used
//! for each thread's JIT / GC runs ([`category_runs`], kept in
//! `Thread::category_runs` for `trace.json`, and sent to Perfetto as slices).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::classify::{CategoryTotals, Classifier, detect_runtime};
use crate::flamegraph::{FlameOptions, write_role};
use crate::model::{CategoryRun, Process, Recording, StackSample};
use crate::perfetto::{
    PerfettoInput, ProcessInfo, SampleStream, Slice, ThreadInfo, WeightUnit, to_protobuf,
};
use crate::stacks::{Category, Frame, FrameKind, ResolvedSample};
use crate::symbolize::Symbolizer;

/// The categories drawn as runs on the timeline.
pub const RUN_CATEGORIES: [Category; 2] = [Category::Jit, Category::Gc];

/// A run ends when the next sample comes more than this many sampling
/// intervals (in halves: 5 = 2.5 intervals, some slack for timer jitter)
/// after the previous one: the thread was off CPU in between.
const RUN_GAP_HALF_INTERVALS: u64 = 5;

/// What [`explain`] produced.
#[derive(Debug, Clone, Default)]
pub struct Explained {
    /// `(label, path)` of the files written (flamegraphs, Perfetto trace).
    pub outputs: Vec<(String, PathBuf)>,
    /// One sentence per sampled process, e.g. "command (mono 12): 38 % of its CPU was JIT compilation, …".
    pub sentences: Vec<String>,
    /// Every sample, symbolized and classified (ts in CLOCK_MONOTONIC ns).
    pub samples: Vec<ResolvedSample>,
    /// Files that could not be written (also logged).
    pub errors: Vec<String>,
}

/// Frames of a return-address stack, leaf first: callers' addresses are
/// moved back by one byte so a call at the end of a function names it.
fn lookup_addrs(addrs: &[u64]) -> impl Iterator<Item = u64> + '_ {
    addrs
        .iter()
        .enumerate()
        .map(|(i, &a)| if i == 0 { a } else { a.saturating_sub(1) })
}

/// A sample of a thread stands for the thread's own CPU (the kernel's exact count)
/// over its samples, plus this: an equal share, per sample of `p` (`total`), of the
/// CPU of its threads that have no sample, so the process's samples still add up to
/// its CPU. Sampling a CPU clock under-represents threads that run in short bursts (a
/// JVM's VM Thread got 0.78 of its CPU in samples beside its busy main thread's 1.01,
/// on a loaded machine): weighting by thread keeps each thread at its measured CPU.
fn unsampled_share(p: &Process, total: u64) -> u64 {
    let unsampled: u64 = p
        .threads
        .iter()
        .filter(|t| t.samples.is_empty())
        .map(|t| t.cpu_ns)
        .sum();
    unsampled / total.max(1)
}

/// A return address is looked up at `addr - 1` (the call), but a signal handler
/// "returns" to the first byte of the signal trampoline (glibc's `__restore_rt`, with a
/// byte of padding before it that no function covers): such a lookup in a file, naming
/// nothing, is done again at `addr`.
fn name_signal_trampolines(
    p: &Process,
    sym: &mut Symbolizer,
    samples: &[(&str, u32, u64, &StackSample)],
    user: &mut HashMap<u64, Frame>,
) {
    let unnamed_file_frame = |f: &Frame| f.kind == FrameKind::Unknown && f.module.is_some();
    if !user.values().any(unnamed_file_frame) {
        return;
    }
    let unnamed: Vec<u64> = samples
        .iter()
        .flat_map(|(_, _, _, s)| lookup_addrs(&s.user).skip(1))
        .filter(|a| user.get(a).is_some_and(unnamed_file_frame))
        .collect::<HashSet<u64>>()
        .into_iter()
        .collect();
    if unnamed.is_empty() {
        return;
    }
    let at: Vec<u64> = unnamed.iter().map(|a| a + 1).collect();
    for (a, f) in unnamed.into_iter().zip(sym.symbolize_user(p.pid, &at)) {
        if f.kind == FrameKind::Native {
            user.insert(a, f);
        }
    }
}

/// Symbolizes every sample of `p` (kernel frames first, then user frames).
fn resolve_process(
    p: &Process,
    origin_mono_ns: u64,
    sym: &mut Symbolizer,
    kernel: &HashMap<u64, Frame>,
) -> Vec<ResolvedSample> {
    let total = p.threads.iter().map(|t| t.samples.len() as u64).sum();
    if total == 0 {
        return Vec::new();
    }
    let share = unsampled_share(p, total);
    let samples: Vec<(&str, u32, u64, &StackSample)> = p
        .threads
        .iter()
        .flat_map(|t| {
            // The thread's own CPU over its samples (see `unsampled_share`).
            let weight = (t.cpu_ns / t.samples.len().max(1) as u64 + share).max(1);
            t.samples
                .iter()
                .map(move |s| (t.name.as_str(), t.tid, weight, s))
        })
        .collect();
    let unique: Vec<u64> = samples
        .iter()
        .flat_map(|(_, _, _, s)| lookup_addrs(&s.user))
        .collect::<HashSet<u64>>()
        .into_iter()
        .collect();
    let mut user: HashMap<u64, Frame> = unique
        .iter()
        .copied()
        .zip(sym.symbolize_user(p.pid, &unique))
        .collect();
    name_signal_trampolines(p, sym, &samples, &mut user);
    samples
        .into_iter()
        .map(|(name, tid, weight, s)| {
            let frames = lookup_addrs(&s.kernel)
                .filter_map(|a| kernel.get(&a).cloned())
                .chain(lookup_addrs(&s.user).filter_map(|a| user.get(&a).cloned()))
                .chain(s.user_end.as_ref().map(|end| Frame {
                    name: end.clone(),
                    module: None,
                    kind: FrameKind::Unknown,
                }))
                .collect();
            ResolvedSample {
                pid: p.pid,
                tid,
                thread_name: name.to_string(),
                ts_ns: origin_mono_ns + s.ts_ns,
                weight,
                frames,
                category: Category::App,
            }
        })
        .collect()
}

/// Symbolizes and classifies the samples of `rec` (sets each sampled
/// process's `categories` and `runtime`), writes `dir/flamegraphs/<role>.*`
/// and `dir/trace.perfetto-trace`. `origin_mono_ns`: CLOCK_MONOTONIC ns of
/// the recording start (time 0 of `trace.json`). `sym` must have observed
/// the processes while they were alive.
pub fn explain(
    rec: &mut Recording,
    origin_mono_ns: u64,
    sym: &mut Symbolizer,
    dir: &Path,
) -> Explained {
    let mut out = Explained::default();
    let classifier = match Classifier::builtin() {
        Ok(c) => Some(c),
        Err(e) => {
            out.errors.push(format!("classification rules: {e}"));
            None
        }
    };
    let kaddrs: Vec<u64> = rec
        .processes
        .iter()
        .flat_map(|p| &p.threads)
        .flat_map(|t| &t.samples)
        .flat_map(|s| lookup_addrs(&s.kernel))
        .collect::<HashSet<u64>>()
        .into_iter()
        .collect();
    let kernel: HashMap<u64, Frame> = if kaddrs.is_empty() {
        HashMap::new()
    } else {
        kaddrs
            .iter()
            .copied()
            .zip(sym.symbolize_kernel(&kaddrs))
            .collect()
    };
    let mut by_role: BTreeMap<String, Vec<ResolvedSample>> = BTreeMap::new();
    for p in &mut rec.processes {
        let mut samples = resolve_process(p, origin_mono_ns, sym, &kernel);
        if samples.is_empty() {
            continue;
        }
        let modules: HashSet<&str> = samples
            .iter()
            .flat_map(|s| &s.frames)
            .filter_map(|f| f.module.as_deref())
            .collect();
        let modules: Vec<&str> = modules.into_iter().collect();
        let threads: Vec<&str> = p.threads.iter().map(|t| t.name.as_str()).collect();
        let exe = p.exe.as_deref().unwrap_or(&p.comm);
        let runtime = detect_runtime(exe, &modules, &threads);
        if let Some(c) = &classifier {
            for s in &mut samples {
                c.classify_sample(runtime, s);
            }
        }
        set_category_runs(p, &samples);
        let totals = CategoryTotals::from_samples(&samples).scale_to(p.cpu_ns);
        p.runtime = Some(runtime);
        p.categories = Some(totals);
        let who = format!("{} ({} {})", p.role, p.comm, p.pid);
        out.sentences.push(totals.describe(&who));
        by_role.entry(p.role.clone()).or_default().extend(samples);
    }
    for (role, samples) in &by_role {
        match write_role(dir, role, samples, &FlameOptions::default()) {
            Ok(files) => {
                out.outputs
                    .push((format!("flamegraph {role} (folded)"), files.folded));
                if let Some(svg) = files.svg {
                    out.outputs.push((format!("flamegraph {role}"), svg));
                }
            }
            Err(e) => out.errors.push(format!("flamegraph of {role}: {e}")),
        }
    }
    out.samples = by_role.into_values().flatten().collect();
    if !out.samples.is_empty() {
        let path = dir.join("trace.perfetto-trace");
        let bytes = to_protobuf(&perfetto_input(rec, origin_mono_ns, &out.samples));
        match std::fs::write(&path, bytes) {
            Ok(()) => out.outputs.push(("perfetto".to_string(), path)),
            Err(e) => out.errors.push(format!("{}: {e}", path.display())),
        }
    }
    for e in &out.errors {
        tracing::warn!("{e}");
    }
    out
}

/// Sets `category_runs` of every thread of `p` from its classified samples
/// (`resolved`: the output of [`resolve_process`], the threads' samples in
/// order).
fn set_category_runs(p: &mut Process, resolved: &[ResolvedSample]) {
    let interval = resolved.first().map_or(1, |s| s.weight);
    let mut rest = resolved;
    for t in &mut p.threads {
        let (mine, tail) = rest.split_at(t.samples.len().min(rest.len()));
        rest = tail;
        let mut points: Vec<(u64, Category)> = t
            .samples
            .iter()
            .zip(mine)
            .map(|(s, r)| (s.ts_ns, r.category))
            .collect();
        points.sort_by_key(|&(ts, _)| ts);
        t.category_runs = category_runs(&points, interval, &RUN_CATEGORIES);
    }
}

/// Runs of consecutive samples of one of `categories` in one thread's
/// `(ts_ns, category)` samples (time order): a run continues while the next
/// sample has the same category and comes at most ~2 `interval_ns` later. It
/// lasts from its first sample to its last plus one interval, cut at the next
/// sample (so runs never overlap).
pub fn category_runs(
    samples: &[(u64, Category)],
    interval_ns: u64,
    categories: &[Category],
) -> Vec<CategoryRun> {
    let interval_ns = interval_ns.max(1);
    let max_gap = interval_ns.saturating_mul(RUN_GAP_HALF_INTERVALS) / 2;
    let mut out = Vec::new();
    let mut run: Option<CategoryRun> = None;
    let mut last_ts = 0;
    for &(ts, cat) in samples {
        if let Some(r) = run.as_mut() {
            if r.category == cat && ts.saturating_sub(last_ts) <= max_gap {
                r.samples += 1;
                last_ts = ts;
                continue;
            }
            r.end_ns = last_ts.saturating_add(interval_ns).min(ts).max(last_ts);
            out.extend(run.take());
        }
        if categories.contains(&cat) {
            run = Some(CategoryRun {
                category: cat,
                start_ns: ts,
                end_ns: ts,
                samples: 1,
            });
        }
        last_ts = ts;
    }
    if let Some(mut r) = run {
        r.end_ns = last_ts.saturating_add(interval_ns);
        out.push(r);
    }
    out
}

/// The model's JIT / GC runs as Perfetto slices (absolute ns).
fn run_slices(rec: &Recording, origin_mono_ns: u64) -> Vec<Slice> {
    let mut out = Vec::new();
    for p in &rec.processes {
        for t in &p.threads {
            for r in &t.category_runs {
                out.push(Slice {
                    pid: p.pid,
                    tid: t.tid,
                    name: run_name(r.category).to_string(),
                    category: Some(r.category.as_str().to_string()),
                    start_ns: origin_mono_ns + r.start_ns,
                    dur_ns: r.end_ns.saturating_sub(r.start_ns),
                });
            }
        }
    }
    out
}

/// The slice name of a run: `JIT`, `GC`, …
pub fn run_name(category: Category) -> &'static str {
    match category {
        Category::App => "App",
        Category::Jit => "JIT",
        Category::Gc => "GC",
        Category::Runtime => "Runtime",
        Category::Kernel => "Kernel",
    }
}

/// The Perfetto trace: processes named by role, CPU samples, JIT/GC slices.
fn perfetto_input<'a>(
    rec: &Recording,
    origin_mono_ns: u64,
    samples: &'a [ResolvedSample],
) -> PerfettoInput<'a> {
    let processes = rec
        .processes
        .iter()
        .map(|p| ProcessInfo {
            pid: p.pid,
            name: format!("{} ({})", p.role, p.comm),
            threads: p
                .threads
                .iter()
                .map(|t| ThreadInfo {
                    tid: t.tid,
                    name: t.name.clone(),
                })
                .collect(),
        })
        .collect();
    PerfettoInput {
        origin_mono_ns,
        processes,
        samples: vec![SampleStream {
            unit: WeightUnit::CpuNanoseconds,
            samples,
        }],
        slices: run_slices(rec, origin_mono_ns),
        counters: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Thread;

    #[inline(never)]
    fn a_sampled_function() -> u64 {
        std::hint::black_box(11)
    }

    /// Each thread's samples add up to its own CPU; a thread without samples is
    /// shared out over all samples, so the process keeps its total.
    #[test]
    fn samples_weigh_their_threads_cpu() {
        let thread = |tid, cpu_ns, n: usize| Thread {
            tid,
            name: format!("t{tid}"),
            cpu_ns,
            samples: vec![StackSample::default(); n],
            ..Default::default()
        };
        let p = Process {
            pid: 1,
            cpu_ns: 940,
            threads: vec![thread(1, 300, 1), thread(2, 600, 3), thread(3, 40, 0)],
            ..Default::default()
        };
        let mut sym = Symbolizer::new();
        let got: Vec<(u32, u64)> = resolve_process(&p, 0, &mut sym, &HashMap::new())
            .iter()
            .map(|s| (s.tid, s.weight))
            .collect();
        assert_eq!(got, vec![(1, 310), (2, 210), (2, 210), (2, 210)]);
        assert_eq!(got.iter().map(|g| g.1).sum::<u64>(), p.cpu_ns);
    }

    #[test]
    fn runs_are_consecutive_samples_of_one_category() {
        use Category::{App, Gc, Jit};
        let samples = [
            (0, Jit),
            (1_000, Jit),
            (2_000, Jit),
            (3_000, App),
            (4_000, Gc),
            (5_000, Gc),
            // 15 intervals later: the thread was off CPU, a new run.
            (20_000, Gc),
            (21_000, Jit),
            // 2.4 intervals: still the same run.
            (23_400, Jit),
        ];
        let got: Vec<_> = category_runs(&samples, 1_000, &RUN_CATEGORIES)
            .iter()
            .map(|r| (r.category, r.start_ns, r.end_ns, r.samples))
            .collect();
        assert_eq!(
            got,
            [
                (Jit, 0, 3_000, 3),
                (Gc, 4_000, 6_000, 2),
                (Gc, 20_000, 21_000, 1),
                (Jit, 21_000, 24_400, 2),
            ]
        );
        // A sample arriving early (timer jitter) cuts the previous run short:
        // runs never overlap.
        let early = category_runs(&[(0, Jit), (900, Gc)], 1_000, &RUN_CATEGORIES);
        assert_eq!((early[0].end_ns, early[1].start_ns), (900, 900));
        assert!(category_runs(&[(0, App), (1_000, App)], 1_000, &RUN_CATEGORIES).is_empty());
        assert!(category_runs(&[], 1_000, &RUN_CATEGORIES).is_empty());
    }

    #[test]
    fn runs_go_to_the_thread_of_their_samples() {
        let sample = |ts_ns| StackSample {
            ts_ns,
            ..StackSample::default()
        };
        let thread = |tid, ts: &[u64]| Thread {
            tid,
            samples: ts.iter().map(|&t| sample(t)).collect(),
            ..Thread::default()
        };
        let mut p = Process {
            pid: 1,
            threads: vec![thread(1, &[0, 10]), thread(2, &[0, 10, 20])],
            ..Process::default()
        };
        let resolved = |tid, ts_ns: u64, category| ResolvedSample {
            pid: 1,
            tid,
            thread_name: String::new(),
            ts_ns: 1_000 + ts_ns,
            weight: 10,
            frames: Vec::new(),
            category,
        };
        let samples = [
            resolved(1, 0, Category::App),
            resolved(1, 10, Category::App),
            resolved(2, 0, Category::Gc),
            resolved(2, 10, Category::Gc),
            resolved(2, 20, Category::App),
        ];
        set_category_runs(&mut p, &samples);
        assert!(p.threads[0].category_runs.is_empty());
        let r = &p.threads[1].category_runs;
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].category, r[0].start_ns, r[0].end_ns),
            (Category::Gc, 0, 20)
        );
        let rec = Recording {
            processes: vec![p],
            ..Recording::default()
        };
        let slices = run_slices(&rec, 1_000);
        assert_eq!(slices.len(), 1);
        assert_eq!(
            (
                slices[0].name.as_str(),
                slices[0].tid,
                slices[0].start_ns,
                slices[0].dur_ns
            ),
            ("GC", 2, 1_000, 20)
        );
    }

    #[test]
    fn callers_move_back_one_byte() {
        let v: Vec<u64> = lookup_addrs(&[100, 200, 0]).collect();
        assert_eq!(v, [100, 199, 0]);
    }

    #[test]
    fn own_stack_is_symbolized_classified_and_written() {
        let pid = std::process::id();
        let addr = a_sampled_function as *const () as u64 + 1;
        let mut rec = Recording {
            processes: vec![Process {
                pid,
                comm: "unit".into(),
                role: "command".into(),
                cpu_ns: 3_000,
                threads: vec![Thread {
                    tid: pid,
                    name: "unit".into(),
                    samples: (0..3)
                        .map(|i| StackSample {
                            ts_ns: i * 1_000,
                            user: vec![addr],
                            ..StackSample::default()
                        })
                        .collect(),
                    ..Thread::default()
                }],
                ..Process::default()
            }],
            ..Recording::default()
        };
        let dir = std::env::temp_dir().join(format!("lxprof-explain-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut sym = Symbolizer::new();
        sym.observe_process(pid).expect("own maps");
        let ex = explain(&mut rec, 5_000, &mut sym, &dir);
        assert!(ex.errors.is_empty(), "{:?}", ex.errors);
        let t = rec.processes[0].categories.expect("categories");
        assert_eq!((t.app_ns, t.total_ns()), (3_000, 3_000));
        assert_eq!(ex.samples.len(), 3);
        assert_eq!(ex.samples[0].ts_ns, 5_000);
        let folded =
            std::fs::read_to_string(dir.join("flamegraphs/command.folded")).expect("folded");
        assert!(folded.contains("a_sampled_function"), "{folded}");
        assert!(dir.join("flamegraphs/command.svg").exists());
        assert!(dir.join("trace.perfetto-trace").exists());
        assert_eq!(ex.sentences.len(), 1);
        assert!(rec.processes[0].threads[0].category_runs.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
