//! On-CPU time and intervals: `tp_btf/sched_switch` (program `sched_switch`
//! in `ebpf/sched.bpf.h`) sends one ON_CPU record each time a traced thread
//! is switched out, with the scheduler's own CPU count since the thread's
//! previous record (per-tid state in the `threads` map), so a missed switch
//! record never loses CPU time. The same program reads the thread's page
//! fault counters and its process's RSS (`ebpf/faults.bpf.h`,
//! `ebpf/memory.bpf.h`): no program runs per page fault.

use super::BtfProgram;

/// The programs of this family.
pub(super) const PROGRAMS: &[BtfProgram] = &[BtfProgram {
    program: "sched_switch",
    tracepoint: "sched_switch",
}];
