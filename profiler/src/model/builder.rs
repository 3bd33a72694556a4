//! [`ModelBuilder`]: applies events in time order (through a small reorder
//! window, since records from different CPUs arrive slightly out of order)
//! and produces a [`Recording`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use super::types::*;
use crate::events::{Event, RssMember};

/// Events are held back until an event this much later (in event time) has
/// arrived, then applied in timestamp order. Records from different CPUs are
/// reserved within microseconds of their timestamps, so this is generous.
pub const REORDER_WINDOW_NS: u64 = 250_000_000;

/// A process that was alive before its events (the `--pid` target and its
/// tree, read from `/proc`; or the child lxprof launched).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeedProcess {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub cmdline: Vec<String>,
    /// `(tid, name)` of its threads.
    pub threads: Vec<(u32, String)>,
}

/// What the builder applies in order: kernel events and facts from `/proc`.
#[derive(Debug)]
enum Item {
    Event(Event),
    Seed(SeedProcess),
    Cmdline(u32, Vec<String>),
    Exe(u32, String),
}

#[derive(Debug)]
struct Queued {
    ts: u64,
    seq: u64,
    /// Boxed: the queue moves its entries.
    item: Box<Item>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

/// The reorder window, in (time, arrival) order. The stream is nearly sorted (a
/// yield storm's 2.4 M records: 7,400 arrived after a later one, by ≤ 19 µs; batched
/// records up to ~150 ms late): items that arrive in order wait in a FIFO, the late
/// ones in a heap, and the next item is the earlier of their heads. (One heap of the
/// whole 250 ms window, ~300,000 items, cost 11 % of lxprof's CPU on that storm.)
#[derive(Debug, Default)]
struct ReorderQueue {
    in_order: VecDeque<Queued>,
    late: BinaryHeap<Reverse<Queued>>,
}

impl ReorderQueue {
    fn push(&mut self, q: Queued) {
        match self.in_order.back() {
            Some(last) if *last > q => self.late.push(Reverse(q)),
            _ => self.in_order.push_back(q),
        }
    }

    /// The next item's time.
    fn first_ts(&self) -> Option<u64> {
        match (self.in_order.front(), self.late.peek()) {
            (Some(a), Some(Reverse(b))) => Some(a.ts.min(b.ts)),
            (Some(a), None) => Some(a.ts),
            (None, Some(Reverse(b))) => Some(b.ts),
            (None, None) => None,
        }
    }

    fn pop(&mut self) -> Option<Queued> {
        let late_first = match (self.in_order.front(), self.late.peek()) {
            (Some(a), Some(Reverse(b))) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if late_first {
            self.late.pop().map(|Reverse(q)| q)
        } else {
            self.in_order.pop_front()
        }
    }

    fn len(&self) -> usize {
        self.in_order.len() + self.late.len()
    }
}

/// Per-thread state while building.
#[derive(Debug, Default)]
struct ThreadState {
    thread: Thread,
    /// Faults of FAULTS records not yet covered by an EXIT record's counters.
    uncovered_faults: u64,
    /// Of which major.
    uncovered_major: u64,
    /// The thread's lifetime CPU when first seen (what its ON_CPU records
    /// count from) and at its latest record: the kernel's own figures.
    cpu_first_ns: Option<u64>,
    cpu_last_ns: u64,
    exits: u32,
    exit_min_flt: u64,
    exit_maj_flt: u64,
    exit_cpu_ns: u64,
}

/// Per-process state while building.
#[derive(Debug, Default)]
struct ProcessState {
    process: Process,
    /// The cmdline was read from `/proc` (or seeded) rather than inherited:
    /// the next exec keeps it (it was read for the image being exec'd).
    cmdline_explicit: bool,
    rss: RssSample,
    threads: BTreeMap<u32, ThreadState>,
    /// Earlier threads whose tid was reused by a later thread.
    past_threads: Vec<ThreadState>,
    /// Sums of the ALLOC records so far.
    alloc: AllocTotals,
}

/// Builds a [`Recording`] from events. See the module docs.
#[derive(Debug)]
pub struct ModelBuilder {
    start_ns: u64,
    queue: ReorderQueue,
    seq: u64,
    /// Latest event timestamp pushed (absolute ns).
    max_ts: u64,
    /// Latest relative time applied.
    last_rel: u64,
    processes: BTreeMap<u32, ProcessState>,
    /// Exited processes whose pid a later fork reused.
    past_processes: Vec<ProcessState>,
    roles: HashMap<u32, String>,
    /// Stack id -> return addresses (leaf first), as the recorder unwound them.
    stacks: HashMap<u32, Vec<u64>>,
    /// Stack id -> the frame saying why its walk stopped short (`[truncated]`, …).
    stack_ends: HashMap<u32, String>,
    /// Allocation probes were attached: every process gets `alloc`.
    alloc_recorded: bool,
}

impl ModelBuilder {
    /// `start_ns`: CLOCK_MONOTONIC ns when recording started; every time in
    /// the [`Recording`] is relative to it (earlier events clamp to 0).
    pub fn new(start_ns: u64) -> ModelBuilder {
        ModelBuilder {
            start_ns,
            queue: ReorderQueue::default(),
            seq: 0,
            max_ts: start_ns,
            last_rel: 0,
            processes: BTreeMap::new(),
            past_processes: Vec::new(),
            roles: HashMap::new(),
            stacks: HashMap::new(),
            stack_ends: HashMap::new(),
            alloc_recorded: false,
        }
    }

