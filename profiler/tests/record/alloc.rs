//! Allocation recording (`--alloc`) of the `workload alloc` example: a known
//! number of `libc::malloc` calls of known sizes, each freed, and one
//! anonymous mmap of a known size. The Rust runtime mallocs a few blocks of
//! its own, so the known calls are made dominant (200,000 of them).

use lxprof::probes::AllocMode;
use lxprof::rawlog;

use super::*;

/// Calls made by `workload alloc --count N` (see `ALLOC_SIZES` there).
const COUNT: u64 = 200_000;
const SIZES: [u64; 4] = [16, 100, 1000, 4000];
const MMAP_MB: u64 = 64;

fn known_malloc_bytes() -> u64 {
    (0..COUNT).map(|i| SIZES[(i % 4) as usize]).sum()
}

/// Records `argv` (the workload with its arguments, possibly behind
/// `/usr/bin/env`) with allocation mode `alloc`.
fn record_alloc(name: &str, alloc: AllocMode, argv: Vec<std::ffi::OsString>) -> RecordOutcome {
    let mut opts = RecordOptions::new(Target::Command(argv));
    opts.output_dir = Some(scratch(name));
    opts.alloc = alloc;
    // Every record of the run fits (400,000 × 48 bytes): no loss however
    // late the reader drains on a loaded machine.
    opts.ring_buffer_bytes = Some(64 << 20);
    record(&opts).expect("record")
}

fn workload_alloc(extra: &[&str]) -> Vec<std::ffi::OsString> {
    let count = COUNT.to_string();
    let mmap = MMAP_MB.to_string();
    let mut argv = vec![
        workload().into_os_string(),
        "alloc".into(),
        "--count".into(),
        count.into(),
        "--mmap-mb".into(),
        mmap.into(),
    ];
    argv.extend(extra.iter().map(Into::into));
    argv
}

fn report_of(outcome: &RecordOutcome) -> Value {
    serde_json::from_slice(&std::fs::read(outcome.output_dir.join("report.json")).expect("report"))
        .expect("report.json is JSON")
}

/// The `alloc` object of the root process in report.json.
fn root_alloc(outcome: &RecordOutcome) -> Value {
    let report = report_of(outcome);
    let root = report["root_pid"].as_u64().expect("root_pid");
    processes(&report)
        .iter()
        .find(|p| p["pid"].as_u64() == Some(root))
        .unwrap_or_else(|| panic!("root {root} not in {report:#}"))["alloc"]
        .clone()
}

fn within(got: u64, want: u64, frac: f64) -> bool {
    (got as f64 - want as f64).abs() <= want as f64 * frac
}

