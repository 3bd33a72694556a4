//! Unwinding sampled user stacks: registers and a copy of the top of the stack (a
//! STACK_COPY record) → return addresses, leaf first, ending in one honest frame when
//! the walk could not reach the stack's root.
//!
//! framehop (samply's unwinder) walks with each mapped object's call frame information
//! (`.eh_frame`/`.debug_frame`), so code built without frame pointers (glibc, mono-sgen,
//! `-fomit-frame-pointer`) unwinds; wherever no unwind entry covers an address — JIT
//! code in anonymous or memfd memory, V8's embedded builtins, a file without tables — it
//! follows the frame pointer for that frame and goes back to the tables at the next one.
//!
//! No garbage: a return address outside every executable mapping of the process and
//! outside the JIT code its perf map names ends the walk, and so does an unreadable
//! stack slot; the stack then gets one end marker
//! ([`Unwound::end`]): `[truncated]`, or `[no unwind info: MODULE]` when the last frame's
//! file has no tables.
//!
//! The mappings and file handles come from the [`Symbolizer`]'s snapshot of the process,
//! taken through its own mount namespace while it was alive; unwinding itself needs
//! nothing from the process, so samples are unwound as they arrive.

mod elf;
mod exec;
mod realign;

use std::collections::HashMap;
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{FrameAddress, Unwinder};

use crate::events::StackCopy;
use crate::symbolize::Symbolizer;
use crate::symbolize::process::{self, Mapping};
pub use elf::{ElfError, ElfUnwindInfo, Section};
pub use exec::{EXEC, ExecRanges};

/// Deepest user stack kept; deeper ones end in `[truncated]`.
pub const MAX_FRAMES: usize = 512;

/// The end marker of a walk stopped by a bad return address or stack slot.
pub const TRUNCATED: &str = "[truncated]";

/// One unwound user stack.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unwound {
    /// The interrupted instruction, then return addresses.
    pub addrs: Vec<u64>,
    /// `None`: the walk reached the root of the stack. Else the one frame that says
    /// why it stopped: [`TRUNCATED`] or `[no unwind info: MODULE]`.
    pub end: Option<String>,
}

/// The caller of an interrupted instruction that no FDE of its file covers.
/// framehop takes the top of the stack as the return address there (right for a
/// stub that pushed nothing: a PLT entry, a system call wrapper), else follows
/// the frame pointer. Code without tables that keeps a frame pointer (V8's
/// embedded builtins, once they set up their frame) has something else on top
/// of its stack: when the top of the stack is not code and the frame pointer
/// leads, within the copied stack, to a return address that is, that is the
/// caller. None: leave the frame to framehop.
fn uncovered_leaf_step(
    regs: &mut UnwindRegsX86_64,
    read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
    is_code: impl Fn(u64) -> bool,
) -> Option<u64> {
    let (sp, bp) = (regs.sp(), regs.bp());
    if read_stack(sp).is_ok_and(|top| is_code(top.wrapping_sub(1))) || bp < sp {
        return None;
    }
    let ra = read_stack(bp.checked_add(8)?).ok()?;
    let caller_bp = read_stack(bp).ok()?;
    if !is_code(ra.wrapping_sub(1)) {
        return None;
    }
    regs.set_ip(ra);
    regs.set_sp(bp + 16);
    regs.set_bp(caller_bp);
    Some(ra)
}

/// File offset of `addr` in mapping `m` (for logs).
fn a_offset(m: &Mapping, addr: Option<&u64>) -> u64 {
    addr.map_or(0, |a| a - m.start + m.offset)
}

/// framehop state of one process, rebuilt when its mappings change.
struct ProcessUnwinder {
    generation: u64,
    unwinder: UnwinderX86_64<Section>,
    /// CLOCK_MONOTONIC ns of the last re-read of the mappings for a sample.
    last_refresh_ns: u64,
}

/// Unwinds the user stacks of sampled processes.
pub struct StackUnwinder {
    /// Per mapped file (`dev`, inode): its tables, or None when it has none readable.
    objects: HashMap<(String, u64), Option<Arc<ElfUnwindInfo>>>,
    processes: HashMap<u32, ProcessUnwinder>,
    cache: CacheX86_64,
    /// The kernel's exec functions (read at the first sample with a kernel stack).
    exec: Option<ExecRanges>,
}

impl Default for StackUnwinder {
    fn default() -> Self {
        Self::new()
    }
}

impl StackUnwinder {
    pub fn new() -> Self {
        StackUnwinder {
            objects: HashMap::new(),
            processes: HashMap::new(),
            cache: CacheX86_64::new(),
            exec: None,
        }
    }

