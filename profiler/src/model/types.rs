//! Plain-data types of a finished [`Recording`].

use serde::{Deserialize, Serialize};

/// Facts about the recording that do not come from the event stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    /// The command line recorded (`lxprof record -- CMD ARGS`), or the
    /// command line of `--pid PID`.
    pub command: Vec<String>,
    /// The process lxprof launched or attached to.
    pub root_pid: Option<u32>,
    /// Records dropped because the ring buffer was full (sum of `lost_per_cpu`).
    pub lost_events: u64,
    /// Dropped records per CPU.
    pub lost_per_cpu: Vec<u64>,
    /// Records that could not be decoded.
    pub decode_errors: u64,
    /// `uname -r` of the recording machine.
    pub kernel_release: String,
    /// perf-event totals of the traced tree, if perf events were available.
    pub perf: Option<PerfCounts>,
    /// What the kernel programs counted about their own view of scheduling.
    #[serde(default)]
    pub sched: SchedCounters,
}

/// The kernel side's own counts about the scheduler events it saw (none of
/// them loses CPU time: the next record of a thread carries it), for the
/// report's CPU check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedCounters {
    /// Switch-outs of a traced thread whose switch-in was not seen (a thread
    /// on a CPU when it became traced, or a missed program run).
    pub no_switch_in: u64,
    /// Records that carried CPU of stints whose own records were missed.
    pub cpu_carried: u64,
    /// Threads or children not tracked: a kernel map was full.
    pub map_full: u64,
    /// Per-thread state updates refused although the map was not full.
    pub map_busy: u64,
    /// Program runs the kernel skipped because another BPF program was
    /// running on that CPU, by program.
    pub recursion_misses: Vec<(String, u64)>,
}

/// perf-event counters of the whole traced tree (inherited from exec): a
/// cross-check of the eBPF figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerfCounts {
    pub task_clock_ns: u64,
    pub page_faults_minor: u64,
    pub page_faults_major: u64,
    pub context_switches: u64,
}

/// Everything recorded, ready for the exporters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recording {
    /// Length of the recording in ns (end − start).
    pub duration_ns: u64,
    /// Processes sorted by pid, then start (a pid reused during the
    /// recording appears once per process that had it).
    pub processes: Vec<Process>,
    pub info: RecordingInfo,
}

impl Recording {
    /// The process with this pid (the latest one if the pid was reused).
    pub fn process(&self, pid: u32) -> Option<&Process> {
        let end = self.processes.partition_point(|p| p.pid <= pid);
        end.checked_sub(1)
            .map(|i| &self.processes[i])
            .filter(|p| p.pid == pid)
    }

    /// For each process (in `processes` order), the entry of `roots` of the
    /// nearest of itself and its ancestors that has one (None: no such
    /// ancestor). The walk is bounded, so a pid cycle cannot loop forever.
    pub fn nearest_ancestor_in<'a, T>(
        &self,
        roots: &'a std::collections::HashMap<u32, T>,
    ) -> Vec<Option<&'a T>> {
        self.processes
            .iter()
            .map(|p| {
                if let Some(t) = roots.get(&p.pid) {
                    return Some(t);
                }
                let (mut pid, mut ppid) = (p.pid, p.ppid);
                for _ in 0..64 {
                    if ppid == 0 || ppid == pid {
                        break;
                    }
                    if let Some(t) = roots.get(&ppid) {
                        return Some(t);
                    }
                    pid = ppid;
                    ppid = self.process(pid).map_or(0, |q| q.ppid);
                }
                None
            })
            .collect()
    }

    /// Sum of eBPF on-CPU time over all processes.
    pub fn total_cpu_ns(&self) -> u64 {
        self.processes.iter().map(|p| p.cpu_ns).sum()
    }
}

/// How a process ended, decoded from the kernel's wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitStatus {
    /// `exit(code)` value when the process exited normally.
    pub code: Option<i32>,
    /// Terminating signal when the process was killed.
    pub signal: Option<i32>,
    /// A core dump was written.
    pub core_dumped: bool,
    /// The raw wait status `(code << 8) | signal`.
    pub raw: u32,
}

