//! Benchmark: the emulator's per-invocation overhead. A trivial function (header-counter with
//! `HEADER_COUNTER_DELAY_MS=0`, or the cpu-function fixture with `CPU_WORK_ITERS=0`), no
//! extension, no CPU cap, one environment: the reported Duration is almost all emulator + Runtime API cost (event hand-out, response post, the
//! runtime's next). Beside it, in the same run, a raw loopback HTTP round trip against the same
//! server stack (axum on 127.0.0.1, keep-alive), and the wall time per invocation (including
//! thaw/freeze between invocations).
//!
//! Needs root (sandboxes). Run:
//!   cargo run --release -p lxprof-emulator --example overhead -- [INVOCATIONS] [FUNCTION]
//! FUNCTION is a deployment package directory or a preset name (default header-counter, from
//! extensions/build: run extensions/build.sh first).
use std::time::Instant;

use lxprof_emulator::metrics::Stats;
use lxprof_emulator::presets::{build_dir, resolve_function};
use lxprof_emulator::{EmulatorConfig, NoObserver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// p50/p99/max of `n` keep-alive HTTP round trips to a loopback axum server, in ms.
async fn loopback_rtt(n: usize) -> Result<Stats, Box<dyn std::error::Error>> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let app = axum::Router::new().route(
        "/2018-06-01/runtime/invocation/{id}/response",
        axum::routing::post(|| async { (axum::http::StatusCode::ACCEPTED, "{\"status\":\"OK\"}") }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let body = "{\"statusCode\":200,\"body\":\"Your request has 17 headers\"}";
    let req = format!(
        "POST /2018-06-01/runtime/invocation/x/response HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut times = Vec::with_capacity(n);
    let mut buf = vec![0u8; 4096];
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(req.as_bytes()).await?;
        // The answer is small: read until its body (Content-Length) is complete.
        let mut got = Vec::new();
        loop {
            let k = s.read(&mut buf).await?;
            if k == 0 {
                return Err("server closed the connection".into());
            }
            got.extend_from_slice(&buf[..k]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if rest.len() >= len {
                    break;
                }
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    server.abort();
    Ok(Stats::of(&times))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let f = args.next().unwrap_or_else(|| "header-counter".into());
    let function = resolve_function(&f, build_dir().as_deref())?;
    let mut cfg = EmulatorConfig::new(function.clone());
    cfg.invocations = n;
    cfg.memory_mb = 1769;
    cfg.cpu_cap = false;
    cfg.print_reports = false;
    // Make the known fixtures trivial (header-counter's sleep(0) alone costs a timer tick).
    cfg.env.push(("HEADER_COUNTER_DELAY_MS".into(), "0".into()));
    cfg.env.push(("CPU_WORK_ITERS".into(), "0".into()));
    let t = Instant::now();
    let report = lxprof_emulator::run(cfg, &NoObserver).await?;
    let wall = t.elapsed();
    if let Some(bad) = report
        .invocations
        .iter()
        .find(|m| m.status != lxprof_emulator::Status::Success)
    {
        return Err(format!(
            "invocation {} failed: {:?} {:?} (is {} a working function? run extensions/build.sh)",
            bad.request_id,
            bad.status,
            bad.error_type,
            function.display()
        )
        .into());
    }
    let warm: Vec<f64> = report
        .invocations
        .iter()
        .filter(|m| !m.cold)
        .map(|m| m.duration_ms)
        .collect();
    let d = Stats::of(&warm);
    let part = |f: fn(&lxprof_emulator::PhaseTimes) -> u64| {
        let v: Vec<f64> = report
            .invocations
            .iter()
            .filter(|m| !m.cold)
            .map(|m| f(&m.phases) as f64 / 1e6)
            .collect();
        Stats::of(&v)
    };
    let answer = part(|p| p.runtime_done_ns.saturating_sub(p.invoke_start_ns));
    let next = part(|p| p.invoke_end_ns.saturating_sub(p.runtime_done_ns));
    let rtt = loopback_rtt(n as usize).await?;
    let per = wall.as_secs_f64() * 1e3 / f64::from(n.max(1));
    println!("function: {}", function.display());
    println!("invocations: {n} (1 environment, no extension, no CPU cap; warm only below)");
    println!(
        "emulator Duration        p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        d.p50, d.p99, d.max
    );
    println!(
        "  event out -> response  p50 {:.3} ms  p99 {:.3} ms",
        answer.p50, answer.p99
    );
    println!(
        "  response -> next       p50 {:.3} ms  p99 {:.3} ms",
        next.p50, next.p99
    );
    println!(
        "raw loopback HTTP RTT    p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        rtt.p50, rtt.p99, rtt.max
    );
    println!(
        "wall per invocation      {per:.3} ms (incl. thaw/freeze, init {:.1} ms, shutdown)",
        report.summary.init_duration_ms.max
    );
    Ok(())
}
