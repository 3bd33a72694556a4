//! `report.json`: per-process figures, pretty-printed and deterministic
//! (processes by pid, threads by tid). Field names are stable; later issues
//! add fields.
//!
//! Figures: `cpu_ns` is eBPF on-CPU time within the recording (sum of the
//! threads' sched_switch intervals). `cpu_ns_perf` is the perf-event
//! task-clock of the whole traced tree (inherited from exec), reported on the
//! root process only; `null` elsewhere and when perf events were unavailable.
//! `cpu_ns_sched` is the sum of the kernel's lifetime CPU time of the threads
//! (EXIT records), `null` unless the process exited. `page_faults_*` are the
//! kernel's per-thread counters from EXIT records, plus, for threads still
//! alive at the end, the same counters' growth since the thread was first
//! seen (FAULTS records); `page_faults_exact` is true when every thread
//! exited (the EXIT counters cover each thread's whole life). For processes that existed before the
//! recording, EXIT counters cover their whole life. `max_rss_bytes` is the
//! highest file + anon + shmem seen in the RSS records since the process's
//! latest exec (members never updated since count as 0).
//!
//! `alloc` (only when allocations were recorded, `--alloc syscalls|full`):
//! `malloc_count`/`malloc_bytes` (malloc + calloc + realloc calls and the
//! bytes they asked for; 0 with `syscalls`), `free_count`, `mmap_count`,
//! `mmap_bytes` (lengths of successful mmap calls, file mappings included),
//! `munmap_bytes`, `brk_bytes` (heap growth; shrinks not subtracted). These
//! are address space asked for, not memory touched: glibc reserves 64 MiB per
//! malloc arena and thread stacks are mapped whole (RSS and page faults tell
//! what was used). mremap is not followed.

use serde::Serialize;

use crate::export::LXPROF_VERSION;
use crate::model::{AllocTotals, ExitStatus, PerfCounts, Process, Recording, Thread};

#[derive(Serialize)]
struct Report<'a> {
    lxprof_version: &'a str,
    command: &'a [String],
    root_pid: Option<u32>,
    kernel_release: &'a str,
    duration_ns: u64,
    lost_events: u64,
    lost_per_cpu: &'a [u64],
    decode_errors: u64,
    perf: Option<PerfCounts>,
    cpu_check: CpuCheck<'a>,
    totals: Totals,
    processes: Vec<ProcessReport<'a>>,
}

/// Every thread's recorded CPU against the kernel's own count for it.
#[derive(Serialize)]
struct CpuCheck<'a> {
    /// Threads with records.
    threads: usize,
    /// Threads whose recorded CPU is below the kernel's count.
    threads_incomplete: usize,
    /// CPU the kernel counted that no record carried (all threads).
    cpu_missing_ns: u64,
    sched: &'a crate::model::SchedCounters,
}

#[derive(Serialize)]
struct Totals {
    processes: usize,
    threads: usize,
    cpu_ns: u64,
    page_faults_minor: u64,
    page_faults_major: u64,
}

#[derive(Serialize)]
struct ProcessReport<'a> {
    pid: u32,
    ppid: u32,
    comm: &'a str,
    exec_comm: Option<&'a str>,
    exe: Option<&'a str>,
    cmdline: &'a [String],
    role: &'a str,
    start_ns: u64,
    end_ns: u64,
    exit: Option<ExitStatus>,
    cpu_ns: u64,
    cpu_ns_perf: Option<u64>,
    cpu_ns_sched: Option<u64>,
    page_faults_minor: u64,
    page_faults_major: u64,
    page_faults_exact: bool,
    max_rss_bytes: u64,
    /// Allocation totals (only when allocations were recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    alloc: Option<AllocTotals>,
    /// Stack samples taken (only with sampling).
    #[serde(skip_serializing_if = "is_zero")]
    samples: usize,
    /// Runtime the samples were classified with (only with sampling).
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<crate::classify::Runtime>,
    /// `cpu_ns` split by sample category (only with sampling).
    #[serde(skip_serializing_if = "Option::is_none")]
    categories: Option<crate::classify::CategoryTotals>,
    execs: Vec<ExecReport<'a>>,
    threads: Vec<ThreadReport<'a>>,
}

#[derive(Serialize)]
struct ExecReport<'a> {
    ts_ns: u64,
    filename: &'a str,
    comm: &'a str,
}