impl ExitStatus {
    /// Decodes a wait status as `waitpid` would (`WIFEXITED`, `WTERMSIG`, …).
    pub fn from_wait_status(raw: u32) -> ExitStatus {
        let signal = (raw & 0x7f) as i32;
        if signal == 0 {
            ExitStatus {
                code: Some(((raw >> 8) & 0xff) as i32),
                signal: None,
                core_dumped: false,
                raw,
            }
        } else {
            ExitStatus {
                code: None,
                signal: Some(signal),
                core_dumped: raw & 0x80 != 0,
                raw,
            }
        }
    }
}

/// A successful execve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecRecord {
    /// When, relative to the recording start.
    pub ts_ns: u64,
    /// The thread that called exec (it became the leader, tid == pid).
    pub old_tid: u32,
    pub filename: String,
    /// Process name after the exec.
    pub comm: String,
}

/// The resident-set counters of a process at one moment, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RssSample {
    pub ts_ns: u64,
    pub file: u64,
    pub anon: u64,
    pub shmem: u64,
    /// Swapped out (not resident; not part of [`RssSample::rss`]).
    pub swap: u64,
}

impl RssSample {
    /// Resident set: file + anon + shmem.
    pub fn rss(&self) -> u64 {
        self.file + self.anon + self.shmem
    }
}

/// Longer than any FAULTS record's span (a thread's faults are sent at least
/// every millisecond, and at each switch-out).
const MAX_BATCH_NS: u64 = 1_000_000_000;

/// One interval on a CPU, relative ns, `start_ns <= end_ns`, with the CPU
/// time the scheduler counted for it (`cpu_ns`: usually the interval's
/// length; less when the hypervisor stole time; more when it also carries the
/// CPU of stints whose switch records the kernel program missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Interval {
    pub start_ns: u64,
    pub end_ns: u64,
    pub cpu_ns: u64,
}

impl Interval {
    /// An interval whose CPU time is its length.
    pub fn new(start_ns: u64, end_ns: u64) -> Interval {
        Interval {
            start_ns,
            end_ns,
            cpu_ns: end_ns.saturating_sub(start_ns),
        }
    }

    pub fn len_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// The part of `cpu_ns` inside `[from, to)`, in proportion to the
    /// overlap (all of it when the interval is empty and starts inside).
    pub fn cpu_within(&self, from: u64, to: u64) -> u64 {
        let len = self.len_ns();
        if len == 0 {
            return if (from..to).contains(&self.start_ns) {
                self.cpu_ns
            } else {
                0
            };
        }
        let overlap = self.end_ns.min(to).saturating_sub(self.start_ns.max(from));
        if overlap == len {
            return self.cpu_ns;
        }
        (u128::from(self.cpu_ns) * u128::from(overlap) / u128::from(len)) as u64
    }
}

/// User page faults of a thread counted in the kernel between `first_ns`
/// and `last_ns` (relative ns), one FAULTS record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FaultBatch {
    pub last_ns: u64,
    pub first_ns: u64,
    pub count: u64,
}

impl FaultBatch {
    /// One fault at `ns`.
    pub fn at(ns: u64) -> FaultBatch {
        FaultBatch {
            first_ns: ns,
            last_ns: ns,
            count: 1,
        }
    }

    /// The faults inside `[from, to)`, in proportion to the overlap.
    pub fn count_within(&self, from: u64, to: u64) -> u64 {
        let len = self.last_ns.saturating_sub(self.first_ns);
        if len == 0 {
            return if (from..to).contains(&self.first_ns) {
                self.count
            } else {
                0
            };
        }
        let overlap = self.last_ns.min(to).saturating_sub(self.first_ns.max(from));
        if self.first_ns >= from && self.last_ns < to {
            return self.count;
        }
        (u128::from(self.count) * u128::from(overlap) / u128::from(len)) as u64
    }
}

