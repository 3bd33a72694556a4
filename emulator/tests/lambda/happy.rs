//! header-counter + rust-blank + telemetry-probe: 10 invocations over 2 environments; the
//! sleepy extension's post-runtime duration.
use super::common::*;
use lxprof_emulator::{Role, Status};
use std::collections::HashSet;

const DELAY_MS: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_invocations_two_environments_with_telemetry_and_shutdown() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let out = scratch("telemetry");
    let probe_file = out.join("telemetry.jsonl");
    let mut cfg = config(function("header-counter"), "happy");
    cfg.extensions = vec![bin("rust-blank"), bin("telemetry-probe")];
    cfg.memory_mb = 1024;
    cfg.invocations = 10;
    cfg.concurrency = 2;
    cfg.env
        .push(("HEADER_COUNTER_DELAY_MS".into(), DELAY_MS.to_string()));
    cfg.env.push((
        "TELEMETRY_PROBE_FILE".into(),
        probe_file.display().to_string(),
    ));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;

    assert_eq!(r.invocations.len(), 10);
    assert_eq!(r.memory_mb, 1024);
    assert_eq!(r.extensions, vec!["rust-blank", "telemetry-probe"]);
    for m in &r.invocations {
        assert_eq!(m.status, Status::Success, "{m:?}");
        assert!(
            m.duration_ms >= DELAY_MS as f64,
            "duration {} < delay",
            m.duration_ms
        );
        assert_eq!(m.billed_duration_ms, m.duration_ms.ceil() as u64);
        assert!(
            m.max_memory_used_mb > 0 && m.max_memory_used_mb < 1024,
            "{m:?}"
        );
        assert_eq!(m.cold, m.init_duration_ms.is_some());
        let p = &m.phases;
        assert!(p.invoke_start_ns < p.runtime_done_ns, "{p:?}");
        assert!(p.runtime_done_ns <= p.runtime_next_ns, "{p:?}");
        assert!(p.runtime_next_ns <= p.invoke_end_ns, "{p:?}");
        if m.cold {
            assert!(
                p.init_start_ns < p.init_end_ns && p.init_end_ns <= p.invoke_start_ns,
                "{p:?}"
            );
        }
    }
    assert_eq!(r.summary.cold_starts, 2);
    assert_eq!(assert_phase_order(&obs, false).len(), 2);
    let envs: HashSet<usize> = r.invocations.iter().map(|m| m.environment).collect();
    assert_eq!(envs.len(), 2);
    assert!(r.summary.duration_ms.p50 >= DELAY_MS as f64);
    assert_eq!(obs.done.lock().map(|d| d.len()).unwrap_or(0), 10);

    // process_spawned ran before exec: the child still ran this test binary.
    let spawned = obs.spawned.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(spawned.len(), 6, "{spawned:?}");
    let me = std::env::current_exe().expect("exe");
    for (_, pid, role, exe) in &spawned {
        assert_eq!(
            exe, &me,
            "pid {pid} ({role}) had already exec'd at the gate"
        );
    }
    assert_eq!(spawned.iter().filter(|s| s.2 == Role::Function).count(), 2);

    // Telemetry: start, runtimeDone and report for every request id, with status.
    let lines = json_lines(&probe_file);
    for m in &r.invocations {
        for kind in ["platform.start", "platform.runtimeDone", "platform.report"] {
            let hit = lines
                .iter()
                .find(|l| l["type"] == kind && l["record"]["requestId"] == m.request_id.as_str());
            let hit = hit.unwrap_or_else(|| panic!("no {kind} for {} in {lines:#?}", m.request_id));
            if kind == "platform.report" {
                assert_eq!(hit["record"]["status"], "success");
                let d = hit["record"]["metrics"]["durationMs"]
                    .as_f64()
                    .unwrap_or(0.0);
                assert!((d - m.duration_ms).abs() < 0.01, "{d} vs {}", m.duration_ms);
            }
        }
    }
    assert!(
        lines.iter().any(|l| l["type"] == "function"
            && l["record"]
                .as_str()
                .is_some_and(|s| s.contains("HeaderCounter"))),
        "no function log line in telemetry"
    );
    // The default event is an API Gateway proxy event with a realistic header set.
    let logs = obs.logs.lock().map(|l| l.clone()).unwrap_or_default();
    let headers: Vec<usize> = logs
        .iter()
        .filter(|(_, role, _)| *role == Role::Function)
        .filter_map(|(_, _, l)| l.split(" has ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(headers.len(), 10, "{logs:#?}");
    assert!(headers.iter().all(|n| *n >= 10), "{headers:?}");
    assert!(lines.iter().any(|l| l["type"] == "platform.initStart"));
    let shutdowns = lines.iter().filter(|l| l["event"] == "SHUTDOWN").count();
    assert_eq!(shutdowns, 2, "telemetry-probe SHUTDOWN lines");

    // SHUTDOWN reached rust-blank in both environments.
    let blank_shutdowns: HashSet<usize> = logs
        .iter()
        .filter(|(_, role, line)| {
            *role == Role::Extension("rust-blank".into()) && line.contains("SHUTDOWN")
        })
        .map(|(e, _, _)| *e)
        .collect();
    assert_eq!(
        blank_shutdowns.len(),
        2,
        "rust-blank SHUTDOWN per environment: {logs:#?}"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleepy_extension_is_post_runtime_duration() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut cfg = config(function("header-counter"), "sleepy");
    cfg.extensions = vec![bin("sleepy")];
    cfg.memory_mb = 1769;
    cfg.invocations = 5;
    cfg.env.push(("HEADER_COUNTER_DELAY_MS".into(), "0".into()));
    cfg.env.push(("SLEEPY_MS".into(), "100".into()));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    let mut posts = Vec::new();
    for m in &r.invocations {
        assert_eq!(m.status, Status::Success, "{m:?}");
        let post = m.post_runtime_extensions_duration_ms;
        let p = &m.phases;
        // The extension's 100 ms start at INVOKE, in parallel with the (instant) handler: the
        // phase lasts at least 100 ms, and post-runtime is what is left after the runtime's next.
        let runtime_ms = p.runtime_next_ns.saturating_sub(p.invoke_start_ns) as f64 / 1e6;
        assert!(m.duration_ms >= 100.0, "duration {}", m.duration_ms);
        assert!(
            m.duration_ms >= post,
            "duration {} excludes post {post}",
            m.duration_ms
        );
        assert!(
            post >= 100.0 - runtime_ms - 2.0,
            "post-runtime {post} ms, runtime took {runtime_ms} ms"
        );
        posts.push(post);
    }
    // Typically the handler answers in a few ms: the median is ~100 ms (±20 %).
    posts.sort_by(f64::total_cmp);
    let median = posts[posts.len() / 2];
    assert!(
        (80.0..=120.0).contains(&median),
        "median post-runtime {median} ms of {posts:?}, want 100 ms ±20 %"
    );
}
