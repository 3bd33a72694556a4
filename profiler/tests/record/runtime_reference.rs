//! JIT and GC shares against the runtime's own accounting of the same run: lxprof's
//! `jit_ns` / `gc_ns` (stack samples classified by whole stacks) within ±15 % of
//! Mono's `--stats` "Total time spent JITting" and of its GC log's stop-the-world
//! pauses plus the SGen worker's CPU.
//!
//! Mono's GC log times a collection from the stopped world to its restart; lxprof's
//! GC also holds the collector's work around that window, which the log does not
//! time: freeing swept major blocks ahead of a collection and, after the restart, its
//! statistics and the log line itself (together 10–15 % of the GC here). So the test
//! splits lxprof's GC samples by their stacks, compares those inside collections with
//! the log, and checks that the rest is that known work, not misattributed code.
//!
//! Mono times JIT and pauses by the clock, lxprof counts CPU. On a loaded machine (two
//! cores shared) the main thread, which compiles and collects, waits for a CPU while
//! runnable, and the clock runs on. So the runtime's clock figures are converted to
//! CPU with the main thread's own on-CPU fraction while runnable, from the kernel's
//! `/proc/thread-self/schedstat` (run time, run-queue wait) that the program prints
//! at its end: `clock × run / (run + wait)`. On an idle machine the factor is ~1.

use super::*;
use std::process::Command;

/// sampling.rs's program: `jit N` (N dynamic methods, each compiled once) and `gc N`
/// (N rounds of short-lived arrays) modes.
use super::sampling::CS_PROGRAM;

/// The program built with mcs, or None (skip; panics under CI) without Mono.
fn mono_program() -> Option<std::path::PathBuf> {
    if !tools_available(&["mono", "mcs"]) {
        return None;
    }
    let exe = build_cs("reference-mono-src", CS_PROGRAM);
    Some(exe)
}

/// Records `sh -c SCRIPT` at 1,999 Hz (a share of ~25 ms is ~50 samples at 1,999
/// Hz, ~12 at 499 Hz: sampling error alone then moved a ratio by ±30 %); returns
/// the report's process of the command (the shell exec's into the runtime) and
/// what the runtime printed into `out`.
fn record_script(name: &str, script: String, out: &std::path::Path) -> (Value, String) {
    let (p, text, _) = record_script_folded(name, script, out);
    (p, text)
}

/// [`record_script`], and the command's folded stacks.
fn record_script_folded(
    name: &str,
    script: String,
    out: &std::path::Path,
) -> (Value, String, String) {
    let mut opts = RecordOptions::new(Target::Command(vec![
        "/bin/sh".into(),
        "-c".into(),
        script.into(),
    ]));
    opts.output_dir = Some(scratch(name));
    opts.freq = Some(1999);
    let outcome = record(&opts).expect("record");
    assert_eq!(outcome.exit_status.and_then(|s| s.code), Some(0));
    let report: Value = serde_json::from_slice(
        &std::fs::read(outcome.output_dir.join("report.json")).expect("report"),
    )
    .expect("json");
    let p = processes(&report)
        .iter()
        .find(|p| p["role"] == "command")
        .cloned()
        .unwrap_or_else(|| panic!("no command process: {report:#}"));
    let folded = command_folded(&outcome.output_dir);
    (
        p,
        std::fs::read_to_string(out).expect("runtime output"),
        folded,
    )
}

fn ns(p: &Value, category: &str) -> f64 {
    p["categories"][category]
        .as_u64()
        .unwrap_or_else(|| panic!("categories.{category} missing: {p:#}")) as f64
}