/// A thread (kernel task) of a process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Thread {
    pub tid: u32,
    /// Latest name (comm).
    pub name: String,
    /// Every name seen, in order, without repeats.
    pub names: Vec<String>,
    /// First seen (creation, or 0 when it existed before the recording).
    pub start_ns: u64,
    /// Exit time; the recording end when still alive (see `exited`).
    pub end_ns: u64,
    /// An EXIT record was seen and the tid was not reused after it.
    pub exited: bool,
    /// CPU time within the recording: the scheduler's own count
    /// (se.sum_exec_runtime) at each switch-out, summed over `intervals`.
    pub cpu_ns: u64,
    /// The kernel's CPU count for the same span, to check `cpu_ns` against:
    /// its lifetime total at the last record or its exit, minus its total
    /// when first seen. None without records.
    pub cpu_kernel_ns: Option<u64>,
    /// `cpu_kernel_ns - cpu_ns` when positive: CPU whose records were lost
    /// (ring buffer full at a thread's last switch-out). 0 normally.
    pub cpu_missing_ns: u64,
    /// On-CPU intervals, sorted, never overlapping (clamped to the recording).
    pub intervals: Vec<Interval>,
    /// Lifetime CPU time from EXIT records (scheduler accounting; includes
    /// CPU before the recording for threads that existed before it).
    pub exit_cpu_ns: Option<u64>,
    /// Minor faults from EXIT records (exact kernel counter), if it exited.
    pub exit_min_flt: Option<u64>,
    /// Major faults from EXIT records (exact kernel counter), if it exited.
    pub exit_maj_flt: Option<u64>,
    /// Page faults counted by the FAULTS records of this thread.
    pub fault_events: u64,
    /// Exec by a non-leader thread: this tid continued as the leader (tid == pid)
    /// from this time on; its later figures are on the leader's thread.
    pub became_leader_ns: Option<u64>,
    /// cpu-clock stack samples of this thread, in time order (empty unless
    /// `lxprof record --freq`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<StackSample>,
    /// Runs of consecutive JIT or GC samples, in time order (set by
    /// [`crate::explain`]; `trace.json` draws them as `JIT` / `GC` slices).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub category_runs: Vec<CategoryRun>,
}

/// Consecutive stack samples of one thread in one category, relative ns:
/// from the first sample to the last one plus one sampling interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CategoryRun {
    pub category: crate::stacks::Category,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Samples in the run.
    pub samples: u32,
}

/// One cpu-clock sample of a thread: raw return addresses, leaf first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StackSample {
    /// Relative ns.
    pub ts_ns: u64,
    /// Id in the kernel's `stacks` map (None: the user stack could not be taken).
    pub user_stack_id: Option<u32>,
    pub kernel_stack_id: Option<u32>,
    /// User-space addresses (empty when unknown).
    pub user: Vec<u64>,
    /// Kernel addresses (empty when the sample was taken in user mode).
    pub kernel: Vec<u64>,
    /// When the user stack's walk stopped short of its root: the one frame that
    /// says why (`[truncated]`, `[no unwind info: libfoo.so]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_end: Option<String>,
}

/// A process (thread group) of the traced tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// Parent pid (from FORK, or `/proc` for seeded processes); 0 if unknown.
    pub ppid: u32,
    /// Latest name (comm of the leader).
    pub comm: String,
    /// Name right after the latest exec, if one was recorded.
    pub exec_comm: Option<String>,
    /// Executable: the latest exec's file name, or `/proc/PID/exe`.
    pub exe: Option<String>,
    /// Arguments (`/proc/PID/cmdline` read by the recorder; inherited from
    /// the parent on fork; empty when unknown).
    pub cmdline: Vec<String>,
    /// "command" for the root process, "descendant" for the others, unless
    /// set with [`ModelBuilder::set_role`](super::ModelBuilder::set_role).
    pub role: String,
    /// Fork time; 0 for processes alive when the recording started.
    pub start_ns: u64,
    /// Exit time of the last thread; the recording end when still alive.
    pub end_ns: u64,
    /// How it ended; `None` when still alive at the end.
    pub exit: Option<ExitStatus>,
    /// Sum of the threads' eBPF on-CPU time.
    pub cpu_ns: u64,
    /// Sum of the EXIT records' lifetime CPU time, when every thread exited.
    pub exit_cpu_ns: Option<u64>,
    /// Minor page faults: EXIT counters of exited threads, plus the FAULTS
    /// records of threads still alive at the end (counted as minor).
    pub page_faults_minor: u64,
    /// Major page faults from EXIT counters (threads still alive add none).
    pub page_faults_major: u64,
    /// True when every thread exited, so both fault counts are the kernel's.
    pub page_faults_exact: bool,
    /// Highest file + anon + shmem seen since the latest exec (before an
    /// exec, the memory is the image inherited from the parent).
    pub max_rss_bytes: u64,
    /// RSS after every change, in time order.
    pub rss: Vec<RssSample>,
    /// The FAULTS records of its threads, sorted by `last_ns` (for
    /// fault-rate counters and per-phase attribution).
    pub faults: Vec<FaultBatch>,
    /// Execs recorded, in order.
    pub execs: Vec<ExecRecord>,
    /// Threads sorted by tid, then start (a reused tid appears once per thread).
    pub threads: Vec<Thread>,
    /// CPU time split into app / JIT / GC / runtime / kernel from stack
    /// samples, scaled to `cpu_ns` (set by [`crate::explain`]; None without
    /// samples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<crate::classify::CategoryTotals>,
    /// Managed runtime detected for the classification (set with `categories`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<crate::classify::Runtime>,
    /// Allocation totals (None when allocations were not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alloc: Option<AllocTotals>,
    /// Every allocation record in time order (for per-phase attribution and
    /// counters); not serialized.
    #[serde(skip)]
    pub alloc_points: Vec<AllocPoint>,
}

