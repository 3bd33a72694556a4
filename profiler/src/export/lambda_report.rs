//! The `lambda` section of a `record --lambda` `report.json` and the
//! per-role lines of its terminal summary.
//!
//! The section is the emulator's [`LambdaReport`] (memory, function,
//! extensions, invocations, summary) with, on each invocation, `by_role`
//! (role → [`RoleUsage`](super::lambda_attrib::RoleUsage)),
//! `attributed_cpu_ns` (all roles but the emulator) and, for cold starts,
//! `init_by_process`; a top-level `roles` array
//! ([`RoleSummary`]) and `cgroup_check`
//! ([`CgroupCheck`](super::lambda_attrib::CgroupCheck)) when the emulator
//! read the cgroups' CPU counters.

use std::fmt::Write as _;

use lxprof_emulator::LambdaReport;
use serde_json::{Value, json};

use super::lambda_attrib::{Agg, Attribution, EMULATOR_ROLE, RoleSummary};

/// report.json's `lambda` object: `report` with the attribution merged in.
/// Invocations are matched by position (as [`attribute`](super::lambda_attrib::attribute)
/// produced them) and checked by request id.
pub fn lambda_section(report: &LambdaReport, attr: &Attribution) -> Value {
    let mut v = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    if let Some(invocations) = v.get_mut("invocations").and_then(Value::as_array_mut) {
        for (inv, a) in invocations.iter_mut().zip(&attr.invocations) {
            if inv.get("request_id").and_then(Value::as_str) != Some(a.request_id.as_str()) {
                continue;
            }
            inv["by_role"] = serde_json::to_value(&a.by_role).unwrap_or(Value::Null);
            inv["attributed_cpu_ns"] = json!(a.billed_cpu_ns());
            if a.cold {
                inv["init_by_process"] =
                    serde_json::to_value(&a.init_by_process).unwrap_or(Value::Null);
            }
        }
    }
    if let Value::Object(map) = &mut v {
        map.insert(
            "roles".into(),
            serde_json::to_value(&attr.roles).unwrap_or(Value::Null),
        );
        if let Some(c) = &attr.cgroup_check {
            map.insert(
                "cgroup_check".into(),
                serde_json::to_value(c).unwrap_or(Value::Null),
            );
        }
    }
    v
}

/// CPU below which a role's category split is not put in words.
const EXPLAIN_MIN_NS: u64 = 1_000_000;

fn label(r: &RoleSummary) -> String {
    if r.role == EMULATOR_ROLE {
        format!("{} (not billed)", r.role)
    } else {
        r.role.clone()
    }
}

fn ms(a: &Agg) -> String {
    format!("{:.2} / {:.2}", a.avg / 1e6, a.max as f64 / 1e6)
}

fn count(a: &Agg) -> String {
    format!("{:.0} / {}", a.avg, a.max)
}

fn kib(a: &Agg) -> String {
    format!("{:.0} / {:.0}", a.avg / 1024.0, a.max as f64 / 1024.0)
}

