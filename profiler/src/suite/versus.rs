//! The seed's published figures beside ours, in relative terms (each
//! against the no-extension baseline of its own run), and a reading of each
//! difference: which mechanism — runtime, function runtime, load shape,
//! network, hardware — accounts for it, with the measurement of this suite
//! that shows it.

use std::fmt::Write as _;

use super::insight::{ExtensionCost, Runtime};
use super::results::ScenarioMetrics;
use super::seed::{self, Published};
use super::{ScenarioResult, ScenarioStatus, SuiteSettings};

/// Lambda gives one vCPU at this memory size.
const MB_PER_VCPU: f64 = 1769.0;

/// Ratio beyond which a figure "differs" and gets a reading.
const DIFFERS: f64 = 2.0;

fn find<'a>(
    results: &'a [ScenarioResult],
    mem: u32,
    scenario: &str,
) -> Option<&'a ScenarioMetrics> {
    results.iter().find_map(|r| match &r.status {
        ScenarioStatus::Ok { metrics } if r.memory_mb == mem && r.scenario == scenario => {
            Some(metrics)
        }
        _ => None,
    })
}

fn size_of(results: &[ScenarioResult], scenario: &str) -> Option<u64> {
    results
        .iter()
        .find(|r| r.scenario == scenario)
        .and_then(|r| r.extension_size_bytes)
}

fn ms(v: f64) -> String {
    super::markdown::ms(v)
}

fn mb(b: u64) -> String {
    super::markdown::bytes(b)
}

/// How far apart two positive figures are (≥ 1).
fn apart(a: f64, b: f64) -> f64 {
    let (a, b) = (a.max(1e-3), b.max(1e-3));
    if a > b { a / b } else { b / a }
}

/// The whole section; empty when no published figure matches a scenario
/// and memory size that ran.
pub fn render(out: &mut String, settings: &SuiteSettings, results: &[ScenarioResult]) {
    let mut any = false;
    for &mem in &settings.memory_mb {
        let Some(base) = find(results, mem, "no-extension") else {
            continue;
        };
        // Each published extension beside ours of the same name and, when it
        // ran, ours of the same logic on AWS's runtime (e.g. dotnet-*).
        let mut rows: Vec<Row> = Vec::new();
        for (p, b) in seed::extensions_at(mem) {
            let mut names = vec![p.scenario.to_string()];
            names.extend(same_logic_other_runtime(results, mem, p).map(|(n, _)| n));
            for ours in names {
                if let Some(m) = find(results, mem, &ours) {
                    rows.push(Row {
                        p,
                        b,
                        ours,
                        m,
                        base,
                    });
                }
            }
        }
        if rows.is_empty() {
            continue;
        }
        if !any {
            any = true;
            let _ = writeln!(
                out,
                "## Beside the seed's published figures\n\n\
                 AWS's numbers ({}): {} requests, {} in flight, through API Gateway, function \
                 HeaderCounter on {}; each dashboard with its own no-extension baseline. Ours: \
                 {} requests, {} in flight, function {} ({}). Each cell \
                 is AWS / ours; figures read off AWS's bar charts (memory, cold starts) are \
                 approximate.\n",
                seed::SOURCE,
                seed::REQUESTS,
                seed::IN_FLIGHT,
                seed::FUNCTION_RUNTIME,
                settings.invocations,
                settings.concurrency,
                settings.function,
                function_runtime(&settings.function),
            );
        }
        let _ = writeln!(out, "### {mem} MB\n");
        let _ = writeln!(
            out,
            "| extension (AWS dashboard) | runtime: AWS / ours | Duration ÷ baseline, avg | \
             Duration ÷ baseline, max | PostRuntimeExtensionsDuration avg | \
             PostRuntimeExtensionsDuration max | cold start − baseline | cold starts per 100 \
             requests | memory used − baseline | size |"
        );
        let _ = writeln!(
            out,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for Row {
            p,
            b,
            ours,
            m,
            base,
        } in &rows
        {
            let post = p.post_runtime_ms.unwrap_or((0.0, 0.0));
            let ours_rt = Runtime::detect(ours).label();
            let size = match (seed::binary_size(p.scenario), size_of(results, ours)) {
                (Some(a), Some(o)) => format!("{} / {}", mb(a), mb(o)),
                (None, Some(o)) => format!("– / {}", mb(o)),
                _ => "–".into(),
            };
            let cold_per_100 = |n: f64, of: f64| if of > 0.0 { n / of * 100.0 } else { 0.0 };
            let _ = writeln!(
                out,
                "| {} ({}) | {} / {} | {:.2}× / {:.2}× | {:.2}× / {:.2}× | {} / {} | {} / {} | \
                 {} / {} | {:.0} / {:.0} | {:+.0} / {:+.0} MB | {} |",
                if *ours == p.scenario {
                    ours.clone()
                } else {
                    format!("{ours} (AWS: {})", p.scenario)
                },
                p.dashboard,
                p.runtime,
                ours_rt,
                p.duration_ms.0 / b.duration_ms.0,
                m.duration_ms.avg / base.duration_ms.avg.max(1e-3),
                p.duration_ms.1 / b.duration_ms.1,
                m.duration_ms.max / base.duration_ms.max.max(1e-3),
                ms(post.0),
                ms(m.post_runtime_extensions_duration_ms.avg),
                ms(post.1),
                ms(m.post_runtime_extensions_duration_ms.max),
                signed_ms(p.cold_start_ms.0 - b.cold_start_ms.0),
                signed_ms(m.init_duration_ms.avg - base.init_duration_ms.avg),
                cold_per_100(p.cold_starts, f64::from(seed::REQUESTS)),
                cold_per_100(m.cold_starts as f64, m.invocations as f64),
                p.memory_used_mb - b.memory_used_mb,
                m.max_memory_used_mb.avg - base.max_memory_used_mb.avg,
                size,
            );
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "Reading ({mem} MB, {:.1} % of a vCPU):\n",
            f64::from(mem) / MB_PER_VCPU * 100.0
        );
        for row in &rows {
            let _ = writeln!(out, "- {}\n", reading(settings, results, mem, row));
        }
    }
}

fn signed_ms(v: f64) -> String {
    if v < 0.0 {
        format!("−{}", ms(-v))
    } else {
        format!("+{}", ms(v))
    }
}

/// A published extension and ours beside it.
struct Row<'a> {
    p: &'static Published,
    b: &'static Published,
    /// Our scenario.
    ours: String,
    m: &'a ScenarioMetrics,
    base: &'a ScenarioMetrics,
}