/// Allocation totals of a process (report.json `alloc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AllocTotals {
    /// malloc + calloc + realloc calls (uprobes; 0 with `--alloc syscalls`).
    pub malloc_count: u64,
    /// Bytes requested by those calls.
    pub malloc_bytes: u64,
    /// free calls.
    pub free_count: u64,
    /// Bytes mapped by mmap (anonymous and file) calls.
    pub mmap_bytes: u64,
    /// mmap calls.
    pub mmap_count: u64,
    /// Bytes unmapped by munmap.
    pub munmap_bytes: u64,
    /// Growth of the heap by brk (shrinks not subtracted).
    pub brk_bytes: u64,
}

/// One allocation record of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AllocPoint {
    /// Relative ns.
    pub ts_ns: u64,
    pub tid: u32,
    pub op: AllocOp,
    /// Bytes requested, mapped or grown (0 for free).
    pub bytes: u64,
}

/// What an [`AllocPoint`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocOp {
    Malloc,
    Calloc,
    Realloc,
    Free,
    Mmap,
    Munmap,
    Brk,
}

impl AllocOp {
    /// Allocates memory (counts toward `alloc_bytes`/`alloc_count`).
    pub fn allocates(self) -> bool {
        matches!(
            self,
            AllocOp::Malloc | AllocOp::Calloc | AllocOp::Realloc | AllocOp::Mmap | AllocOp::Brk
        )
    }
}

impl Process {
    /// Page faults in consecutive `bucket_ns` buckets from 0: `(bucket
    /// start, count)` for non-empty buckets, in time order.
    pub fn fault_rate(&self, bucket_ns: u64) -> Vec<(u64, u64)> {
        let bucket_ns = bucket_ns.max(1);
        let mut out: Vec<(u64, u64)> = Vec::new();
        for f in &self.faults {
            // A batch spans at most a millisecond: its bucket is its middle's.
            let mid = f.first_ns + (f.last_ns.saturating_sub(f.first_ns)) / 2;
            let b = mid / bucket_ns * bucket_ns;
            match out.last_mut() {
                Some((start, n)) if *start == b => *n += f.count,
                _ => out.push((b, f.count)),
            }
        }
        out.sort_unstable();
        out.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 += later.1;
            }
            same
        });
        out
    }

    /// Page faults inside `[from, to)` (relative ns).
    pub fn faults_within(&self, from: u64, to: u64) -> u64 {
        // Batches last at most a few ms: skip those that ended long before.
        let first = self
            .faults
            .partition_point(|f| f.last_ns.saturating_add(MAX_BATCH_NS) < from);
        self.faults[first..]
            .iter()
            .take_while(|f| f.first_ns < to.saturating_add(MAX_BATCH_NS))
            .map(|f| f.count_within(from, to))
            .sum()
    }
}
