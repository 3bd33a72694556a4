//! `lxprof compare`: two recordings side by side (`compare.md`) and
//! differential flamegraphs for the roles present in both.
//!
//! Each recording directory is read defensively (`serde_json::Value`):
//! `report.json` (`processes[]`: `role`/`comm`, `cpu_ns`, `categories`
//! {`app_ns`, `jit_ns`, `gc_ns`, `runtime_ns`, `kernel_ns`},
//! `page_faults_minor`/`_major`, `alloc.malloc_bytes`, `max_rss_bytes`,
//! `start_ns`/`end_ns`; and for Lambda recordings `lambda.invocations[]` with
//! `duration_ns`, `post_runtime_duration_ns` and `by_role`, or
//! `lambda.summary`) and `flamegraphs/<role>.folded`. A figure that is absent
//! is shown as "–"; a missing `flamegraphs/` only skips the differentials.
//! For Lambda recordings the per-role CPU, faults and allocations are means
//! per invocation; otherwise they are totals of the recording.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::flamegraph::{self, FlameError, FlameOptions};

/// Options of [`compare`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompareOptions {
    /// Column labels for the two recordings. Default (`None`): the last
    /// component of each directory path.
    pub labels: Option<(String, String)>,
    /// Skip the differential flamegraphs. Default: `false`.
    pub no_flamegraphs: bool,
}

/// Errors of [`compare`] and [`CompareOutput::write`].
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read {path}: is it an lxprof output directory (lxprof record -o DIR)?")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: was the recording interrupted? re-run lxprof record")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}: check that the output directory is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("differential flamegraph of role {role}")]
    Flame {
        role: String,
        #[source]
        source: FlameError,
    },
}

/// A differential flamegraph of one role (A → B).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleDiff {
    pub role: String,
    /// Path relative to the output directory: `flamegraphs/diff-<role>.svg`.
    pub file: String,
    pub svg: Vec<u8>,
}

/// What [`compare`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOutput {
    /// The contents of `compare.md`.
    pub markdown: String,
    pub diffs: Vec<RoleDiff>,
}

impl CompareOutput {
    /// Writes `compare.md` and `flamegraphs/diff-<role>.svg` under `dir`
    /// (created if needed); returns the written paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, CompareError> {
        let w = |path: PathBuf, bytes: &[u8]| -> Result<PathBuf, CompareError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| CompareError::Write {
                    path: parent.into(),
                    source,
                })?;
            }
            std::fs::write(&path, bytes).map_err(|source| CompareError::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        };
        let mut out = vec![w(dir.join("compare.md"), self.markdown.as_bytes())?];
        for d in &self.diffs {
            out.push(w(dir.join(&d.file), &d.svg)?);
        }
        Ok(out)
    }
}

/// Figures of one role in one recording; `None` = absent from the report.
#[derive(Debug, Clone, Default, PartialEq)]
struct RoleFigures {
    duration_ns: Option<f64>,
    post_runtime_ns: Option<f64>,
    cpu_ns: Option<f64>,
    post_runtime_cpu_ns: Option<f64>,
    categories: [Option<f64>; 5],
    faults: Option<f64>,
    alloc_bytes: Option<f64>,
    max_rss_bytes: Option<f64>,
}

/// One recording as read from its directory.
#[derive(Debug, Default)]
struct Recording {
    label: String,
    lambda: bool,
    duration_ns: Option<f64>,
    invocations: Option<f64>,
    avg_duration_ns: Option<f64>,
    avg_post_runtime_ns: Option<f64>,
    roles: BTreeMap<String, RoleFigures>,
    folded: BTreeMap<String, String>,
}

const CATEGORY_KEYS: [&str; 5] = ["app_ns", "jit_ns", "gc_ns", "runtime_ns", "kernel_ns"];

/// Compares recording `a` (before) with `b` (after).
pub fn compare(a: &Path, b: &Path, opts: &CompareOptions) -> Result<CompareOutput, CompareError> {
    let (la, lb) = opts
        .labels
        .clone()
        .unwrap_or_else(|| (dir_label(a), dir_label(b)));
    let ra = read_recording(a, la)?;
    let rb = read_recording(b, lb)?;
    let mut diffs = Vec::new();
    if !opts.no_flamegraphs {
        for (role, fa) in &ra.folded {
            let Some(fb) = rb.folded.get(role) else {
                continue;
            };
            let title = format!("{role}: {} → {}", ra.label, rb.label);
            let svg = match differential_svg(&title, &ra.label, &rb.label, fa, fb) {
                Ok(Some(svg)) => svg,
                Ok(None) => continue,
                Err(source) => {
                    return Err(CompareError::Flame {
                        role: role.clone(),
                        source,
                    });
                }
            };
            diffs.push(RoleDiff {
                role: role.clone(),
                file: format!("flamegraphs/diff-{}.svg", flamegraph::role_file_stem(role)),
                svg,
            });
        }
    }
    Ok(CompareOutput {
        markdown: markdown(&ra, &rb, &diffs),
        diffs,
    })
}