/// CPU ns of the threads whose name starts with `prefix`.
fn thread_cpu(p: &Value, prefix: &str) -> f64 {
    p["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .map(|t| t["cpu_ns"].as_u64().unwrap_or(0) as f64)
        .sum()
}

/// The main thread's on-CPU fraction while runnable, from the `schedstat: RUN WAIT N`
/// line the program printed (see the module doc).
fn on_cpu_fraction(text: &str) -> f64 {
    let fields: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("schedstat: "))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [run, wait, ..] = fields[..] else {
        panic!("no schedstat line in the program's output:\n{text}");
    };
    let f = run / (run + wait);
    eprintln!(
        "main thread: {:.1} ms on CPU, {:.1} ms waiting for one: factor {f:.3}",
        run / 1e6,
        wait / 1e6
    );
    f
}

fn assert_within(what: &str, lxprof: f64, reference: f64, p: &Value) {
    let ratio = lxprof / reference;
    eprintln!(
        "{what}: lxprof {:.1} ms, runtime {:.1} ms: ratio {ratio:.3} (process CPU {:.1} ms, categories {})",
        lxprof / 1e6,
        reference / 1e6,
        p["cpu_ns"].as_u64().unwrap_or(0) as f64 / 1e6,
        p["categories"]
    );
    assert!(
        (0.85..=1.15).contains(&ratio),
        "{what}: lxprof {lxprof:.0} ns vs the runtime's {reference:.0} ns (ratio {ratio:.3})"
    );
}

