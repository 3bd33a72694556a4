//! One scenario's figures, read back from its `report.json` (the artifact a
//! user can open too): the `lambda` section's summary and invocations, and
//! the per-role attribution when the recording has it (`lambda.roles`, or
//! computed from `lambda.invocations[].by_role`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::classify::CategoryTotals;

/// avg / p50 / p99 / max of a series (the emulator's `Stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub avg: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// avg / max of an environment's peak memory, MB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    pub avg: f64,
    pub max: f64,
}

/// avg / max / total of a per-invocation figure (report.json `roles[]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Agg {
    pub avg: f64,
    pub max: f64,
    pub total: f64,
}

impl Agg {
    fn of(values: &[f64]) -> Agg {
        let total: f64 = values.iter().sum();
        Agg {
            avg: if values.is_empty() {
                0.0
            } else {
                total / values.len() as f64
            },
            max: values.iter().copied().fold(0.0, f64::max),
            total,
        }
    }
}

/// A role's CPU, faults and allocations per invocation, and at cold starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleFigures {
    pub role: String,
    /// False for the emulator (Lambda does not bill it).
    pub billed: bool,
    pub cpu_ns: Agg,
    pub post_runtime_cpu_ns: Agg,
    pub page_faults: Agg,
    pub alloc_bytes: Agg,
    pub alloc_count: Agg,
    pub cold_starts: u64,
    pub init_cpu_ns: Agg,
    /// The invocations' CPU split app / JIT / GC / runtime / kernel (sums
    /// over every invocation; None when the recording had no samples).
    pub categories: Option<CategoryTotals>,
    /// The same for the role's processes in the cold starts' inits (sums).
    pub init_categories: Option<CategoryTotals>,
}

/// What the suite reports of one finished scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScenarioMetrics {
    /// Configured memory, MB.
    pub memory_mb: u32,
    pub invocations: usize,
    /// Invocations whose status was `success`.
    pub succeeded: usize,
    /// `(status, error type)` of the others.
    pub failures: Vec<(String, Option<String>)>,
    pub duration_ms: Stats,
    pub post_runtime_extensions_duration_ms: Stats,
    pub init_duration_ms: Stats,
    pub cold_starts: u64,
    pub max_memory_used_mb: MemoryStats,
    /// Per role, function first; empty when the recording has no attribution.
    pub roles: Vec<RoleFigures>,
    /// Kernel records the recording lost (ring buffer full): per-role figures are low.
    pub lost_events: u64,
    /// Every invocation in start order, for the charts.
    pub series: Vec<Point>,
}

/// One invocation as the charts show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Point {
    /// Environment index (each cold-starts on its first invocation).
    pub environment: usize,
    pub cold: bool,
    pub duration_ms: f64,
    pub post_runtime_extensions_duration_ms: f64,
    /// CPU of the extension roles in the invoke phase (all of them, summed).
    pub extension_cpu_ms: f64,
    /// CPU of the function in the invoke phase.
    pub function_cpu_ms: f64,
}

/// Why a scenario's report.json could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a Lambda report ({why}): was it written by `lxprof record --lambda`?")]
    Format { path: PathBuf, why: String },
}

#[derive(Deserialize)]
struct File {
    lambda: Lambda,
    #[serde(default)]
    lost_events: u64,
}

#[derive(Deserialize)]
struct Lambda {
    memory_mb: u32,
    #[serde(default)]
    invocations: Vec<Invocation>,
    summary: Summary,
    #[serde(default)]
    roles: Option<Vec<RoleFigures>>,
}

#[derive(Deserialize)]
struct Summary {
    duration_ms: Stats,
    post_runtime_extensions_duration_ms: Stats,
    #[serde(default)]
    init_duration_ms: Stats,
    #[serde(default)]
    cold_starts: u64,
    max_memory_used_mb: MemoryStats,
}

#[derive(Deserialize)]
struct Invocation {
    #[serde(default)]
    status: String,
    #[serde(default)]
    environment: usize,
    #[serde(default)]
    duration_ms: f64,
    #[serde(default)]
    post_runtime_extensions_duration_ms: f64,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    cold: bool,
    #[serde(default)]
    by_role: BTreeMap<String, Usage>,
}