    /// Drops what is kept of `pid` (pid reused by a new process).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// Unwinds `copy` of process `pid`, whose mappings `sym` has observed. When an
    /// address falls outside them and the sample was taken after the last re-read of
    /// the mappings (code mapped since: a JIT's new code chunk), they are re-read and
    /// the walk is done again. So at most one re-read per batch of samples, and none
    /// for garbage in samples older than the last one.
    ///
    /// A sample taken inside `execve` has no user stack: it is the one frame [`EXEC`]
    /// (see [`exec`]). A sample whose interrupted instruction is in none of the
    /// process's mappings was taken before its exec, in the image it had from its
    /// parent (a child between fork and exec: lxprof's own pre-exec set-up of an
    /// emulated environment, a shell's fork): it is walked again with the parent's
    /// mappings added where they overlap none of its own (see
    /// [`Symbolizer::inherit_parent_mappings`]).
    pub fn unwind(&mut self, sym: &mut Symbolizer, pid: u32, copy: &StackCopy) -> Unwound {
        if !copy.kernel.is_empty()
            && self
                .exec
                .get_or_insert_with(ExecRanges::from_kallsyms)
                .contains_stack(&copy.kernel)
        {
            return Unwound {
                addrs: Vec::new(),
                end: Some(EXEC.to_string()),
            };
        }
        let (mut unwound, unmapped) = self.walk(sym, pid, copy);
        if unmapped
            && let Some(p) = self.processes.get_mut(&pid)
            && copy.header.ts_ns >= p.last_refresh_ns
        {
            p.last_refresh_ns = crate::record::monotonic_ns();
            // A perf map error still leaves the mappings refreshed: walk again anyway.
            if let Err(e) = sym.refresh(pid) {
                tracing::trace!("pid {pid}: {e}");
            }
            let (again, still) = self.walk(sym, pid, copy);
            if still {
                tracing::trace!(
                    "pid {pid}: {:x?} still outside the mappings",
                    again.addrs.last()
                );
            }
            unwound = again;
        }
        if unwound.addrs.is_empty() && sym.inherit_parent_mappings(pid) {
            unwound = self.walk(sym, pid, copy).0;
        }
        unwound
    }

    /// One walk; also says whether it stopped at an address outside the mappings.
    fn walk(&mut self, sym: &Symbolizer, pid: u32, copy: &StackCopy) -> (Unwound, bool) {
        let Some((mappings, generation)) = sym.mappings(pid) else {
            return (
                Unwound {
                    addrs: vec![copy.ip],
                    end: Some(TRUNCATED.to_string()),
                },
                false,
            );
        };
        self.update(sym, pid, mappings, generation);
        let Some(p) = self.processes.get(&pid) else {
            return (Unwound::default(), false);
        };
        let stack = &copy.stack;
        let sp = copy.sp;
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let off = usize::try_from(addr.checked_sub(sp).ok_or(())?).map_err(|_| ())?;
            let bytes = stack.get(off..off.checked_add(8).ok_or(())?).ok_or(())?;
            Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
        };
        let mut regs = UnwindRegsX86_64::new(copy.ip, copy.sp, copy.bp);
        let mut frame = FrameAddress::InstructionPointer(copy.ip);
        let mut out = Unwound::default();
        let mut unmapped = false;
        loop {
            let addr = frame.address();
            let lookup = frame.address_for_lookup();
            if !sym.is_code(pid, lookup) {
                tracing::trace!(
                    "pid {pid}: {addr:#x} after {:x?} is in no executable mapping (sp {sp:#x}, {} bytes, top {:#x})",
                    out.addrs.last(),
                    stack.len(),
                    copy.stack_top
                );
                unmapped = true;
                out.end = self.end_marker(sym, mappings, out.addrs.last());
                break;
            }
            if out.addrs.len() == MAX_FRAMES {
                out.end = Some(TRUNCATED.to_string());
                break;
            }
            out.addrs.push(addr);
            // framehop walks, except frames of functions that realign their stack,
            // and an interrupted instruction the tables say nothing about whose top
            // of stack is no return address (see `uncovered_leaf_step`).
            let file = process::find(mappings, lookup).and_then(|m| {
                let info = self.objects.get(&(m.dev.clone(), m.inode))?.as_ref()?;
                let base = info.base_avma(m.start, m.offset)?;
                Some((info, lookup.wrapping_sub(base)))
            });
            let realigned =
                file.and_then(|(info, svma)| info.realigned_step(svma, &mut regs, &mut read_stack));
            let leaf = match (&frame, file) {
                (FrameAddress::InstructionPointer(_), Some((info, svma)))
                    if realigned.is_none() && info.is_uncovered(svma) =>
                {
                    uncovered_leaf_step(&mut regs, &mut read_stack, |a| sym.is_code(pid, a))
                }
                _ => None,
            };
            let caller = match (realigned, leaf) {
                (Some(Some(ra)), _) => Ok(Some(ra)),
                (Some(None), _) => Err(framehop::Error::DidNotAdvance),
                (None, Some(ra)) => Ok(Some(ra)),
                (None, None) => {
                    p.unwinder
                        .unwind_frame(frame, &mut regs, &mut self.cache, &mut read_stack)
                }
            };
            match caller {
                Ok(Some(ra)) => match FrameAddress::from_return_address(ra) {
                    Some(f) => frame = f,
                    None => {
                        out.end = self.end_marker(sym, mappings, out.addrs.last());
                        break;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    tracing::trace!(
                        "pid {pid}: walk stopped after {:x?} in {:?}: {e} (sp {sp:#x}, {} bytes, top {:#x})",
                        out.addrs.last(),
                        out.addrs
                            .last()
                            .and_then(|&a| process::find(mappings, a))
                            .map(|m| (m.module_name(), a_offset(m, out.addrs.last()))),
                        stack.len(),
                        copy.stack_top
                    );
                    // A read above the top of a stack copied whole: the last frame was
                    // the outermost one (ld.so's `_start` has no end marker).
                    let past_top = matches!(e, framehop::Error::CouldNotReadStack(a)
                        if copy.stack_top != 0
                            && sp + stack.len() as u64 >= copy.stack_top
                            && a >= copy.stack_top);
                    if !past_top {
                        out.end = self.end_marker(sym, mappings, out.addrs.last());
                    }
                    break;
                }
            }
        }
        (out, unmapped)
    }