/// One row's reading.
fn reading(settings: &SuiteSettings, results: &[ScenarioResult], mem: u32, row: &Row) -> String {
    let Row {
        p,
        b,
        ours,
        m,
        base,
    } = row;
    let share = f64::from(mem) / MB_PER_VCPU;
    let post = p.post_runtime_ms.unwrap_or((0.0, 0.0)).0;
    let ours_post = m.post_runtime_extensions_duration_ms.avg;
    let aws_ratio = p.duration_ms.0 / b.duration_ms.0;
    let ours_ratio = m.duration_ms.avg / base.duration_ms.avg.max(1e-3);
    // Post-runtime averages under 2 ms are "nothing" on both sides.
    let post_differs = apart(post, ours_post) > DIFFERS && post.max(ours_post) > 2.0;
    let ratio_differs = apart(aws_ratio - 1.0, ours_ratio - 1.0) > DIFFERS
        && (aws_ratio - 1.0).abs().max((ours_ratio - 1.0).abs()) > 0.05;
    let cost = ExtensionCost::of(ours, m).into_iter().next();
    let mut s = if *ours == p.scenario {
        format!("**{ours}**: ")
    } else {
        format!("**{ours}** (beside AWS's {}): ", p.scenario)
    };
    if !post_differs && !ratio_differs {
        let _ = write!(
            s,
            "within {DIFFERS}× of AWS on Duration ÷ baseline ({aws_ratio:.2}× / {ours_ratio:.2}×) \
             and PostRuntimeExtensionsDuration ({} / {}).",
            ms(post),
            ms(ours_post)
        );
    } else {
        let _ = write!(
            s,
            "AWS measured {aws_ratio:.2}× the baseline and {} after the response; we measure \
             {ours_ratio:.2}× and {}.",
            ms(post),
            ms(ours_post)
        );
    }
    if let Some(c) = &cost {
        // What AWS's invoke phase allows in CPU at this share.
        if post_differs && post > ours_post {
            let budget = p.duration_ms.0 * share;
            let _ = write!(
                s,
                " At {:.1} % of a vCPU an invoke phase of {} allows at most {budget:.0} ms of \
                 CPU to the whole environment: a post-runtime phase that long means the \
                 extension was still working, CPU-bound or waiting on S3; here it used {:.2} ms \
                 of CPU per invocation ({:.2} ms of it after the response).",
                share * 100.0,
                ms(p.duration_ms.0),
                c.cpu_ms,
                c.post_runtime_cpu_ms
            );
        }
        let post_max = p.post_runtime_ms.map_or(0.0, |x| x.1);
        let ours_max = m.post_runtime_extensions_duration_ms.max;
        if !post_differs && apart(post_max, ours_max) > DIFFERS && post_max.max(ours_max) > 10.0 {
            let _ = write!(
                s,
                " The maxima differ ({} / {}): the extension works while the handler's 500 ms \
                 run, so post-runtime time appears only when its work outlasts them — at AWS \
                 a PutObject that took over half a second (network), more often in \
                 environments still warming up (load shape); here {}.",
                ms(post_max),
                ms(ours_max),
                if ours_max > 10.0 {
                    "the longest ran past the handler by that much"
                } else {
                    "every invocation's work ended inside the handler's time"
                }
            );
        }
        if post_differs || ratio_differs {
            s += " Mechanisms:";
            // Runtime.
            let ours_rt = c.runtime;
            if !p.runtime.contains(ours_rt.label()) {
                let _ = write!(
                    s,
                    " (runtime) AWS ran it on {}, we on {}",
                    p.runtime,
                    ours_rt.label()
                );
                match same_logic_other_runtime(results, mem, p) {
                    Some((name, other)) => {
                        let _ = write!(
                            s,
                            "; measured here, {name} ({}) uses {:.2} ms of CPU per invocation and \
                             {:.0} ms per cold start against {:.2} and {:.0} ms;",
                            other.runtime.label(),
                            other.cpu_ms,
                            other.init_cpu_ms,
                            c.cpu_ms,
                            c.init_cpu_ms
                        );
                    }
                    None => s += " (no scenario of that runtime ran in this suite);",
                }
            }
            // Function runtime.
            let fn_cpu = base
                .roles
                .iter()
                .find(|r| r.role == "function")
                .map_or(0.0, |r| r.cpu_ns.avg / 1e6);
            let _ = write!(
                s,
                " (function runtime) AWS's HeaderCounter is {}: its baseline uses ~{:.0} MB and \
                 cold-starts in ~{:.0} ms, a JIT runtime sharing the CPU with the extension; ours \
                 ({}): {:.0} MB, {} cold start, {:.2} ms of CPU per invocation;",
                seed::FUNCTION_RUNTIME,
                b.memory_used_mb,
                b.cold_start_ms.0,
                function_runtime(&settings.function),
                base.max_memory_used_mb.avg,
                ms(base.init_duration_ms.avg),
                fn_cpu
            );
            // Load shape.
            let (cold, warm) = cold_warm(m);
            let aws_cold = p.cold_starts / f64::from(seed::REQUESTS) * 100.0;
            let aws_base_cold = b.cold_starts / f64::from(seed::REQUESTS) * 100.0;
            let ours_cold = m.cold_starts as f64 / (m.invocations.max(1)) as f64 * 100.0;
            let _ = write!(
                s,
                " (load shape) AWS: ~{aws_cold:.0} cold starts per 100 requests (baseline \
                 ~{aws_base_cold:.0}) at {} in flight; here {ours_cold:.0} per 100 at {} in \
                 flight; an invocation that follows a cold start costs this extension {} of CPU \
                 against {} warm, so every extra environment adds its warm-up;",
                seed::IN_FLIGHT,
                settings.concurrency,
                cold.map_or("–".into(), |v| format!("{v:.2} ms")),
                warm.map_or("–".into(), |v| format!("{v:.2} ms"))
            );
            // Network.
            if p.scenario.contains("collector") {
                let kernel = c.split.map(|sp| sp[4]);
                let _ = write!(
                    s,
                    " (network) AWS's PutObject crossed to regional S3 over HTTPS; ours goes to \
                     a local server on loopback ({}){};",
                    settings.s3.as_deref().unwrap_or("endpoint not recorded"),
                    kernel.map_or(String::new(), |k| format!(
                        ", its kernel time {k:.2} ms per invocation"
                    ))
                );
                let https = settings
                    .s3
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https"));
                if https && c.runtime == Runtime::MonoAot {
                    s += " here its PutObjects fail at the TLS handshake (Mono full AOT cannot \
                          verify certificates), so its S3 work is cut short;";
                }
            }
            // Hardware: the environments busy at once against this machine's CPUs.
            let asked = m.cold_starts as f64 * share;
            let cpus = settings.cpus as f64;
            let _ = write!(
                s,
                " (hardware) the same CPU share per environment by cgroup quota, on {} here, \
                 Lambda's x86 hosts there; here {} environments × {:.1} % = {asked:.1} vCPUs \
                 asked of {} CPUs{}.",
                settings.cpu.as_deref().unwrap_or("this machine's CPU"),
                m.cold_starts,
                share * 100.0,
                settings.cpus,
                if asked > cpus {
                    ": while they are all busy (cold starts together) each gets less than its \
                     share, which lengthens inits and post-runtime work beyond what the quota \
                     alone would"
                } else {
                    ": each gets its full share"
                }
            );
        }
        // Cold start.
        let aws_added = p.cold_start_ms.0 - b.cold_start_ms.0;
        let ours_added = m.init_duration_ms.avg - base.init_duration_ms.avg;
        // Ours much longer (a negative difference is the baseline's noise, not a reading).
        if aws_added > 0.0 && ours_added > DIFFERS * aws_added && c.init_cpu_ms > 0.0 {
            let _ = write!(
                s,
                " Cold start ({} / {} beyond the baseline): here the extension's init uses \
                 {:.0} ms of CPU, at least {} at {:.1} % of a vCPU; at that share AWS's {} \
                 leave room for ~{:.0} ms of CPU, so there the extension's runtime initialised \
                 with that much less CPU ({}), or ran faster than its memory share during init.",
                signed_ms(aws_added),
                signed_ms(ours_added),
                c.init_cpu_ms,
                ms(c.init_cpu_ms / share),
                share * 100.0,
                ms(p.cold_start_ms.0),
                p.cold_start_ms.0 * share,
                p.runtime
            );
        }
    }
    s
}

