//! The load as Lambda scales it: C clients send requests, each its next one after its
//! response; a new environment (a cold start) only when every existing one is busy, up to the
//! limit. An extension still working after the response keeps its environment busy and makes
//! new ones start; one that is done does not.
use super::common::*;
use lxprof_emulator::{InvocationMetrics, LambdaReport, Status};
use std::collections::BTreeSet;

/// Busy interval of each invocation: from its init (cold) or event to the phase end.
fn busy(m: &InvocationMetrics) -> (u64, u64) {
    let p = &m.phases;
    let start = if m.cold {
        p.init_start_ns
    } else {
        p.invoke_start_ns
    };
    (start, p.invoke_end_ns)
}

/// Checks the rule on a finished run; returns the environments used.
fn check_rule(r: &LambdaReport) -> BTreeSet<usize> {
    let envs: BTreeSet<usize> = r.invocations.iter().map(|m| m.environment).collect();
    for m in &r.invocations {
        assert_eq!(m.status, Status::Success, "{m:?}");
    }
    // One cold start per environment (none failed).
    assert_eq!(
        r.invocations.iter().filter(|m| m.cold).count(),
        envs.len(),
        "cold starts"
    );
    // Each cold start found every environment started before it busy.
    for c in r.invocations.iter().filter(|m| m.cold) {
        let t = c.phases.init_start_ns;
        for e in envs.iter().filter(|&&e| e != c.environment) {
            let mine: Vec<(u64, u64)> = r
                .invocations
                .iter()
                .filter(|m| m.environment == *e)
                .map(busy)
                .collect();
            let started_before = mine.iter().any(|(s, _)| *s < t);
            if started_before {
                let busy_then = mine.iter().any(|(s, end)| *s <= t && t <= *end);
                assert!(
                    busy_then,
                    "environment {} cold-started at {t} while environment {e} was idle: {mine:?}",
                    c.environment
                );
            }
        }
    }
    envs
}

/// 8 requests, 2 in flight, up to 4 environments; the handler answers after 50 ms.
fn load(tag: &str, extension: &str) -> lxprof_emulator::EmulatorConfig {
    let mut cfg = config(function("header-counter"), tag);
    cfg.extensions = vec![bin(extension)];
    cfg.memory_mb = 1769;
    cfg.invocations = 8;
    cfg.concurrency = 2;
    cfg.max_environments = Some(4);
    cfg.env
        .push(("HEADER_COUNTER_DELAY_MS".into(), "50".into()));
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_after_the_response_starts_new_environments() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    // The extension works 300 ms from INVOKE: each
    // environment stays busy ~250 ms after its response, so the clients' next requests find
    // every environment busy and new ones start, up to the limit of 4.
    let mut cfg = load("load-sleepy", "sleepy");
    cfg.env.push(("SLEEPY_MS".into(), "300".into()));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    assert_eq!(r.invocations.len(), 8);
    let envs = check_rule(&r);
    assert!(
        envs.len() > 2 && envs.len() <= 4,
        "environments {envs:?}: want 3 or 4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_at_the_response_reuses_the_environments() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    // rust-blank is done before the handler answers: the phase ends right after the
    // response, before the client's next request arrives, so two environments serve all.
    let cfg = load("load-blank", "rust-blank");
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    assert_eq!(r.invocations.len(), 8);
    let envs = check_rule(&r);
    assert_eq!(envs.len(), 2, "environments {envs:?}");
}
