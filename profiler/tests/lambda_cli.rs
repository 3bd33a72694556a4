//! `lxprof run --lambda` through the real binary: every preset runs from the
//! extensions build (`extensions/build.sh`, run by `scripts/setup.sh`), the
//! event collectors against a real local S3 server (moto, `scripts/local-s3.sh`),
//! stopped by PID at the end. Needs root (cgroups, mount namespaces); with
//! `CI=true` a missing facility fails instead of skipping.

use std::process::Command;

use serde_json::Value;

mod support;

use support::{LocalS3, lambda_facility, scratch};

#[test]
fn every_preset_runs_from_the_cli() {
    let Some(build) = lambda_facility() else {
        return;
    };
    let tmp = scratch("lambda-cli");
    let state = tmp.join("s3.state");
    let Some(_s3) = LocalS3::start(state.clone(), "lxprof-cli-test") else {
        return;
    };

    let presets = [
        "rust-blank",
        "csharp-blank",
        "rust-event-collector",
        "csharp-event-collector",
        "csharp-aot-event-collector",
        "node-event-collector",
    ];
    for preset in presets {
        let out_dir = tmp.join(preset);
        let out = Command::new(env!("CARGO_BIN_EXE_lxprof"))
            .args(["run", "--lambda", "--extension", preset, "--memory", "512"])
            .args(["--invocations", "2", "--timeout", "10"])
            .args(["--env", "HEADER_COUNTER_DELAY_MS=50", "-o"])
            .arg(&out_dir)
            .env("LXPROF_S3_STATE", &state)
            .env("LXPROF_EXTENSIONS_BUILD", &build)
            .output()
            .expect("running lxprof");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{preset}: lxprof exited {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("2 of 2 succeeded"), "{preset}: {stdout}");
        let report: Value = serde_json::from_slice(
            &std::fs::read(out_dir.join("report.json")).expect("report.json"),
        )
        .expect("report.json is JSON");
        let lambda = &report["lambda"];
        assert_eq!(lambda["extensions"][0], preset);
        assert_eq!(lambda["memory_mb"], 512);
        let inv = lambda["invocations"].as_array().expect("invocations");
        assert_eq!(inv.len(), 2, "{preset}");
        assert!(
            inv.iter().all(|i| i["status"] == "success"),
            "{preset}: {inv:?}"
        );
        assert_eq!(lambda["summary"]["cold_starts"], 1, "{preset}");
    }
}

#[test]
fn bad_input_is_a_one_line_error() {
    let bin = env!("CARGO_BIN_EXE_lxprof");
    for args in [
        &["run", "--lambda", "--extension", "no-such-preset"][..],
        &["run", "--lambda", "--function", "/nonexistent/dir"][..],
        &["run", "--lambda", "--event", "/nonexistent.json"][..],
        &["run"][..],
    ] {
        let out = Command::new(bin)
            .args(args)
            .output()
            .expect("running lxprof");
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("lxprof: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
