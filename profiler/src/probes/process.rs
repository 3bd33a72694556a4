//! The process tree: fork (children of traced processes are added to `traced`
//! in the kernel), exec (file name), exit (with the thread's lifetime
//! counters; the process leaves `traced` when its last thread exits) and
//! thread renames. Programs in `ebpf/process.bpf.h`.

use super::BtfProgram;

/// The programs of this family.
pub(super) const PROGRAMS: &[BtfProgram] = &[
    BtfProgram {
        program: "sched_process_fork",
        tracepoint: "sched_process_fork",
    },
    BtfProgram {
        program: "sched_process_exec",
        tracepoint: "sched_process_exec",
    },
    BtfProgram {
        program: "sched_process_exit",
        tracepoint: "sched_process_exit",
    },
    BtfProgram {
        program: "task_rename",
        tracepoint: "task_rename",
    },
];
