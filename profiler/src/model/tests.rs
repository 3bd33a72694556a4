//! Model builder tests on constructed event sequences.

use super::*;
use crate::events::{self as ev, Event, Header, RssMember};

const T0: u64 = 1_000_000_000; // recording start (absolute ns)
const MS: u64 = 1_000_000;

fn h(ms: u64, pid: u32, tid: u32) -> Header {
    Header {
        cpu: 0,
        ts_ns: T0 + ms * MS,
        pid,
        tid,
    }
}

/// An ON_CPU record whose CPU time is its length (the thread's lifetime
/// total is its end time: only checked by the tests that say so).
fn on_cpu(pid: u32, tid: u32, from_ms: u64, to_ms: u64) -> Event {
    Event::OnCpu(ev::OnCpu {
        header: h(to_ms, pid, tid),
        start_ns: T0 + from_ms * MS,
        cpu_ns: (to_ms - from_ms) * MS,
        cpu_total_ns: to_ms * MS,
        prev_state: 1,
        flags: 0,
        stints: 1,
    })
}

fn fork(ms: u64, pid: u32, tid: u32, child_pid: u32, child_tid: u32, comm: &str) -> Event {
    Event::Fork(ev::Fork {
        header: h(ms, pid, tid),
        child_pid,
        child_tid,
        comm: comm.into(),
    })
}

fn exec(ms: u64, pid: u32, old_tid: u32, comm: &str, filename: &str) -> Event {
    Event::Exec(ev::Exec {
        header: h(ms, pid, pid),
        old_tid,
        comm: comm.into(),
        filename: filename.into(),
    })
}

fn exit(ms: u64, pid: u32, tid: u32, status: u32, last: bool, min_flt: u64) -> Event {
    Event::Exit(ev::Exit {
        header: h(ms, pid, tid),
        exit_code: status,
        group_dead: last,
        min_flt,
        maj_flt: 1,
        sum_exec_runtime_ns: 7 * MS,
    })
}

fn comm(ms: u64, pid: u32, tid: u32, name: &str) -> Event {
    Event::Comm(ev::Comm {
        header: h(ms, pid, tid),
        comm: name.into(),
    })
}

fn fault(ms: u64, pid: u32, tid: u32) -> Event {
    Event::Faults(ev::Faults {
        header: h(ms, pid, tid),
        first_ns: T0 + ms * MS,
        count: 1,
        major: 0,
    })
}

fn rss(ms: u64, pid: u32, member: RssMember, pages: u64) -> Event {
    Event::Rss(ev::Rss {
        header: h(ms, pid, pid),
        member,
        size_bytes: pages * 4096,
    })
}

fn info(root: u32) -> RecordingInfo {
    RecordingInfo {
        command: vec!["sh".into(), "-c".into(), "ls".into()],
        root_pid: Some(root),
        ..RecordingInfo::default()
    }
}

/// sh (100) with a worker thread (102) forks 101, which execs ls and exits 3.
fn chain() -> Vec<Event> {
    vec![
        fork(1, 100, 100, 100, 102, "sh"),
        comm(2, 100, 102, "worker"),
        on_cpu(100, 100, 0, 3),
        fork(4, 100, 100, 101, 101, "sh"),
        on_cpu(100, 102, 2, 6),
        exec(5, 101, 101, "ls", "/usr/bin/ls"),
        on_cpu(101, 101, 4, 9),
        fault(6, 101, 101),
        exit(10, 101, 101, 3 << 8, true, 40),
        exit(12, 100, 102, 0, false, 5),
        on_cpu(100, 100, 11, 13),
    ]
}

fn build(events: &[Event], seed: bool) -> Recording {
    let mut b = ModelBuilder::new(T0);
    if seed {
        b.seed_process(SeedProcess {
            pid: 100,
            ppid: 1,
            comm: "sh".into(),
            exe: Some("/usr/bin/dash".into()),
            cmdline: vec!["sh".into(), "-c".into(), "ls".into()],
            threads: vec![(100, "sh".into())],
        });
    }
    for e in events {
        b.push(e.clone());
    }
    b.finish(T0 + 20 * MS, info(100))
}