    /// Why a walk stopped after the frame at `last`: None when that frame is a
    /// program's entry code (the root: nothing is above it); else that frame's file
    /// has no unwind tables, or (tables, JIT code, nothing walked) the stack ran out
    /// or went bad.
    fn end_marker(
        &self,
        sym: &Symbolizer,
        mappings: &[Mapping],
        last: Option<&u64>,
    ) -> Option<String> {
        let truncated = Some(TRUNCATED.to_string());
        let Some((addr, m)) = last.and_then(|&a| Some((a, process::find(mappings, a)?))) else {
            return truncated;
        };
        if !m.is_file() || sym.mapped_file(m).is_none() {
            return truncated;
        }
        let info = self
            .objects
            .get(&(m.dev.clone(), m.inode))
            .and_then(|o| o.as_ref());
        match info {
            Some(i) if i.has_cfi() => {
                let root = i
                    .base_avma(m.start, m.offset)
                    .is_some_and(|base| i.is_entry_code(addr.wrapping_sub(base)));
                if root { None } else { truncated }
            }
            _ => Some(format!("[no unwind info: {}]", m.module_name())),
        }
    }

    /// Rebuilds `pid`'s framehop modules when its mappings changed.
    fn update(&mut self, sym: &Symbolizer, pid: u32, mappings: &[Mapping], generation: u64) {
        if self
            .processes
            .get(&pid)
            .is_some_and(|p| p.generation == generation)
        {
            return;
        }
        let mut unwinder = UnwinderX86_64::new();
        for m in mappings.iter().filter(|m| m.is_file()) {
            let Some(file) = sym.mapped_file(m) else {
                continue;
            };
            let info = self
                .objects
                .entry((m.dev.clone(), m.inode))
                .or_insert_with(|| match ElfUnwindInfo::read(file) {
                    Ok(i) => Some(Arc::new(i)),
                    Err(e) => {
                        tracing::debug!("unwind tables of {}: {e}", m.path);
                        None
                    }
                });
            let Some(info) = info.as_ref().filter(|i| i.has_cfi()) else {
                continue;
            };
            let Some(base) = info.base_avma(m.start, m.offset) else {
                continue;
            };
            unwinder.add_module(info.module(m.module_name(), m.start..m.end, base));
        }
        let last_refresh_ns = self.processes.get(&pid).map_or(0, |p| p.last_refresh_ns);
        self.processes.insert(
            pid,
            ProcessUnwinder {
                generation,
                unwinder,
                last_refresh_ns,
            },
        );
    }
}

#[cfg(test)]
mod tests;