    /// Allocations were recorded (`--alloc syscalls` or `full`): every
    /// process gets [`Process::alloc`], zeros when it made no call seen.
    /// Without it only processes with ALLOC records get one.
    pub fn set_alloc_recorded(&mut self) {
        self.alloc_recorded = true;
    }

    /// The addresses of stack id `id` (a user stack the recorder unwound, or a
    /// kernel stack); samples are given them at [`ModelBuilder::finish`].
    pub fn set_stack(&mut self, id: u32, addrs: Vec<u64>) {
        self.stacks.insert(id, addrs);
    }

    /// User stack `id` stopped short of its root: `end` is the one frame that says why.
    pub fn set_stack_end(&mut self, id: u32, end: String) {
        self.stack_ends.insert(id, end);
    }

    /// A process alive before its events. Fills what events have not set.
    pub fn seed_process(&mut self, seed: SeedProcess) {
        self.enqueue(self.max_ts, Item::Seed(seed));
    }

    /// The process's arguments as read from `/proc/PID/cmdline` now.
    pub fn set_cmdline(&mut self, pid: u32, cmdline: Vec<String>) {
        self.enqueue(self.max_ts, Item::Cmdline(pid, cmdline));
    }

    /// The process's executable as read from `/proc/PID/exe` now.
    pub fn set_exe(&mut self, pid: u32, exe: String) {
        self.enqueue(self.max_ts, Item::Exe(pid, exe));
    }

    /// The process's role (e.g. "runtime", "extension"); default "command"
    /// for [`RecordingInfo::root_pid`] and "descendant" for the others.
    pub fn set_role(&mut self, pid: u32, role: String) {
        self.roles.insert(pid, role);
    }

    /// One decoded kernel record. Records may arrive out of order by up to
    /// [`REORDER_WINDOW_NS`].
    pub fn push(&mut self, event: Event) {
        let ts = event.header().ts_ns;
        self.max_ts = self.max_ts.max(ts);
        self.enqueue(ts, Item::Event(event));
        while let Some(first) = self.queue.first_ts() {
            if first.saturating_add(REORDER_WINDOW_NS) > self.max_ts {
                break;
            }
            if let Some(q) = self.queue.pop() {
                self.apply(q);
            }
        }
    }

    /// Items held in the reorder window, not yet applied.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    fn enqueue(&mut self, ts: u64, item: Item) {
        self.seq += 1;
        self.queue.push(Queued {
            ts,
            seq: self.seq,
            item: Box::new(item),
        });
    }