/// `by_role[role]` of one invocation (fields the suite shows).
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(default)]
struct Usage {
    cpu_ns: f64,
    post_runtime_cpu_ns: f64,
    page_faults: f64,
    alloc_bytes: f64,
    alloc_count: f64,
    categories: Option<CategoryTotals>,
}

/// Reads `report.json` of a scenario directory.
pub fn read_report(path: &Path) -> Result<ScenarioMetrics, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_report(&bytes).map_err(|why| ReportError::Format {
        path: path.to_path_buf(),
        why,
    })
}

/// Parses a report.json's bytes.
pub fn parse_report(bytes: &[u8]) -> Result<ScenarioMetrics, String> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let l = file.lambda;
    let succeeded = l
        .invocations
        .iter()
        .filter(|i| i.status == "success")
        .count();
    let failures = l
        .invocations
        .iter()
        .filter(|i| i.status != "success")
        .map(|i| (i.status.clone(), i.error_type.clone()))
        .collect();
    let mut roles = match l.roles {
        Some(r) => r,
        None => roles_from_invocations(&l.invocations),
    };
    roles.sort_by(|a, b| role_order(&a.role).cmp(&role_order(&b.role)));
    Ok(ScenarioMetrics {
        memory_mb: l.memory_mb,
        invocations: l.invocations.len(),
        succeeded,
        failures,
        duration_ms: l.summary.duration_ms,
        post_runtime_extensions_duration_ms: l.summary.post_runtime_extensions_duration_ms,
        init_duration_ms: l.summary.init_duration_ms,
        cold_starts: l.summary.cold_starts,
        max_memory_used_mb: l.summary.max_memory_used_mb,
        roles,
        lost_events: file.lost_events,
        series: l.invocations.iter().map(point).collect(),
    })
}

fn point(i: &Invocation) -> Point {
    let cpu = |pick: fn(&str) -> bool| -> f64 {
        i.by_role
            .iter()
            .filter(|(role, _)| pick(role))
            .map(|(_, u)| u.cpu_ns)
            .sum::<f64>()
            / 1e6
    };
    Point {
        environment: i.environment,
        cold: i.cold,
        duration_ms: i.duration_ms,
        post_runtime_extensions_duration_ms: i.post_runtime_extensions_duration_ms,
        extension_cpu_ms: cpu(|r| r.starts_with("extension")),
        function_cpu_ms: cpu(|r| r == "function"),
    }
}

/// Function first, then extensions, others, the emulator last.
fn role_order(role: &str) -> (u8, &str) {
    let rank = match role {
        "function" => 0,
        "emulator" => 3,
        r if r.starts_with("extension") => 1,
        _ => 2,
    };
    (rank, role)
}

/// Per-role aggregates when report.json has `by_role` but no `roles` (a
/// role absent from an invocation counts 0 there, as in `roles`).
fn roles_from_invocations(invocations: &[Invocation]) -> Vec<RoleFigures> {
    let names: std::collections::BTreeSet<&String> =
        invocations.iter().flat_map(|i| i.by_role.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let col = |f: fn(&Usage) -> f64| -> Agg {
                let v: Vec<f64> = invocations
                    .iter()
                    .map(|i| i.by_role.get(name).map_or(0.0, f))
                    .collect();
                Agg::of(&v)
            };
            RoleFigures {
                role: name.clone(),
                billed: name != "emulator",
                cpu_ns: col(|u| u.cpu_ns),
                post_runtime_cpu_ns: col(|u| u.post_runtime_cpu_ns),
                page_faults: col(|u| u.page_faults),
                alloc_bytes: col(|u| u.alloc_bytes),
                alloc_count: col(|u| u.alloc_count),
                cold_starts: invocations.iter().filter(|i| i.cold).count() as u64,
                init_cpu_ns: Agg::default(),
                categories: sum_categories(
                    invocations
                        .iter()
                        .filter_map(|i| i.by_role.get(name).and_then(|u| u.categories)),
                ),
                init_categories: None,
            }
        })
        .collect()
}

