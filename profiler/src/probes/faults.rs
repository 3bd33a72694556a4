//! User-mode page faults with time, address and instruction pointer:
//! `tp_btf/page_fault_user` (program in `ebpf/faults.bpf.h`).

use super::BtfProgram;

/// The programs of this family.
pub(super) const PROGRAMS: &[BtfProgram] = &[BtfProgram {
    program: "page_fault_user",
    tracepoint: "page_fault_user",
}];