#[test]
fn mono_jit_share_matches_mono_stats() {
    let Some(_g) = bpf_available() else { return };
    let Some(exe) = mono_program() else { return };
    let out = scratch("reference-mono-jit-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let out = out.join("stats.txt");
    let script = format!(
        "exec mono --stats {} jit 3000 > {}",
        exe.display(),
        out.display()
    );
    let (p, text) = record_script("reference-mono-jit", script, &out);
    // "Total time spent JITting            : 496.19 ms"
    let mono_ms: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Total time spent JITting"))
        .and_then(|rest| {
            rest.trim_start_matches([' ', ':'])
                .split_whitespace()
                .next()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no JIT time in mono --stats output:\n{text}"));
    let factor = on_cpu_fraction(&text);
    assert_within("Mono JIT", ns(&p, "jit_ns"), mono_ms * 1e6 * factor, &p);
}

#[test]
fn mono_gc_share_matches_its_gc_log() {
    let Some(_g) = bpf_available() else { return };
    let Some(exe) = mono_program() else { return };
    let out = scratch("reference-mono-gc-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let out = out.join("gc.log");
    // ~1,100 collections of ~150 µs: each holds a sample at 1,999 Hz with a chance
    // of ~0.3, so the count's sampling error is ~5 % (~7 % with half as many).
    let script = format!(
        "MONO_LOG_MASK=gc MONO_LOG_LEVEL=debug exec mono {} gc 6000 > {} 2>&1",
        exe.display(),
        out.display()
    );
    let (p, text, folded) = record_script_folded("reference-mono-gc", script, &out);
    // "Mono: GC_MINOR: (Nursery full) time 2.87ms, stw 2.87ms promoted …"
    let (pauses, count) = text
        .lines()
        .filter_map(|l| {
            l.split_once(" stw ")?
                .1
                .split("ms")
                .next()?
                .parse::<f64>()
                .ok()
        })
        .fold((0.0, 0), |(s, n), ms| (s + ms * 1e6, n + 1));
    assert!(count > 10, "{count} collections logged:\n{text}");
    let worker = thread_cpu(&p, "SGen worker");
    eprintln!(
        "Mono GC log: {count} pauses, {:.1} ms; SGen worker CPU {:.1} ms",
        pauses / 1e6,
        worker / 1e6
    );
    // lxprof's GC by where its samples are: the SGen worker threads; on the main
    // thread, inside a collection (what the log times), freeing swept blocks ahead of
    // one, after the world restarted (statistics, the log line); the finalizer
    // thread; anything else.
    const COLLECTION: &[&str] = &[
        "sgen_perform_collection",
        "collect_nursery",
        "major_do_collection",
        "major_start_collection",
        "major_finish_collection",
        "sgen_stop_world",
        "sgen_restart_world",
    ];
    let has = |frames: &[&str], names: &[&str]| {
        frames
            .iter()
            .any(|f| names.iter().any(|n| f.starts_with(n)))
    };
    let gc = ns(&p, "gc_ns");
    let [on_workers, collections, before, after, other_threads, other] = split_folded(
        &folded,
        " [gc]",
        |thread, frames| match thread {
            t if t.starts_with("SGen worker") => 0,
            "mono" if has(frames, &["sgen_memgov_collection_end"]) => 3,
            "mono" if has(frames, &["sgen_need_major_collection"]) => 2,
            "mono" if has(frames, COLLECTION) => 1,
            "mono" => 5,
            _ => 4,
        },
        6,
    )[..] else {
        unreachable!()
    };
    eprintln!(
        "lxprof GC {:.1} ms: SGen worker {:.1}, in collections {:.1}, before collections \
         {:.1}, after restarts {:.1}, other threads {:.1}, other {:.1}",
        gc / 1e6,
        on_workers / 1e6,
        collections / 1e6,
        before / 1e6,
        after / 1e6,
        other_threads / 1e6,
        other / 1e6
    );
    assert!(
        (on_workers + collections + before + after + other_threads + other - gc).abs() < 0.02 * gc,
        "the folded stacks' GC is not the report's ({gc:.0} ns)"
    );
    assert!(
        other <= 0.05 * gc,
        "{:.1} ms of the main thread's GC is neither in a collection nor around one",
        other / 1e6
    );
    let factor = on_cpu_fraction(&text);
    assert_within(
        "Mono GC in collections",
        collections + on_workers,
        pauses * factor + worker,
        &p,
    );
}

/// HotSpot: a JIT-heavy mode (`jit N`: N rounds over 400 methods, each compiled by
/// C1 then C2) and an allocation-heavy one (`gc N`), then the kernel's schedstat of
/// every thread (`schedstat: NAME\tRUN WAIT N`).
fn java_program() -> String {
    const METHODS: usize = 400;
    let mut s = String::from("import java.nio.file.*;\nimport java.util.*;\npublic class P {\n");
    for i in 0..METHODS {
        s += &format!(
            "  static long m{i}(long x) {{ long s = x; for (int j = 0; j < 50; j++) {{ \
             s = s * {} + (s >>> {}) ^ j; if ((s & {}) == 0) s += leaf{i}(s); }} return s; }}\n  \
             static long leaf{i}(long x) {{ return x * {} + {i}; }}\n",
            i + 3,
            i % 13 + 1,
            i + 7,
            i + 1
        );
    }
    s += "  static long run(long s, int k) {\n";
    for i in 0..METHODS {
        s += &format!("    s += m{i}(s + k);\n");
    }
    s += "    return s;\n  }\n";
    s += r#"
  static long jit(int rounds) { long s = 1; for (int k = 0; k < rounds; k++) s += run(s, k); return s; }
  static long gc(int rounds) {
    long n = 0;
    for (int r = 0; r < rounds; r++) {
      List<byte[]> l = new ArrayList<>();
      for (int i = 0; i < 1000; i++) l.add(new byte[512 + (i % 7) * 64]);
      n += l.size();
    }
    return n;
  }
  public static void main(String[] a) throws Exception {
    int n = Integer.parseInt(a[1]);
    System.out.println(a[0].equals("jit") ? jit(n) : gc(n));
    try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Paths.get("/proc/self/task"))) {
      for (Path t : tasks) {
        String comm = Files.readString(t.resolve("comm")).trim();
        System.out.println("schedstat: " + comm + "\t" + Files.readString(t.resolve("schedstat")).trim());
      }
    }
  }
}
"#;
    s
}

/// The class directory, or None (skip; panics under CI) without java/javac.
fn java_class() -> Option<std::path::PathBuf> {
    if !tools_available(&["java", "javac"]) {
        return None;
    }
    let dir = scratch("reference-java-src");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("P.java"), java_program()).expect("write java");
    let st = Command::new("javac")
        .arg(dir.join("P.java"))
        .status()
        .expect("javac");
    assert!(st.success(), "javac failed");
    Some(dir)
}

