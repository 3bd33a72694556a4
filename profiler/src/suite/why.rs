//! The part of the suite's report that explains: per memory size, each
//! extension's CPU split app / JIT / GC / runtime / kernel with the sentence
//! naming its largest avoidable cost, the charts (written as SVG files under
//! `charts/`, linked from suite.md, inlined in suite.html), the differential
//! flamegraphs of managed extensions against their native peer (under
//! `diffs/`, made with [`crate::compare::differential_svg`]) and the links to
//! each scenario's recording.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::charts::{self, Bars, CATEGORY_COLORS, Line, PALETTE, Series};
use super::insight::{ExtensionCost, native_peer};
use super::results::{ScenarioMetrics, Stats};
use super::{ScenarioResult, ScenarioStatus};

/// A chart: its path relative to the suite directory and its SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub file: String,
    pub alt: String,
    pub svg: String,
}

/// A differential flamegraph written by the suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub memory_mb: u32,
    pub scenario: String,
    pub peer: String,
    /// Relative to the suite directory.
    pub file: String,
}

/// The scenarios of one memory size that recorded.
fn ok_rows<'a>(rows: &[&'a ScenarioResult]) -> Vec<(&'a ScenarioResult, &'a ScenarioMetrics)> {
    rows.iter()
        .filter_map(|r| match &r.status {
            ScenarioStatus::Ok { metrics } => Some((*r, metrics)),
            _ => None,
        })
        .collect()
}

fn label(r: &ScenarioResult) -> String {
    super::markdown::name(r)
}

/// The charts of one memory size.
pub fn charts(mem: u32, rows: &[&ScenarioResult]) -> Vec<Chart> {
    let ok = ok_rows(rows);
    if ok.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let labels: Vec<String> = ok.iter().map(|(r, _)| label(r)).collect();
    // Duration and PostRuntimeExtensionsDuration: avg, p99 and max per scenario.
    type Pick = fn(&ScenarioMetrics) -> &Stats;
    let dashboards: [(&str, &str, Pick); 2] = [
        ("duration", "Duration", |m| &m.duration_ms),
        ("post-runtime", "PostRuntimeExtensionsDuration", |m| {
            &m.post_runtime_extensions_duration_ms
        }),
    ];
    for (tag, what, stats) in dashboards {
        type Of = fn(&Stats) -> f64;
        let pick: [(&str, Of); 3] = [("avg", |s| s.avg), ("p99", |s| s.p99), ("max", |s| s.max)];
        let series: Vec<Series> = pick
            .iter()
            .enumerate()
            .map(|(i, (name, f))| Series {
                name: (*name).into(),
                color: PALETTE[i],
                values: ok.iter().map(|(_, m)| f(stats(m))).collect(),
            })
            .collect();
        out.push(Chart {
            file: format!("charts/{mem}mb-{tag}.svg"),
            alt: format!("{what} per scenario, {mem} MB"),
            svg: charts::grouped_bars(&Bars {
                id: &format!("{mem}mb-{tag}"),
                title: &format!("{what}, {mem} MB"),
                unit: "ms",
                labels: &labels,
                series: &series,
            }),
        });
    }
    let costs: Vec<ExtensionCost> = ok
        .iter()
        .flat_map(|(r, m)| ExtensionCost::of(&r.scenario, m))
        .collect();
    let names = ["app", "JIT", "GC", "runtime", "kernel"];
    let split_chart = |what: &str, tag: &str, pick: fn(&ExtensionCost) -> Option<[f64; 5]>| {
        let with: Vec<(&ExtensionCost, [f64; 5])> = costs
            .iter()
            .filter_map(|c| pick(c).map(|s| (c, s)))
            .collect();
        (!with.is_empty()).then(|| Chart {
            file: format!("charts/{mem}mb-cpu-{tag}.svg"),
            alt: format!("Extension CPU {what} by category, {mem} MB"),
            svg: charts::stacked_bars(&Bars {
                id: &format!("{mem}mb-cpu-{tag}"),
                title: &format!("Extension CPU {what}, {mem} MB"),
                unit: "ms of CPU",
                labels: &with
                    .iter()
                    .map(|(c, _)| c.scenario.clone())
                    .collect::<Vec<_>>(),
                series: &(0..5)
                    .map(|k| Series {
                        name: names[k].into(),
                        color: CATEGORY_COLORS[k],
                        values: with.iter().map(|(_, s)| s[k]).collect(),
                    })
                    .collect::<Vec<_>>(),
            }),
        })
    };
    out.extend(split_chart("per invocation", "invocation", |c| c.split));
    out.extend(split_chart("per cold start (init)", "init", |c| {
        c.init_split
    }));
    let lines: Vec<Line> = ok
        .iter()
        .filter(|(r, _)| r.extension.is_some())
        .enumerate()
        .map(|(i, (r, m))| Line {
            name: r.scenario.clone(),
            color: PALETTE[i % PALETTE.len()],
            points: m
                .series
                .iter()
                .enumerate()
                .map(|(k, p)| ((k + 1) as f64, p.extension_cpu_ms, p.cold))
                .collect(),
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    if !lines.is_empty() {
        out.push(Chart {
            file: format!("charts/{mem}mb-per-invocation.svg"),
            alt: format!("Extension CPU invocation by invocation, {mem} MB"),
            svg: charts::lines(
                &format!("{mem}mb-per-invocation"),
                &format!("Extension CPU per invocation, in start order, {mem} MB"),
                "invocation",
                "ms of CPU (log)",
                &lines,
            ),
        });
    }
    out
}

/// Writes the differential flamegraph of each managed extension against its
/// native peer of the same memory size (`diffs/<mem>mb-<scenario>-vs-<peer>.svg`).
/// A scenario without samples is skipped; errors are returned as notes.
pub fn write_diffs(root: &Path, results: &[ScenarioResult]) -> (Vec<Diff>, Vec<String>) {
    let mut diffs = Vec::new();
    let mut notes = Vec::new();
    let ok: Vec<&ScenarioResult> = results
        .iter()
        .filter(|r| matches!(r.status, ScenarioStatus::Ok { .. }))
        .collect();
    for r in &ok {
        let same_mem: Vec<&str> = ok
            .iter()
            .filter(|o| o.memory_mb == r.memory_mb)
            .map(|o| o.scenario.as_str())
            .collect();
        let Some(peer) = native_peer(&r.scenario, &same_mem) else {
            continue;
        };
        let Some(p) = ok
            .iter()
            .find(|o| o.memory_mb == r.memory_mb && o.scenario == peer)
        else {
            continue;
        };
        let folded = |s: &ScenarioResult| -> Option<String> {
            let ext = s.extension.as_deref()?;
            let name = Path::new(ext).file_name()?.to_string_lossy().into_owned();
            let stem = crate::flamegraph::role_file_stem(&format!("extension:{name}"));
            std::fs::read_to_string(
                root.join(&s.dir)
                    .join("flamegraphs")
                    .join(format!("{stem}.folded")),
            )
            .ok()
        };
        let (Some(before), Some(after)) = (folded(p), folded(r)) else {
            notes.push(format!(
                "{} MB {} vs {peer}: no flamegraph (recorded without stack samples?)",
                r.memory_mb, r.scenario
            ));
            continue;
        };
        let title = format!("{} MB: {} against {peer}", r.memory_mb, r.scenario);
        match crate::compare::differential_svg(&title, &peer, &r.scenario, &before, &after) {
            Ok(Some(svg)) => {
                let file = format!("diffs/{}mb-{}-vs-{peer}.svg", r.memory_mb, r.scenario);
                let path: PathBuf = root.join(&file);
                let written = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&path, svg));
                match written {
                    Ok(()) => diffs.push(Diff {
                        memory_mb: r.memory_mb,
                        scenario: r.scenario.clone(),
                        peer,
                        file,
                    }),
                    Err(e) => notes.push(format!("cannot write {}: {e}", path.display())),
                }
            }
            Ok(None) => {}
            Err(e) => notes.push(format!("{title}: {e}")),
        }
    }
    (diffs, notes)
}

