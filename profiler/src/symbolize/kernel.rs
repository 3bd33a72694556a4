//! Kernel addresses → symbols from `/proc/kallsyms` (through blazesym).

use blazesym::MaybeDefault;
use blazesym::symbolize::source::{Kernel, Source};

/// The blazesym source for the running kernel: kallsyms only. `vmlinux` lookup is off
/// (Debian ships no vmlinux with DWARF; searching `/boot` costs time for nothing).
pub fn source() -> Source<'static> {
    Source::Kernel(Kernel {
        kallsyms: MaybeDefault::Default,
        vmlinux: MaybeDefault::None,
        ..Kernel::default()
    })
}

/// Whether kallsyms shows real addresses (root, or `kptr_restrict` = 0). Without them
/// every kernel address stays `[unknown]`: say so rather than mis-symbolize.
pub fn kallsyms_readable() -> bool {
    std::fs::read_to_string("/proc/kallsyms")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.split(' ').next())
                .and_then(|a| u64::from_str_radix(a, 16).ok())
        })
        .is_some_and(|a| a != 0)
}