    fn rel(&self, ts: u64) -> u64 {
        ts.saturating_sub(self.start_ns)
    }

    fn process(&mut self, pid: u32, rel: u64) -> &mut ProcessState {
        self.processes.entry(pid).or_insert_with(|| ProcessState {
            process: Process {
                pid,
                start_ns: rel,
                ..Process::default()
            },
            ..ProcessState::default()
        })
    }

    fn apply(&mut self, q: Queued) {
        let rel = self.rel(q.ts);
        self.last_rel = self.last_rel.max(rel);
        match *q.item {
            Item::Event(ev) => self.apply_event(ev, rel),
            Item::Seed(seed) => self.apply_seed(seed),
            Item::Cmdline(pid, cmdline) => {
                let p = self.process(pid, rel);
                p.process.cmdline = cmdline;
                p.cmdline_explicit = true;
            }
            Item::Exe(pid, exe) => self.process(pid, rel).process.exe = Some(exe),
        }
    }

    fn apply_seed(&mut self, seed: SeedProcess) {
        let p = self.process(seed.pid, 0);
        let pr = &mut p.process;
        if pr.ppid == 0 {
            // No FORK seen: it existed before the recording.
            pr.ppid = seed.ppid;
            pr.start_ns = 0;
        }
        if pr.comm.is_empty() {
            pr.comm = seed.comm;
        }
        if pr.exe.is_none() {
            pr.exe = seed.exe;
        }
        if pr.cmdline.is_empty() && !seed.cmdline.is_empty() {
            pr.cmdline = seed.cmdline;
            p.cmdline_explicit = true;
        }
        for (tid, name) in seed.threads {
            let t = thread(p, tid, 0);
            if t.thread.name.is_empty() {
                rename(&mut t.thread, &name);
            }
        }
    }

