//! `lxprof record --lambda` through the real binary: real environments
//! (cgroups, mount namespaces), real processes, real kernel events. Needs
//! root and BPF; with `CI=true` a missing facility fails instead of skipping.
//! The tests run one at a time (each drives a whole emulated Lambda run).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

use serde_json::Value;

mod support;

use support::{LocalS3, lambda_facility, scratch, signal_after_first_report, target_debug};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `lxprof record --lambda ARGS -o DIR`; returns report.json and stdout.
fn record(build: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lxprof"));
    cmd.args(["record", "--lambda"])
        .args(args)
        .arg("-o")
        .arg(dir)
        .env("LXPROF_EXTENSIONS_BUILD", build);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running lxprof");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lxprof record --lambda {args:?} exited {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
            .expect("report.json is JSON");
    (report, stdout)
}

fn invocations(report: &Value) -> &Vec<Value> {
    report["lambda"]["invocations"]
        .as_array()
        .expect("lambda.invocations")
}

/// `by_role[role][key]` of one invocation, 0 when the role did not run.
fn by_role(inv: &Value, role: &str, key: &str) -> u64 {
    inv["by_role"][role][key].as_u64().unwrap_or(0)
}

/// A deployment package whose `bootstrap` is a fixture binary.
fn function_dir(dir: &Path, fixture: &str) -> PathBuf {
    let pkg = dir.join(format!("fn-{fixture}"));
    std::fs::create_dir_all(&pkg).expect("package dir");
    std::fs::copy(target_debug().join(fixture), pkg.join("bootstrap")).expect("copy bootstrap");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pkg, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    pkg
}

#[test]
fn roles_phases_and_trace() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let dir = scratch("lambda-record-roles");
    let (report, stdout) = record(
        &build,
        &dir.join("out"),
        &[
            "--extension",
            "rust-blank",
            "--invocations",
            "3",
            "--env",
            "HEADER_COUNTER_DELAY_MS=50",
        ],
        &[],
    );
    assert!(stdout.contains("3 of 3 succeeded"), "{stdout}");
    let roles: Vec<&str> = report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["role"].as_str())
        .collect();
    for want in ["function", "extension:rust-blank", "emulator"] {
        assert!(roles.contains(&want), "role {want} missing: {roles:?}");
    }
    let invs = invocations(&report);
    assert_eq!(invs.len(), 3);
    for inv in invs {
        assert!(by_role(inv, "function", "cpu_ns") > 0, "{inv}");
    }

    let trace: Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/trace.json")).expect("trace.json"))
            .expect("trace.json is JSON");
    lxprof::export::chrome::validate(&trace).expect("trace.json is valid");
    let names: Vec<&str> = trace["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|e| e["ph"] == "X")
        .filter_map(|e| e["name"].as_str())
        .collect();
    for want in ["Init", "Runtime", "PostRuntimeExtensions", "Shutdown"] {
        assert!(names.contains(&want), "no {want} slice in trace.json");
    }
    for inv in invs {
        let id = inv["request_id"].as_str().expect("request_id");
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("Invoke") && n.contains(id)),
            "no Invoke slice named with {id}"
        );
    }
}

#[test]
fn cpu_of_all_roles_matches_the_environment_cgroup() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let dir = scratch("lambda-record-cgroup");
    let function = function_dir(&dir, "cpu-function");
    let (report, _) = record(
        &build,
        &dir.join("out"),
        &[
            "--function",
            function.to_str().expect("utf-8 path"),
            "--extension",
            "rust-blank",
            "--memory",
            "1024",
            "--invocations",
            "5",
            "--freq",
            "0",
        ],
        &[],
    );
    for inv in invocations(&report) {
        let cgroup = inv["cgroup_cpu_ns"].as_u64().expect("cgroup_cpu_ns");
        let roles = inv["by_role"].as_object().expect("by_role");
        let ours: u64 = roles
            .iter()
            .filter(|(role, _)| role.as_str() != "emulator")
            .map(|(_, v)| v["cpu_ns"].as_u64().unwrap_or(0))
            .sum();
        let ratio = ours as f64 / cgroup as f64;
        eprintln!("invocation CPU: roles {ours} ns, cgroup {cgroup} ns, ratio {ratio:.3}");
        assert!(
            cgroup > 10_000_000,
            "the function did too little work to compare: {cgroup} ns"
        );
        assert!(
            (0.9..=1.1).contains(&ratio),
            "roles {ours} ns vs cgroup {cgroup} ns (ratio {ratio:.3})"
        );
    }
}