#[test]
fn full_mode_counts_the_known_mallocs_and_the_mmap() {
    let Some(_g) = bpf_available() else { return };
    let outcome = record_alloc("alloc-full", AllocMode::Full, workload_alloc(&[]));
    assert_eq!(outcome.exit_status.and_then(|s| s.code), Some(0));
    assert_eq!(outcome.lost_events, 0, "ring buffer overflowed");
    let a = root_alloc(&outcome);
    eprintln!("alloc of the workload: {a:#}");
    let n = |k: &str| {
        a[k].as_u64()
            .unwrap_or_else(|| panic!("alloc.{k} in {a:#}"))
    };
    let bytes = known_malloc_bytes();
    assert!(
        within(n("malloc_count"), COUNT, 0.05),
        "malloc_count {} vs {COUNT}",
        n("malloc_count")
    );
    assert!(
        within(n("malloc_bytes"), bytes, 0.05),
        "malloc_bytes {} vs {bytes}",
        n("malloc_bytes")
    );
    assert!(
        within(n("free_count"), COUNT, 0.05),
        "free_count {} vs {COUNT}",
        n("free_count")
    );
    let region = MMAP_MB << 20;
    assert!(
        n("mmap_bytes") >= region,
        "mmap_bytes {} < {region}",
        n("mmap_bytes")
    );
    assert!(
        n("munmap_bytes") >= region,
        "munmap_bytes {}",
        n("munmap_bytes")
    );
    assert!(n("mmap_count") >= 1);

    // trace.json: the "alloc" counter of the process adds up to its bytes.
    let trace: Value = serde_json::from_slice(
        &std::fs::read(outcome.output_dir.join("trace.json")).expect("trace"),
    )
    .expect("trace.json is JSON");
    let root = report_of(&outcome)["root_pid"].as_u64();
    let counted: u64 = trace["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "alloc" && e["pid"].as_u64() == root)
        .filter_map(|e| e["args"]["bytes per 10ms"].as_u64())
        .sum();
    assert_eq!(
        counted,
        n("malloc_bytes") + n("mmap_bytes") + n("brk_bytes"),
        "alloc counter total"
    );

    // events.bin replays to the same allocation figures.
    let replayed = rawlog::replay(&outcome.output_dir.join("events.bin")).expect("replay");
    for p in &outcome.recording.processes {
        let r = replayed.process(p.pid).expect("replayed process");
        assert_eq!(
            (r.alloc, r.alloc_points.len()),
            (p.alloc, p.alloc_points.len())
        );
    }
}

#[test]
fn syscalls_mode_has_mmap_and_brk_but_no_malloc_calls() {
    let Some(_g) = bpf_available() else { return };
    let outcome = record_alloc("alloc-syscalls", AllocMode::Syscalls, workload_alloc(&[]));
    let a = root_alloc(&outcome);
    let n = |k: &str| {
        a[k].as_u64()
            .unwrap_or_else(|| panic!("alloc.{k} in {a:#}"))
    };
    assert_eq!((n("malloc_count"), n("free_count")), (0, 0), "{a:#}");
    assert!(n("mmap_bytes") >= MMAP_MB << 20, "{a:#}");
    // 1,000 blocks of up to 4,000 bytes held at once: the heap grew by brk.
    assert!(n("brk_bytes") >= 1_000_000, "{a:#}");
}

#[test]
fn off_mode_has_no_alloc_section() {
    let Some(_g) = bpf_available() else { return };
    let outcome = record_alloc("alloc-off", AllocMode::Off, workload_alloc(&[]));
    let report = report_of(&outcome);
    for p in processes(&report) {
        assert!(p.get("alloc").is_none(), "alloc with --alloc off: {p:#}");
    }
    assert!(
        outcome
            .recording
            .processes
            .iter()
            .all(|p| p.alloc_points.is_empty())
    );
}

/// A process running with another copy of libc (as a container would):
/// `watch_libc` finds it in /proc/PID/maps after the exec and probes it
/// before the workload starts its mallocs (it waits a second).
#[test]
fn a_libc_other_than_the_hosts_is_probed_after_exec() {
    let Some(_g) = bpf_available() else { return };
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let host = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("libc.so"))
        })
        .expect("this test links libc dynamically");
    let dir = scratch("alloc-libc-copy");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(host, dir.join("libc.so.6")).expect("copy libc");
    // The loader does pick the copy (so the host libc's probes cannot see it).
    let maps_with_copy = std::process::Command::new("/usr/bin/env")
        .arg(format!("LD_LIBRARY_PATH={}", dir.display()))
        .args(["cat", "/proc/self/maps"])
        .output()
        .expect("env cat");
    let copy = dir.join("libc.so.6");
    assert!(
        String::from_utf8_lossy(&maps_with_copy.stdout).contains(&*copy.to_string_lossy()),
        "the copy of libc is not used"
    );
    let mut argv: Vec<std::ffi::OsString> = vec![
        "/usr/bin/env".into(),
        format!("LD_LIBRARY_PATH={}", dir.display()).into(),
    ];
    argv.extend(workload_alloc(&["--wait-ms", "1000"]));
    let outcome = record_alloc("alloc-other-libc", AllocMode::Full, argv);
    assert_eq!(outcome.exit_status.and_then(|s| s.code), Some(0));
    let root = outcome.recording.info.root_pid.expect("root");
    let a = root_alloc(&outcome);
    let n = |k: &str| {
        a[k].as_u64()
            .unwrap_or_else(|| panic!("alloc.{k} in {a:#}"))
    };
    assert!(
        within(n("malloc_count"), COUNT, 0.05),
        "pid {root} with {}: malloc_count {} vs {COUNT}",
        copy.display(),
        n("malloc_count")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Samples taken while a probed malloc/free steps its first instruction out of line
/// (uprobes' `[uprobes]` slot, no unwind table) or traps keep their callers: before,
/// 85 % of this program's weight was `[unknown]` under a wrong caller.
#[test]
fn samples_in_probed_allocator_calls_keep_their_callers() {
    let Some(_g) = bpf_available() else { return };
    let mut opts = RecordOptions::new(Target::Command(workload_alloc(&[])));
    opts.output_dir = Some(scratch("alloc-full-stacks"));
    opts.alloc = AllocMode::Full;
    opts.ring_buffer_bytes = Some(64 << 20);
    opts.freq = Some(999);
    let outcome = record(&opts).expect("record");
    let folded = command_folded(&outcome.output_dir);
    let (mut total, mut in_probe, mut with_caller, mut unresolved) = (0u64, 0u64, 0u64, 0u64);
    for (stack, w) in folded_lines(&folded) {
        total += w;
        if stack.contains("[unknown]") || stack.contains("[truncated]") {
            unresolved += w;
        }
        if stack.contains("asm_exc_debug") || stack.contains("asm_exc_int3") {
            in_probe += w;
            if stack.contains(";workload::alloc;") {
                with_caller += w;
            }
        }
    }
    eprintln!(
        "{:.1} % of the weight in the uprobe path, {:.1} % of that under workload::alloc; \
         {:.2} % unresolved",
        100.0 * in_probe as f64 / total as f64,
        100.0 * with_caller as f64 / in_probe.max(1) as f64,
        100.0 * unresolved as f64 / total as f64
    );
    let head: String = folded.lines().take(8).collect::<Vec<_>>().join("\n");
    assert!(in_probe > 0, "no sample in the uprobe path:\n{head}");
    assert!(
        with_caller as f64 >= 0.9 * in_probe as f64,
        "the uprobe path lost its callers:\n{head}"
    );
    assert!(
        unresolved as f64 <= 0.05 * total as f64,
        "unresolved frames:\n{head}"
    );
}
