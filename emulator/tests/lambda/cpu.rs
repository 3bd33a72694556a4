//! CPU limit: a CPU-bound function at 128 MB runs ~1769/128 times slower than at 1769 MB.
//! At 1769 MB a single-threaded handler gets a whole CPU, so its run time there is its CPU
//! time. The machine is shared, loaded and virtual (contention adds wall time, steal time
//! inflates CPU time), so each invocation's handler wall time is divided by its own thread CPU
//! time: at 128 MB that stretch must be ~1769/128 (the quota charges the same CPU clock), and
//! at 1769 MB the environment must not be throttled (stretch well below the 128 MB one).
use super::common::*;
use lxprof_emulator::Status;

/// The best (smallest) wall/CPU ratio of the handler over the run's invocations.
async fn stretch(memory_mb: u32, iters: &str) -> f64 {
    let mut cfg = config(function("cpu-function"), &format!("cpu{memory_mb}"));
    cfg.memory_mb = memory_mb;
    cfg.invocations = 3;
    cfg.timeout = std::time::Duration::from_secs(20);
    cfg.env.push(("CPU_WORK_ITERS".into(), iters.into()));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    for m in &r.invocations {
        assert_eq!(m.status, Status::Success, "{m:?}");
    }
    let logs = obs.logs.lock().map(|l| l.clone()).unwrap_or_default();
    let field = |line: &str, k: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
    };
    let best = logs
        .iter()
        .filter(|l| l.2.starts_with("cpu-function:"))
        .filter_map(|(_, _, line)| Some(field(line, "wall_ms=")? / field(line, "cpu_ms=")?))
        .fold(f64::INFINITY, f64::min);
    assert!(best.is_finite(), "no cpu-function log lines: {logs:?}");
    eprintln!("cpu: {memory_mb} MB: best wall/cpu {best:.2}");
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_is_proportional_to_memory() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let iters = "15000000";
    let full = stretch(1769, iters).await;
    let small = stretch(128, iters).await;
    let ratio = small;
    let want = 1769.0 / 128.0;
    eprintln!("cpu: 128 MB is {ratio:.2}x slower than a full CPU (want {want:.2})");
    assert!(
        full < 3.0,
        "1769 MB stretched {full:.2}x: the full-CPU environment looks throttled"
    );
    assert!(
        (want * 0.75..=want * 1.25).contains(&ratio),
        "ratio {ratio:.2} outside {want:.2} ±25 %"
    );
}
