//! Limits and accounting: memory peak and OOM, freezer, CPU quota.

use super::*;

#[test]
fn memory_peak_and_oom_kill() {
    if !available() {
        return;
    }
    let mut s = spec("mem", scratch("mem"));
    s.memory_mb = 128;
    let sb = Sandbox::create(s).expect("create");
    sb.reset_memory_peak().expect("reset");
    let (code, _, err) = run(&sb, helper_cmd("alloc 64 100"));
    assert_eq!(code, Some(0), "{err}");
    let peak = sb.memory_peak_bytes().expect("peak");
    assert!(
        ((64 << 20)..(128 << 20)).contains(&peak),
        "peak {peak} for a 64 MiB allocation"
    );
    assert_eq!(sb.oom_kills().expect("oom"), 0);
    sb.reset_memory_peak().expect("reset");
    let after = sb.memory_peak_bytes().expect("peak");
    assert!(after < 32 << 20, "peak after reset {after}");
    assert!(sb.memory_current_bytes().expect("current") <= after.max(1 << 20) + (1 << 20));

    let (code, _, _) = run(&sb, helper_cmd("alloc 256 0"));
    assert_eq!(code, None, "the hog was not killed by a signal");
    assert!(sb.oom_kills().expect("oom") >= 1);
    assert!(sb.memory_peak_bytes().expect("peak") <= 128 << 20);
}

fn wait_cpu_growth(sb: &Sandbox, over: Duration) -> u64 {
    let a = sb.cpu_usage_ns().expect("cpu");
    std::thread::sleep(over);
    sb.cpu_usage_ns().expect("cpu") - a
}

#[test]
fn freeze_stops_cpu_accounting_and_thaw_resumes() {
    if !available() {
        return;
    }
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::create(spec("freeze", scratch("freeze"))).expect("create");
    freeze_checks(&sb);
}

pub(super) fn freeze_checks(sb: &Sandbox) {
    let rt = runtime();
    let _child = rt
        .block_on(async { sb.spawn(helper_cmd("busy"), |_| {}) })
        .expect("spawn");
    assert!(
        wait_cpu_growth(sb, Duration::from_millis(300)) > 30_000_000,
        "the busy loop does not run"
    );
    sb.freeze().expect("freeze");
    let err = rt
        .block_on(async { sb.spawn(sh("true"), |_| {}) })
        .expect_err("spawn while frozen");
    assert!(err.to_string().contains("thaw"), "{err}");
    std::thread::sleep(Duration::from_millis(20));
    let frozen = wait_cpu_growth(sb, Duration::from_millis(400));
    assert!(frozen < 2_000_000, "{frozen} ns of CPU while frozen");
    sb.thaw().expect("thaw");
    assert!(
        wait_cpu_growth(sb, Duration::from_millis(300)) > 30_000_000,
        "no CPU after thaw"
    );
    sb.kill_all().expect("kill_all");
    assert!(sb.pids().is_empty());
}

#[test]
fn cpu_limit_quarter_cpu_is_four_times_slower() {
    if !available() {
        return;
    }
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let work = "spin 60000000";
    // Best of `runs`: each run's time is min(wall, CPU time). Other load on this 2-core machine
    // only ever lengthens a run; an uncapped run that got less than a whole CPU would have
    // taken its CPU time on an idle one. The capped run is bounded by its quota either way.
    let timed = |cap: Option<f64>, tag: &str, runs: usize| {
        let mut s = spec(&format!("cpu-{tag}"), scratch(&format!("cpu-{tag}")));
        s.cpu_limit = cap;
        let sb = Sandbox::create(s).expect("create");
        let (mut best_wall, mut best) = (f64::MAX, f64::MAX);
        for _ in 0..runs {
            let cpu0 = sb.cpu_usage_ns().expect("cpu");
            let t = Instant::now();
            let (code, _, err) = run(&sb, helper_cmd(work));
            assert_eq!(code, Some(0), "{err}");
            let wall = t.elapsed().as_secs_f64();
            let cpu = (sb.cpu_usage_ns().expect("cpu") - cpu0) as f64 / 1e9;
            best_wall = best_wall.min(wall);
            best = best.min(if cap.is_some() { wall } else { wall.min(cpu) });
        }
        (best, best_wall)
    };
    let (free, free_wall) = timed(None, "free", 3);
    let (capped, _) = timed(Some(0.25), "quarter", 2);
    let ratio = capped / free;
    eprintln!(
        "uncapped {free:.3}s (best wall {free_wall:.3}s), capped at 0.25: {capped:.3}s: ratio {ratio:.2}"
    );
    assert!(
        (3.0..=5.0).contains(&ratio),
        "wall-time ratio {ratio:.2} not ≈4 (uncapped {free:.3}s, capped {capped:.3}s)"
    );
}

#[test]
fn kill_all_on_a_frozen_environment_then_spawn_again() {
    if !available() {
        return;
    }
    let sb = Sandbox::create(spec("frozenkill", scratch("frozenkill"))).expect("create");
    let rt = runtime();
    let child = rt
        .block_on(async { sb.spawn(sh("sleep 60 & sleep 60"), |_| {}) })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(100));
    assert!(sb.pids().len() >= 2);
    sb.freeze().expect("freeze");
    let t = Instant::now();
    sb.kill_all().expect("kill_all on a frozen environment");
    assert!(sb.pids().is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "kill_all took {:?}",
        t.elapsed()
    );
    let out = rt.block_on(child.wait_with_output()).expect("wait");
    assert_eq!(out.status.code(), None, "killed by a signal");
    let (code, out, _) = run(&sb, sh("echo again"));
    assert_eq!((code, out.as_str()), (Some(0), "again\n"));
}

#[test]
fn cpu_limit_of_a_128_mb_function_stretches_wall_time_by_1769_over_128() {
    if !available() {
        return;
    }
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let fraction = 128.0 / 1769.0;
    let mut s = spec("cpu128", scratch("cpu128"));
    s.cpu_limit = Some(fraction);
    let sb = Sandbox::create(s).expect("create");
    let t = Instant::now();
    let (code, _, err) = run(&sb, helper_cmd("spin 20000000"));
    assert_eq!(code, Some(0), "{err}");
    let wall = t.elapsed().as_secs_f64();
    let cpu = sb.cpu_usage_ns().expect("cpu") as f64 / 1e9;
    let stretch = wall / cpu;
    eprintln!(
        "128 MB: cpu {cpu:.3}s in {wall:.3}s wall: {stretch:.1}x (expected {:.1}x)",
        1.0 / fraction
    );
    assert!(
        (stretch * fraction - 1.0).abs() < 0.25,
        "wall/cpu {stretch:.1} not ≈ {:.1}",
        1.0 / fraction
    );
}
