//! Faults: an extension exiting during init, a panicking function, a timeout, out of memory,
//! and the Extensions API's error answers (403 next without register, 400 bad register).
use super::common::*;
use lxprof_emulator::Status;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_exiting_during_init_fails_cleanly() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut cfg = config(function("header-counter"), "init-exit");
    cfg.extensions = vec![bin("init-exit")];
    cfg.invocations = 2;
    cfg.env.push(("HEADER_COUNTER_DELAY_MS".into(), "0".into()));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    assert_eq!(r.invocations.len(), 2);
    // Each failed init is followed by a shutdown, then a new init.
    let phases = assert_phase_order(&obs, false);
    let shutdowns = phases[&0]
        .iter()
        .filter(|e| e.0 == lxprof_emulator::PhaseEvent::ShutdownEnd)
        .count();
    assert_eq!(shutdowns, 2, "{phases:?}");
    for m in &r.invocations {
        assert!(matches!(m.status, Status::Failure | Status::Error), "{m:?}");
        assert!(
            m.init_cgroup_cpu_ns.is_some() && m.cgroup_cpu_ns.is_none(),
            "{m:?}"
        );
        assert!(m.error_type.is_some(), "{m:?}");
        assert!(
            m.cold,
            "after an init failure the next invocation is cold: {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_function_resets_and_next_is_cold() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut cfg = config(function("panic-function"), "panic");
    cfg.invocations = 2;
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    for m in &r.invocations {
        assert_eq!(m.status, Status::Error, "{m:?}");
        assert!(m.cold, "{m:?}");
    }
    assert_eq!(r.summary.cold_starts, 2);
    assert_phase_order(&obs, false);
    let logs = obs.logs.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(
        logs.iter().any(|(_, _, l)| l.contains("deliberate panic")),
        "{logs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_past_its_timeout_is_killed_and_reset() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut cfg = config(function("header-counter"), "timeout");
    cfg.extensions = vec![bin("rust-blank")];
    cfg.invocations = 2;
    cfg.memory_mb = 512;
    cfg.timeout = Duration::from_millis(500);
    cfg.env
        .push(("HEADER_COUNTER_DELAY_MS".into(), "5000".into()));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    assert_phase_order(&obs, false);
    for m in &r.invocations {
        assert_eq!(m.status, Status::Timeout, "{m:?}");
        assert!(m.cold, "{m:?}");
        assert!((450.0..2500.0).contains(&m.duration_ms), "{m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_past_memory_is_out_of_memory_without_hang() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut cfg = config(function("memory-hog"), "oom");
    cfg.memory_mb = 128;
    cfg.cpu_cap = false;
    cfg.invocations = 2;
    cfg.env.push(("MEMORY_HOG_MB".into(), "400".into()));
    let r = run(cfg, &Recorder::default()).await;
    for m in &r.invocations {
        assert_ne!(m.status, Status::Success, "{m:?}");
        let t = m.error_type.clone().unwrap_or_default();
        assert!(t.contains("OutOfMemory"), "error type {t:?}");
        assert!(m.max_memory_used_mb >= 100, "{m:?}");
        assert!(m.cold, "{m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_api_errors_have_lambdas_shape() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let out = scratch("prober");
    let file = out.join("prober.jsonl");
    let mut cfg = config(function("header-counter"), "prober");
    cfg.extensions = vec![bin("api-prober")];
    cfg.env.push(("HEADER_COUNTER_DELAY_MS".into(), "0".into()));
    cfg.env
        .push(("API_PROBER_FILE".into(), file.display().to_string()));
    let r = run(cfg, &Recorder::default()).await;
    assert_eq!(
        r.invocations[0].status,
        Status::Success,
        "{:?}",
        r.invocations[0]
    );
    let lines = json_lines(&file);
    let case = |c: &str| {
        lines
            .iter()
            .find(|l| l["case"] == c)
            .cloned()
            .unwrap_or_else(|| panic!("no {c} in {lines:?}"))
    };
    for (c, status) in [
        ("next-without-register", 403),
        ("next-unknown-id", 403),
        ("malformed-register", 400),
    ] {
        let l = case(c);
        assert_eq!(l["status"], status, "{l}");
        let body: serde_json::Value =
            serde_json::from_str(l["body"].as_str().unwrap_or("")).expect("JSON error body");
        assert!(
            body["errorMessage"].is_string() && body["errorType"].is_string(),
            "{body}"
        );
    }
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_run_leaves_nothing_behind() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let fdir = function("header-counter");
    let mut cfg = config(fdir.clone(), "cancel");
    cfg.extensions = vec![bin("rust-blank")];
    cfg.invocations = 100;
    cfg.concurrency = 2;
    cfg.env
        .push(("HEADER_COUNTER_DELAY_MS".into(), "200".into()));
    let obs = Recorder::default();
    let r =
        tokio::time::timeout(Duration::from_millis(1500), lxprof_emulator::run(cfg, &obs)).await;
    assert!(r.is_err(), "the run should still be going after 1.5 s");
    let spawned = obs.spawned.lock().map(|s| s.len()).unwrap_or(0);
    assert!(spawned >= 2, "nothing was started before the cancel");
    assert_nothing_left("cancel");
    let _ = std::fs::remove_dir_all(fdir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_shutdown_stops_the_run_cleanly() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let fdir = function("header-counter");
    let mut cfg = config(fdir.clone(), "stop");
    cfg.extensions = vec![bin("rust-blank")];
    cfg.invocations = 100;
    cfg.env
        .push(("HEADER_COUNTER_DELAY_MS".into(), "100".into()));
    let stopper = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(1000));
        lxprof_emulator::request_shutdown();
    });
    let obs = Recorder::default();
    let r = tokio::time::timeout(Duration::from_secs(30), lxprof_emulator::run(cfg, &obs))
        .await
        .expect("the run did not stop within 30 s of request_shutdown");
    let _ = stopper.join();
    assert!(
        matches!(r, Err(lxprof_emulator::EmulatorError::Cancelled)),
        "{r:?}"
    );
    assert_nothing_left("stop");
    let _ = std::fs::remove_dir_all(fdir);
    let done = obs.done.lock().map(|d| d.len()).unwrap_or(0);
    assert!(done > 0 && done < 100, "{done} invocations finished");
    // The cancelled environment was shut down (and the observer heard it).
    assert_phase_order(&obs, true);
}
