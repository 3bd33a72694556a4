//! `--freq` stack sampling: samples of a native burn, a Mono program and a
//! Node script symbolized, classified and written as categories,
//! flamegraphs, Perfetto and the JIT / GC slices of `trace.json`.

use super::*;
use std::process::{Command, Stdio};

const FREQ: u32 = 499;

fn options(name: &str, argv: Vec<std::ffi::OsString>) -> RecordOptions {
    let mut opts = RecordOptions::new(Target::Command(argv));
    opts.output_dir = Some(scratch(name));
    opts.freq = Some(FREQ);
    opts
}

/// The only process of `role` "command" in the report.
fn command_process(report: &Value) -> &Value {
    processes(report)
        .iter()
        .find(|p| p["role"] == "command")
        .unwrap_or_else(|| panic!("no command process: {report:#}"))
}

fn category(p: &Value, name: &str) -> u64 {
    p["categories"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("categories.{name} missing: {p:#}"))
}

/// SVG well-formed (parsed as XML), root `<svg>`.
fn assert_svg(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("svg");
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, opts).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
}

#[test]
fn native_burn_is_app_and_kernel_with_its_rust_function() {
    let Some(_g) = bpf_available() else { return };
    let argv = vec![
        workload().into_os_string(),
        "burn".into(),
        "--threads".into(),
        "2".into(),
        "--ms".into(),
        "400".into(),
    ];
    let outcome = record(&options("sampling-native", argv)).expect("record");
    let dir = &outcome.output_dir;
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report"))
            .expect("json");
    let p = command_process(&report);
    let cpu = p["cpu_ns"].as_u64().expect("cpu_ns");
    let samples = p["samples"].as_u64().expect("samples");
    // cpu-clock fires per CPU-second of the sampled threads: ~FREQ per second.
    let expected = cpu as f64 * f64::from(FREQ) / 1e9;
    eprintln!("{samples} samples for {cpu} ns of CPU (expected ~{expected:.0})");
    assert!(
        (0.5..=1.5).contains(&(samples as f64 / expected)),
        "{samples} samples, expected ~{expected:.0}"
    );
    assert_eq!(p["runtime"], "native");
    assert_eq!(category(p, "jit_ns"), 0);
    assert_eq!(category(p, "gc_ns"), 0);
    assert_eq!(category(p, "runtime_ns"), 0);
    assert!(category(p, "app_ns") > cpu / 2, "{p:#}");
    assert_eq!(category(p, "app_ns") + category(p, "kernel_ns"), cpu);
    let folded = command_folded(dir);
    assert!(
        folded.contains("workload::burn_cpu"),
        "no workload::burn_cpu in\n{folded}"
    );
    assert!(folded.contains("burner-1") && folded.contains("burner-2"));
    assert_svg(&dir.join("flamegraphs/command.svg"));
    let perfetto = std::fs::metadata(dir.join("trace.perfetto-trace")).expect("perfetto");
    assert!(perfetto.len() > 1000, "{} bytes", perfetto.len());
    assert!(
        outcome.summary.contains("of its CPU was application code"),
        "{}",
        outcome.summary
    );
    // No JIT or GC: no JIT/GC tracks in trace.json.
    let trace = std::fs::read_to_string(dir.join("trace.json")).expect("trace.json");
    assert!(
        !trace.contains("JIT/GC"),
        "native program with JIT/GC slices"
    );
    // events.bin replays to the same samples, raw addresses included.
    let replayed = lxprof::rawlog::replay(&dir.join("events.bin")).expect("replay");
    let sampled = |r: &lxprof::model::Recording| -> Vec<lxprof::model::StackSample> {
        r.processes
            .iter()
            .flat_map(|p| &p.threads)
            .flat_map(|t| t.samples.clone())
            .collect()
    };
    let live = sampled(&outcome.recording);
    assert_eq!(sampled(&replayed), live);
    assert!(live.iter().filter(|s| !s.user.is_empty()).count() > live.len() / 2);
}