/// What runs the suite's function, from its name (`header-counter`, lxprof's
/// default, is native Rust).
fn function_runtime(function: &str) -> &'static str {
    match Runtime::detect(function) {
        Runtime::Unknown if function == crate::lambda::DEFAULT_FUNCTION => "Rust, native",
        Runtime::CoreClr => "C# on .NET CoreCLR",
        r => r.label(),
    }
}

/// Avg extension CPU of cold and of warm invocations.
fn cold_warm(m: &ScenarioMetrics) -> (Option<f64>, Option<f64>) {
    let avg = |cold: bool| {
        let v: Vec<f64> = m
            .series
            .iter()
            .filter(|p| p.cold == cold)
            .map(|p| p.extension_cpu_ms)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    (avg(true), avg(false))
}

/// Another scenario of the same logic on the runtime AWS used (e.g.
/// `dotnet-event-collector` for AWS's .NET 6 `csharp-event-collector`).
fn same_logic_other_runtime(
    results: &[ScenarioResult],
    mem: u32,
    p: &Published,
) -> Option<(String, ExtensionCost)> {
    let want = if p.runtime.contains("AOT") {
        Runtime::DotnetAot
    } else if p.runtime.contains(".NET") {
        Runtime::CoreClr
    } else {
        return None;
    };
    let tail = p.scenario.split_once('-').map_or(p.scenario, |(_, t)| t);
    let tail = tail.strip_prefix("aot-").unwrap_or(tail);
    results.iter().find_map(|r| match &r.status {
        ScenarioStatus::Ok { metrics }
            if r.memory_mb == mem
                && r.scenario.ends_with(tail)
                && Runtime::detect(&r.scenario) == want =>
        {
            ExtensionCost::of(&r.scenario, metrics)
                .into_iter()
                .next()
                .map(|c| (r.scenario.clone(), c))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::results::{Agg, MemoryStats, Point, RoleFigures, Stats};
    use super::*;
    use std::path::PathBuf;

    fn result(
        scenario: &str,
        duration: f64,
        post: f64,
        cold_ms: f64,
        cpu_ms: f64,
    ) -> ScenarioResult {
        let stats = |v: f64| Stats {
            avg: v,
            p50: v,
            p99: v,
            max: v * 2.0,
        };
        let mut roles = vec![RoleFigures {
            role: "function".into(),
            billed: true,
            cpu_ns: Agg {
                avg: 2e5,
                ..Agg::default()
            },
            ..RoleFigures::default()
        }];
        if scenario != "no-extension" {
            roles.push(RoleFigures {
                role: format!("extension:{scenario}"),
                billed: true,
                cpu_ns: Agg {
                    avg: cpu_ms * 1e6,
                    ..Agg::default()
                },
                init_cpu_ns: Agg {
                    avg: 190e6,
                    ..Agg::default()
                },
                cold_starts: 20,
                ..RoleFigures::default()
            });
        }
        ScenarioResult {
            memory_mb: 128,
            scenario: scenario.into(),
            extension: (scenario != "no-extension").then(|| scenario.to_string()),
            dir: PathBuf::from(format!("128mb/{scenario}")),
            extension_size_bytes: None,
            seconds: 1.0,
            status: ScenarioStatus::Ok {
                metrics: ScenarioMetrics {
                    memory_mb: 128,
                    invocations: 200,
                    succeeded: 200,
                    duration_ms: stats(duration),
                    post_runtime_extensions_duration_ms: stats(post),
                    init_duration_ms: stats(cold_ms),
                    cold_starts: 20,
                    max_memory_used_mb: MemoryStats {
                        avg: 20.0,
                        max: 25.0,
                    },
                    series: vec![
                        Point {
                            cold: true,
                            extension_cpu_ms: 140.0,
                            ..Point::default()
                        },
                        Point {
                            extension_cpu_ms: 4.0,
                            ..Point::default()
                        },
                    ],
                    roles,
                    ..ScenarioMetrics::default()
                },
            },
            interrupted: false,
        }
    }

    #[test]
    fn rows_are_relative_to_each_baseline_and_differences_get_mechanisms() {
        let settings = SuiteSettings {
            function: "header-counter".into(),
            memory_mb: vec![128],
            invocations: 200,
            concurrency: 10,
            max_environments: 20,
            timeout_s: 30.0,
            freq: Some(499),
            alloc: "syscalls".into(),
            interrupted: false,
            s3: Some("https://localhost:1".into()),
            cpu: Some("Test CPU".into()),
            cpus: 1,
        };
        let results = [
            result("no-extension", 500.0, 0.0, 25.0, 0.0),
            result("csharp-event-collector", 680.0, 177.0, 2900.0, 18.0),
            // Same logic on AWS's runtime: a row of its own beside AWS's C#.
            result("dotnet-event-collector", 600.0, 60.0, 900.0, 9.0),
        ];
        let mut out = String::new();
        render(&mut out, &settings, &results);
        assert!(
            out.contains(
                "| csharp-event-collector (ec-extension-128) | .NET 6 (CoreCLR JIT) / Mono JIT | \
                 2.61× / 1.36× |"
            ),
            "{out}"
        );
        assert!(out.contains("| dotnet-event-collector (AWS: csharp-event-collector) (ec-extension-128) | .NET 6 (CoreCLR JIT) / .NET CoreCLR JIT |"), "{out}");
        let reading = out
            .lines()
            .find(|l| l.starts_with("- **csharp-event-collector**"))
            .expect("reading");
        for mechanism in [
            "(runtime)",
            "(function runtime)",
            "(load shape)",
            "(network)",
            "(hardware)",
        ] {
            assert!(reading.contains(mechanism), "{mechanism}: {reading}");
        }
        // The .NET scenario that ran is the runtime's measurement.
        assert!(
            reading.contains("dotnet-event-collector (.NET CoreCLR JIT) uses 9.00 ms"),
            "{reading}"
        );
        // 20 environments × 7.2 % asked of 1 CPU.
        assert!(
            reading.contains("1.4 vCPUs asked of 1 CPUs: while they are all busy"),
            "{reading}"
        );
        assert!(
            reading.contains("140.00 ms of CPU against 4.00 ms warm"),
            "{reading}"
        );
        assert!(
            reading.contains("Cold start (+275 ms / +2.88 s"),
            "{reading}"
        );
        // Rust rows need both a published and a recorded scenario: none here.
        assert!(!out.contains("| rust-event-collector"), "{out}");
    }
}
