//! `suite.md`: one table per memory size in the terms of the AWS sample's
//! dashboard, then each scenario's CPU, page faults and allocations per
//! invocation and role.

use std::fmt::Write as _;

use super::results::{Agg, ScenarioMetrics};
use super::why::{Chart, Diff};
use super::{ScenarioResult, ScenarioStatus, SuiteSettings};

/// Lambda gives one vCPU at this memory size.
const MB_PER_VCPU: f64 = 1769.0;

/// A duration in ms, with the precision that matters at its size.
pub(crate) fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else if v >= 0.01 || v == 0.0 {
        format!("{v:.2} ms")
    } else {
        format!("{:.1} µs", v * 1000.0)
    }
}

pub(crate) fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

/// A cell: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn avg_max_ms(a: &Agg) -> String {
    format!("{:.2} ({:.2})", a.avg / 1e6, a.max / 1e6)
}

fn avg_max(a: &Agg, scale: f64) -> String {
    format!("{:.0} ({:.0})", a.avg / scale, a.max / scale)
}

/// The whole suite.md: per memory size the dashboard, where each
/// extension's CPU goes (with `charts` and `diffs`), per-role figures; then
/// the seed's published figures beside ours.
pub fn render(
    settings: &SuiteSettings,
    results: &[ScenarioResult],
    charts: &[Chart],
    diffs: &[Diff],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# lxprof suite: {} with each extension\n",
        settings.function
    );
    let _ = writeln!(
        out,
        "{} request{} per scenario, {} in flight (each client sends its next request when it \
         gets its response), at most {} environment{} (a new one, a cold start, only when every \
         existing one is busy); timeout {} s; recorded with \
         `lxprof record --lambda` (stack sampling {}, allocation probes `{}`). Each scenario's \
         recording is in `<memory>mb/<scenario>/` (trace.json, report.json, flamegraphs).\n",
        settings.invocations,
        plural(settings.invocations as usize),
        settings.concurrency,
        settings.max_environments,
        plural(settings.max_environments as usize),
        settings.timeout_s,
        settings
            .freq
            .map_or("off".to_string(), |f| format!("{f} Hz")),
        settings.alloc,
    );
    if settings.interrupted {
        let _ = writeln!(
            out,
            "**Interrupted**: the scenarios below are those that ran before Ctrl-C.\n"
        );
    }
    for &mem in &settings.memory_mb {
        let rows: Vec<&ScenarioResult> = results.iter().filter(|r| r.memory_mb == mem).collect();
        if rows.is_empty() {
            continue;
        }
        dashboard_table(&mut out, mem, &rows);
        failures(&mut out, &rows);
        super::why::render(&mut out, mem, &rows, charts, diffs);
        roles_table(&mut out, &rows);
    }
    super::versus::render(&mut out, settings, results);
    let _ = writeln!(
        out,
        "Duration covers the whole invoke phase (extensions included); \
         PostRuntimeExtensionsDuration runs from the function's response to the last \
         extension's next. Memory used is each invocation's environment peak. Extension size: \
         the files of its layer (what Lambda mounts at /opt), runtimes shared with the system \
         (mono, node) not included. Per-role figures exclude lxprof's own emulator; \
         allocations with `syscalls` probes are mmap/brk bytes."
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A scenario's row name (`no extension` for the suite's function alone).
pub(crate) fn name(r: &ScenarioResult) -> String {
    match &r.extension {
        None if r.scenario == super::NO_EXTENSION => "no extension".to_string(),
        _ => r.scenario.clone(),
    }
}