pub(super) const CS_PROGRAM: &str = r#"
using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection.Emit;
using System.Text.RegularExpressions;
class P {
    static int JitManyThings() {
        var d = new Dictionary<string, int>();
        for (int i = 0; i < 200; i++) d["k" + i] = i;
        int s = d.Values.Where(v => v % 2 == 0).Select(v => v * 2).OrderBy(v => -v).Sum();
        s += Regex.Matches("a1b22c333d4444", @"\d+").Count;
        s += string.Join(",", Enumerable.Range(0, 50).Select(x => x.ToString("X"))).Length;
        var sd = new SortedDictionary<int, string>();
        for (int i = 0; i < 100; i++) sd[i * 7 % 31] = i.ToString();
        s += sd.Count + new HashSet<double>(Enumerable.Range(0, 30).Select(x => x / 3.0)).Count;
        return s;
    }
    // Each dynamic method is JIT-compiled when first called: compilation-heavy.
    static int EmitAndRunMany(int n) {
        int s = 0;
        for (int k = 0; k < n; k++) {
            var dm = new DynamicMethod("Gen" + k, typeof(int), new[] { typeof(int) });
            var il = dm.GetILGenerator();
            il.Emit(OpCodes.Ldarg_0);
            for (int j = 0; j < 400; j++) {
                il.Emit(OpCodes.Ldc_I4, j + k);
                il.Emit(OpCodes.Add);
                il.Emit(OpCodes.Ldc_I4_3);
                il.Emit(OpCodes.Mul);
            }
            il.Emit(OpCodes.Ret);
            var f = (Func<int, int>)dm.CreateDelegate(typeof(Func<int, int>));
            s += f(k);
        }
        return s;
    }
    // Garbage that dies young, in small objects: a major collection's swept
    // blocks are returned to the OS by the mutator outside any pause
    // (major_free_swept_blocks: 13 % of the main thread when each round's
    // 1,000 objects survived a minor collection and large-object churn
    // triggered majors), work the GC log does not time. With 100 objects live
    // at a time nothing much survives, majors are rare, and the log's pauses
    // plus the SGen worker's CPU are the GC's whole cost.
    static long AllocateGarbageHeavy(int rounds) {
        long n = 0;
        for (int r = 0; r < rounds * 10; r++) {
            var l = new List<byte[]>(100);
            for (int i = 0; i < 100; i++) l.Add(new byte[512 + (i % 7) * 64]);
            n += l.Count;
        }
        return n;
    }
    // No argument: a bit of everything. `jit N` / `gc N` (runtime_reference.rs): one
    // kind of work, then the main thread's schedstat (run ns, run-queue wait ns).
    static void Main(string[] a) {
        if (a.Length == 2) {
            int n = int.Parse(a[1]);
            Console.WriteLine(a[0] == "jit" ? EmitAndRunMany(n) : AllocateGarbageHeavy(n));
            Console.WriteLine("schedstat: " + System.IO.File.ReadAllText("/proc/thread-self/schedstat").Trim());
            return;
        }
        Console.WriteLine(JitManyThings());
        Console.WriteLine(EmitAndRunMany(800));
        Console.WriteLine(AllocateGarbageHeavy(1500));
    }
}
"#;

fn mono_available() -> bool {
    let found = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found("mono") && found("mcs") {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but mono/mcs are missing (scripts/setup.sh installs them)");
    }
    eprintln!("skipping: needs mono and mcs");
    false
}

