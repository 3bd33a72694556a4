//! Frames framehop cannot unwind by itself: functions that realign their stack. gcc's
//! prologue for them (`lea 0x8(%rsp),%r10; and $-32,%rsp; push -0x8(%r10); push %rbp;
//! mov %rsp,%rbp; push %r10`, Mono's thread-pool `worker_thread` among them) states the
//! CFA as an expression that reads memory (`DW_OP_breg6 (rbp) -8; DW_OP_deref`).
//! framehop's evaluator reads no memory, falls back to the frame pointer, finds the right
//! return address but the wrong caller stack pointer, and the next frame goes astray.
//!
//! [`find`] lists the functions of an `.eh_frame` whose CFA is ever such an expression
//! (once per file); [`step`] unwinds a frame in one of them with gimli's evaluator,
//! reading the copied stack.

use std::ops::Range;

use framehop::x86_64::UnwindRegsX86_64;
use gimli::{
    BaseAddresses, CallFrameInstruction, CfaRule, CieOrFde, EhFrame, EvaluationResult,
    LittleEndian, Location, RegisterRule, UnwindContext, UnwindSection, Value, X86_64,
};

/// Where an `.eh_frame` is, as stated in the file.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    pub eh_frame_svma: u64,
    pub text_svma: u64,
}

impl Tables {
    fn bases(self) -> BaseAddresses {
        BaseAddresses::default()
            .set_eh_frame(self.eh_frame_svma)
            .set_text(self.text_svma)
    }
}

/// What one pass over an `.eh_frame` finds.
#[derive(Debug, Default)]
pub struct Found {
    /// Stated address ranges of the functions whose CFA is an expression, sorted.
    pub realigned: Vec<Range<u64>>,
    /// Stated address ranges some FDE covers, sorted and merged.
    pub covered: Vec<Range<u64>>,
}

/// One pass over the FDEs of an `.eh_frame`.
pub fn find(eh_frame: &[u8], tables: Tables) -> Found {
    let eh = EhFrame::new(eh_frame, LittleEndian);
    let bases = tables.bases();
    let mut out = Found::default();
    let mut entries = eh.entries(&bases);
    while let Ok(Some(entry)) = entries.next() {
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let Ok(fde) = partial.parse(EhFrame::cie_from_offset) else {
            continue;
        };
        let range = fde.initial_address()..fde.initial_address() + fde.len();
        out.covered.push(range.clone());
        let mut instructions = fde.instructions(&eh, &bases);
        while let Ok(Some(i)) = instructions.next() {
            if matches!(i, CallFrameInstruction::DefCfaExpression { .. }) {
                out.realigned.push(range);
                break;
            }
        }
    }
    out.realigned.sort_by_key(|r| r.start);
    out.covered.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(out.covered.len());
    for r in out.covered.drain(..) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    out.covered = merged;
    out
}

/// Whether stated address `svma` is in one of `ranges` (from [`find`]).
pub fn contains(ranges: &[Range<u64>], svma: u64) -> bool {
    let i = ranges.partition_point(|r| r.start <= svma);
    i > 0 && ranges[i - 1].contains(&svma)
}

/// Unwinds one frame at stated address `svma` with the full DWARF evaluator: sets
/// `regs` to the caller's and returns the return address; None when the tables or
/// the stack do not give one.
pub fn step(
    eh_frame: &[u8],
    tables: Tables,
    svma: u64,
    regs: &mut UnwindRegsX86_64,
    read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
) -> Option<u64> {
    let eh = EhFrame::new(eh_frame, LittleEndian);
    let bases = tables.bases();
    let fde = eh
        .fde_for_address(&bases, svma, EhFrame::cie_from_offset)
        .ok()?;
    let mut ctx = UnwindContext::new();
    let row = fde
        .unwind_info_for_address(&eh, &bases, &mut ctx, svma)
        .ok()?;
    let encoding = fde.cie().encoding();
    let (sp, bp) = (regs.sp(), regs.bp());
    let reg = |r: gimli::Register| match r {
        X86_64::RSP => Some(sp),
        X86_64::RBP => Some(bp),
        _ => None,
    };
    let mut eval_address = |expr: gimli::UnwindExpression<usize>| -> Option<u64> {
        let expr = expr.get(&eh).ok()?;
        let mut eval = expr.evaluation(encoding);
        let mut result = eval.evaluate().ok()?;
        loop {
            result = match result {
                EvaluationResult::Complete => break,
                EvaluationResult::RequiresRegister { register, .. } => eval
                    .resume_with_register(Value::Generic(reg(register)?))
                    .ok()?,
                EvaluationResult::RequiresMemory {
                    address, size: 8, ..
                } => eval
                    .resume_with_memory(Value::Generic(read_stack(address).ok()?))
                    .ok()?,
                _ => return None,
            };
        }
        match eval.as_result().last()?.location {
            Location::Address { address } => Some(address),
            _ => None,
        }
    };
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => {
            reg(*register)?.checked_add_signed(*offset)?
        }
        CfaRule::Expression(e) => eval_address(*e)?,
    };
    let saved = |rule: RegisterRule<usize>,
                 eval_address: &mut dyn FnMut(gimli::UnwindExpression<usize>) -> Option<u64>|
     -> Option<Option<u64>> {
        match rule {
            RegisterRule::Offset(o) => Some(Some(cfa.checked_add_signed(o)?)),
            RegisterRule::Expression(e) => Some(Some(eval_address(e)?)),
            RegisterRule::Undefined | RegisterRule::SameValue => Some(None),
            _ => None,
        }
    };
    let rule = |r| row.register(r).unwrap_or(RegisterRule::SameValue);
    let ra_at = saved(rule(X86_64::RA), &mut eval_address)?.unwrap_or(cfa - 8);
    let bp_at = saved(rule(X86_64::RBP), &mut eval_address)?;
    let ra = read_stack(ra_at).ok()?;
    let new_bp = match bp_at {
        Some(at) => read_stack(at).ok()?,
        None => bp,
    };
    if cfa <= sp {
        return None;
    }
    regs.set_ip(ra);
    regs.set_sp(cfa);
    regs.set_bp(new_bp);
    Some(ra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_lookup() {
        let r = vec![10..20, 30..40];
        assert!(contains(&r, 10) && contains(&r, 39));
        assert!(!contains(&r, 5) && !contains(&r, 20) && !contains(&r, 40));
        assert!(!contains(&[], 1));
    }
}