/// The sum of some splits (None when there is none).
fn sum_categories(parts: impl Iterator<Item = CategoryTotals>) -> Option<CategoryTotals> {
    parts.reduce(|mut a, b| {
        for c in crate::stacks::Category::ALL {
            a.add(c, b.get(c));
        }
        a
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(extra: serde_json::Value) -> serde_json::Value {
        let mut r = json!({"lambda": {
            "memory_mb": 128,
            "function": "header-counter",
            "extensions": ["rust-blank"],
            "invocations": [
                {"request_id": "a", "cold": true, "status": "success", "error_type": null,
                 "init_duration_ms": 40.0, "duration_ms": 510.0,
                 "by_role": {"function": {"cpu_ns": 2000000, "post_runtime_cpu_ns": 0,
                             "page_faults": 10, "alloc_bytes": 4096, "alloc_count": 2},
                             "extension:rust-blank": {"cpu_ns": 1000000, "post_runtime_cpu_ns": 500,
                             "page_faults": 4, "alloc_bytes": 0, "alloc_count": 0}}},
                {"request_id": "b", "cold": false, "status": "timeout", "error_type": "Sandbox.Timedout",
                 "duration_ms": 3000.0,
                 "by_role": {"function": {"cpu_ns": 4000000, "post_runtime_cpu_ns": 0,
                             "page_faults": 20, "alloc_bytes": 0, "alloc_count": 0}}}
            ],
            "summary": {
                "duration_ms": {"avg": 1755.0, "p50": 510.0, "p99": 3000.0, "max": 3000.0},
                "post_runtime_extensions_duration_ms": {"avg": 0.5, "p50": 0.5, "p99": 0.5, "max": 0.5},
                "init_duration_ms": {"avg": 40.0, "p50": 40.0, "p99": 40.0, "max": 40.0},
                "cold_starts": 1,
                "max_memory_used_mb": {"avg": 20.5, "max": 21}
            }
        }});
        if let (Some(l), serde_json::Value::Object(extra)) = (r["lambda"].as_object_mut(), extra) {
            l.extend(extra);
        }
        r
    }

    #[test]
    fn reads_summary_and_failures() {
        let m = parse_report(report(json!({})).to_string().as_bytes()).expect("parse");
        assert_eq!(
            (m.memory_mb, m.invocations, m.succeeded, m.cold_starts),
            (128, 2, 1, 1)
        );
        assert_eq!(
            m.failures,
            vec![("timeout".into(), Some("Sandbox.Timedout".into()))]
        );
        assert_eq!(m.duration_ms.max, 3000.0);
        assert_eq!(m.max_memory_used_mb.max, 21.0);
        assert_eq!(m.lost_events, 0);
        let mut lost = report(json!({}));
        lost["lost_events"] = json!(12);
        let m = parse_report(lost.to_string().as_bytes()).expect("parse");
        assert_eq!(m.lost_events, 12);
    }

    #[test]
    fn roles_come_from_by_role_when_no_summary() {
        let m = parse_report(report(json!({})).to_string().as_bytes()).expect("parse");
        let names: Vec<&str> = m.roles.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(names, ["function", "extension:rust-blank"]);
        assert_eq!(m.roles[0].cpu_ns.avg, 3_000_000.0);
        assert_eq!(m.roles[0].cpu_ns.max, 4_000_000.0);
        // Absent from the second invocation: counts 0 there.
        assert_eq!(m.roles[1].cpu_ns.avg, 500_000.0);
    }

    #[test]
    fn roles_summary_wins_and_order_is_function_first() {
        let roles = json!({"roles": [
            {"role": "emulator", "billed": false, "cpu_ns": {"avg": 1.0, "max": 1, "total": 2}},
            {"role": "function", "billed": true, "cpu_ns": {"avg": 7.0, "max": 9, "total": 14},
             "init_cpu_ns": {"avg": 3.0, "max": 3, "total": 3}, "cold_starts": 1}
        ]});
        let m = parse_report(report(roles).to_string().as_bytes()).expect("parse");
        assert_eq!(m.roles.len(), 2);
        assert_eq!(
            (m.roles[0].role.as_str(), m.roles[0].cpu_ns.avg),
            ("function", 7.0)
        );
        assert_eq!(m.roles[0].init_cpu_ns.avg, 3.0);
        assert!(!m.roles[1].billed);
    }

    #[test]
    fn other_json_is_a_format_error() {
        assert!(parse_report(b"{\"traceEvents\": []}").is_err());
        assert!(parse_report(b"not json").is_err());
        let err = read_report(Path::new("/nonexistent/report.json")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/report.json"));
    }
}
