//! Samples taken inside `execve`: the thread is replacing its program. Its user
//! registers are still the old program's (its call of `execve`), whose mappings are
//! being or have been torn down, and the new program has not run an instruction: there
//! is no user stack to unwind. Such a sample's user stack is one frame, [`EXEC`],
//! beside its kernel frames (which say where in `execve` the time went).
//!
//! Whether a kernel stack is in `execve` is read from its return addresses: the
//! address ranges of the kernel's exec functions, from `/proc/kallsyms` (read once).

use std::ops::Range;

/// The one user frame of a sample taken inside `execve`.
pub const EXEC: &str = "[exec]";

/// Kernel functions every `execve` runs through (system call entries, the common
/// path and the binary loaders). Compiler suffixes (`.isra.0`, `.constprop.0`) are
/// ignored.
const EXEC_FUNCTIONS: &[&str] = &[
    "__x64_sys_execve",
    "__x64_sys_execveat",
    "__ia32_sys_execve",
    "__ia32_sys_execveat",
    "__ia32_compat_sys_execve",
    "__ia32_compat_sys_execveat",
    "do_execveat_common",
    "do_execve",
    "kernel_execve",
    "bprm_execve",
    "exec_binprm",
    "search_binary_handler",
    "load_elf_binary",
    "load_script",
    "load_misc_binary",
    "begin_new_exec",
];

/// Address ranges of the kernel's exec functions.
#[derive(Debug, Default)]
pub struct ExecRanges {
    ranges: Vec<Range<u64>>,
}

impl ExecRanges {
    /// From the running kernel's `/proc/kallsyms` (empty when unreadable or when
    /// addresses are hidden: then no sample is taken for one in `execve`).
    pub fn from_kallsyms() -> ExecRanges {
        match std::fs::read_to_string("/proc/kallsyms") {
            Ok(text) => ExecRanges::parse(&text),
            Err(e) => {
                tracing::debug!("/proc/kallsyms: {e}");
                ExecRanges::default()
            }
        }
    }

    /// From a kallsyms text: each exec function runs from its address to the next
    /// higher symbol's.
    pub fn parse(text: &str) -> ExecRanges {
        let mut symbols: Vec<(u64, bool)> = text
            .lines()
            .filter_map(|line| {
                let mut f = line.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?;
                let name = f.next()?;
                if addr == 0 || !matches!(kind, "t" | "T") {
                    return None;
                }
                let base = name.split_once('.').map_or(name, |(b, _)| b);
                Some((addr, EXEC_FUNCTIONS.contains(&base)))
            })
            .collect();
        symbols.sort_unstable_by_key(|s| s.0);
        let ranges = symbols
            .windows(2)
            .filter(|w| w[0].1 && w[1].0 > w[0].0)
            .map(|w| w[0].0..w[1].0)
            .collect();
        ExecRanges { ranges }
    }

    /// Whether a kernel stack (the interrupted address, then return addresses) is
    /// inside `execve`.
    pub fn contains_stack(&self, kernel: &[u64]) -> bool {
        kernel.iter().enumerate().any(|(i, &a)| {
            // A return address is looked up one byte back (the call may end a function).
            let a = if i == 0 { a } else { a.wrapping_sub(1) };
            self.ranges.iter().any(|r| r.contains(&a))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81000000 T _stext
ffffffff81400000 t bprm_execve
ffffffff81400400 t search_binary_handler.isra.0
ffffffff81400600 T do_execveat_common.isra.0
ffffffff81400900 T __x64_sys_execve
ffffffff81400980 T __x64_sys_execveat
ffffffff81400a00 T setup_new_exec
ffffffff81500000 T do_sys_openat2
ffffffff81500400 D some_data
";

    #[test]
    fn exec_stacks_are_recognized_by_their_functions() {
        let r = ExecRanges::parse(KALLSYMS);
        assert!(!r.is_empty());
        // do_sys_openat2 called from __x64_sys_execve's range: in execve.
        assert!(r.contains_stack(&[0xffffffff81500010, 0xffffffff81400920]));
        // A return address right after a call ending bprm_execve is still in it.
        assert!(r.contains_stack(&[0xffffffff81500010, 0xffffffff81400400]));
        assert!(!r.contains_stack(&[0xffffffff81500010, 0xffffffff81400a20]));
        assert!(!r.contains_stack(&[]));
    }

    #[test]
    fn hidden_addresses_give_no_ranges() {
        let r = ExecRanges::parse("0000000000000000 T bprm_execve\n0000000000000000 T x\n");
        assert!(r.is_empty());
    }
}
