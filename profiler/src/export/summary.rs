//! The terminal summary: processes by CPU time, totals, the perf-event
//! cross-check, lost events (never silent), and where the outputs are.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::model::Recording;

/// Shown when records were dropped.
pub fn lost_warning(lost: u64) -> String {
    format!("WARNING: {lost} events lost: increase --ring-buffer-mb")
}

fn ms(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// The summary text; `outputs` are `(label, path)` of the files written.
pub fn render(rec: &Recording, outputs: &[(&str, PathBuf)]) -> String {
    let mut s = String::new();
    let threads: usize = rec.processes.iter().map(|p| p.threads.len()).sum();
    let _ = writeln!(
        s,
        "lxprof: recorded {:.3} s of `{}`: {} processes, {} threads",
        rec.duration_ns as f64 / 1e9,
        rec.info.command.join(" "),
        rec.processes.len(),
        threads
    );
    let mut procs: Vec<_> = rec.processes.iter().collect();
    procs.sort_by_key(|p| (std::cmp::Reverse(p.cpu_ns), p.pid));
    // Roles like `extension:rust-event-collector` are long: size the column.
    let rw = procs
        .iter()
        .map(|p| p.role.len())
        .max()
        .unwrap_or(0)
        .max(12);
    let _ = writeln!(
        s,
        "{:>8}  {:<rw$} {:<16} {:>10} {:>10} {:>11}",
        "PID", "ROLE", "COMM", "CPU ms", "FAULTS", "MAX RSS MB"
    );
    for p in &procs {
        let mark = if p.page_faults_exact { "" } else { "~" };
        let _ = writeln!(
            s,
            "{:>8}  {:<rw$} {:<16} {:>10} {:>10} {:>11}",
            p.pid,
            p.role,
            p.comm,
            ms(p.cpu_ns),
            format!("{mark}{}", p.page_faults_minor + p.page_faults_major),
            mb(p.max_rss_bytes)
        );
    }
    let faults: u64 = rec
        .processes
        .iter()
        .map(|p| p.page_faults_minor + p.page_faults_major)
        .sum();
    let _ = writeln!(
        s,
        "{:>8}  {:<rw$} {:<16} {:>10} {:>10} {:>11}",
        "total",
        "",
        "",
        ms(rec.total_cpu_ns()),
        faults,
        "" // peaks of different processes need not coincide: no sum
    );
    if procs.iter().any(|p| !p.page_faults_exact) {
        let _ = writeln!(
            s,
            "(~ faults of threads still running are counted from page-fault events)"
        );
    }
    if let Some(perf) = &rec.info.perf {
        let _ = writeln!(
            s,
            "perf-event cross-check (whole tree): task-clock {} ms, faults {} minor / {} major, {} context switches",
            ms(perf.task_clock_ns),
            perf.page_faults_minor,
            perf.page_faults_major,
            perf.context_switches
        );
    }
    cpu_check(rec, &mut s);
    if rec.info.lost_events > 0 {
        let _ = writeln!(s, "{}", lost_warning(rec.info.lost_events));
    }
    if rec.info.decode_errors > 0 {
        let _ = writeln!(
            s,
            "WARNING: {} kernel records could not be decoded",
            rec.info.decode_errors
        );
    }
    if !outputs.is_empty() {
        let _ = writeln!(s, "outputs:");
        let width = outputs.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, path) in outputs {
            let _ = writeln!(s, "  {label:<width$}  {}", path.display());
        }
    }
    s
}

/// A thread's CPU below the kernel's own count by more than this is named.
const CPU_CHECK_SLACK_NS: u64 = 100_000;

/// The CPU check: every thread's recorded CPU against the kernel's own count
/// for it (never silent when they differ).
fn cpu_check(rec: &Recording, s: &mut String) {
    let checked = rec
        .processes
        .iter()
        .flat_map(|p| p.threads.iter().map(move |t| (p, t)))
        .filter(|(_, t)| t.cpu_kernel_ns.is_some());
    let mut short: Vec<_> = checked
        .clone()
        .filter(|(_, t)| t.cpu_missing_ns > CPU_CHECK_SLACK_NS)
        .collect();
    let n = checked.count();
    if short.is_empty() {
        if n > 0 {
            let _ = writeln!(
                s,
                "CPU check: the recorded CPU of all {n} threads matches the kernel's own count"
            );
        }
        return;
    }
    short.sort_by_key(|(_, t)| std::cmp::Reverse(t.cpu_missing_ns));
    let _ = writeln!(
        s,
        "WARNING: CPU of {} of {n} threads is short of the kernel's own count (records lost):",
        short.len()
    );
    for (p, t) in short.iter().take(5) {
        let _ = writeln!(
            s,
            "  pid {} tid {} {}: {} ms recorded of {} ms",
            p.pid,
            t.tid,
            t.name,
            ms(t.cpu_ns),
            ms(t.cpu_kernel_ns.unwrap_or_default())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Process, RecordingInfo};

    fn rec(lost: u64) -> Recording {
        let p = |pid, comm: &str, cpu_ns| Process {
            pid,
            comm: comm.into(),
            role: "descendant".into(),
            cpu_ns,
            page_faults_exact: true,
            max_rss_bytes: 3 << 20,
            ..Process::default()
        };
        Recording {
            duration_ns: 1_500_000_000,
            processes: vec![p(1, "light", 1_000_000), p(2, "heavy", 250_000_000)],
            info: RecordingInfo {
                command: vec!["run".into()],
                lost_events: lost,
                ..RecordingInfo::default()
            },
        }
    }

    #[test]
    fn sorted_by_cpu_with_outputs() {
        let s = render(&rec(0), &[("trace", PathBuf::from("/o/trace.json"))]);
        let heavy = s.find("heavy").unwrap();
        assert!(heavy < s.find("light").unwrap(), "{s}");
        assert!(s.contains("250.0") && s.contains("3.0"), "{s}");
        assert!(s.contains("/o/trace.json"));
        assert!(!s.contains("WARNING"));
    }

    #[test]
    fn lost_events_are_never_silent() {
        let s = render(&rec(17), &[]);
        assert!(
            s.contains("WARNING: 17 events lost: increase --ring-buffer-mb"),
            "{s}"
        );
    }
}
