//! .NET CoreCLR through the real binary: the dotnet presets in the emulated Lambda
//! environment, and lxprof's JIT and GC figures against the runtime's own events for the
//! same run. Needs root, BPF and the runtime of `extensions/build.sh dotnet` (with `mcs`
//! for the reference program); with `CI=true` a missing facility fails the test.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

mod support;

use support::{LocalS3, lambda_facility, lxprof_stdout, repo, scratch, serial, skip_or_fail};

/// The runtime installed by `extensions/build.sh dotnet`, if built.
fn dotnet_runtime(build: &Path) -> Option<PathBuf> {
    let rt = build.join("dotnet");
    if rt.join("dotnet").is_file()
        && build.join("layers/dotnet-event-collector").is_dir()
        && build
            .join("functions/header-counter-dotnet/bootstrap")
            .is_file()
    {
        Some(rt)
    } else {
        skip_or_fail("the .NET presets are not built: run extensions/build.sh dotnet");
        None
    }
}

fn json_file(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `KEY=value` of a `scripts/local-s3.sh` state file.
fn state_value(state: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(state).expect("S3 state file");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing in {}", state.display()))
        .trim_matches('"')
        .to_string()
}

/// Keys of a bucket of the local (moto) S3 server, by an unsigned ListObjectsV2 (moto
/// accepts those; at most 1,000 keys, plenty here).
fn s3_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("connect to the local S3");
    write!(
        stream,
        "GET /{bucket}?list-type=2 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send ListObjectsV2");
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .expect("read ListObjectsV2");
    assert!(body.starts_with("HTTP/1.1 200"), "ListObjectsV2: {body}");
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
        .collect()
}

/// The C# function and both C# extensions on CoreCLR at 128 MB: every invocation
/// succeeds, the collector stores one object per invocation, and their managed frames
/// are named from the perf map (`COMPlus_PerfMapEnabled`, the only spelling 3.1 reads).
#[test]
fn dotnet_presets_record_every_invocation_and_store_objects() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let Some(_rt) = dotnet_runtime(&build) else {
        return;
    };
    let dir = scratch("dotnet-presets");
    let state = dir.join("s3.state");
    let Some(_s3) = LocalS3::start(state.clone(), "lxprof-dotnet-test") else {
        return;
    };
    let out = dir.join("out");
    let stdout = lxprof_stdout(
        Command::new(env!("CARGO_BIN_EXE_lxprof"))
            .args(["record", "--lambda", "--function", "header-counter-dotnet"])
            .args(["--extension", "dotnet-event-collector"])
            .args(["--extension", "dotnet-blank"])
            .args(["--memory", "128", "--invocations", "20", "--timeout", "10"])
            .args(["--env", "HEADER_COUNTER_DELAY_MS=50", "-o"])
            .arg(&out)
            .env("LXPROF_EXTENSIONS_BUILD", &build)
            .env("LXPROF_S3_STATE", &state),
    );
    assert!(stdout.contains("20 of 20 succeeded"), "{stdout}");
    let keys = s3_keys(&state_value(&state, "ENDPOINT"), "lxprof-dotnet-test");
    assert_eq!(keys.len(), 20, "{keys:?}");

    let report = json_file(&out.join("report.json"));
    let dotnet: Vec<&Value> = report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["comm"] == "dotnet")
        .collect();
    let roles: Vec<&str> = dotnet.iter().filter_map(|p| p["role"].as_str()).collect();
    for role in [
        "function",
        "extension:dotnet-event-collector",
        "extension:dotnet-blank",
    ] {
        assert!(
            roles.contains(&role),
            "no dotnet process of {role}: {roles:?}"
        );
    }
    for p in &dotnet {
        assert_eq!(p["runtime"], "core_clr", "{p}");
        assert!(p["categories"]["jit_ns"].as_u64().unwrap_or(0) > 0, "{p}");
    }
    for role in ["function", "extension_dotnet-event-collector"] {
        let folded = std::fs::read_to_string(out.join(format!("flamegraphs/{role}.folded")))
            .expect("folded stacks");
        let tiered = ["[QuickJitted]", "[OptimizedTier1]", "[Optimized]"];
        assert!(
            tiered.iter().any(|t| folded.contains(t)),
            "{role}: no managed frame named by the perf map"
        );
    }
}

/// Sums folded-stack weights of the stacks for which `pred` holds.
fn folded_sum(folded: &str, pred: impl Fn(&str) -> bool) -> f64 {
    folded
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(stack, _)| pred(stack))
        .filter_map(|(_, w)| w.parse::<f64>().ok())
        .sum()
}

