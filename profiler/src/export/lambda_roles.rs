//! The per-role view of a `record --lambda` attribution: avg / max / total
//! per invocation of each role's CPU, faults and allocations (`function`
//! first, extensions, others, `emulator` last), and the cross-check of the
//! attributed CPU against the environments' cgroup CPU counters.

use lxprof_emulator::LambdaReport;
use serde::Serialize;

use super::lambda_attrib::{EMULATOR_ROLE, InvocationAttribution, ProcessInit, RoleUsage};
use crate::classify::CategoryTotals;

/// avg / max / total of a per-invocation figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Agg {
    pub avg: f64,
    pub max: u64,
    pub total: u64,
}

impl Agg {
    pub fn of(values: impl IntoIterator<Item = u64>) -> Agg {
        let (mut n, mut max, mut total) = (0u64, 0u64, 0u64);
        for v in values {
            n += 1;
            max = max.max(v);
            total = total.saturating_add(v);
        }
        Agg {
            avg: if n == 0 { 0.0 } else { total as f64 / n as f64 },
            max,
            total,
        }
    }
}

/// A role over the whole run (report.json `roles[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleSummary {
    pub role: String,
    /// False for the emulator: Lambda does not bill it.
    pub billed: bool,
    /// Invocations averaged over (all of them; a role absent from one counts 0).
    pub invocations: usize,
    pub cpu_ns: Agg,
    pub post_runtime_cpu_ns: Agg,
    pub page_faults: Agg,
    pub post_runtime_page_faults: Agg,
    pub alloc_bytes: Agg,
    pub alloc_count: Agg,
    /// Cold starts: init CPU of the role's processes, over cold starts.
    pub cold_starts: usize,
    pub init_cpu_ns: Agg,
    pub init_page_faults: Agg,
    pub init_alloc_bytes: Agg,
    /// Sum of the invocations' categories (None without samples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<CategoryTotals>,
    /// The same for their post-runtime parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_runtime_categories: Option<CategoryTotals>,
    /// The same for the role's processes in the cold starts' inits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_categories: Option<CategoryTotals>,
}

/// The sum of some category splits (None when there is none).
fn sum_categories(parts: impl IntoIterator<Item = CategoryTotals>) -> Option<CategoryTotals> {
    let mut sum: Option<CategoryTotals> = None;
    for c in parts {
        sum.get_or_insert_with(CategoryTotals::default).merge(&c);
    }
    sum
}

/// The sum of the billed roles' attributed CPU beside the cgroups' own
/// accounting of the same windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CgroupCheck {
    /// Invoke phases compared.
    pub invocations: usize,
    /// Their attributed CPU (all roles but the emulator).
    pub attributed_cpu_ns: u64,
    /// `InvocationMetrics::cgroup_cpu_ns` summed over them.
    pub cgroup_cpu_ns: u64,
    /// Cold starts compared, and the same two sums for their init phases.
    pub inits: usize,
    pub init_attributed_cpu_ns: u64,
    pub init_cgroup_cpu_ns: u64,
}

impl CgroupCheck {
    /// attributed / cgroup of the invoke phases (None without cgroup CPU).
    pub fn ratio(&self) -> Option<f64> {
        (self.cgroup_cpu_ns > 0).then(|| self.attributed_cpu_ns as f64 / self.cgroup_cpu_ns as f64)
    }

    /// attributed / cgroup of the init phases (None without cgroup CPU).
    pub fn init_ratio(&self) -> Option<f64> {
        (self.init_cgroup_cpu_ns > 0)
            .then(|| self.init_attributed_cpu_ns as f64 / self.init_cgroup_cpu_ns as f64)
    }
}

/// Compares the attribution with the cgroup counters the emulator read.
pub(crate) fn cgroup_check(
    report: &LambdaReport,
    invocations: &[InvocationAttribution],
) -> Option<CgroupCheck> {
    let mut c = CgroupCheck::default();
    for (m, a) in report.invocations.iter().zip(invocations) {
        if let Some(ns) = m.cgroup_cpu_ns {
            c.invocations += 1;
            c.cgroup_cpu_ns += ns;
            c.attributed_cpu_ns += a.billed_cpu_ns();
        }
        if let Some(ns) = m.init_cgroup_cpu_ns.filter(|_| a.cold) {
            c.inits += 1;
            c.init_cgroup_cpu_ns += ns;
            c.init_attributed_cpu_ns += a.billed_init_cpu_ns();
        }
    }
    (c.invocations + c.inits > 0).then_some(c)
}

/// Sort key: function, extensions, others, emulator.
pub fn role_order(role: &str) -> (u8, &str) {
    let rank = if role == "function" {
        0
    } else if role.starts_with("extension") {
        1
    } else if role == EMULATOR_ROLE {
        3
    } else {
        2
    };
    (rank, role)
}

