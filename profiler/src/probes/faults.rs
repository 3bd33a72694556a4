//! User-mode page faults: `tp_btf/page_fault_user` (program in
//! `ebpf/faults.bpf.h`) counts them per thread in the kernel and sends a
//! FAULTS record per thread per millisecond of faulting and at each
//! switch-out, instead of a record per fault.

use super::BtfProgram;

/// The programs of this family.
pub(super) const PROGRAMS: &[BtfProgram] = &[BtfProgram {
    program: "page_fault_user",
    tracepoint: "page_fault_user",
}];
