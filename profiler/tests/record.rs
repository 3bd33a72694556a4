//! Root/BPF integration tests of `lxprof record`: real processes (the bundled
//! `workload` example), real kernel events. With `CI=true` they fail when
//! root or BPF is unavailable; otherwise they skip with a printed reason.
//! They are serialized: each loads its own probes and counts CPU time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lxprof::record::{RecordOptions, RecordOutcome, Target, record};
use serde_json::Value;

static BPF: Mutex<()> = Mutex::new(());

/// None (skip) when BPF recording is impossible here; panics under CI.
fn bpf_available() -> Option<std::sync::MutexGuard<'static, ()>> {
    let root = unsafe { libc::geteuid() } == 0;
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    if !(root && btf) {
        let why = format!("needs root ({root}) and kernel BTF ({btf})");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but BPF recording is unavailable: {why}");
        }
        eprintln!("skipping: {why}");
        return None;
    }
    Some(BPF.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `<target>/debug/examples/workload`, built by `cargo test`.
fn workload() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    // <target>/debug/deps/record-HASH → <target>/debug/examples/workload
    let debug = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let w = debug.join("examples/workload");
    if !w.exists() {
        // `cargo test --test record` alone does not build examples.
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "lxprof", "--example", "workload"])
            .env("CARGO_TARGET_DIR", debug.parent().expect("target"))
            .status()
            .expect("cargo build --example workload");
        assert!(status.success(), "building the workload example failed");
    }
    w
}

fn on_path(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first of `names` on PATH; None (skip, with the reason printed) when none is,
/// and a panic under `CI=true` (scripts/setup.sh installs them).
fn first_tool(names: &[&str]) -> Option<String> {
    if let Some(n) = names.iter().find(|n| on_path(n)) {
        return Some(n.to_string());
    }
    let why = format!("needs one of {names:?}");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {why} (scripts/setup.sh installs them)");
    }
    eprintln!("skipping: {why}");
    None
}

/// Whether every tool of `names` is on PATH (see [`first_tool`] when not).
fn tools_available(names: &[&str]) -> bool {
    names.iter().all(|n| first_tool(&[n]).is_some())
}