/// `sh -c` script running the class with lxprof's JVM settings (perf map, frame pointers).
fn java_script(dir: &std::path::Path, flags: &str, args: &str, out: &std::path::Path) -> String {
    let env: String = lxprof::runtime_env::profiling_env("java")
        .into_iter()
        .map(|(k, v)| format!("{k}='{v}' "))
        .collect();
    format!(
        "{env}exec java -Xmx256m -XX:-UseDynamicNumberOfCompilerThreads {flags} -cp {} P {args} > {} 2>&1",
        dir.display(),
        out.display()
    )
}

/// Run time (ns) of the threads whose name starts with `prefix`, per the kernel's
/// schedstat lines the program printed.
fn schedstat_run(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("schedstat: "))
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, _)| name.starts_with(prefix))
        .filter_map(|(_, v)| v.split_whitespace().next()?.parse::<f64>().ok())
        .sum()
}

/// HotSpot compiles on its compiler threads: `-XX:+CITime`'s total (a clock figure)
/// or, when the machine is loaded and the clock ran on while they waited for a CPU,
/// their CPU time per the kernel (schedstat), whichever is smaller.
/// Weight (ns) of the folded stacks with a frame of category `tag` (` [jit]`,
/// ` [gc]`: a frame carries a category only when every sample beneath it has it), by
/// `slot(thread name, frame names leaf last)`.
fn split_folded(
    folded: &str,
    tag: &str,
    mut slot: impl FnMut(&str, &[&str]) -> usize,
    slots: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; slots];
    for (stack, w) in folded_lines(folded).filter(|(stack, _)| stack.contains(tag)) {
        let frames: Vec<&str> = stack.split(';').map(frame_name).collect();
        out[slot(frames[0], &frames[1..])] += w as f64;
    }
    out
}