#[test]
fn fork_exec_exit_chain() {
    let r = build(&chain(), true);
    assert_eq!(r.duration_ns, 20 * MS);
    assert_eq!(
        r.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [100, 101]
    );
    let sh = r.process(100).unwrap();
    assert_eq!(
        (sh.ppid, sh.comm.as_str(), sh.role.as_str()),
        (1, "sh", "command")
    );
    assert_eq!(sh.exe.as_deref(), Some("/usr/bin/dash"));
    assert_eq!((sh.start_ns, sh.end_ns, sh.exit), (0, 20 * MS, None));
    assert_eq!(sh.cpu_ns, (3 + 2 + 4) * MS);
    let worker = &sh.threads[1];
    assert_eq!((worker.tid, worker.name.as_str()), (102, "worker"));
    assert_eq!(worker.names, ["sh", "worker"]);
    assert_eq!(
        (worker.start_ns, worker.end_ns, worker.exited),
        (MS, 12 * MS, true)
    );
    assert_eq!(worker.exit_cpu_ns, Some(7 * MS));
    // Leader alive: its faults (none) from events; worker's from its EXIT.
    assert_eq!((sh.page_faults_minor, sh.page_faults_major), (5, 1));
    assert!(!sh.page_faults_exact);

    let ls = r.process(101).unwrap();
    assert_eq!(
        (ls.ppid, ls.comm.as_str(), ls.role.as_str()),
        (100, "ls", "descendant")
    );
    assert_eq!(ls.exec_comm.as_deref(), Some("ls"));
    assert_eq!(ls.exe.as_deref(), Some("/usr/bin/ls"));
    assert!(
        ls.cmdline.is_empty(),
        "inherited cmdline is stale after exec"
    );
    assert_eq!((ls.start_ns, ls.end_ns), (4 * MS, 10 * MS));
    let status = ls.exit.unwrap();
    assert_eq!((status.code, status.signal), (Some(3), None));
    assert_eq!(ls.threads[0].names, ["sh", "ls"]);
    // The one PAGE_FAULT event is covered by the exact EXIT counter.
    assert_eq!((ls.page_faults_minor, ls.page_faults_major), (40, 1));
    assert!(ls.page_faults_exact);
    assert_eq!(ls.exit_cpu_ns, Some(7 * MS));
    assert_eq!(
        ls.faults,
        [FaultBatch {
            first_ns: 6 * MS,
            last_ns: 6 * MS,
            count: 1
        }]
    );
    assert_eq!(ls.execs[0].filename, "/usr/bin/ls");
}

#[test]
fn out_of_order_events_give_the_same_model() {
    let in_order = build(&chain(), true);
    let mut shuffled = chain();
    shuffled.reverse(); // every event out of order, all within the window
    assert_eq!(build(&shuffled, true), in_order);
    // Interleaving as two CPUs would: pairs swapped.
    let mut swapped = chain();
    for pair in swapped.chunks_mut(2) {
        pair.reverse();
    }
    assert_eq!(build(&swapped, true), in_order);
}

#[test]
fn events_older_than_the_window_are_applied_as_they_stream() {
    let mut b = ModelBuilder::new(T0);
    b.push(fork(1, 100, 100, 101, 101, "a"));
    // Far later: the fork must be applied by now (bounded memory).
    let late_ms = 1 + REORDER_WINDOW_NS / MS + 1;
    b.push(comm(late_ms, 101, 101, "b"));
    assert_eq!(b.pending(), 1);
    let r = b.finish(T0 + (late_ms + 1) * MS, info(100));
    assert_eq!(r.process(101).unwrap().comm, "b");
}