    fn apply_event(&mut self, ev: Event, rel: u64) {
        let h = *ev.header();
        if h.pid == 0 {
            return; // the idle task is never traced
        }
        match ev {
            Event::OnCpu(e) => {
                let start = self.rel(e.start_ns).min(rel);
                // Only the part within the recording counts (a thread on a
                // CPU since before it started).
                let mut cpu_ns = e.cpu_ns;
                if e.start_ns < self.start_ns && h.ts_ns > e.start_ns {
                    let kept = h.ts_ns - self.start_ns.min(h.ts_ns);
                    cpu_ns = (u128::from(cpu_ns) * u128::from(kept)
                        / u128::from(h.ts_ns - e.start_ns)) as u64;
                }
                let t = thread(self.process(h.pid, rel), h.tid, start);
                t.thread.intervals.push(Interval {
                    start_ns: start,
                    end_ns: rel,
                    cpu_ns,
                });
                t.cpu_first_ns
                    .get_or_insert(e.cpu_before_ns() + (e.cpu_ns - cpu_ns));
                t.cpu_last_ns = t.cpu_last_ns.max(e.cpu_total_ns);
            }
            Event::Fork(e) if e.is_thread() => {
                let p = self.process(h.pid, rel);
                if p.threads.get(&e.child_tid).is_some_and(|t| t.thread.exited)
                    && let Some(old) = p.threads.remove(&e.child_tid)
                {
                    p.past_threads.push(old); // tid reused
                }
                let t = thread(p, e.child_tid, rel);
                t.thread.start_ns = rel;
                t.thread.exited = false;
                rename(&mut t.thread, &e.comm);
            }
            Event::Fork(e) => {
                let parent = &self.process(h.pid, rel).process;
                let (exe, cmdline) = (parent.exe.clone(), parent.cmdline.clone());
                let reused = self.processes.get(&e.child_pid);
                if reused.is_some_and(|p| p.process.exit.is_some())
                    && let Some(old) = self.processes.remove(&e.child_pid)
                {
                    self.past_processes.push(old); // pid reused
                }
                let c = self.process(e.child_pid, rel);
                c.process.ppid = h.pid;
                c.process.start_ns = rel;
                c.process.comm = e.comm.clone();
                if c.process.exe.is_none() {
                    c.process.exe = exe;
                }
                if c.process.cmdline.is_empty() {
                    c.process.cmdline = cmdline;
                }
                let t = thread(c, e.child_tid, rel);
                t.thread.start_ns = rel;
                rename(&mut t.thread, &e.comm);
            }
            Event::Exec(e) => {
                let p = self.process(h.pid, rel);
                if !p.cmdline_explicit {
                    p.process.cmdline.clear();
                }
                p.cmdline_explicit = false;
                p.process.exe = Some(e.filename.clone());
                p.process.comm = e.comm.clone();
                p.process.exec_comm = Some(e.comm.clone());
                p.process.execs.push(ExecRecord {
                    ts_ns: rel,
                    old_tid: e.old_tid,
                    filename: e.filename,
                    comm: e.comm.clone(),
                });
                let (mut moved, mut moved_major) = (0, 0);
                if e.old_tid != h.pid
                    && let Some(old) = p.threads.get_mut(&e.old_tid)
                {
                    old.thread.became_leader_ns = Some(rel);
                    old.thread.end_ns = rel;
                    moved = std::mem::take(&mut old.uncovered_faults);
                    moved_major = std::mem::take(&mut old.uncovered_major);
                }
                // The new image has a new mm: counters start again (the
                // next RSS record of each member gives its new value).
                p.rss = RssSample {
                    ts_ns: rel,
                    ..RssSample::default()
                };
                p.process.rss.push(p.rss);
                // The peak is the new program's: before the exec the memory
                // was the parent's image (e.g. lxprof's own, for the command
                // it launched).
                p.process.max_rss_bytes = 0;
                let leader = thread(p, h.pid, rel);
                leader.uncovered_faults += moved;
                leader.uncovered_major += moved_major;
                leader.thread.exited = false;
                rename(&mut leader.thread, &e.comm);
            }
            Event::Exit(e) => {
                let p = self.process(h.pid, rel);
                let t = thread(p, h.tid, rel);
                t.thread.exited = true;
                t.thread.end_ns = rel;
                t.exits += 1;
                t.exit_min_flt += e.min_flt;
                t.exit_maj_flt += e.maj_flt;
                t.exit_cpu_ns += e.sum_exec_runtime_ns;
                t.uncovered_faults = 0;
                t.uncovered_major = 0;
                if e.group_dead {
                    p.process.exit = Some(ExitStatus::from_wait_status(e.exit_code));
                    p.process.end_ns = rel;
                }
            }
            Event::Comm(e) => {
                let p = self.process(h.pid, rel);
                if h.tid == h.pid {
                    p.process.comm = e.comm.clone();
                }
                rename(&mut thread(p, h.tid, rel).thread, &e.comm);
            }
            Event::Faults(e) => {
                let first_ns = self.rel(e.first_ns).min(rel);
                let p = self.process(h.pid, rel);
                let count = u64::from(e.count);
                p.process.faults.push(FaultBatch {
                    last_ns: rel,
                    first_ns,
                    count,
                });
                let t = thread(p, h.tid, rel);
                t.thread.fault_events += count;
                t.uncovered_faults += count;
                t.uncovered_major += u64::from(e.major);
            }
            Event::Rss(e) => {
                let p = self.process(h.pid, rel);
                match e.member {
                    RssMember::File => p.rss.file = e.size_bytes,
                    RssMember::Anon => p.rss.anon = e.size_bytes,
                    RssMember::Swap => p.rss.swap = e.size_bytes,
                    RssMember::Shmem => p.rss.shmem = e.size_bytes,
                }
                p.rss.ts_ns = rel;
                p.process.max_rss_bytes = p.process.max_rss_bytes.max(p.rss.rss());
                let sample = p.rss;
                p.process.rss.push(sample);
            }
            Event::Sample(e) => {
                let t = thread(self.process(h.pid, rel), h.tid, rel);
                t.thread.samples.push(StackSample {
                    ts_ns: rel,
                    user_stack_id: e.user_stack_id,
                    kernel_stack_id: e.kernel_stack_id,
                    ..StackSample::default()
                });
            }
            // The recorder unwinds these and pushes a Sample instead.
            Event::StackCopy(_) => {}
            Event::Alloc(e) => {
                let p = self.process(h.pid, rel);
                let op = alloc_op(e.op);
                let bytes = add_alloc(&mut p.alloc, op, e.size);
                p.process.alloc_points.push(AllocPoint {
                    ts_ns: rel,
                    tid: h.tid,
                    op,
                    bytes,
                });
            }
        }
    }