#[test]
fn hotspot_jit_share_matches_citime() {
    let Some(_g) = bpf_available() else { return };
    let Some(dir) = java_class() else { return };
    let out = scratch("reference-java-jit-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let out = out.join("citime.txt");
    let script = java_script(&dir, "-XX:+CITime", "jit 3000", &out);
    let (p, text, folded) = record_script_folded("reference-java-jit", script, &out);
    // "  Total compilation time   :   0.603 s"
    let citime: f64 = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Total compilation time"))
        .and_then(|rest| {
            rest.trim_start_matches([' ', ':'])
                .split_whitespace()
                .next()
        })
        .and_then(|v| v.parse::<f64>().ok())
        .map(|s| s * 1e9)
        .unwrap_or_else(|| panic!("no total compilation time in -XX:+CITime output:\n{text}"));
    let compilers =
        schedstat_run(&text, "C1 CompilerThre") + schedstat_run(&text, "C2 CompilerThre");
    eprintln!(
        "CITime {:.1} ms; compiler threads on CPU {:.1} ms",
        citime / 1e6,
        compilers / 1e6
    );
    // lxprof's JIT: the compiler threads' (what CITime and their CPU cover), and the
    // tiered policy requesting compilations on the application threads (counter
    // overflows, CompileBroker::compile_method), which neither covers.
    const POLICY: &[&str] = &[
        "CompilationPolicy::",
        "CompileBroker::",
        "Runtime1::counter_overflow",
        "InterpreterRuntime::frequency_counter_overflow",
    ];
    let jit = ns(&p, "jit_ns");
    let [on_compilers, policy, other] = split_folded(
        &folded,
        " [jit]",
        |thread, frames| {
            if thread.starts_with("C1 CompilerThre") || thread.starts_with("C2 CompilerThre") {
                0
            } else if frames
                .iter()
                .any(|f| POLICY.iter().any(|p| f.starts_with(p)))
            {
                1
            } else {
                2
            }
        },
        3,
    )[..] else {
        unreachable!()
    };
    eprintln!(
        "lxprof JIT {:.1} ms: compiler threads {:.1}, compilation policy on other threads {:.1}, \
         other {:.1}",
        jit / 1e6,
        on_compilers / 1e6,
        policy / 1e6,
        other / 1e6
    );
    assert!(
        (on_compilers + policy + other - jit).abs() < 0.02 * jit,
        "the folded stacks' JIT is not the report's ({jit:.0} ns)"
    );
    assert!(
        other <= 0.05 * jit,
        "{:.1} ms of JIT neither on a compiler thread nor requesting a compilation",
        other / 1e6
    );
    assert_within(
        "HotSpot JIT on compiler threads",
        on_compilers,
        citime.min(compilers),
        &p,
    );
}

/// Serial GC collects on the VM thread, in a VM operation at a safepoint: the
/// runtime's own figure is the time its collection operations held the
/// safepoint (`-Xlog:safepoint` Total of each `GenCollect*` operation; the
/// `-Xlog:gc` pause lines leave out ~15 % of it, the operation's own prologue
/// and epilogue) or, under load, the VM thread's CPU time per the kernel,
/// whichever is smaller.
///
/// The JVM writes its perf map at exit: the JIT frames are named only if lxprof still
/// finds it then (see `Symbolizer::refresh`); most of the program's samples must be.
#[test]
fn hotspot_serial_gc_share_matches_gc_log() {
    let Some(_g) = bpf_available() else { return };
    let Some(dir) = java_class() else { return };
    let out = scratch("reference-java-gc-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let out = out.join("gc.log");
    let script = java_script(
        &dir,
        "-XX:+UseSerialGC -Xlog:gc,safepoint",
        "gc 90000",
        &out,
    );
    let (p, text) = record_script("reference-java-gc", script, &out);
    // [0.091s][info][safepoint] Safepoint "GenCollectForAllocation", Time since
    // last: 65051255 ns, Reaching safepoint: 3171 ns, Cleanup: 34661 ns, At
    // safepoint: 1479281 ns, Total: 1517113 ns
    let (held, count) = text
        .lines()
        .filter(|l| l.contains("[safepoint]") && l.contains("Safepoint \"GenCollect"))
        .filter_map(|l| {
            l.rsplit_once("Total: ")?
                .1
                .strip_suffix(" ns")?
                .parse::<f64>()
                .ok()
        })
        .fold((0.0, 0), |(s, n), ns| (s + ns, n + 1));
    assert!(count > 10, "{count} collection safepoints logged:\n{text}");
    let pauses: f64 = text
        .lines()
        .filter(|l| l.contains("[gc]") && l.contains(" Pause "))
        .filter_map(|l| {
            l.rsplit(' ')
                .next()?
                .strip_suffix("ms")?
                .parse::<f64>()
                .ok()
        })
        .map(|ms| ms * 1e6)
        .sum();
    let vm_thread = schedstat_run(&text, "VM Thread");
    eprintln!(
        "-Xlog:safepoint: {count} collections held {:.1} ms (-Xlog:gc pauses {:.1} ms); \
         VM Thread on CPU {:.1} ms",
        held / 1e6,
        pauses / 1e6,
        vm_thread / 1e6
    );
    assert_within("HotSpot GC", ns(&p, "gc_ns"), held.min(vm_thread), &p);
    // Java code named from the perf map: "app", not unnamed frames falling to "runtime".
    assert!(
        ns(&p, "app_ns") > ns(&p, "runtime_ns"),
        "the JIT frames are not named: {}",
        p["categories"]
    );
}