#[derive(Serialize)]
struct ThreadReport<'a> {
    tid: u32,
    name: &'a str,
    names: &'a [String],
    start_ns: u64,
    end_ns: u64,
    exited: bool,
    cpu_ns: u64,
    /// The kernel's own count for the span recorded (see `Thread::cpu_kernel_ns`).
    cpu_ns_kernel: Option<u64>,
    cpu_missing_ns: u64,
    cpu_ns_sched: Option<u64>,
    on_cpu_intervals: usize,
    page_faults_minor: Option<u64>,
    page_faults_major: Option<u64>,
    page_fault_events: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn thread(t: &Thread) -> ThreadReport<'_> {
    ThreadReport {
        tid: t.tid,
        name: &t.name,
        names: &t.names,
        start_ns: t.start_ns,
        end_ns: t.end_ns,
        exited: t.exited,
        cpu_ns: t.cpu_ns,
        cpu_ns_kernel: t.cpu_kernel_ns,
        cpu_missing_ns: t.cpu_missing_ns,
        cpu_ns_sched: t.exit_cpu_ns,
        on_cpu_intervals: t.intervals.len(),
        page_faults_minor: t.exit_min_flt,
        page_faults_major: t.exit_maj_flt,
        page_fault_events: t.fault_events,
    }
}

fn process<'a>(rec: &'a Recording, p: &'a Process) -> ProcessReport<'a> {
    let is_root = Some(p.pid) == rec.info.root_pid;
    ProcessReport {
        pid: p.pid,
        ppid: p.ppid,
        comm: &p.comm,
        exec_comm: p.exec_comm.as_deref(),
        exe: p.exe.as_deref(),
        cmdline: &p.cmdline,
        role: &p.role,
        start_ns: p.start_ns,
        end_ns: p.end_ns,
        exit: p.exit,
        cpu_ns: p.cpu_ns,
        cpu_ns_perf: rec.info.perf.filter(|_| is_root).map(|c| c.task_clock_ns),
        cpu_ns_sched: p.exit_cpu_ns,
        page_faults_minor: p.page_faults_minor,
        page_faults_major: p.page_faults_major,
        page_faults_exact: p.page_faults_exact,
        max_rss_bytes: p.max_rss_bytes,
        alloc: p.alloc,
        samples: p.threads.iter().map(|t| t.samples.len()).sum(),
        runtime: p.runtime,
        categories: p.categories,
        execs: p
            .execs
            .iter()
            .map(|x| ExecReport {
                ts_ns: x.ts_ns,
                filename: &x.filename,
                comm: &x.comm,
            })
            .collect(),
        threads: p.threads.iter().map(thread).collect(),
    }
}

fn cpu_check(rec: &Recording) -> CpuCheck<'_> {
    let threads = || rec.processes.iter().flat_map(|p| &p.threads);
    CpuCheck {
        threads: threads().filter(|t| t.cpu_kernel_ns.is_some()).count(),
        threads_incomplete: threads().filter(|t| t.cpu_missing_ns > 0).count(),
        cpu_missing_ns: threads().map(|t| t.cpu_missing_ns).sum(),
        sched: &rec.info.sched,
    }
}

