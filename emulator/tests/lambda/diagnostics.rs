//! Every fault named: what the REPORT line and the metrics say when an extension never
//! registers, the runtime exits, a child meets the OOM killer, an extension holds the
//! invocation past the timeout, an extension is not executable, a response is over 6 MB.
//! Functions here are small Python or shell scripts speaking the Runtime API.
use super::common::*;
use lxprof_emulator::{InvocationMetrics, Status};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes `text` to `dir/name` with `mode`.
fn file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

/// A deployment package whose bootstrap is `text`.
fn script_function(tag: &str, text: &str) -> PathBuf {
    let dir = scratch(tag);
    file(&dir, "bootstrap", text, 0o755);
    dir
}

/// A Python runtime: each event's response is what `body` (an expression) gives.
fn python_runtime(before: &str, body: &str) -> String {
    format!(
        r#"#!/usr/bin/python3
import os, subprocess, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    r = urllib.request.urlopen(api + "next")
    rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
    r.read()
    {before}
    try:
        urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data={body}, method="POST")).read()
    except Exception:
        pass
"#
    )
}

async fn one(cfg: lxprof_emulator::EmulatorConfig) -> InvocationMetrics {
    let r = run(cfg, &Recorder::default()).await;
    r.invocations[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_timeout_names_the_extension_that_never_registered() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let exts = scratch("silent-ext");
    let silent = file(&exts, "silent-ext", "#!/bin/sh\nexec sleep 60\n", 0o755);
    let mut cfg = config(function("header-counter"), "silent");
    cfg.extensions = vec![bin("rust-blank"), silent];
    let m = one(cfg).await;
    assert_eq!(m.status, Status::Timeout, "{m:?}");
    assert_eq!(m.error_type.as_deref(), Some("Sandbox.InitTimeout"));
    let msg = m.error_message.clone().unwrap_or_default();
    assert!(
        msg.contains("silent-ext") && !msg.contains("rust-blank"),
        "{msg}"
    );
    assert!(
        m.report_line(128).contains("silent-ext"),
        "{}",
        m.report_line(128)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_exit_gives_its_status_or_signal() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    for (tag, script, says) in [
        ("exit7", "#!/bin/sh\nexit 7\n", "exit status: 7"),
        ("kill9", "#!/bin/sh\nkill -9 $$\n", "signal: 9"),
    ] {
        let m = one(config(script_function(tag, script), tag)).await;
        assert_eq!(m.error_type.as_deref(), Some("Runtime.ExitError"), "{m:?}");
        // Lambda: INIT_REPORT … Status: error, as for the same exit during an invoke.
        assert_eq!(m.status, Status::Error, "{m:?}");
        let msg = m.error_message.clone().unwrap_or_default();
        assert!(
            msg.starts_with("Runtime exited with error") && msg.contains(says),
            "{msg}"
        );
        assert!(m.report_line(128).contains(says), "{}", m.report_line(128));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_killed_by_the_oom_killer_is_a_warning() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let child = "subprocess.run(['/usr/bin/python3', '-c', 'b = b\"x\" * (400 << 20)'])";
    let f = script_function("oom-child", &python_runtime(child, "b'\"ok\"'"));
    let m = one(config(f, "oom-child")).await;
    assert_eq!(m.status, Status::Success, "{m:?}");
    assert!(m.warnings.iter().any(|w| w.contains("OOM killer")), "{m:?}");
    assert!(
        m.report_line(128).contains("Warning:"),
        "{}",
        m.report_line(128)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_holding_the_invocation_shows_its_post_runtime_duration() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut cfg = config(function("header-counter"), "held");
    cfg.extensions = vec![bin("sleepy")];
    cfg.timeout = Duration::from_millis(1000);
    cfg.memory_mb = 512;
    cfg.env.push(("HEADER_COUNTER_DELAY_MS".into(), "0".into()));
    cfg.env.push(("SLEEPY_MS".into(), "5000".into()));
    let m = one(cfg).await;
    assert_eq!(m.status, Status::Timeout, "{m:?}");
    // The runtime answered at once; the extension held the phase until the timeout.
    assert!(
        m.post_runtime_extensions_duration_ms >= 500.0
            && m.post_runtime_extensions_duration_ms <= m.duration_ms,
        "{m:?}"
    );
    let msg = m.error_message.clone().unwrap_or_default();
    assert!(msg.contains("extension sleepy"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_executable_extension_fails_to_launch() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let dir = scratch("noexec");
    let ext = dir.join("rust-blank");
    std::fs::copy(bin("rust-blank"), &ext).expect("copy");
    std::fs::set_permissions(&ext, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut cfg = config(function("header-counter"), "noexec");
    cfg.extensions = vec![ext];
    let m = one(cfg).await;
    assert_eq!(
        m.error_type.as_deref(),
        Some("Extension.LaunchError"),
        "{m:?}"
    );
    let msg = m.error_message.clone().unwrap_or_default();
    assert!(msg.contains("ermission denied"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_six_mb_is_refused_as_lambda_does() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let f = script_function(
        "big-response",
        &python_runtime("pass", "b'\"' + b'x' * (7 << 20) + b'\"'"),
    );
    let mut cfg = config(f, "big-response");
    cfg.memory_mb = 512;
    let m = one(cfg).await;
    assert_eq!(m.status, Status::Error, "{m:?}");
    assert_eq!(
        m.error_type.as_deref(),
        Some("Function.ResponseSizeTooLarge"),
        "{m:?}"
    );
    let msg = m.error_message.clone().unwrap_or_default();
    assert!(msg.contains("6291556 bytes"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmp_holds_the_ephemeral_storage_and_no_more() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    // 600 MiB into /tmp, then its size on the function's log.
    let fill = "subprocess.run(['dd', 'if=/dev/zero', 'of=/tmp/f', 'bs=1M', 'count=600'], stderr=subprocess.DEVNULL); print('tmp-bytes', os.path.getsize('/tmp/f'), flush=True)";
    for (storage, fits) in [(512, false), (1024, true)] {
        let f = script_function("tmp-fill", &python_runtime(fill, "b'1'"));
        let mut cfg = config(f, "tmp-fill");
        cfg.memory_mb = 512;
        cfg.timeout = Duration::from_secs(60);
        cfg.ephemeral_storage_mb = storage;
        let obs = Recorder::default();
        let r = run(cfg, &obs).await;
        assert_eq!(
            r.invocations[0].status,
            Status::Success,
            "{:?}",
            r.invocations[0]
        );
        let logs = obs.logs.lock().unwrap_or_else(|p| p.into_inner());
        let bytes: u64 = logs
            .iter()
            .find_map(|(_, _, l)| {
                l.split_once("tmp-bytes ")
                    .and_then(|(_, n)| n.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("no size logged: {logs:?}"));
        if fits {
            assert_eq!(bytes, 600 << 20, "{storage} MB");
        } else {
            assert!(bytes <= 512 << 20, "{bytes} bytes in a {storage} MB /tmp");
        }
    }
}