/// The reference: `RuntimeEvents.exe` (tests/data/dotnet) times JIT and GC from the
/// runtime's own events in-process while lxprof records it. The events' intervals are wall
/// time; the program weighs them by its main thread's on-CPU fraction in each phase (from
/// the kernel's thread CPU clock), since on a busy machine a thread is preempted inside
/// them too. Within ±25 %:
/// - JIT: lxprof's `jit_ns` minus the JIT samples emitting the MethodJittingStarted event
///   (`ETW::MethodLog::MethodJitting`: the listener's own cost, spent before that event's
///   timestamp) vs the MethodJittingStarted → MethodLoadVerbose intervals;
/// - GC: lxprof's samples under `GarbageCollectGeneration` vs the pauses
///   (GCSuspendEEBegin → GCRestartEEEnd; workstation non-concurrent GC, so collections run
///   on the allocating thread). lxprof's `gc_ns` also holds the allocation slow paths
///   (clearing allocation contexts), which no GC event times: printed, not compared.
#[test]
fn jit_and_gc_agree_with_the_runtimes_own_events() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let Some(rt) = dotnet_runtime(&build) else {
        return;
    };
    let dir = scratch("dotnet-reference");
    let exe = dir.join("RuntimeEvents.exe");
    let mcs = Command::new("mcs")
        .arg("-nologo")
        .arg("-optimize+")
        .arg(format!("-out:{}", exe.display()))
        .arg(repo().join("profiler/tests/data/dotnet/RuntimeEvents.cs"))
        .status();
    if !mcs.is_ok_and(|s| s.success()) {
        skip_or_fail("mcs cannot compile the reference program (install mono-mcs)");
        return;
    }
    let config = dir.join("RuntimeEvents.runtimeconfig.json");
    std::fs::write(
        &config,
        r#"{"runtimeOptions":{"tfm":"netcoreapp3.1","framework":{"name":"Microsoft.NETCore.App","version":"3.1.0"},"configProperties":{"System.Globalization.Invariant":true}}}"#,
    )
    .expect("runtimeconfig");
    let out = dir.join("out");
    let stdout = lxprof_stdout(
        Command::new(env!("CARGO_BIN_EXE_lxprof"))
            .arg("record")
            .arg("-o")
            .arg(&out)
            .arg("--")
            .arg(rt.join("dotnet"))
            .arg("exec")
            .arg("--runtimeconfig")
            .arg(&config)
            .arg(&exe)
            .args(["1000", "40"])
            .env("DOTNET_ROOT", &rt)
            .env("LD_LIBRARY_PATH", rt.join("lib"))
            .env("COMPlus_gcConcurrent", "0"),
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"jit_ms\""))
        .unwrap_or_else(|| panic!("no totals from RuntimeEvents.exe:\n{stdout}"));
    let reference: Value = serde_json::from_str(line).expect("totals are JSON");
    let ms = |k: &str| {
        reference[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {line}"))
    };
    assert!(
        reference["gcs"] == reference["gc_count"] && ms("gcs") > 0.0,
        "the listener missed GC events: {line}"
    );

    let report = json_file(&out.join("report.json"));
    let p = report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["comm"] == "dotnet")
        .unwrap_or_else(|| panic!("no dotnet process: {report}"));
    let cats = &p["categories"];
    let ns = |k: &str| cats[k].as_u64().unwrap_or(0) as f64 / 1e6;
    let folded = std::fs::read_to_string(out.join("flamegraphs/command.folded")).expect("folded");
    // Folded weights are unscaled sample weights; the categories are scaled to the exact
    // CPU time. One factor brings the stack subsets to the same scale.
    let scale = p["cpu_ns"].as_f64().expect("cpu_ns") / 1e6 / folded_sum(&folded, |_| true);
    let jit_event_cost = scale
        * folded_sum(&folded, |s| {
            s.contains("ETW::MethodLog::MethodJitting") && s.contains("JitCompileCode")
        });
    let collections = scale * folded_sum(&folded, |s| s.contains("GarbageCollectGeneration"));
    let jit = ns("jit_ns") - jit_event_cost;
    eprintln!(
        "reference (runtime events): JIT {:.1} ms wall, {:.1} ms on CPU ({} methods; tier 1 \
         {:.1} ms on CPU, {} methods), GC pauses {:.1} ms wall, {:.1} ms on CPU ({} GCs); main \
         thread on CPU {:.0} % of the JIT phase, {:.0} % of the allocation phase",
        ms("jit_ms"),
        ms("jit_cpu_ms"),
        reference["jit_methods"],
        ms("jit_tier1_cpu_ms"),
        reference["jit_tier1_methods"],
        ms("gc_pause_ms"),
        ms("gc_pause_cpu_ms"),
        reference["gcs"],
        ms("on_cpu_jit_phase") * 100.0,
        ms("on_cpu_alloc_phase") * 100.0,
    );
    eprintln!(
        "lxprof: JIT {:.1} ms - {jit_event_cost:.1} ms emitting MethodJittingStarted = {jit:.1} ms \
         (tier 1 {:.1} ms); GC {:.1} ms, of which {collections:.1} ms in collections; CPU {:.1} ms",
        ns("jit_ns"),
        ns("jit_tier1_ns"),
        ns("gc_ns"),
        p["cpu_ns"].as_f64().unwrap_or(0.0) / 1e6
    );
    let jit_ratio = jit / ms("jit_cpu_ms");
    let gc_ratio = collections / ms("gc_pause_cpu_ms");
    eprintln!("ratios lxprof / reference: JIT {jit_ratio:.2}, GC {gc_ratio:.2}");
    assert!(
        (0.75..=1.25).contains(&jit_ratio),
        "JIT: lxprof {jit:.1} ms vs the runtime's {:.1} ms",
        ms("jit_cpu_ms")
    );
    assert!(
        (0.75..=1.25).contains(&gc_ratio),
        "GC: lxprof {collections:.1} ms in collections vs the runtime's pauses {:.1} ms",
        ms("gc_pause_cpu_ms")
    );
    assert!(
        ns("gc_ns") >= collections * 0.99,
        "collections are part of gc_ns"
    );
}