/// The per-role lines after the Lambda dashboard: CPU, faults and
/// allocations per invocation (avg / max), the same for cold-start inits,
/// and one sentence per sampled role on where its CPU went.
pub fn render_role_summary(attr: &Attribution) -> String {
    let mut out = String::new();
    if attr.roles.is_empty() {
        return out;
    }
    let w = attr
        .roles
        .iter()
        .map(|r| label(r).len())
        .max()
        .unwrap_or(0)
        .max(26);
    // label, CPU ms, post-runtime CPU ms, faults, alloc KiB
    let mut row = |cells: [&str; 5]| {
        let [l, cpu, post, faults, alloc] = cells;
        let _ = writeln!(
            out,
            "  {l:<w$}  {cpu:>15}  {post:>19}  {faults:>13}  {alloc:>15}"
        );
    };
    row([
        "per invocation (avg / max)",
        "CPU ms",
        "post-runtime CPU ms",
        "faults",
        "alloc KiB",
    ]);
    for r in &attr.roles {
        row([
            &label(r),
            &ms(&r.cpu_ns),
            &ms(&r.post_runtime_cpu_ns),
            &count(&r.page_faults),
            &kib(&r.alloc_bytes),
        ]);
    }
    let cold = attr.roles.first().map_or(0, |r| r.cold_starts);
    if cold > 0 {
        let plural = if cold == 1 { "" } else { "s" };
        row([
            &format!("init, {cold} cold start{plural}"),
            "CPU ms",
            "",
            "faults",
            "alloc KiB",
        ]);
        for r in &attr.roles {
            row([
                &label(r),
                &ms(&r.init_cpu_ns),
                "",
                &count(&r.init_page_faults),
                &kib(&r.init_alloc_bytes),
            ]);
        }
    }
    if let Some(c) = &attr.cgroup_check {
        let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
        let _ = writeln!(
            out,
            "  CPU of the roles vs the environment cgroup: {:.1} / {:.1} ms ({}) over {} \
             invocation{}; init {:.1} / {:.1} ms ({})",
            c.attributed_cpu_ns as f64 / 1e6,
            c.cgroup_cpu_ns as f64 / 1e6,
            pct(c.ratio()),
            c.invocations,
            if c.invocations == 1 { "" } else { "s" },
            c.init_attributed_cpu_ns as f64 / 1e6,
            c.init_cgroup_cpu_ns as f64 / 1e6,
            pct(c.init_ratio()),
        );
    }
    for r in attr.roles.iter().filter(|r| r.billed) {
        for (c, when) in [
            (r.categories, "invoke phases"),
            (r.post_runtime_categories, "post-runtime"),
            (r.init_categories, "init"),
        ] {
            // Under a millisecond the split says little (a few samples).
            if let Some(c) = c.filter(|c| c.total_ns() >= EXPLAIN_MIN_NS) {
                let _ = writeln!(out, "  {} ({when})", c.describe(&r.role));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::lambda_attrib::attribute;
    use crate::export::lambda_testdata::fixture;

    #[test]
    fn section_merges_attribution_into_the_emulator_report() {
        let f = fixture();
        let a = attribute(&f.run());
        let v = lambda_section(&f.report, &a);
        assert_eq!(v["memory_mb"], 128);
        assert_eq!(v["summary"]["cold_starts"], 2);
        let inv = &v["invocations"][0];
        assert_eq!(inv["request_id"], "req-1");
        assert_eq!(inv["by_role"]["function"]["cpu_ns"], 470_000);
        assert_eq!(
            inv["by_role"]["extension:ext"]["post_runtime_cpu_ns"],
            300_000
        );
        assert_eq!(inv["by_role"]["extension:ext"]["alloc_count"], 2);
        assert_eq!(
            inv["by_role"]["extension:ext"]["categories"]["jit_ns"],
            75_000
        );
        assert!(inv["by_role"]["function"].get("categories").is_none());
        assert_eq!(inv["attributed_cpu_ns"], 770_000);
        assert_eq!(inv["init_by_process"][2]["pid"], 300);
        assert_eq!(inv["init_by_process"][2]["alloc_bytes"], 8192);
        let warm = &v["invocations"][2];
        assert!(warm.get("init_by_process").is_none());
        assert_eq!(warm["by_role"]["function"]["cpu_ns"], 100_000);
        let roles: Vec<&str> = v["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .filter_map(|r| r["role"].as_str())
            .collect();
        assert_eq!(roles, ["function", "extension:ext", "emulator"]);
        assert_eq!(v["roles"][0]["cpu_ns"]["max"], 470_000);
        assert_eq!(v["roles"][2]["billed"], false);
        assert_eq!(v["cgroup_check"]["attributed_cpu_ns"], 920_000);
    }

    #[test]
    fn role_summary_lists_roles_emulator_apart_and_explains_categories() {
        let f = fixture();
        let text = render_role_summary(&attribute(&f.run()));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("per invocation (avg / max)"), "{text}");
        assert!(lines[0].contains("post-runtime CPU ms"), "{text}");
        // function: 620 µs over 3 invocations, max 470 µs; faults 3+0+1 → avg 1, max 3.
        assert!(lines[1].starts_with("  function "), "{text}");
        assert!(lines[1].contains("0.21 / 0.47"), "{text}");
        assert!(lines[1].contains("1 / 3"), "{text}");
        // extension: (5096 + 0 + 0) / 3 bytes → 2 KiB avg, 5 KiB max.
        assert!(lines[2].starts_with("  extension:ext "), "{text}");
        assert!(lines[2].contains("2 / 5"), "{text}");
        assert!(lines[3].starts_with("  emulator (not billed)"), "{text}");
        assert!(lines[4].contains("init, 2 cold starts"), "{text}");
        // The fixture's splits are under a millisecond: not put in words.
        assert!(!text.contains("of its CPU"), "{text}");
        assert!(
            text.contains(
                "CPU of the roles vs the environment cgroup: 0.9 / 0.9 ms (96.8 %) over 2 \
                 invocations; init 0.1 / 0.2 ms (93.8 %)"
            ),
            "{text}"
        );
        assert_eq!(render_role_summary(&Attribution::default()), "");
    }

    #[test]
    fn category_splits_of_a_millisecond_or_more_are_put_in_words() {
        let f = fixture();
        let mut a = attribute(&f.run());
        for r in &mut a.roles {
            r.categories = r.categories.map(|c| c.scale_to(3_000_000));
            r.post_runtime_categories = r.post_runtime_categories.map(|c| c.scale_to(1_000_000));
        }
        let text = render_role_summary(&a);
        let said: Vec<&str> = text.lines().filter(|l| l.contains("of its CPU")).collect();
        assert_eq!(
            said,
            [
                "  extension:ext: 25 % of its CPU was JIT compilation, 25 % GC, \
                 50 % application code (invoke phases)",
                "  extension:ext: 25 % of its CPU was JIT compilation, 25 % GC, \
                 50 % application code (post-runtime)",
            ],
            "{text}"
        );
    }
}