/// Per-role aggregates over `invocations`.
pub fn summarize(invocations: &[InvocationAttribution]) -> Vec<RoleSummary> {
    let mut roles: Vec<&str> = invocations
        .iter()
        .flat_map(|i| {
            i.by_role
                .keys()
                .map(String::as_str)
                .chain(i.init_by_process.iter().map(|p| p.role.as_str()))
        })
        .collect();
    roles.sort_by(|a, b| role_order(a).cmp(&role_order(b)));
    roles.dedup();
    let cold: Vec<&InvocationAttribution> = invocations.iter().filter(|i| i.cold).collect();
    roles
        .into_iter()
        .map(|role| {
            let each = |f: fn(&RoleUsage) -> u64| {
                Agg::of(
                    invocations
                        .iter()
                        .map(|i| i.by_role.get(role).map(f).unwrap_or(0)),
                )
            };
            let init = |f: fn(&ProcessInit) -> u64| {
                Agg::of(cold.iter().map(|i| {
                    i.init_by_process
                        .iter()
                        .filter(|p| p.role == role)
                        .map(f)
                        .sum::<u64>()
                }))
            };
            let usages = || invocations.iter().filter_map(|i| i.by_role.get(role));
            let init_processes = cold
                .iter()
                .flat_map(|i| &i.init_by_process)
                .filter(|p| p.role == role);
            RoleSummary {
                role: role.to_string(),
                billed: role != EMULATOR_ROLE,
                invocations: invocations.len(),
                cpu_ns: each(|u| u.cpu_ns),
                post_runtime_cpu_ns: each(|u| u.post_runtime_cpu_ns),
                page_faults: each(|u| u.page_faults),
                post_runtime_page_faults: each(|u| u.post_runtime_page_faults),
                alloc_bytes: each(|u| u.alloc_bytes),
                alloc_count: each(|u| u.alloc_count),
                cold_starts: cold.len(),
                init_cpu_ns: init(|p| p.cpu_ns),
                init_page_faults: init(|p| p.page_faults),
                init_alloc_bytes: init(|p| p.alloc_bytes),
                categories: sum_categories(usages().filter_map(|u| u.categories)),
                post_runtime_categories: sum_categories(
                    usages().filter_map(|u| u.post_runtime_categories),
                ),
                init_categories: sum_categories(init_processes.filter_map(|p| p.categories)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::export::lambda_attrib::attribute;
    use crate::export::lambda_testdata::fixture;

    #[test]
    fn summary_orders_roles_and_averages_over_all_invocations() {
        let f = fixture();
        let a = attribute(&f.run());
        let roles: Vec<&str> = a.roles.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(roles, ["function", "extension:ext", "emulator"]);
        let func = &a.roles[0];
        assert_eq!(func.invocations, 3);
        assert_eq!(func.cpu_ns.total, 470_000 + 50_000 + 100_000);
        assert_eq!(func.cpu_ns.max, 470_000);
        assert!((func.cpu_ns.avg - 620_000.0 / 3.0).abs() < 1e-6);
        assert_eq!(func.cold_starts, 2);
        // Init: env 0's function 50 µs, env 1's function had no CPU in init.
        assert_eq!(
            (func.init_cpu_ns.total, func.init_cpu_ns.max),
            (50_000, 50_000)
        );
        let ext = &a.roles[1];
        assert_eq!(ext.cpu_ns.total, 350_000, "absent from req-3: counts 0");
        assert_eq!(ext.categories.map(|c| c.total_ns()), Some(300_000));
        assert_eq!(ext.post_runtime_categories.map(|c| c.jit_ns), Some(75_000));
        assert_eq!(ext.init_categories.map(|c| c.runtime_ns), Some(100_000));
        assert_eq!(func.init_categories, None);
        assert!(!a.roles[2].billed && func.billed);
    }

    #[test]
    fn attributed_cpu_is_compared_with_the_cgroup_counters() {
        let f = fixture();
        let c = attribute(&f.run())
            .cgroup_check
            .expect("cgroup counters read");
        // req-1 770 µs + req-2 150 µs against 800 + 150 µs; req-3 has no counter.
        assert_eq!(
            (c.invocations, c.attributed_cpu_ns, c.cgroup_cpu_ns),
            (2, 920_000, 950_000)
        );
        // Init of req-1 without the emulator: 50 + 100 µs against 160 µs.
        assert_eq!(
            (c.inits, c.init_attributed_cpu_ns, c.init_cgroup_cpu_ns),
            (1, 150_000, 160_000)
        );
        assert!((c.ratio().unwrap_or(0.0) - 920.0 / 950.0).abs() < 1e-9);
        let mut bare = fixture();
        for m in &mut bare.report.invocations {
            m.cgroup_cpu_ns = None;
            m.init_cgroup_cpu_ns = None;
        }
        assert_eq!(attribute(&bare.run()).cgroup_check, None);
    }
}