/// The differential flamegraph of `after` against `before` (folded stacks;
/// `after`'s shape, red where it spends more, blue less, normalised to
/// `before`'s total). None when both are empty.
pub fn differential_svg(
    title: &str,
    before_label: &str,
    after_label: &str,
    before: &str,
    after: &str,
) -> Result<Option<Vec<u8>>, FlameError> {
    let fopts = FlameOptions {
        title: title.to_string(),
        subtitle: Some(format!(
            "red: more in {after_label}, blue: less in {after_label} (normalized to {before_label}'s total)"
        )),
        ..FlameOptions::default()
    };
    match flamegraph::differential(before, after, &fopts) {
        Ok(svg) => Ok(Some(svg)),
        Err(FlameError::Empty { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn dir_label(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn read_recording(dir: &Path, label: String) -> Result<Recording, CompareError> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|source| CompareError::Read {
        path: path.clone(),
        source,
    })?;
    let report: Value =
        serde_json::from_str(&text).map_err(|source| CompareError::Json { path, source })?;
    let mut rec = Recording {
        label,
        ..Default::default()
    };
    rec.duration_ns = num(&report, &["duration_ns"]);

    // Per process → per role (totals; RSS is the largest process).
    for p in report
        .get("processes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = p
            .get("role")
            .and_then(Value::as_str)
            .or_else(|| p.get("comm").and_then(Value::as_str))
            .unwrap_or("unknown");
        let f = rec.roles.entry(role.to_string()).or_default();
        add(&mut f.cpu_ns, num(p, &["cpu_ns"]));
        let faults = match (
            num(p, &["page_faults_minor"]),
            num(p, &["page_faults_major"]),
        ) {
            (None, None) => num(p, &["page_faults"]),
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        add(&mut f.faults, faults);
        let alloc = p.get("alloc").and_then(|a| num(a, &["malloc_bytes"]));
        add(
            &mut f.alloc_bytes,
            alloc.or_else(|| num(p, &["alloc_bytes"])),
        );
        max(&mut f.max_rss_bytes, num(p, &["max_rss_bytes"]));
        if let (Some(s), Some(e)) = (num(p, &["start_ns"]), num(p, &["end_ns"])) {
            max(&mut f.duration_ns, Some(e - s));
        }
        if let Some(c) = p.get("categories") {
            for (i, k) in CATEGORY_KEYS.iter().enumerate() {
                add(&mut f.categories[i], num(c, &[k]));
            }
        }
    }

    if let Some(lambda) = report.get("lambda") {
        rec.lambda = true;
        read_lambda(lambda, &mut rec);
    }

    let fdir = dir.join("flamegraphs");
    if let Ok(entries) = std::fs::read_dir(&fdir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "folded")
                && let Some(stem) = p.file_stem()
            {
                let text = std::fs::read_to_string(&p).map_err(|source| CompareError::Read {
                    path: p.clone(),
                    source,
                })?;
                rec.folded.insert(stem.to_string_lossy().into_owned(), text);
            }
        }
    }
    Ok(rec)
}

/// Lambda figures: per-invocation means from `invocations[].by_role`, else
/// the `summary`; they replace the per-process totals they cover.
fn read_lambda(lambda: &Value, rec: &mut Recording) {
    let invs: Vec<&Value> = lambda
        .get("invocations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if !invs.is_empty() {
        rec.invocations = Some(invs.len() as f64);
        rec.avg_duration_ns = mean(invs.iter().map(|i| duration(i, "duration")));
        rec.avg_post_runtime_ns = mean(invs.iter().map(|i| post_runtime_duration(i)));
        let mut per_role: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for inv in &invs {
            for (role, v) in role_entries(inv.get("by_role")) {
                per_role.entry(role).or_default().push(v);
            }
        }
        for (role, vals) in per_role {
            let f = rec.roles.entry(role).or_default();
            apply_role_values(f, &vals);
        }
    } else if let Some(summary) = lambda.get("summary") {
        rec.invocations = num(summary, &["invocations", "count"]);
        rec.avg_duration_ns = duration(summary, "avg_duration");
        rec.avg_post_runtime_ns = post_runtime_duration(summary)
            .or_else(|| duration(summary, "avg_post_runtime_extensions_duration"));
        let roles = summary.get("by_role").or_else(|| summary.get("roles"));
        for (role, v) in role_entries(roles) {
            let f = rec.roles.entry(role).or_default();
            apply_role_values(f, &[v]);
        }
    }
}

fn apply_role_values(f: &mut RoleFigures, vals: &[&Value]) {
    let m = |keys: &[&str]| mean(vals.iter().map(|v| num(v, keys)));
    if let Some(x) = m(&["cpu_ns", "avg_cpu_ns"]) {
        // Process-level categories are recording totals: scale their split
        // to the per-invocation CPU (replaced below when by_role has its own).
        let scale = f.cpu_ns.filter(|&t| t > 0.0).map(|t| x / t);
        for c in &mut f.categories {
            *c = c.zip(scale).map(|(c, k)| c * k);
        }
        f.cpu_ns = Some(x);
    }
    f.post_runtime_cpu_ns = m(&["post_runtime_cpu_ns", "avg_post_runtime_cpu_ns"]);
    if let Some(x) = m(&["page_faults", "avg_page_faults"]) {
        f.faults = Some(x);
    }
    if let Some(x) = m(&["alloc_bytes", "avg_alloc_bytes"]) {
        f.alloc_bytes = Some(x);
    }
    if let Some(x) = mean(vals.iter().map(|v| post_runtime_duration(v))) {
        f.post_runtime_ns = Some(x);
    }
    for (i, k) in CATEGORY_KEYS.iter().enumerate() {
        let c = mean(
            vals.iter()
                .map(|v| v.get("categories").and_then(|c| num(c, &[k]))),
        );
        if c.is_some() {
            f.categories[i] = c;
        }
    }
}

/// `{role: {...}}` or `[{role: "...", ...}]` → `(role, value)` pairs.
fn role_entries(v: Option<&Value>) -> Vec<(String, &Value)> {
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| Some((v.get("role")?.as_str()?.to_string(), v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// `<base>_ns`, or `<base>_ms` converted to ns.
fn duration(v: &Value, base: &str) -> Option<f64> {
    num(v, &[&format!("{base}_ns")]).or_else(|| num(v, &[&format!("{base}_ms")]).map(|ms| ms * 1e6))
}

fn post_runtime_duration(v: &Value) -> Option<f64> {
    [
        "post_runtime_duration",
        "post_runtime_extensions_duration",
        "post_runtime",
    ]
    .iter()
    .find_map(|b| duration(v, b))
}

fn num(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_f64))
}

fn add(acc: &mut Option<f64>, x: Option<f64>) {
    if let Some(x) = x {
        *acc = Some(acc.unwrap_or(0.0) + x);
    }
}

fn max(acc: &mut Option<f64>, x: Option<f64>) {
    if let Some(x) = x {
        *acc = Some(acc.map_or(x, |a| a.max(x)));
    }
}

fn mean(it: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let xs: Vec<f64> = it.flatten().collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

#[derive(Clone, Copy)]
enum Unit {
    Ns,
    Count,
    Bytes,
}

fn fmt_val(x: Option<f64>, unit: Unit) -> String {
    let Some(x) = x else { return "–".to_string() };
    match unit {
        Unit::Ns => format!("{:.2} ms", x / 1e6),
        Unit::Count if x.fract() == 0.0 => format!("{x:.0}"),
        Unit::Count => format!("{x:.1}"),
        Unit::Bytes if x >= 1024.0 * 1024.0 => format!("{:.2} MiB", x / (1024.0 * 1024.0)),
        Unit::Bytes if x >= 1024.0 => format!("{:.1} KiB", x / 1024.0),
        Unit::Bytes => format!("{x:.0} B"),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => format!("{:.2}×", b / a),
        _ => "–".to_string(),
    }
}

fn row(md: &mut String, name: &str, a: Option<f64>, b: Option<f64>, unit: Unit) {
    let _ = writeln!(
        md,
        "| {name} | {} | {} | {} |",
        fmt_val(a, unit),
        fmt_val(b, unit),
        ratio(a, b)
    );
}

fn markdown(a: &Recording, b: &Recording, diffs: &[RoleDiff]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# lxprof compare: {} (A) vs {} (B)\n", a.label, b.label);
    let scope = if a.lambda || b.lambda {
        "Per role: CPU (and its categories), faults and allocations are means per invocation \
         where the recording has Lambda invocations (categories the invocations lack are the \
         recording's split scaled to that CPU), totals otherwise; max RSS is per recording."
    } else {
        "Per role: totals over the recording."
    };
    let _ = writeln!(md, "{scope} Absent figures: –. Ratios are B/A.\n");
    let head = format!(
        "| | {} | {} | B/A |\n|---|---:|---:|---:|",
        a.label, b.label
    );
    let _ = writeln!(md, "## Recording\n\n{head}");
    row(&mut md, "duration", a.duration_ns, b.duration_ns, Unit::Ns);
    row(
        &mut md,
        "invocations",
        a.invocations,
        b.invocations,
        Unit::Count,
    );
    row(
        &mut md,
        "avg Duration",
        a.avg_duration_ns,
        b.avg_duration_ns,
        Unit::Ns,
    );
    row(
        &mut md,
        "avg PostRuntimeExtensionsDuration",
        a.avg_post_runtime_ns,
        b.avg_post_runtime_ns,
        Unit::Ns,
    );
    let roles: BTreeSet<&String> = a.roles.keys().chain(b.roles.keys()).collect();
    let none = RoleFigures::default();
    for role in roles {
        let fa = a.roles.get(role).unwrap_or(&none);
        let fb = b.roles.get(role).unwrap_or(&none);
        let _ = writeln!(md, "\n## Role `{role}`\n\n{head}");
        row(
            &mut md,
            "duration",
            fa.duration_ns,
            fb.duration_ns,
            Unit::Ns,
        );
        row(
            &mut md,
            "post-runtime duration",
            fa.post_runtime_ns,
            fb.post_runtime_ns,
            Unit::Ns,
        );
        row(&mut md, "CPU", fa.cpu_ns, fb.cpu_ns, Unit::Ns);
        row(
            &mut md,
            "post-runtime CPU",
            fa.post_runtime_cpu_ns,
            fb.post_runtime_cpu_ns,
            Unit::Ns,
        );
        for (i, k) in CATEGORY_KEYS.iter().enumerate() {
            let name = format!("CPU {}", k.trim_end_matches("_ns"));
            row(&mut md, &name, fa.categories[i], fb.categories[i], Unit::Ns);
        }
        row(&mut md, "page faults", fa.faults, fb.faults, Unit::Count);
        row(
            &mut md,
            "allocated",
            fa.alloc_bytes,
            fb.alloc_bytes,
            Unit::Bytes,
        );
        row(
            &mut md,
            "max RSS",
            fa.max_rss_bytes,
            fb.max_rss_bytes,
            Unit::Bytes,
        );
    }
    let _ = writeln!(md, "\n## Differential flamegraphs\n");
    if diffs.is_empty() {
        let _ = writeln!(
            md,
            "None: no role has `flamegraphs/<role>.folded` in both recordings."
        );
    }
    for d in diffs {
        let _ = writeln!(md, "- `{}`: [{}]({})", d.role, d.file, d.file);
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_entries_accept_maps_and_arrays() {
        let m = json!({"fn": {"cpu_ns": 1}});
        let a = json!([{"role": "fn", "cpu_ns": 1}, {"cpu_ns": 2}]);
        assert_eq!(role_entries(Some(&m)).len(), 1);
        assert_eq!(role_entries(Some(&a)).len(), 1);
        assert!(role_entries(None).is_empty());
    }

    #[test]
    fn values_format_and_ratios_degrade() {
        assert_eq!(fmt_val(None, Unit::Ns), "–");
        assert_eq!(fmt_val(Some(1_500_000.0), Unit::Ns), "1.50 ms");
        assert_eq!(fmt_val(Some(2048.0), Unit::Bytes), "2.0 KiB");
        assert_eq!(ratio(Some(2.0), Some(3.0)), "1.50×");
        assert_eq!(ratio(Some(0.0), Some(3.0)), "–");
        assert_eq!(
            duration(&json!({"duration_ms": 2.0}), "duration"),
            Some(2e6)
        );
    }

    #[test]
    fn process_categories_scale_to_per_invocation_cpu() {
        let mut f = RoleFigures {
            cpu_ns: Some(100.0),
            categories: [Some(60.0), Some(40.0), None, None, None],
            ..Default::default()
        };
        apply_role_values(&mut f, &[&json!({"cpu_ns": 10})]);
        assert_eq!(f.cpu_ns, Some(10.0));
        assert_eq!(f.categories[..2], [Some(6.0), Some(4.0)]);
    }

    #[test]
    fn lambda_invocations_give_per_invocation_means() {
        let mut rec = Recording::default();
        let l = json!({"invocations": [
            {"duration_ns": 10, "by_role": {"ext": {"cpu_ns": 4, "categories": {"jit_ns": 2}}}},
            {"duration_ns": 20, "by_role": {"ext": {"cpu_ns": 6}}}
        ]});
        read_lambda(&l, &mut rec);
        assert_eq!(rec.avg_duration_ns, Some(15.0));
        let ext = &rec.roles["ext"];
        assert_eq!(ext.cpu_ns, Some(5.0));
        assert_eq!(ext.categories[1], Some(2.0));
        assert_eq!(ext.alloc_bytes, None);
    }
}
