//! CPU limit: a CPU-bound function at 128 MB runs ~1769/128 times slower than at 1769 MB.
//! The machine is shared and loaded, so the 1769 MB baseline is the best of its runs, each
//! counted as min(wall, the handler thread's CPU time) (contention only adds wall time);
//! the 128 MB figure is its best handler wall time (the quota, not contention, binds there).
use super::common::*;
use lxprof_emulator::Status;

/// (best wall, best min(wall, cpu)) over the handler's own log lines.
async fn measure(memory_mb: u32, iters: &str) -> (f64, f64) {
    let mut cfg = config(function("cpu-function"), &format!("cpu{memory_mb}"));
    cfg.memory_mb = memory_mb;
    cfg.invocations = 3;
    cfg.env.push(("CPU_WORK_ITERS".into(), iters.into()));
    let obs = Recorder::default();
    let r = run(cfg, &obs).await;
    assert!(r.invocations.iter().all(|m| m.status == Status::Success));
    let logs = obs.logs.lock().map(|l| l.clone()).unwrap_or_default();
    let field = |line: &str, k: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
    };
    let mut best = (f64::INFINITY, f64::INFINITY);
    for (_, _, line) in logs.iter().filter(|l| l.2.starts_with("cpu-function:")) {
        let (Some(w), Some(c)) = (field(line, "wall_ms="), field(line, "cpu_ms=")) else {
            continue;
        };
        best = (best.0.min(w), best.1.min(w.min(c)));
    }
    assert!(best.0.is_finite(), "no cpu-function log lines: {logs:?}");
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_is_proportional_to_memory() {
    let _g = serial().await;
    if !facility() {
        return;
    }
    let iters = "15000000";
    let (_, full) = measure(1769, iters).await;
    let (small, _) = measure(128, iters).await;
    let ratio = small / full;
    let want = 1769.0 / 128.0;
    eprintln!("cpu: 1769 MB {full:.1} ms, 128 MB {small:.1} ms, ratio {ratio:.2} (want {want:.2})");
    assert!(
        (want * 0.75..=want * 1.25).contains(&ratio),
        "ratio {ratio:.2} outside {want:.2} ±25 %"
    );
}