/// The report as pretty-printed JSON bytes (with a final newline).
pub fn to_json(rec: &Recording) -> Vec<u8> {
    let report = Report {
        lxprof_version: LXPROF_VERSION,
        command: &rec.info.command,
        root_pid: rec.info.root_pid,
        kernel_release: &rec.info.kernel_release,
        duration_ns: rec.duration_ns,
        lost_events: rec.info.lost_events,
        lost_per_cpu: &rec.info.lost_per_cpu,
        decode_errors: rec.info.decode_errors,
        perf: rec.info.perf,
        cpu_check: cpu_check(rec),
        totals: Totals {
            processes: rec.processes.len(),
            threads: rec.processes.iter().map(|p| p.threads.len()).sum(),
            cpu_ns: rec.total_cpu_ns(),
            page_faults_minor: rec.processes.iter().map(|p| p.page_faults_minor).sum(),
            page_faults_major: rec.processes.iter().map(|p| p.page_faults_major).sum(),
        },
        processes: rec.processes.iter().map(|p| process(rec, p)).collect(),
    };
    // Serializing plain structs of strings and integers cannot fail.
    let mut out = serde_json::to_vec_pretty(&report).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelBuilder, RecordingInfo, SeedProcess};
    use serde_json::Value;

    #[test]
    fn report_has_the_documented_fields() {
        let mut b = ModelBuilder::new(0);
        b.seed_process(SeedProcess {
            pid: 5,
            ppid: 1,
            comm: "root".into(),
            exe: Some("/bin/root".into()),
            cmdline: vec!["root".into(), "-x".into()],
            threads: vec![(5, "root".into()), (6, "helper".into())],
        });
        b.seed_process(SeedProcess {
            pid: 7,
            ppid: 5,
            comm: "kid".into(),
            ..SeedProcess::default()
        });
        let perf = PerfCounts {
            task_clock_ns: 123,
            page_faults_minor: 4,
            page_faults_major: 0,
            context_switches: 9,
        };
        let rec = b.finish(
            1_000,
            RecordingInfo {
                command: vec!["root".into(), "-x".into()],
                root_pid: Some(5),
                lost_events: 3,
                lost_per_cpu: vec![3, 0],
                kernel_release: "6.1.0".into(),
                perf: Some(perf),
                ..RecordingInfo::default()
            },
        );
        let v: Value = serde_json::from_slice(&to_json(&rec)).unwrap();
        for key in [
            "lxprof_version",
            "command",
            "duration_ns",
            "lost_events",
            "lost_per_cpu",
            "decode_errors",
            "kernel_release",
            "perf",
            "processes",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["duration_ns"], 1_000);
        assert_eq!(v["perf"]["context_switches"], 9);
        let p = &v["processes"][0];
        for key in [
            "pid",
            "ppid",
            "comm",
            "exe",
            "cmdline",
            "role",
            "start_ns",
            "end_ns",
            "cpu_ns",
            "cpu_ns_perf",
            "page_faults_minor",
            "page_faults_major",
            "max_rss_bytes",
            "threads",
            "exit",
        ] {
            assert!(p.get(key).is_some(), "missing processes[].{key}");
        }
        assert_eq!(
            (p["pid"].as_u64(), p["role"].as_str()),
            (Some(5), Some("command"))
        );
        assert_eq!(p["cpu_ns_perf"], 123, "perf tree total on the root");
        assert_eq!(v["processes"][1]["cpu_ns_perf"], Value::Null);
        assert_eq!(v["processes"][1]["role"], "descendant");
        let t = &p["threads"][1];
        assert_eq!(
            (t["tid"].as_u64(), t["name"].as_str()),
            (Some(6), Some("helper"))
        );
        assert!(t.get("cpu_ns").is_some());
        assert!(p.get("alloc").is_none(), "no alloc section unless recorded");
        // Pretty-printed and deterministic.
        assert!(to_json(&rec).starts_with(b"{\n  \""));
        assert_eq!(to_json(&rec), to_json(&rec.clone()));
    }

    #[test]
    fn alloc_section_when_recorded() {
        use crate::events::{self as ev, Event, Header};
        let mut b = ModelBuilder::new(0);
        b.set_alloc_recorded();
        b.seed_process(SeedProcess {
            pid: 5,
            comm: "root".into(),
            ..SeedProcess::default()
        });
        b.seed_process(SeedProcess {
            pid: 7,
            comm: "quiet".into(),
            ..SeedProcess::default()
        });
        let header = Header {
            cpu: 0,
            ts_ns: 10,
            pid: 5,
            tid: 5,
        };
        for (op, size) in [(ev::AllocOp::Malloc, 100), (ev::AllocOp::Brk, 4096)] {
            b.push(Event::Alloc(ev::Alloc {
                header,
                op,
                size,
                address: 0,
            }));
        }
        let rec = b.finish(1_000, RecordingInfo::default());
        let v: Value = serde_json::from_slice(&to_json(&rec)).unwrap();
        let a = &v["processes"][0]["alloc"];
        for (key, want) in [
            ("malloc_count", 1),
            ("malloc_bytes", 100),
            ("free_count", 0),
            ("mmap_bytes", 0),
            ("mmap_count", 0),
            ("munmap_bytes", 0),
            ("brk_bytes", 4096),
        ] {
            assert_eq!(a[key], want, "alloc.{key}");
        }
        // A process without calls still has the section, all zeros.
        assert_eq!(v["processes"][1]["alloc"]["malloc_count"], 0);
    }
}