#[test]
fn exec_from_a_non_leader_thread() {
    let events = [
        fork(1, 200, 200, 200, 201, "app"),
        on_cpu(200, 200, 1, 2),
        on_cpu(200, 201, 1, 3),
        fault(3, 200, 201),
        exit(4, 200, 200, 0, false, 9), // de_thread kills the old leader
        exec(5, 200, 201, "new", "/bin/new"),
        on_cpu(200, 200, 5, 8),
        exit(9, 200, 200, 0, true, 11),
    ];
    let mut b = ModelBuilder::new(T0);
    events.iter().for_each(|e| b.push(e.clone()));
    let r = b.finish(T0 + 10 * MS, info(200));
    let p = r.process(200).unwrap();
    let old = &p.threads[1];
    assert_eq!((old.tid, old.became_leader_ns), (201, Some(5 * MS)));
    assert_eq!((old.end_ns, old.cpu_ns), (5 * MS, 2 * MS));
    let leader = &p.threads[0];
    assert_eq!((leader.name.as_str(), leader.exited), ("new", true));
    assert_eq!(leader.cpu_ns, MS + 3 * MS);
    // Old leader's EXIT (9) + the exec'ing task's final EXIT (11), which
    // covers the fault it took as tid 201.
    assert_eq!(p.page_faults_minor, 20);
    assert!(p.page_faults_exact);
    assert_eq!(p.exit_cpu_ns, Some(14 * MS));
}

#[test]
fn overlapping_and_early_intervals_are_clamped() {
    let events = [
        Event::OnCpu(ev::OnCpu {
            header: h(2, 300, 300),
            start_ns: T0 - 5 * MS, // started before the recording
            cpu_ns: 7 * MS,
            cpu_total_ns: 7 * MS,
            prev_state: 0,
            flags: 0,
            stints: 1,
        }),
        on_cpu(300, 300, 1, 4),   // overlaps the first (bad kernel data)
        on_cpu(300, 300, 5, 5),   // empty
        on_cpu(300, 300, 18, 30), // runs past the end
    ];
    let mut b = ModelBuilder::new(T0);
    events.iter().for_each(|e| b.push(e.clone()));
    let r = b.finish(T0 + 20 * MS, info(300));
    let t = &r.process(300).unwrap().threads[0];
    let spans: Vec<_> = t
        .intervals
        .iter()
        .map(|i| (i.start_ns / MS, i.end_ns / MS))
        .collect();
    // The late event extends the recording to 30 ms rather than losing CPU.
    assert_eq!(r.duration_ns, 30 * MS);
    assert_eq!(spans, [(0, 2), (2, 4), (18, 30)]);
    // The CPU of the first interval before the recording is not counted.
    assert_eq!(t.cpu_ns, 2 * MS + 3 * MS + 12 * MS);
}

#[test]
fn rss_keeps_the_latest_of_each_member() {
    let events = [
        rss(1, 400, RssMember::File, 10),
        rss(2, 400, RssMember::Anon, 100),
        rss(3, 400, RssMember::Swap, 50),
        rss(4, 400, RssMember::Anon, 20),
        rss(5, 400, RssMember::Shmem, 1),
        exec(6, 400, 400, "x", "/x"),
        rss(7, 400, RssMember::Anon, 3),
    ];
    let mut b = ModelBuilder::new(T0);
    events.iter().for_each(|e| b.push(e.clone()));
    let r = b.finish(T0 + 10 * MS, info(400));
    let p = r.process(400).unwrap();
    assert_eq!(p.max_rss_bytes, 3 * 4096, "the peak since the exec");
    let before_exec = p.rss[..5].iter().map(|s| s.rss()).max();
    assert_eq!(before_exec, Some(110 * 4096), "swap is not resident");
    let totals: Vec<u64> = p.rss.iter().map(|s| s.rss() / 4096).collect();
    assert_eq!(totals, [10, 110, 110, 30, 31, 0, 3], "exec starts a new mm");
    assert_eq!(p.rss[2].swap, 50 * 4096);
}

#[test]
fn wait_status_decoding() {
    let s = ExitStatus::from_wait_status(0);
    assert_eq!((s.code, s.signal, s.core_dumped), (Some(0), None, false));
    let s = ExitStatus::from_wait_status(42 << 8);
    assert_eq!((s.code, s.signal), (Some(42), None));
    let s = ExitStatus::from_wait_status(9);
    assert_eq!((s.code, s.signal, s.core_dumped), (None, Some(9), false));
    let s = ExitStatus::from_wait_status(11 | 0x80);
    assert_eq!((s.code, s.signal, s.core_dumped), (None, Some(11), true));
}

