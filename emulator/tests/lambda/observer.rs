//! What the observer hears: phase events in lifecycle order with monotonic ns matching the
//! metrics' phase times, per-invocation cgroup CPU matching the work the processes measured on
//! their own threads, and memory samples while (and only while) an environment is thawed.
use super::common::*;
use lxprof_emulator::environment::Environment;
use lxprof_emulator::{InvocationMetrics, PhaseEvent, Status};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// `cpu_ms` logged by `prefix` lines (`... request_id=ID ... cpu_ms=C`) or sleepy's
/// `sleepy: INVOKE ID done ... cpu_ms=C`, by request id.
fn logged_cpu_ms(obs: &Recorder, prefix: &str) -> HashMap<String, f64> {
    let logs = obs.logs.lock().map(|l| l.clone()).unwrap_or_default();
    let mut out = HashMap::new();
    for (_, _, line) in logs.iter().filter(|l| l.2.starts_with(prefix)) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let id = words
            .iter()
            .find_map(|w| w.strip_prefix("request_id="))
            .or_else(|| {
                let i = words.iter().position(|w| *w == "INVOKE")?;
                words.get(i + 1).copied()
            });
        let cpu = words
            .iter()
            .find_map(|w| w.strip_prefix("cpu_ms="))
            .and_then(|v| v.parse::<f64>().ok());
        if let (Some(id), Some(cpu)) = (id, cpu) {
            out.insert(id.to_string(), cpu);
        }
    }
    out
}

fn cgroup_ms(m: &InvocationMetrics) -> f64 {
    let ns = m
        .cgroup_cpu_ns
        .unwrap_or_else(|| panic!("no cgroup CPU: {m:?}"));
    ns as f64 / 1e6
}