fn dashboard_table(out: &mut String, mem: u32, rows: &[&ScenarioResult]) {
    let _ = writeln!(
        out,
        "## {mem} MB ({:.1} % of a vCPU)\n",
        f64::from(mem) / MB_PER_VCPU * 100.0
    );
    let _ = writeln!(
        out,
        "| scenario | Duration avg / max | PostRuntimeExtensionsDuration avg / max | \
         memory used avg / max of {mem} MB | cold start avg / max | cold starts | succeeded | \
         extension size |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let size = r.extension_size_bytes.map_or("–".to_string(), bytes);
        match &r.status {
            ScenarioStatus::Ok { metrics: m } => {
                let cold = if m.cold_starts > 0 {
                    format!(
                        "{} / {}",
                        ms(m.init_duration_ms.avg),
                        ms(m.init_duration_ms.max)
                    )
                } else {
                    "–".to_string()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} / {} | {} / {} | {:.0} / {:.0} MB | {} | {} | {}/{} | {} |",
                    name(r),
                    ms(m.duration_ms.avg),
                    ms(m.duration_ms.max),
                    ms(m.post_runtime_extensions_duration_ms.avg),
                    ms(m.post_runtime_extensions_duration_ms.max),
                    m.max_memory_used_mb.avg,
                    m.max_memory_used_mb.max,
                    cold,
                    m.cold_starts,
                    m.succeeded,
                    m.invocations,
                    size
                );
            }
            ScenarioStatus::Failed { error } => {
                let _ = writeln!(
                    out,
                    "| {} | **error**: {} | | | | | | {} |",
                    name(r),
                    cell(error),
                    size
                );
            }
            ScenarioStatus::Interrupted => {
                let _ = writeln!(
                    out,
                    "| {} | **interrupted** (Ctrl-C) | | | | | | {} |",
                    name(r),
                    size
                );
            }
        }
    }
    out.push('\n');
}

fn roles_table(out: &mut String, rows: &[&ScenarioResult]) {
    let with_roles: Vec<(&ScenarioResult, &ScenarioMetrics)> = rows
        .iter()
        .filter_map(|r| match &r.status {
            ScenarioStatus::Ok { metrics } if !metrics.roles.is_empty() => Some((*r, metrics)),
            _ => None,
        })
        .collect();
    if with_roles.is_empty() {
        let _ = writeln!(
            out,
            "(No per-role attribution in these recordings' report.json.)\n"
        );
        return;
    }
    let _ = writeln!(out, "Per invocation and role, avg (max):\n");
    let _ = writeln!(
        out,
        "| scenario | role | CPU ms | post-runtime CPU ms | page faults | alloc KiB | allocs | \
         cold-start init CPU ms |"
    );
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (r, m) in with_roles {
        for role in m.roles.iter().filter(|role| role.billed) {
            let init = if role.cold_starts > 0 && role.init_cpu_ns.total > 0.0 {
                avg_max_ms(&role.init_cpu_ns)
            } else {
                "–".to_string()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                name(r),
                cell(&role.role),
                avg_max_ms(&role.cpu_ns),
                avg_max_ms(&role.post_runtime_cpu_ns),
                avg_max(&role.page_faults, 1.0),
                avg_max(&role.alloc_bytes, 1024.0),
                avg_max(&role.alloc_count, 1.0),
                init
            );
        }
    }
    out.push('\n');
}