#[test]
fn proc_facts_apply_after_the_events_already_seen() {
    let mut b = ModelBuilder::new(T0);
    b.push(fork(1, 500, 500, 501, 501, "sh"));
    b.push(exec(2, 501, 501, "py", "/usr/bin/python3"));
    // The recorder reads /proc after seeing the exec: it must not be undone.
    b.set_cmdline(501, vec!["python3".into(), "x.py".into()]);
    b.set_role(501, "runtime".into());
    b.set_exe(501, "/usr/bin/python3.11".into());
    let r = b.finish(T0 + 5 * MS, info(500));
    let p = r.process(501).unwrap();
    assert_eq!(p.cmdline, ["python3", "x.py"]);
    assert_eq!(p.role, "runtime");
    assert_eq!(p.exe.as_deref(), Some("/usr/bin/python3.11"));
    assert_eq!(r.process(500).unwrap().role, "command");
}

#[test]
fn seeded_cmdline_survives_the_first_exec_only() {
    let mut b = ModelBuilder::new(T0);
    b.seed_process(SeedProcess {
        pid: 600,
        ppid: 1,
        comm: "lxprof".into(),
        exe: None,
        cmdline: vec!["sleep".into(), "1".into()],
        threads: vec![(600, "lxprof".into())],
    });
    b.push(exec(1, 600, 600, "sleep", "/usr/bin/sleep"));
    let r = b.finish(T0 + 2 * MS, info(600));
    let p = r.process(600).unwrap();
    assert_eq!(p.cmdline, ["sleep", "1"]);
    assert_eq!(
        (p.comm.as_str(), p.exe.as_deref()),
        ("sleep", Some("/usr/bin/sleep"))
    );
    assert_eq!(p.threads[0].names, ["lxprof", "sleep"]);
}

#[test]
fn fault_rate_buckets() {
    let at = |t| FaultBatch {
        first_ns: t,
        last_ns: t,
        count: 1,
    };
    let p = Process {
        faults: vec![at(0), at(1), at(9_999_999), at(10_000_000), at(35_000_000)],
        ..Process::default()
    };
    assert_eq!(
        p.fault_rate(10_000_000),
        [(0, 3), (10_000_000, 1), (30_000_000, 1)]
    );
}

#[test]
fn cpu_is_the_schedulers_count_and_lost_cpu_is_reported() {
    let carried = |from_ms: u64, to_ms: u64, cpu_ms: u64, total_ms: u64| {
        Event::OnCpu(ev::OnCpu {
            header: h(to_ms, 700, 701),
            start_ns: T0 + from_ms * MS,
            cpu_ns: cpu_ms * MS,
            cpu_total_ns: total_ms * MS,
            prev_state: 1,
            flags: 0,
            stints: 1,
        })
    };
    let mut b = ModelBuilder::new(T0);
    b.push(fork(1, 700, 700, 700, 701, "spin"));
    b.push(fork(1, 700, 700, 700, 702, "lost"));
    b.push(carried(1, 2, 1, 1));
    // Two stints whose records were missed, carried by the next record.
    b.push(carried(5, 6, 3, 4));
    // Thread 702: one record (1 ms, from 1 ms of lifetime CPU), then an exit
    // at 7 ms of lifetime CPU: its last switch-out's record was lost.
    b.push(on_cpu(700, 702, 1, 2));
    b.push(exit(8, 700, 702, 0, false, 0));
    let r = b.finish(T0 + 10 * MS, info(700));
    let p = r.process(700).unwrap();
    let cpu: Vec<_> = p
        .threads
        .iter()
        .map(|t| (t.tid, t.cpu_ns, t.cpu_kernel_ns, t.cpu_missing_ns))
        .collect();
    assert_eq!(
        cpu,
        [
            (701, 4 * MS, Some(4 * MS), 0),
            (702, MS, Some(6 * MS), 5 * MS)
        ]
    );
    assert_eq!(p.cpu_ns, 5 * MS);
    // The carried CPU stays in its interval: a window over it gets all of it.
    let spin = &p.threads[0];
    assert_eq!(spin.intervals[1].cpu_within(5 * MS, 6 * MS), 3 * MS);
    assert_eq!(
        spin.intervals[1].cpu_within(5 * MS, 5 * MS + MS / 2),
        3 * MS / 2
    );
}

