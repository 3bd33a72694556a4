//! On-CPU intervals: `tp_btf/sched_switch` (program `sched_switch` in
//! `ebpf/sched.bpf.h`) sends one ON_CPU record each time a traced thread is
//! switched out, using the per-tid `oncpu_start` map.

use super::BtfProgram;

/// The programs of this family.
pub(super) const PROGRAMS: &[BtfProgram] = &[BtfProgram {
    program: "sched_switch",
    tracepoint: "sched_switch",
}];