fn failures(out: &mut String, rows: &[&ScenarioResult]) {
    let mut any = false;
    for r in rows {
        let ScenarioStatus::Ok { metrics: m } = &r.status else {
            continue;
        };
        if m.lost_events > 0 {
            any = true;
            let _ = writeln!(
                out,
                "- {}: {} kernel events lost (ring buffer full): its per-role figures are low",
                name(r),
                m.lost_events
            );
        }
        if m.failures.is_empty() {
            continue;
        }
        any = true;
        let mut kinds: Vec<String> = m
            .failures
            .iter()
            .map(|(status, ty)| match ty {
                Some(t) => format!("{status} ({t})"),
                None => status.clone(),
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        let _ = writeln!(
            out,
            "- {}: {} of {} invocations did not succeed: {}",
            name(r),
            m.failures.len(),
            m.invocations,
            cell(&kinds.join(", "))
        );
    }
    if any {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::super::results::{MemoryStats, RoleFigures, Stats};
    use super::*;

    fn settings() -> SuiteSettings {
        SuiteSettings {
            function: "header-counter".into(),
            memory_mb: vec![128, 512],
            invocations: 5,
            concurrency: 1,
            max_environments: 1,
            timeout_s: 30.0,
            freq: Some(499),
            alloc: "syscalls".into(),
            interrupted: false,
            s3: None,
            cpu: None,
            cpus: 2,
        }
    }

    fn ok(mem: u32, scenario: &str, duration: f64) -> ScenarioResult {
        let stats = |v: f64| Stats {
            avg: v,
            p50: v,
            p99: v,
            max: v * 2.0,
        };
        ScenarioResult {
            memory_mb: mem,
            scenario: scenario.into(),
            extension: (scenario != "no-extension").then(|| scenario.to_string()),
            dir: format!("{mem}mb/{scenario}").into(),
            extension_size_bytes: (scenario != "no-extension").then_some(8_800_000),
            seconds: 3.0,
            status: ScenarioStatus::Ok {
                metrics: ScenarioMetrics {
                    memory_mb: mem,
                    invocations: 5,
                    succeeded: 4,
                    failures: vec![("timeout".into(), Some("Sandbox.Timedout".into()))],
                    duration_ms: stats(duration),
                    post_runtime_extensions_duration_ms: stats(1.5),
                    init_duration_ms: stats(45.0),
                    cold_starts: 1,
                    max_memory_used_mb: MemoryStats {
                        avg: 20.4,
                        max: 22.0,
                    },
                    lost_events: 3,
                    series: Vec::new(),
                    roles: vec![RoleFigures {
                        role: "function".into(),
                        billed: true,
                        cpu_ns: Agg {
                            avg: 2.5e6,
                            max: 4e6,
                            total: 12.5e6,
                        },
                        ..Default::default()
                    }],
                },
            },
            interrupted: false,
        }
    }

    #[test]
    fn one_table_per_memory_size_with_every_scenario() {
        let mut results = vec![
            ok(128, "no-extension", 510.0),
            ok(128, "rust-blank", 1480.0),
        ];
        results.push(ScenarioResult {
            status: ScenarioStatus::Failed {
                error: "AOT images missing | x\nmore".into(),
            },
            ..ok(128, "csharp-aot-event-collector", 0.0)
        });
        results.push(ok(512, "rust-blank", 505.0));
        let md = render(&settings(), &results, &[], &[]);
        assert!(md.contains("## 128 MB (7.2 % of a vCPU)"), "{md}");
        assert!(md.contains("## 512 MB (28.9 % of a vCPU)"), "{md}");
        assert!(md.contains("| no extension | 510 ms / 1.02 s |"), "{md}");
        assert!(md.contains("| rust-blank | 1.48 s / 2.96 s | 1.50 ms / 3.00 ms | 20 / 22 MB"));
        assert!(md.contains("| 4/5 | 8.8 MB |"), "{md}");
        assert!(
            md.contains("**error**: AOT images missing \\| x more"),
            "{md}"
        );
        assert!(
            md.contains("| rust-blank | function | 2.50 (4.00) |"),
            "{md}"
        );
        assert!(md.contains("1 of 5 invocations did not succeed: timeout (Sandbox.Timedout)"));
        assert!(md.contains("- rust-blank: 3 kernel events lost"), "{md}");
        // Every table of a memory size has 8 columns (escaped pipes are not
        // separators); the seed comparison has its own.
        let (ours, seed) = md.split_once("## Beside the seed's").expect("seed section");
        assert!(
            seed.contains("| rust-blank (blank-extension-128) |"),
            "{seed}"
        );
        for line in ours.lines().filter(|l| l.starts_with("| ")) {
            assert_eq!(line.matches(" |").count(), 8, "{line}");
        }
    }

    #[test]
    fn durations_keep_their_precision() {
        assert_eq!(ms(0.771), "0.77 ms");
        assert_eq!(ms(0.00104), "1.0 µs");
        assert_eq!(ms(0.0), "0.00 ms");
        assert_eq!(ms(36.94), "36.9 ms");
        assert_eq!(ms(583.4), "583 ms");
        assert_eq!(ms(9620.0), "9.62 s");
        assert_eq!(bytes(36_400_000), "36.4 MB");
        assert_eq!(bytes(28_000), "28 KB");
    }
}