#[test]
fn reused_pids_and_tids_are_separate_processes_and_threads() {
    let events = [
        fork(1, 800, 800, 801, 801, "first"),
        fork(2, 801, 801, 801, 802, "t1"),
        exit(3, 801, 802, 0, false, 2),
        fork(4, 801, 801, 801, 802, "t2"), // tid 802 reused in the process
        exit(5, 801, 802, 0, false, 3),
        exit(6, 801, 801, 1 << 8, true, 1),
        fork(7, 800, 800, 801, 801, "second"), // pid 801 reused
        on_cpu(801, 801, 7, 8),
    ];
    let mut b = ModelBuilder::new(T0);
    events.iter().for_each(|e| b.push(e.clone()));
    let r = b.finish(T0 + 10 * MS, info(800));
    let both: Vec<_> = r
        .processes
        .iter()
        .filter(|p| p.pid == 801)
        .map(|p| (p.comm.as_str(), p.start_ns / MS, p.exit.is_some()))
        .collect();
    assert_eq!(both, [("first", 1, true), ("second", 7, false)]);
    assert_eq!(r.process(801).unwrap().comm, "second", "the latest");
    assert_eq!(r.process(800).unwrap().pid, 800);
    assert!(r.process(799).is_none() && r.process(802).is_none());
    let first = &r.processes[1];
    let t802: Vec<_> = first
        .threads
        .iter()
        .filter(|t| t.tid == 802)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(t802, ["t1", "t2"]);
    assert_eq!(first.page_faults_minor, 2 + 3 + 1);
    assert_eq!(r.processes[2].cpu_ns, MS);
}

fn alloc(ms: u64, pid: u32, tid: u32, op: ev::AllocOp, size: u64) -> Event {
    Event::Alloc(ev::Alloc {
        header: h(ms, pid, tid),
        op,
        size,
        address: 0x1000,
    })
}

#[test]
fn allocations_sum_per_process_in_time_order() {
    use ev::AllocOp as K;
    let mut events = chain();
    events.extend([
        alloc(7, 101, 101, K::Malloc, 100),
        alloc(6, 101, 101, K::Calloc, 30), // out of order: applied first
        alloc(8, 101, 101, K::Realloc, 200),
        alloc(8, 101, 101, K::Free, 0),
        alloc(9, 101, 101, K::Mmap, 8192),
        alloc(9, 101, 101, K::Munmap, 4096),
        alloc(9, 101, 101, K::Brk, 135_168),
        alloc(3, 100, 102, K::Mmap, 4096),
    ]);
    let rec = build(&events, true);
    let ls = rec.process(101).unwrap();
    assert_eq!(
        ls.alloc,
        Some(AllocTotals {
            malloc_count: 3,
            malloc_bytes: 330,
            free_count: 1,
            mmap_bytes: 8192,
            mmap_count: 1,
            munmap_bytes: 4096,
            brk_bytes: 135_168,
        })
    );
    let points: Vec<(u64, AllocOp, u64)> = ls
        .alloc_points
        .iter()
        .map(|a| (a.ts_ns / MS, a.op, a.bytes))
        .collect();
    assert_eq!(
        points,
        [
            (6, AllocOp::Calloc, 30),
            (7, AllocOp::Malloc, 100),
            (8, AllocOp::Realloc, 200),
            (8, AllocOp::Free, 0),
            (9, AllocOp::Mmap, 8192),
            (9, AllocOp::Munmap, 4096),
            (9, AllocOp::Brk, 135_168),
        ]
    );
    let sh = rec.process(100).unwrap();
    assert_eq!(sh.alloc.map(|a| a.mmap_bytes), Some(4096));
    assert_eq!(sh.alloc_points[0].tid, 102);
}

#[test]
fn alloc_is_none_unless_recorded() {
    let rec = build(&chain(), true);
    assert!(rec.processes.iter().all(|p| p.alloc.is_none()));
    let mut b = ModelBuilder::new(T0);
    b.set_alloc_recorded();
    for e in chain() {
        b.push(e);
    }
    let rec = b.finish(T0 + 20 * MS, info(100));
    assert!(
        rec.processes
            .iter()
            .all(|p| p.alloc == Some(AllocTotals::default()) && p.alloc_points.is_empty())
    );
}