#[test]
fn sleeping_and_spinning_extensions_post_runtime() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let dir = scratch("lambda-record-sleepy");
    // The function answers at once; the extension then sleeps (or spins)
    // 100 ms before calling next: that is the post-runtime window.
    let run = |ext: &str, memory: &str| {
        record(
            &build,
            &dir.join(ext),
            &[
                "--extension",
                ext,
                "--memory",
                memory,
                "--invocations",
                "3",
                "--env",
                "HEADER_COUNTER_DELAY_MS=0",
            ],
            &[],
        )
        .0
    };
    let sleeping = run("sleepy", "128");
    for inv in invocations(&sleeping) {
        let window = inv["post_runtime_extensions_duration_ms"]
            .as_f64()
            .expect("post-runtime duration");
        let cpu = by_role(inv, "extension:sleepy", "post_runtime_cpu_ns");
        // The sleep starts at the INVOKE; the window at the runtime's next.
        let ph = &inv["phases"];
        let runtime_ms = ph["runtime_next_ns"]
            .as_u64()
            .and_then(|n| n.checked_sub(ph["invoke_start_ns"].as_u64()?))
            .expect("phase times") as f64
            / 1e6;
        eprintln!(
            "sleeping: post-runtime {window:.1} ms after {runtime_ms:.1} ms of runtime, extension CPU in it {cpu} ns"
        );
        assert!(
            window + runtime_ms >= 95.0 && window < 300.0,
            "window {window} ms after {runtime_ms} ms of runtime"
        );
        assert!(cpu < 10_000_000, "a sleeping extension used {cpu} ns");
    }
    // 2048 MB is more than a whole CPU (1769 MB = 1 vCPU): the spin is not
    // throttled. It spins from the INVOKE until its thread used 100 ms of
    // CPU: ≈ 100 ms of extension CPU in the invoke phase, most of it after
    // the runtime answered (the function answers at once). How much exactly
    // falls before the runtime's next depends on the scheduling of a loaded
    // 2-CPU machine; the total does not.
    let spinning = run("sleepy-spin", "2048");
    for inv in invocations(&spinning) {
        let window = inv["post_runtime_extensions_duration_ms"]
            .as_f64()
            .expect("post-runtime duration");
        let role = "extension:sleepy-spin";
        let total = by_role(inv, role, "cpu_ns") as f64 / 1e6;
        let post = by_role(inv, role, "post_runtime_cpu_ns") as f64 / 1e6;
        eprintln!(
            "spinning: post-runtime {window:.1} ms, extension CPU {total:.1} ms, {post:.1} ms of it post-runtime"
        );
        assert!(
            (95.0..=130.0).contains(&total),
            "spinning extension: {total:.1} ms of CPU in the invoke phase"
        );
        assert!(
            post >= 50.0 && post <= window + 1.0,
            "spinning extension: {post:.1} ms of CPU in a {window:.1} ms post-runtime window"
        );
    }
}

#[test]
fn csharp_collector_costs_more_cpu_than_rust() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let dir = scratch("lambda-record-collectors");
    let state = dir.join("s3.state");
    let Some(_s3) = LocalS3::start(state.clone(), "lxprof-record-test") else {
        return;
    };
    let state = state.to_string_lossy().into_owned();
    let mut per_invocation = Vec::new();
    for ext in ["rust-event-collector", "csharp-event-collector"] {
        let out = dir.join(ext);
        let (report, stdout) = record(
            &build,
            &out,
            &[
                "--extension",
                ext,
                "--memory",
                "128",
                "--invocations",
                "20",
                "--timeout",
                "10",
                "--env",
                "HEADER_COUNTER_DELAY_MS=50",
            ],
            &[("LXPROF_S3_STATE", &state)],
        );
        assert!(stdout.contains("20 of 20 succeeded"), "{ext}: {stdout}");
        let role = format!("extension:{ext}");
        let invs = invocations(&report);
        let cpu: u64 = invs.iter().map(|i| by_role(i, &role, "cpu_ns")).sum();
        let avg = cpu as f64 / invs.len() as f64 / 1e6;
        eprintln!("{ext}: {avg:.2} ms of extension CPU per invocation");
        per_invocation.push(avg);
        // Killed at shutdown, yet symbolized: a Rust path or a C# method
        // from the JIT map in its folded stacks.
        let folded = std::fs::read_to_string(
            out.join("flamegraphs")
                .join(format!("extension_{ext}.folded")),
        )
        .expect("folded stacks of the extension");
        let symbolized = folded
            .lines()
            .flat_map(|l| l.rsplit_once(' ').map(|(s, _)| s).unwrap_or(l).split(';'))
            .any(|f| !f.ends_with("[kernel]") && f.contains(':'));
        assert!(symbolized, "{ext}: no symbolized user frame:\n{folded}");
    }
    assert!(
        per_invocation[1] >= 2.0 * per_invocation[0],
        "C# collector {:.2} ms vs Rust {:.2} ms per invocation",
        per_invocation[1],
        per_invocation[0]
    );
}

/// A folded frame without its category annotation (`name [jit]`).
fn frame_name(f: &str) -> &str {
    match f.rsplit_once(" [") {
        Some((name, tag)) if tag.ends_with(']') && !name.is_empty() => name,
        _ => f,
    }
}