fn pct(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        "–".into()
    } else {
        format!("{:.0} %", part / whole * 100.0)
    }
}

/// Five cells: each category's share of the split.
fn split_cells(split: Option<[f64; 5]>) -> String {
    match split {
        Some(s) => {
            let sum: f64 = s.iter().sum();
            s.iter()
                .map(|v| pct(*v, sum))
                .collect::<Vec<_>>()
                .join(" | ")
        }
        None => ["–"; 5].join(" | "),
    }
}

/// The "where the CPU goes" part of one memory size: table, sentences,
/// charts, differential flamegraphs, recordings.
pub fn render(
    out: &mut String,
    mem: u32,
    rows: &[&ScenarioResult],
    charts: &[Chart],
    diffs: &[Diff],
) {
    let ok = ok_rows(rows);
    let chart = |out: &mut String, tag: &str| {
        if let Some(c) = charts
            .iter()
            .find(|c| c.file == format!("charts/{mem}mb-{tag}.svg"))
        {
            let _ = writeln!(out, "![{}]({})\n", c.alt, c.file);
        }
    };
    chart(out, "duration");
    chart(out, "post-runtime");
    let costs: Vec<ExtensionCost> = ok
        .iter()
        .flat_map(|(r, m)| ExtensionCost::of(&r.scenario, m))
        .collect();
    if !costs.is_empty() {
        let _ = writeln!(out, "### Where each extension's CPU goes ({mem} MB)\n");
        let _ = writeln!(
            out,
            "CPU per invocation (invoke phase) and per cold start (init), split by what the \
             sampled stacks were running:\n"
        );
        let _ = writeln!(
            out,
            "| extension | runtime | CPU / invocation | app | JIT | GC | runtime | kernel | \
             CPU / cold start | app | JIT | GC | runtime | kernel |"
        );
        let _ = writeln!(
            out,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for c in &costs {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} ms | {} | {:.1} ms | {} |",
                c.scenario,
                c.runtime.label(),
                c.cpu_ms,
                split_cells(c.split),
                c.init_cpu_ms,
                split_cells(c.init_split),
            );
        }
        out.push('\n');
        for c in &costs {
            let _ = writeln!(out, "- {}", c.sentence());
        }
        out.push('\n');
        chart(out, "cpu-invocation");
        chart(out, "cpu-init");
        chart(out, "per-invocation");
    }
    let mine: Vec<&Diff> = diffs.iter().filter(|d| d.memory_mb == mem).collect();
    if !mine.is_empty() {
        let _ = writeln!(
            out,
            "Differential flamegraphs (the managed extension's stacks, red where it spends \
             more than its native peer, normalised to the same total):\n"
        );
        for d in mine {
            let _ = writeln!(out, "- [{} against {}]({})", d.scenario, d.peer, d.file);
        }
        out.push('\n');
    }
    if !ok.is_empty() {
        let _ = writeln!(
            out,
            "Recordings (open trace.json or trace.perfetto-trace in <https://ui.perfetto.dev>):\n"
        );
        for (r, _) in &ok {
            let d = r.dir.display();
            let _ = writeln!(
                out,
                "- {}: [trace.json]({d}/trace.json) · [trace.perfetto-trace]({d}/trace.perfetto-trace) · \
                 [report.json]({d}/report.json) · [flamegraphs]({d}/flamegraphs/)",
                label(r)
            );
        }
        out.push('\n');
    }
}
