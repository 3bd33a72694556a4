//! RSS over time: `tp_btf/rss_stat` (program in `ebpf/memory.bpf.h`), sent
//! only when the counter belongs to the current process's own mm.

use super::BtfProgram;

/// The programs of this family.
pub(super) const PROGRAMS: &[BtfProgram] = &[BtfProgram {
    program: "rss_stat",
    tracepoint: "rss_stat",
}];