    /// Applies everything still queued and returns the recording.
    /// `end_ns`: CLOCK_MONOTONIC ns when recording stopped. The duration
    /// also covers any event stamped later than that.
    pub fn finish(mut self, end_ns: u64, info: RecordingInfo) -> Recording {
        while let Some(q) = self.queue.pop() {
            self.apply(q);
        }
        let duration_ns = self.rel(end_ns).max(self.last_rel);
        let mut states = std::mem::take(&mut self.past_processes);
        states.extend(std::mem::take(&mut self.processes).into_values());
        let mut processes: Vec<Process> = states
            .into_iter()
            .map(|p| self.finish_process(p, duration_ns, info.root_pid))
            .collect();
        processes.sort_by_key(|p| (p.pid, p.start_ns));
        Recording {
            duration_ns,
            processes,
            info,
        }
    }

    fn finish_process(&self, p: ProcessState, duration: u64, root: Option<u32>) -> Process {
        let mut process = p.process;
        let exited = process.exit.is_some();
        if !exited {
            process.end_ns = duration;
        }
        process.role = match self.roles.get(&process.pid) {
            Some(role) => role.clone(),
            None if Some(process.pid) == root => "command".to_string(),
            None => "descendant".to_string(),
        };
        let mut exit_cpu = 0;
        let mut uncovered = 0;
        let threads = p.past_threads.into_iter().chain(p.threads.into_values());
        for mut t in threads {
            let th = &mut t.thread;
            if !th.exited && th.became_leader_ns.is_none() {
                th.end_ns = duration;
            }
            th.intervals = disjoint(std::mem::take(&mut th.intervals), duration);
            for s in &mut th.samples {
                let addrs = |id: Option<u32>| {
                    id.and_then(|id| self.stacks.get(&id))
                        .cloned()
                        .unwrap_or_default()
                };
                s.user = addrs(s.user_stack_id);
                s.kernel = addrs(s.kernel_stack_id);
                s.user_end = s
                    .user_stack_id
                    .and_then(|id| self.stack_ends.get(&id).cloned());
            }
            th.cpu_ns = th.intervals.iter().map(|i| i.cpu_ns).sum();
            // The kernel's count for the span recorded: from the first
            // record's starting total (0 for a thread born in the recording)
            // to the latest total seen (the last record, or the exit's).
            let from = t.cpu_first_ns.unwrap_or(0);
            let to = t
                .cpu_last_ns
                .max(if t.exits > 0 { t.exit_cpu_ns } else { 0 });
            if t.cpu_first_ns.is_some() || t.exits > 0 {
                let kernel = to.saturating_sub(from);
                th.cpu_kernel_ns = Some(kernel);
                th.cpu_missing_ns = kernel.saturating_sub(th.cpu_ns);
            }
            if t.exits > 0 {
                th.exit_cpu_ns = Some(t.exit_cpu_ns);
                th.exit_min_flt = Some(t.exit_min_flt);
                th.exit_maj_flt = Some(t.exit_maj_flt);
            }
            process.cpu_ns += th.cpu_ns;
            process.page_faults_minor += t.exit_min_flt + t.uncovered_faults - t.uncovered_major;
            process.page_faults_major += t.exit_maj_flt + t.uncovered_major;
            exit_cpu += t.exit_cpu_ns;
            uncovered += t.uncovered_faults;
            process.threads.push(t.thread);
        }
        process.threads.sort_by_key(|t| (t.tid, t.start_ns));
        process.faults.sort_unstable();
        process.exit_cpu_ns = exited.then_some(exit_cpu);
        if self.alloc_recorded || !process.alloc_points.is_empty() {
            process.alloc = Some(p.alloc);
        }
        process.page_faults_exact = exited && uncovered == 0;
        process
    }
}

fn alloc_op(op: crate::events::AllocOp) -> AllocOp {
    use crate::events::AllocOp as K;
    match op {
        K::Malloc => AllocOp::Malloc,
        K::Calloc => AllocOp::Calloc,
        K::Realloc => AllocOp::Realloc,
        K::Free => AllocOp::Free,
        K::Mmap => AllocOp::Mmap,
        K::Munmap => AllocOp::Munmap,
        K::Brk => AllocOp::Brk,
    }
}

/// Adds one call of `op` for `size` bytes to `t`; returns the point's bytes
/// (0 for free).
fn add_alloc(t: &mut AllocTotals, op: AllocOp, size: u64) -> u64 {
    match op {
        AllocOp::Malloc | AllocOp::Calloc | AllocOp::Realloc => {
            t.malloc_count += 1;
            t.malloc_bytes = t.malloc_bytes.saturating_add(size);
        }
        AllocOp::Free => {
            t.free_count += 1;
            return 0;
        }
        AllocOp::Mmap => {
            t.mmap_count += 1;
            t.mmap_bytes = t.mmap_bytes.saturating_add(size);
        }
        AllocOp::Munmap => t.munmap_bytes = t.munmap_bytes.saturating_add(size),
        AllocOp::Brk => t.brk_bytes = t.brk_bytes.saturating_add(size),
    }
    size
}

fn thread(p: &mut ProcessState, tid: u32, rel: u64) -> &mut ThreadState {
    p.threads.entry(tid).or_insert_with(|| ThreadState {
        thread: Thread {
            tid,
            start_ns: rel,
            ..Thread::default()
        },
        ..ThreadState::default()
    })
}

/// Sets the thread's current name and records it in `names` if new.
fn rename(t: &mut Thread, name: &str) {
    if name.is_empty() {
        return;
    }
    t.name = name.to_string();
    if !t.names.iter().any(|n| n == name) {
        t.names.push(name.to_string());
    }
}

/// Sorts intervals, clamps them to `[0, end]` and removes overlaps (a later
/// interval starts where the previous one ended; an interval whose switch-in
/// was not seen is placed from the scheduler's stint, so it may overlap).
/// Their CPU time is kept whatever their placement: only intervals without
/// any are dropped when empty.
fn disjoint(mut v: Vec<Interval>, end: u64) -> Vec<Interval> {
    v.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(v.len());
    for mut i in v {
        i.end_ns = i.end_ns.min(end);
        i.start_ns = i.start_ns.min(i.end_ns);
        if let Some(prev) = out.last() {
            i.start_ns = i.start_ns.max(prev.end_ns);
            i.end_ns = i.end_ns.max(i.start_ns);
        }
        if i.end_ns > i.start_ns || i.cpu_ns > 0 {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod reorder_tests {
    use super::*;

    /// Pops in (time, arrival) order, as one heap of everything would.
    #[test]
    fn reorder_queue_pops_in_time_then_arrival_order() {
        let mut q = ReorderQueue::default();
        // Mostly increasing, with late, equal and early-first times.
        let times = [5u64, 7, 7, 3, 9, 8, 8, 12, 1, 12, 10, 15, 14];
        for (seq, &ts) in times.iter().enumerate() {
            q.push(Queued {
                ts,
                seq: seq as u64,
                item: Box::new(Item::Exe(0, String::new())),
            });
        }
        let mut want: Vec<(u64, u64)> = times
            .iter()
            .enumerate()
            .map(|(seq, &ts)| (ts, seq as u64))
            .collect();
        want.sort();
        assert_eq!(q.first_ts(), Some(1));
        let mut got = Vec::new();
        while let Some(x) = q.pop() {
            got.push((x.ts, x.seq));
        }
        assert_eq!(got, want);
        assert_eq!(q.len(), 0);
    }
}