#[test]
fn mono_program_has_jit_and_gc_and_its_csharp_methods() {
    let Some(_g) = bpf_available() else { return };
    if !mono_available() {
        return;
    }
    let exe = build_cs("sampling-mono-src", CS_PROGRAM);
    // lxprof's launcher sets what Mono needs (perf map, frame pointers).
    let argv = vec!["mono".into(), exe.into_os_string()];
    let outcome = record(&options("sampling-mono", argv)).expect("record");
    let dir = &outcome.output_dir;
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report"))
            .expect("json");
    let p = command_process(&report);
    eprintln!(
        "mono: {} samples, categories {}",
        p["samples"], p["categories"]
    );
    assert_eq!(p["runtime"], "mono", "{p:#}");
    assert!(category(p, "jit_ns") > 0, "{p:#}");
    assert!(category(p, "gc_ns") > 0, "{p:#}");
    let total: u64 = ["app_ns", "jit_ns", "gc_ns", "runtime_ns", "kernel_ns"]
        .iter()
        .map(|c| category(p, c))
        .sum();
    assert_eq!(total, p["cpu_ns"].as_u64().expect("cpu_ns"));
    let folded = command_folded(dir);
    assert!(
        folded.contains("P:AllocateGarbageHeavy"),
        "no C# method of the program in\n{folded}"
    );
    assert_svg(&dir.join("flamegraphs/command.svg"));
    assert!(
        outcome.summary.contains("JIT compilation"),
        "{}",
        outcome.summary
    );
    // trace.json: the JIT runs as `JIT` slices on the threads' JIT/GC tracks.
    let trace_path = dir.join("trace.json");
    let trace: Value =
        serde_json::from_slice(&std::fs::read(&trace_path).expect("trace.json")).expect("json");
    lxprof::export::chrome::validate(&trace).expect("valid trace.json");
    super::trace::check_trace(&trace_path);
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let jit_slices = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == "JIT")
        .count();
    let gc_slices = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == "GC")
        .count();
    eprintln!("trace.json: {jit_slices} JIT slices, {gc_slices} GC slices");
    assert!(jit_slices >= 1, "no JIT slice in trace.json");
    let runs: u64 = outcome
        .recording
        .processes
        .iter()
        .flat_map(|p| &p.threads)
        .map(|t| t.category_runs.len() as u64)
        .sum();
    assert_eq!(runs, (jit_slices + gc_slices) as u64);
}

/// JS work with names to find: a recursive function V8 optimizes, called
/// from a loop that also allocates.
const JS_PROGRAM: &str = r#"
function lxprofFib(n) { return n < 2 ? n : lxprofFib(n - 1) + lxprofFib(n - 2); }
function lxprofHotLoop(ms) {
    const end = Date.now() + ms;
    let s = 0, keep = [];
    while (Date.now() < end) {
        s += lxprofFib(18);
        keep.push({ s, text: "x" + s });
        if (keep.length > 5000) keep = [];
    }
    return s;
}
console.log(lxprofHotLoop(700));
"#;

#[test]
fn node_script_has_its_js_functions_and_categories() {
    let Some(_g) = bpf_available() else { return };
    let found = Command::new("sh")
        .args(["-c", "command -v node"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but node is missing (scripts/setup.sh installs it)");
        }
        eprintln!("skipping: needs node");
        return;
    }
    let src = scratch("sampling-node-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let script = src.join("hot.js");
    std::fs::write(&script, JS_PROGRAM).expect("write js");
    // lxprof's launcher sets what Node needs (perf map of JS functions,
    // interpreted frames on the native stack).
    let argv = vec!["node".into(), script.into_os_string()];
    let outcome = record(&options("sampling-node", argv)).expect("record");
    assert_eq!(outcome.exit_status.and_then(|s| s.code), Some(0));
    let dir = &outcome.output_dir;
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report"))
            .expect("json");
    let p = command_process(&report);
    eprintln!(
        "node: {} samples, categories {}",
        p["samples"], p["categories"]
    );
    assert_eq!(p["runtime"], "v8", "{p:#}");
    let total: u64 = ["app_ns", "jit_ns", "gc_ns", "runtime_ns", "kernel_ns"]
        .iter()
        .map(|c| category(p, c))
        .sum();
    assert_eq!(total, p["cpu_ns"].as_u64().expect("cpu_ns"));
    assert!(category(p, "app_ns") > 0, "{p:#}");
    let folded = command_folded(dir);
    let fib_samples: u64 = folded_lines(&folded)
        .filter(|(stack, _)| stack.contains("lxprofFib"))
        .map(|(_, w)| w)
        .sum();
    let total_weight: u64 = folded_lines(&folded).map(|(_, w)| w).sum();
    eprintln!("lxprofFib: {fib_samples} of {total_weight} ns in the folded stacks");
    assert!(
        folded.contains("lxprofHotLoop") && fib_samples > 0,
        "no JS function of the script in\n{folded}"
    );
    assert_svg(&dir.join("flamegraphs/command.svg"));
    let trace: Value =
        serde_json::from_slice(&std::fs::read(dir.join("trace.json")).expect("trace.json"))
            .expect("json");
    lxprof::export::chrome::validate(&trace).expect("valid trace.json");
}