/// Issue 10: ≤ 5 % of each extension's sample weight has an unresolved frame
/// (`[unknown]`, `[truncated]`, `[no unwind info: …]`), starts of processes
/// included: samples in execve, in a child between fork and exec, in code
/// without unwind tables (V8 builtins), in Mono AOT images. At 1,999 Hz so the
/// Rust extension, which uses ~2 ms of CPU per invocation, has enough samples.
#[test]
fn extension_stacks_are_resolved() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let dir = scratch("lambda-record-stacks");
    let state = dir.join("s3.state");
    let Some(_s3) = LocalS3::start(state.clone(), "lxprof-record-test") else {
        return;
    };
    let state = state.to_string_lossy().into_owned();
    let extensions = [
        "csharp-event-collector",
        "csharp-aot-event-collector",
        "rust-event-collector",
        "node-event-collector",
    ];
    let mut args = vec!["--memory", "128", "--invocations", "20", "--freq", "1999"];
    for e in extensions {
        args.extend(["--extension", e]);
    }
    let out = dir.join("out");
    let (_, stdout) = record(&build, &out, &args, &[("LXPROF_S3_STATE", &state)]);
    assert!(stdout.contains("20 of 20 succeeded"), "{stdout}");
    let mut failures = Vec::new();
    for e in extensions {
        let path = out
            .join("flamegraphs")
            .join(format!("extension_{e}.folded"));
        let folded = std::fs::read_to_string(&path).expect("folded stacks of the extension");
        let (mut total, mut unresolved, mut stacks) = (0u64, 0u64, 0usize);
        let mut worst = Vec::new();
        for line in folded.lines() {
            let Some((stack, w)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(w) = w.parse::<u64>() else { continue };
            total += w;
            stacks += 1;
            let bad = stack.split(';').map(frame_name).any(|f| {
                f == "[unknown]" || f.starts_with("[truncated]") || f.starts_with("[no unwind info")
            });
            if bad {
                unresolved += w;
                worst.push(line.chars().take(300).collect::<String>());
            }
        }
        let share = unresolved as f64 / total.max(1) as f64;
        eprintln!(
            "{e}: {:.1} ms sampled in {stacks} distinct stacks, {:.1} % unresolved",
            total as f64 / 1e6,
            100.0 * share
        );
        assert!(stacks >= 20, "{e}: too few samples to judge:\n{folded}");
        if share > 0.05 {
            failures.push(format!(
                "{e}: {:.1} % unresolved:\n{}",
                100.0 * share,
                worst.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ctrl_c_keeps_the_finished_invocations_and_cleans_up() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let dir = scratch("lambda-record-sigint");
    let out = dir.join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_lxprof"))
        .args(["record", "--lambda", "--extension", "rust-blank"])
        .args([
            "--invocations",
            "200",
            "--env",
            "HEADER_COUNTER_DELAY_MS=100",
            "-o",
        ])
        .arg(&out)
        .env("LXPROF_EXTENSIONS_BUILD", &build)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running lxprof");
    // Once an invocation finished, Ctrl-C (SIGINT to lxprof alone).
    let output = signal_after_first_report(child, libc::SIGINT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("interrupted:"), "{stdout}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("report.json is JSON");
    let n = invocations(&report).len();
    assert!((1..200).contains(&n), "{n} invocations recorded");
    for inv in invocations(&report) {
        assert!(by_role(inv, "function", "cpu_ns") > 0, "{inv}");
    }
    let trace: Value =
        serde_json::from_slice(&std::fs::read(out.join("trace.json")).expect("trace.json"))
            .expect("trace.json is JSON");
    lxprof::export::chrome::validate(&trace).expect("trace.json is valid");
    // Every environment was removed: no lxprof cgroup of this run is left.
    let pid = format!("lxprof-{}-", output_pid(&report));
    for parent in lxprof_emulator::sandbox::lxprof_parents() {
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(&pid),
                "cgroup {}/{name} left behind",
                parent.display()
            );
        }
    }
}

/// The pid of the lxprof process that wrote `report` (the emulator's).
fn output_pid(report: &Value) -> u64 {
    report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["role"] == "emulator")
        .and_then(|p| p["pid"].as_u64())
        .expect("the emulator process")
}

#[test]
fn two_recordings_sharing_an_output_dir_both_finish() {
    let _serial = serial();
    let Some(build) = lambda_facility() else {
        return;
    };
    let out = scratch("lambda-record-shared-out");
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_lxprof"))
                .args(["record", "--lambda", "--invocations", "3", "--freq", "0"])
                .args(["--env", "HEADER_COUNTER_DELAY_MS=200", "-o"])
                .arg(&out)
                .env("LXPROF_EXTENSIONS_BUILD", &build)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("running lxprof")
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().expect("lxprof exits");
        assert!(
            o.status.success(),
            "{:?}\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for name in ["events.bin", "trace.json", "report.json"] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let left: Vec<_> = std::fs::read_dir(&out)
        .expect("out dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