/// C# `source` compiled with mcs into `<scratch dir>/p.exe`.
fn build_cs(dir: &str, source: &str) -> PathBuf {
    let src = scratch(dir);
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("p.cs"), source).expect("write cs");
    let exe = src.join("p.exe");
    let st = std::process::Command::new("mcs")
        .arg(format!("-out:{}", exe.display()))
        .arg(src.join("p.cs"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("mcs");
    assert!(st.success(), "mcs failed");
    exe
}

fn scratch(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe
        .parent()
        .expect("deps")
        .join("lxprof-record-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn run(name: &str, args: &[&str]) -> (RecordOutcome, Value) {
    let mut argv = vec![workload().into_os_string()];
    argv.extend(args.iter().map(Into::into));
    let mut opts = RecordOptions::new(Target::Command(argv));
    opts.output_dir = Some(scratch(name));
    let outcome = record(&opts).expect("record");
    let report: Value = serde_json::from_slice(
        &std::fs::read(outcome.output_dir.join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    (outcome, report)
}

fn processes(report: &Value) -> &Vec<Value> {
    report["processes"].as_array().expect("processes[]")
}

/// The command's folded stacks in recording directory `dir`.
fn command_folded(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("flamegraphs/command.folded")).expect("folded")
}

/// `(stack, weight)` of each line of a folded-stacks file (`root;…;leaf WEIGHT`).
fn folded_lines(folded: &str) -> impl Iterator<Item = (&str, u64)> {
    folded.lines().filter_map(|line| {
        let (stack, w) = line.rsplit_once(' ')?;
        Some((stack, w.parse().ok()?))
    })
}

/// A folded frame without its category suffix (`name [jit]`, `name [kernel]`).
fn frame_name(f: &str) -> &str {
    match f.rsplit_once(" [") {
        Some((name, tag)) if tag.ends_with(']') && !name.is_empty() => name,
        _ => f,
    }
}

mod cpu {
    use super::*;

    #[test]
    fn burn_cpu_matches_getrusage_with_thread_names() {
        let Some(_g) = bpf_available() else { return };
        let tmp = scratch("burn-stdout");
        std::fs::create_dir_all(&tmp).expect("mkdir");
        let out = tmp.join("stdout.json");
        // The workload prints its getrusage; capture it through a shell redirect.
        let cmd = format!(
            "exec {} burn --threads 2 --ms 300 > {}",
            workload().display(),
            out.display()
        );
        let mut opts = RecordOptions::new(Target::Command(vec![
            "/bin/sh".into(),
            "-c".into(),
            cmd.into(),
        ]));
        opts.output_dir = Some(scratch("burn"));
        opts.perf_counters = true;
        let outcome = record(&opts).expect("record");
        let printed: Value =
            serde_json::from_slice(&std::fs::read(&out).expect("stdout")).expect("json");
        let pid = printed["pid"].as_u64().expect("pid") as u32;
        let rusage = printed["cpu_ns"].as_u64().expect("cpu_ns");
        let report: Value = serde_json::from_slice(
            &std::fs::read(outcome.output_dir.join("report.json")).expect("report"),
        )
        .expect("json");
        let p = processes(&report)
            .iter()
            .find(|p| p["pid"].as_u64() == Some(pid.into()))
            .unwrap_or_else(|| panic!("pid {pid} not in report: {report:#}"));
        let cpu = p["cpu_ns"].as_u64().expect("cpu_ns");
        let ratio = cpu as f64 / rusage as f64;
        eprintln!(
            "eBPF cpu_ns {cpu} vs getrusage {rusage}: ratio {ratio:.3}; perf {:?}",
            report["perf"]
        );
        assert!(rusage >= 550_000_000, "the workload burned {rusage} ns");
        assert!(
            (0.9..=1.1).contains(&ratio),
            "cpu_ns {cpu} vs getrusage {rusage}"
        );
        let names: Vec<&str> = p["threads"]
            .as_array()
            .expect("threads")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        for n in ["burner-1", "burner-2"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert_eq!(outcome.exit_status.and_then(|s| s.code), Some(0));
        assert_eq!(outcome.decode_errors, 0);
        // The perf-event cross-check counts the same tree (plus sh's start).
        let perf = report["perf"]["task_clock_ns"]
            .as_u64()
            .expect("perf counters");
        let ratio = perf as f64 / rusage as f64;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "perf task-clock {perf} vs getrusage {rusage}"
        );
        assert!(report["perf"]["context_switches"].as_u64() > Some(0));
    }
}

mod cpu_exact {
    use super::*;

    /// Recordings in one run of the test; `LXPROF_CPU_RUNS` (e.g. 200, as
    /// `scripts/check-cpu-exact.sh` does) for more.
    fn runs() -> usize {
        std::env::var("LXPROF_CPU_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30)
    }

    /// Every thread of a short multi-threaded program, in every one of many
    /// consecutive recordings (with the CLI's default sampling), has the CPU
    /// time its own CLOCK_THREAD_CPUTIME_ID reports, within 2 %: lxprof's
    /// figure is the scheduler's count, so a missed switch record cannot
    /// lose a stint (issue 13: once in ~24 runs a thread lost 2/3 of it).
    /// Each thread reads its clock as its last act; what runs after (the
    /// thread's exit, and for the main thread the process's teardown, up to
    /// ~1 ms under load) is CPU too, which lxprof counts and the clock cannot:
    /// every thread burns 100 ms so that it stays inside the 2 %.
    #[test]
    fn every_threads_cpu_matches_its_own_clock_in_every_run() {
        let Some(_g) = bpf_available() else { return };
        let out_file = scratch("threads-stdout").with_extension("json");
        let (mut worst, mut failures, mut checked) = (1.0f64, Vec::new(), 0);
        let (mut carried, mut no_switch_in, mut misses) = (0, 0, 0);
        for run in 0..runs() {
            let _ = std::fs::remove_file(&out_file);
            let argv = [
                workload().into_os_string(),
                "threads".into(),
                "--ms".into(),
                "100".into(),
                "--pages".into(),
                "5000".into(),
                "--out".into(),
                out_file.clone().into_os_string(),
            ];
            let mut opts = RecordOptions::new(Target::Command(argv.to_vec()));
            opts.output_dir = Some(scratch("threads"));
            opts.freq = Some(499);
            let outcome = record(&opts).expect("record");
            let printed: Value =
                serde_json::from_slice(&std::fs::read(&out_file).expect("program output"))
                    .expect("json");
            let pid = printed["pid"].as_u64().expect("pid");
            let report: Value = serde_json::from_slice(
                &std::fs::read(outcome.output_dir.join("report.json")).expect("report"),
            )
            .expect("json");
            let sched = &report["cpu_check"]["sched"];
            carried += sched["cpu_carried"].as_u64().unwrap_or(0);
            for m in sched["recursion_misses"].as_array().into_iter().flatten() {
                misses += m[1].as_u64().unwrap_or(0);
            }
            no_switch_in += sched["no_switch_in"].as_u64().unwrap_or(0);
            let p = processes(&report)
                .iter()
                .find(|p| p["pid"].as_u64() == Some(pid))
                .unwrap_or_else(|| panic!("run {run}: pid {pid} not in the report"));
            for t in printed["threads"].as_array().expect("threads") {
                let (tid, name) = (t["tid"].as_u64(), t["name"].as_str().unwrap_or("?"));
                let own = t["cpu_ns"].as_u64().expect("cpu_ns") as f64;
                let rec = p["threads"]
                    .as_array()
                    .expect("threads[]")
                    .iter()
                    .find(|r| r["tid"].as_u64() == tid)
                    .and_then(|r| r["cpu_ns"].as_u64())
                    .unwrap_or(0) as f64;
                let ratio = rec / own;
                checked += 1;
                if (ratio - 1.0).abs() > (worst - 1.0).abs() {
                    worst = ratio;
                }
                if !(0.98..=1.02).contains(&ratio) {
                    failures.push(format!(
                        "run {run} {name} (tid {tid:?}): lxprof {:.2} ms vs its clock {:.2} ms; cpu_check {}",
                        rec / 1e6,
                        own / 1e6,
                        report["cpu_check"]
                    ));
                }
            }
        }
        eprintln!(
            "{} runs, {checked} threads: worst lxprof/own-clock ratio {worst:.4}; \
             {carried} records carried missed CPU, {no_switch_in} switch-ins not seen, \
             {misses} program runs skipped (recursion)",
            runs()
        );
        assert!(
            failures.is_empty(),
            "{} threads off by > 2 %:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

mod attach {
    use super::*;
    use std::process::Command;
    use std::time::Instant;

    #[test]
    fn pid_mode_follows_an_existing_tree_until_the_duration() {
        let Some(_g) = bpf_available() else { return };
        let script = format!(
            "{} burn --threads 1 --ms 800; exec sleep 30",
            workload().display()
        );
        let mut sh = Command::new("/bin/sh")
            .args(["-c", &script])
            .spawn()
            .expect("sh");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut opts = RecordOptions::new(Target::Pid(sh.id()));
        opts.duration = Some(std::time::Duration::from_secs(4));
        opts.output_dir = Some(scratch("pid"));
        let t0 = Instant::now();
        let result = record(&opts);
        let took = t0.elapsed();
        let _ = sh.kill();
        let _ = sh.wait();
        let outcome = result.expect("record --pid");
        assert!(took.as_secs_f64() < 8.0, "--duration 4 took {took:?}");
        let rec = &outcome.recording;
        assert!(
            (3.5e9..6e9).contains(&(rec.duration_ns as f64)),
            "{}",
            rec.duration_ns
        );
        let root = rec.process(sh.id()).expect("root seeded");
        assert_eq!(root.role, "command");
        let burner = rec
            .processes
            .iter()
            .find(|p| p.ppid == sh.id() && p.threads.iter().any(|t| t.name == "burner-1"))
            .unwrap_or_else(|| panic!("no burner child of {}: {:#?}", sh.id(), rec.processes));
        assert!(burner.cpu_ns > 100_000_000, "burner cpu {}", burner.cpu_ns);
        // sh exec'd sleep: the root's exe changed while recorded.
        assert!(
            root.exe.as_deref().is_some_and(|e| e.ends_with("/sleep")),
            "{:?}",
            root.exe
        );
        assert!(outcome.exit_status.is_none());
        // A sleeping process seeded by --pid costs no CPU (its seed mark must
        // not turn into a recording-long interval).
        assert!(
            root.cpu_ns < 200_000_000,
            "sleeping root has {} ns",
            root.cpu_ns
        );
        super::trace::check_trace(&outcome.output_dir.join("trace.json"));
    }
}

mod memory {
    use super::*;

    #[test]
    fn touched_pages_are_faults_and_rss() {
        let Some(_g) = bpf_available() else { return };
        let n: u64 = 20_000;
        let (_outcome, report) = run(
            "touch",
            &["touch", "--pages", &n.to_string(), "--threads", "3"],
        );
        let p = processes(&report)
            .iter()
            .find(|p| p["comm"] == "workload")
            .unwrap_or_else(|| panic!("no workload process: {report:#}"));
        let minor = p["page_faults_minor"].as_u64().expect("minor");
        let rss = p["max_rss_bytes"].as_u64().expect("rss");
        eprintln!("touched {n} pages: {minor} minor faults, max rss {rss}");
        assert!(minor >= n, "{minor} < {n}");
        assert!(rss >= n * 4096, "{rss} < {}", n * 4096);
        // The faults streamed while each thread ran (FAULTS records, read
        // from the kernel's task counters) against the same counters at the
        // thread's exit (EXIT record): a thread born while traced has both
        // from its first fault. Only the exit path's own faults (after the
        // EXIT record) may add to the streamed ones.
        let threads = p["threads"].as_array().expect("threads");
        let mut spawned = 0;
        for t in threads.iter().filter(|t| t["tid"] != p["pid"]) {
            let streamed = t["page_fault_events"].as_u64().expect("events");
            let at_exit = t["page_faults_minor"].as_u64().expect("exit minor")
                + t["page_faults_major"].as_u64().expect("exit major");
            eprintln!(
                "thread {}: {streamed} streamed, {at_exit} at exit",
                t["tid"]
            );
            assert!(
                (at_exit..=at_exit + 2).contains(&streamed),
                "thread {}: {streamed} faults streamed, {at_exit} counted at its exit",
                t["tid"]
            );
            spawned += 1;
        }
        assert_eq!(spawned, 3, "{threads:#?}");
    }
}

mod tree {
    use super::*;

    #[test]
    fn fork_exec_chain_has_three_processes() {
        let Some(_g) = bpf_available() else { return };
        let (outcome, report) = run("chain", &["chain"]);
        let procs = processes(&report);
        let find = |comm: &str| {
            procs
                .iter()
                .find(|p| p["comm"] == comm)
                .unwrap_or_else(|| panic!("no {comm} in {report:#}"))
        };
        let (w, sh, sleep) = (find("workload"), find("sh"), find("sleep"));
        assert_eq!(sh["ppid"], w["pid"]);
        assert_eq!(sleep["ppid"], sh["pid"]);
        assert_eq!(
            w["exe"].as_str(),
            workload()
                .canonicalize()
                .ok()
                .as_deref()
                .and_then(|p| p.to_str())
        );
        assert!(
            sh["exe"].as_str().is_some_and(|e| e.ends_with("sh")),
            "{sh:#}"
        );
        assert!(
            sleep["exe"].as_str().is_some_and(|e| e.ends_with("/sleep")),
            "{sleep:#}"
        );
        assert_eq!(w["role"], "command");
        assert_eq!(outcome.exit_status.and_then(|s| s.code), Some(0));
    }
}

mod trace {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    #[test]
    fn trace_json_is_complete_and_slices_do_not_overlap() {
        let Some(_g) = bpf_available() else { return };
        let (outcome, _) = run("trace", &["mixed", "--ms", "300"]);
        check_trace(&outcome.output_dir.join("trace.json"));
        // events.bin replays, without root, into the very same model.
        let replayed =
            lxprof::rawlog::replay(&outcome.output_dir.join("events.bin")).expect("replay");
        assert!(
            replayed == outcome.recording,
            "replay of events.bin differs"
        );
    }

    pub(crate) fn check_trace(path: &std::path::Path) {
        let trace: Value =
            serde_json::from_slice(&std::fs::read(path).expect("trace.json")).expect("valid JSON");
        let events = trace["traceEvents"].as_array().expect("traceEvents");
        let mut named_pids = HashSet::new();
        let mut named_tids = HashSet::new();
        let mut used = HashSet::new();
        let mut slices: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
        for e in events {
            let ph = e["ph"].as_str().expect("ph");
            let (pid, tid) = (e["pid"].as_u64(), e["tid"].as_u64());
            match ph {
                "M" => {
                    assert!(e["name"].is_string() && e["args"].is_object(), "{e}");
                    let named = e["args"]["name"].is_string();
                    match e["name"].as_str() {
                        Some("process_name" | "thread_name") if !named => panic!("{e}"),
                        Some("process_name") => {
                            named_pids.insert(pid.expect("pid"));
                        }
                        Some("thread_name") => {
                            named_tids.insert((pid.expect("pid"), tid.expect("tid")));
                        }
                        _ => {}
                    }
                }
                "X" => {
                    let ts = e["ts"].as_f64().expect("ts");
                    let dur = e["dur"].as_f64().expect("dur");
                    assert!(dur >= 0.0 && e["name"].is_string(), "{e}");
                    let key = (pid.expect("pid"), tid.expect("tid"));
                    used.insert(key);
                    slices.entry(key).or_default().push((ts, ts + dur));
                }
                "C" => {
                    assert!(
                        e["ts"].is_number() && e["name"].is_string() && e["args"].is_object(),
                        "{e}"
                    );
                    used.insert((pid.expect("pid"), tid.unwrap_or(0)));
                }
                "i" | "I" => {
                    assert!(e["ts"].is_number() && e["name"].is_string(), "{e}");
                    used.insert((pid.expect("pid"), tid.expect("tid")));
                }
                other => panic!("unexpected phase {other}: {e}"),
            }
        }
        assert!(!slices.is_empty(), "no X slices");
        for (pid, tid) in &used {
            assert!(named_pids.contains(pid), "pid {pid} has no process_name");
            if *tid != 0 {
                assert!(
                    named_tids.contains(&(*pid, *tid)),
                    "tid {tid} has no thread_name"
                );
            }
        }
        for ((pid, tid), mut s) in slices {
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            for w in s.windows(2) {
                assert!(
                    w[1].0 >= w[0].1 - 1e-9,
                    "overlap on {pid}/{tid}: {:?} {:?}",
                    w[0],
                    w[1]
                );
            }
        }
    }
}

mod signals {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// BPF programs and links this test process holds open (fds whose
    /// fdinfo names a program or link): other processes' programs (tests of
    /// other crates running at the same time) do not count.
    fn lxprof_programs() -> usize {
        let Ok(dir) = std::fs::read_dir("/proc/self/fdinfo") else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|info| info.contains("\nprog_type:") || info.contains("\nlink_type:"))
            .count()
    }

    /// Every program and link is closed once the recording returns (the
    /// kernel then frees them): allow a moment for the recorder's threads.
    fn assert_programs_unloaded(before: usize) {
        let t0 = Instant::now();
        while lxprof_programs() > before && t0.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(lxprof_programs(), before, "BPF programs left loaded");
    }

    /// The recording is under way: the command it launched (a `workload`
    /// child of `recorder`, the process recording) runs; the signal handler
    /// was installed before it was launched.
    fn recording_in_progress(recorder: u32) -> bool {
        let me = recorder.to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .any(|stat| {
                let Some((name, rest)) = stat.split_once(") ") else {
                    return false;
                };
                name.ends_with("(workload") && rest.split_whitespace().nth(1) == Some(me.as_str())
            })
    }

    #[test]
    fn sigint_to_the_library_is_forwarded_and_outputs_are_valid() {
        let Some(_g) = bpf_available() else { return };
        let before = lxprof_programs();
        let dir = scratch("sigint-lib");
        let mut opts = RecordOptions::new(Target::Command(vec![
            workload().into_os_string(),
            "sleep".into(),
            "--ms".into(),
            "30000".into(),
        ]));
        opts.output_dir = Some(dir.clone());
        let t0 = Instant::now();
        let recorder = std::thread::spawn(move || record(&opts));
        while !recording_in_progress(std::process::id()) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
        let outcome = recorder.join().expect("thread").expect("record");
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "took {:?}",
            t0.elapsed()
        );
        assert_eq!(outcome.stopped_by_signal, Some(libc::SIGINT));
        // The child got the forwarded SIGINT and died of it.
        assert_eq!(
            outcome.exit_status.and_then(|s| s.signal),
            Some(libc::SIGINT)
        );
        trace::check_trace(&dir.join("trace.json"));
        assert!(dir.join("events.bin").exists());
        assert_programs_unloaded(before);
    }

    #[test]
    fn sigint_mid_run_writes_valid_outputs_and_unloads() {
        let Some(_g) = bpf_available() else { return };
        let help = Command::new(env!("CARGO_BIN_EXE_lxprof"))
            .arg("--help")
            .output()
            .expect("lxprof");
        if !String::from_utf8_lossy(&help.stdout).contains("record") {
            eprintln!("skipping: this lxprof binary has no `record` subcommand yet");
            return;
        }
        let before = lxprof_programs();
        let dir = scratch("sigint");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lxprof"))
            .args(["record", "-o"])
            .arg(&dir)
            .arg("--")
            .arg(workload())
            .args(["sleep", "--ms", "30000"])
            .spawn()
            .expect("lxprof");
        // Wait until recording has started, then interrupt.
        let t0 = Instant::now();
        while !recording_in_progress(child.id()) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let status = child.wait().expect("wait");
        assert!(
            t0.elapsed() < Duration::from_secs(25),
            "SIGINT did not stop the recording"
        );
        eprintln!("lxprof exited with {status:?}");
        let report: Value =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report"))
                .expect("report.json valid");
        assert!(
            report["processes"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        );
        trace::check_trace(&dir.join("trace.json"));
        assert_programs_unloaded(before);
    }
}

mod errors {
    use super::*;
    use lxprof::preflight::PreflightError;
    use lxprof::record::RecordError;

    #[test]
    fn missing_command_and_pid_are_one_line_errors() {
        let opts = RecordOptions::new(Target::Command(vec!["lxprof-no-such-cmd".into()]));
        let err = record(&opts).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Preflight(PreflightError::CommandNotFound { .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("lxprof-no-such-cmd"));
        let err = record(&RecordOptions::new(Target::Command(vec![]))).unwrap_err();
        assert!(err.to_string().contains("after `--`"), "{err}");
        let err = record(&RecordOptions::new(Target::Pid(0x7fff_fff0))).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Preflight(PreflightError::NoSuchPid { .. })
            ),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'));
    }
}

mod throughput {
    use super::*;

    #[test]
    fn busy_workload_is_recorded_with_losses_reported() {
        let Some(_g) = bpf_available() else { return };
        // One record per context switch (no on-CPU window): the densest stream.
        let argv = ["mixed", "--ms", "2000"].map(Into::into);
        let mut opts = RecordOptions::new(Target::Command(
            std::iter::once(workload().into_os_string())
                .chain(argv)
                .collect(),
        ));
        opts.output_dir = Some(scratch("mixed"));
        opts.oncpu_window_ns = Some(0);
        opts.perf_counters = true;
        let outcome = record(&opts).expect("record");
        let report: Value = serde_json::from_slice(
            &std::fs::read(outcome.output_dir.join("report.json")).expect("report.json"),
        )
        .expect("report.json is JSON");
        let secs = outcome.recording.duration_ns as f64 / 1e9;
        eprintln!(
            "mixed 2 s: {} records in {secs:.2} s = {:.0}/s, lost {} (per CPU {:?}), decode errors {}",
            outcome.records,
            outcome.records as f64 / secs,
            outcome.lost_events,
            report["lost_per_cpu"],
            outcome.decode_errors
        );
        assert!(outcome.records > 10_000, "{} records", outcome.records);
        assert_eq!(report["lost_events"].as_u64(), Some(outcome.lost_events));
        assert_eq!(outcome.decode_errors, 0);
        assert_eq!(outcome.map_full, 0);
        // The eBPF CPU time of the tree agrees with perf's task-clock.
        let ebpf = outcome.recording.total_cpu_ns() as f64;
        let perf = report["perf"]["task_clock_ns"].as_f64().expect("perf");
        eprintln!("cpu: eBPF {ebpf:.0} ns, perf task-clock {perf:.0} ns");
        assert!(
            (0.9..=1.1).contains(&(ebpf / perf)),
            "eBPF {ebpf} vs perf {perf}"
        );
    }

    #[test]
    fn overflow_of_a_tiny_ring_buffer_is_counted_and_reported() {
        let Some(_g) = bpf_available() else { return };
        let mut argv = vec![workload().into_os_string()];
        // A storm of context switches with a record for each (no on-CPU
        // window), from more threads than CPUs, fills a 4 KiB ring (~60
        // records) faster than a reader competing with them for the CPUs
        // drains it (it kept up once in a few runs); the stack samples' copies
        // (KiBs each) never fit in it: losses are certain.
        let threads = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = threads.to_string();
        argv.extend(["yield", "--ms", "500", "--threads", &threads].map(Into::into));
        let mut opts = RecordOptions::new(Target::Command(argv));
        opts.output_dir = Some(scratch("overflow"));
        opts.ring_buffer_bytes = Some(4096);
        opts.oncpu_window_ns = Some(0);
        opts.freq = Some(499);
        let outcome = record(&opts).expect("record");
        let info = &outcome.recording.info;
        eprintln!(
            "4 KiB ring: {} records, lost {:?}",
            outcome.records, info.lost_per_cpu
        );
        assert!(outcome.lost_events > 0, "nothing lost with a 4 KiB ring");
        assert_eq!(info.lost_per_cpu.iter().sum::<u64>(), outcome.lost_events);
        assert!(outcome.summary.contains("lost"), "{}", outcome.summary);
    }
}

#[path = "record/sampling.rs"]
mod sampling;

#[path = "record/compare.rs"]
mod compare;

#[path = "record/alloc.rs"]
mod alloc;

#[path = "record/unwind.rs"]
mod unwind;

#[path = "record/runtime_reference.rs"]
mod runtime_reference;