/// The ns of the `n`-th (0-based) `ev` of an environment.
fn nth(evs: &[(PhaseEvent, u64)], ev: PhaseEvent) -> Vec<u64> {
    evs.iter().filter(|e| e.0 == ev).map(|e| e.1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_cgroup_cpu_and_memory_are_observed() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut cfg = config(function("cpu-function"), "observer");
    cfg.extensions = vec![bin("sleepy")];
    cfg.memory_mb = 1769;
    cfg.invocations = 4;
    cfg.concurrency = 2;
    cfg.timeout = Duration::from_secs(20);
    cfg.env.push(("CPU_WORK_ITERS".into(), "5000000".into()));
    cfg.env.push(("SLEEPY_MS".into(), "30".into()));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    assert_eq!(r.invocations.len(), 4);
    for m in &r.invocations {
        assert_eq!(m.status, Status::Success, "{m:?}");
    }

    // Phases: a valid sequence per environment, matching the metrics' phase times.
    use PhaseEvent::*;
    let phases = assert_phase_order(&obs, false);
    assert_eq!(phases.len(), 2, "{phases:?}");
    for evs in phases.values() {
        let (starts, regs) = (nth(evs, InitStart), nth(evs, ExtensionsRegistered));
        let ends = nth(evs, InitEnd);
        assert_eq!((starts.len(), regs.len(), ends.len()), (1, 1, 1), "{evs:?}");
        assert!(
            starts[0] < regs[0] && regs[0] < ends[0],
            "the extension registers strictly inside init: {evs:?}"
        );
        assert_eq!(
            nth(evs, Frozen).len(),
            nth(evs, Thawed).len(),
            "every freeze is followed by a thaw (the spindown thaws too): {evs:?}"
        );
        assert_eq!(nth(evs, ShutdownEnd).len(), 1, "{evs:?}");
        assert_eq!(
            nth(evs, RuntimeNext).len(),
            nth(evs, InvokeStart).len(),
            "{evs:?}"
        );
    }
    for m in &r.invocations {
        let evs = &phases[&m.environment];
        let p = &m.phases;
        for (ev, ns) in [
            (InvokeStart, p.invoke_start_ns),
            (RuntimeDone, p.runtime_done_ns),
            (RuntimeNext, p.runtime_next_ns),
            (InvokeEnd, p.invoke_end_ns),
        ] {
            assert!(
                ns > 0 && evs.contains(&(ev, ns)),
                "{ev:?} {ns} of {m:?} in {evs:?}"
            );
        }
        if m.cold {
            assert!(evs.contains(&(InitStart, p.init_start_ns)), "{evs:?}");
            assert!(evs.contains(&(InitEnd, p.init_end_ns)), "{evs:?}");
        }
    }

    // CPU: the cgroup's count over the invoke phase holds the handler thread's CPU time and
    // little else (the sleeping extension, the runtime client's HTTP).
    let work = logged_cpu_ms(&obs, "cpu-function:");
    for m in &r.invocations {
        let cg = cgroup_ms(m);
        let handler = work[&m.request_id];
        eprintln!(
            "observer: {} cgroup {cg:.1} ms, handler thread {handler:.1} ms, init cgroup {:?}",
            m.request_id, m.init_cgroup_cpu_ns
        );
        assert!(handler > 5.0, "the handler did no work: {handler} ms");
        assert!(
            cg >= handler * 0.98 - 1.0 && cg <= handler * 1.3 + 30.0,
            "cgroup CPU {cg:.1} ms vs the handler's own {handler:.1} ms: {m:?}"
        );
        assert_eq!(m.cold, m.init_cgroup_cpu_ns.is_some(), "{m:?}");
        if let Some(i) = m.init_cgroup_cpu_ns {
            assert!(i > 0, "starting two processes costs CPU: {m:?}");
        }
    }
    let json = serde_json::to_value(&r).expect("report serializes");
    assert!(json["invocations"][0]["cgroup_cpu_ns"].is_u64(), "{json}");

    // Memory: samples during every invoke phase, plausible values, within the lifetime.
    let mem = obs.memory_by_env();
    assert_eq!(mem.len(), 2, "memory samples for both environments");
    for (env, samples) in &mem {
        let evs = &phases[env];
        let (first, last) = (evs[0].1, evs[evs.len() - 1].1);
        for &(ns, bytes) in samples {
            assert!(
                (first..=last).contains(&ns),
                "env {env}: sample at {ns} outside [{first}, {last}]"
            );
            // 0 is real: the cgroup is empty at init start and after the shutdown's kill.
            assert!(bytes < 1769 << 20, "env {env}: {bytes} bytes");
        }
        assert!(
            samples.iter().any(|s| s.1 >= 1 << 20),
            "env {env}: two running processes use more than 1 MB: {samples:?}"
        );
    }
    for m in &r.invocations {
        let p = &m.phases;
        let inside = mem[&m.environment]
            .iter()
            .filter(|s| (p.invoke_start_ns..=p.invoke_end_ns).contains(&s.0))
            .count();
        assert!(inside >= 1, "no memory sample during {m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_extension_burns_cpu_after_the_runtime() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let mut medians = Vec::new();
    for ext in ["sleepy-spin", "sleepy"] {
        let mut cfg = config(function("header-counter"), ext);
        cfg.extensions = vec![bin(ext)];
        cfg.memory_mb = 1769;
        cfg.invocations = 3;
        cfg.env.push(("HEADER_COUNTER_DELAY_MS".into(), "0".into()));
        cfg.env.push(("SLEEPY_MS".into(), "100".into()));
        let obs = Recorder::default();
        let r = run(cfg, &obs).await;
        assert_phase_order(&obs, false);
        let own = logged_cpu_ms(&obs, "sleepy:");
        let mut cgs = Vec::new();
        for m in &r.invocations {
            assert_eq!(m.status, Status::Success, "{m:?}");
            let (cg, ext_cpu) = (cgroup_ms(m), own[&m.request_id]);
            eprintln!(
                "{ext}: post-runtime {:.1} ms, cgroup CPU {cg:.1} ms, extension thread {ext_cpu:.1} ms",
                m.post_runtime_extensions_duration_ms
            );
            assert!(
                m.post_runtime_extensions_duration_ms >= 70.0,
                "{ext}: the 100 ms after INVOKE are post-runtime: {m:?}"
            );
            assert!(
                cg >= ext_cpu * 0.98 - 1.0 && cg <= ext_cpu * 1.3 + 30.0,
                "{ext}: cgroup CPU {cg:.1} ms vs the extension's own {ext_cpu:.1} ms"
            );
            if ext == "sleepy" {
                assert!(ext_cpu < 5.0, "sleeping costs no CPU: {ext_cpu} ms");
            } else {
                // It spins until its thread used 100 ms of CPU time.
                assert!(
                    (99.0..130.0).contains(&ext_cpu),
                    "spinning costs 100 ms of CPU: {ext_cpu} ms"
                );
            }
            cgs.push(cg);
        }
        cgs.sort_by(f64::total_cmp);
        medians.push(cgs[cgs.len() / 2]);
    }
    assert!(
        medians[0] > 3.0 * medians[1],
        "spinning ({:.1} ms) vs sleeping ({:.1} ms) per invocation",
        medians[0],
        medians[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_environment_is_not_sampled() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let fdir = function("header-counter");
    let mut cfg = config(fdir.clone(), "frozen");
    cfg.memory_mb = 512;
    cfg.env
        .push(("HEADER_COUNTER_DELAY_MS".into(), "50".into()));
    let obs = Recorder::default();
    let mut env = Environment::create(0, Arc::new(cfg))
        .await
        .expect("environment");
    let event = lxprof_emulator::event::default_event();
    for i in 0..2 {
        let m = env.invoke(&event, &obs).await.expect("invoke");
        assert_eq!(m.status, Status::Success, "{m:?}");
        if i == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    env.shutdown("spindown", &obs).await;
    drop(env);
    assert_nothing_left("frozen");
    let _ = std::fs::remove_dir_all(fdir);

    use PhaseEvent::*;
    let phases = assert_phase_order(&obs, false);
    let evs = &phases[&0];
    let kinds: Vec<PhaseEvent> = evs.iter().map(|e| e.0).collect();
    assert_eq!(
        kinds,
        [
            InitStart,
            ExtensionsRegistered,
            InitEnd,
            InvokeStart,
            RuntimeDone,
            RuntimeNext,
            InvokeEnd,
            Frozen,
            Thawed,
            InvokeStart,
            RuntimeDone,
            RuntimeNext,
            InvokeEnd,
            Frozen,
            Thawed,
            ShutdownStart,
            ShutdownEnd
        ],
        "{evs:?}"
    );
    assert_eq!(
        evs[0].1, evs[1].1,
        "no extensions: registered at init start"
    );
    let (frozen, thawed) = (evs[7].1, evs[8].1);
    assert!(thawed - frozen >= 250_000_000, "{evs:?}");
    let mem = obs.memory_by_env();
    let samples = &mem[&0];
    // A sample may be read between the thaw and its report (a few ms): allow 20 ms.
    let while_frozen: Vec<_> = samples
        .iter()
        .filter(|s| s.0 > frozen && s.0 + 20_000_000 < thawed)
        .collect();
    assert!(
        while_frozen.is_empty(),
        "sampled while frozen: {while_frozen:?}"
    );
    for w in [(evs[3].1, evs[6].1), (evs[9].1, evs[12].1)] {
        let n = samples
            .iter()
            .filter(|s| (w.0..=w.1).contains(&s.0))
            .count();
        assert!(n >= 1, "no sample during the invoke {w:?}: {samples:?}");
    }
}
