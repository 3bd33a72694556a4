//! Unwinding this test's own stack, copied the way the kernel copies a sampled one.

use super::*;
use crate::events::Header;

/// End of the (any-permission) mapping holding `addr`, from `/proc/self/maps`.
fn mapping_end(addr: u64) -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find_map(|l| {
            let (s, e) = l.split_whitespace().next()?.split_once('-')?;
            let (s, e) = (
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            );
            (s <= addr && addr < e).then_some(e)
        })
        .expect("stack mapping")
}

/// The registers here and a copy of up to `bytes` of the stack above them.
#[inline(never)]
fn copy_own_stack(bytes: u64) -> StackCopy {
    let (ip, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers into outputs; touches no memory.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) bp,
        );
    }
    let len = bytes.min(mapping_end(sp) - sp) as usize;
    let mut stack = vec![0u8; len];
    // SAFETY: [sp, sp + len) is inside this thread's mapped stack (checked above); the
    // frames above sp are live and not written while copying (callees run below sp).
    unsafe { std::ptr::copy_nonoverlapping(sp as *const u8, stack.as_mut_ptr(), len) };
    StackCopy {
        header: Header {
            cpu: 0,
            ts_ns: 0,
            pid: std::process::id(),
            tid: 0,
        },
        ip,
        sp,
        bp,
        stack_top: if len as u64 == mapping_end(sp) - sp {
            sp + len as u64
        } else {
            0
        },
        kernel: Vec::new(),
        stack,
    }
}

#[inline(never)]
fn chain_inner(bytes: u64) -> StackCopy {
    std::hint::black_box(copy_own_stack(bytes))
}

#[inline(never)]
fn chain_outer(bytes: u64) -> StackCopy {
    std::hint::black_box(chain_inner(bytes))
}

fn names(sym: &mut Symbolizer, u: &Unwound) -> Vec<String> {
    sym.symbolize_stack(std::process::id(), &[], &u.addrs)
        .into_iter()
        .map(|f| f.name)
        .collect()
}

#[test]
fn own_stack_unwinds_through_the_chain_to_the_thread_root() {
    let copy = chain_outer(64 * 1024);
    let pid = std::process::id();
    let mut sym = Symbolizer::new();
    sym.observe_process(pid).unwrap();
    let mut un = StackUnwinder::new();
    let u = un.unwind(&mut sym, pid, &copy);
    let n = names(&mut sym, &u);
    let pos = |f: &str| n.iter().position(|x| x.ends_with(f));
    let (a, b, c) = (
        pos("copy_own_stack"),
        pos("chain_inner"),
        pos("chain_outer"),
    );
    assert!(a.is_some() && a < b && b < c, "{n:#?}");
    assert!(
        n.iter()
            .any(|x| x.contains("start_thread") || x.contains("clone")),
        "reaches the thread's root: {n:#?} end {:?}",
        u.end
    );
    assert_eq!(u.end, None, "{n:#?}");
}

#[test]
fn a_short_copy_ends_in_one_truncated_frame() {
    let copy = chain_outer(256);
    let pid = std::process::id();
    let mut sym = Symbolizer::new();
    sym.observe_process(pid).unwrap();
    let u = StackUnwinder::new().unwind(&mut sym, pid, &copy);
    assert_eq!(u.end.as_deref(), Some(TRUNCATED), "{u:?}");
    assert!(!u.addrs.is_empty() && u.addrs.len() < 20, "{u:?}");
}

#[test]
fn garbage_registers_give_no_garbage_frames() {
    let mut copy = chain_outer(4096);
    // A frame pointer walk from an unmapped ip over random stack words.
    copy.ip = 0x10;
    copy.bp = copy.sp + 64;
    for (i, b) in copy.stack.iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    let pid = std::process::id();
    let mut sym = Symbolizer::new();
    sym.observe_process(pid).unwrap();
    let u = StackUnwinder::new().unwind(&mut sym, pid, &copy);
    assert!(u.addrs.is_empty(), "{u:?}");
    assert_eq!(u.end.as_deref(), Some(TRUNCATED));
}

/// A stack as a map of 8-byte slots.
fn stack_of(slots: &[(u64, u64)]) -> impl FnMut(u64) -> Result<u64, ()> + '_ {
    move |addr| {
        slots
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, v)| *v)
            .ok_or(())
    }
}

#[test]
fn uncovered_leaf_follows_the_frame_pointer_only_when_the_top_is_no_return_address() {
    let is_code = |a: u64| (0x7000..0x8000).contains(&a);
    // A frame set up without tables (V8 builtin): context on top, bp → caller.
    let slots = [(0x1000, 0x5), (0x1010, 0x2000), (0x1018, 0x7777)];
    let mut regs = UnwindRegsX86_64::new(0x7100, 0x1000, 0x1010);
    let ra = uncovered_leaf_step(&mut regs, &mut stack_of(&slots), is_code);
    assert_eq!(ra, Some(0x7777));
    assert_eq!((regs.sp(), regs.bp()), (0x1020, 0x2000));
    // A stub that pushed nothing: the top is the return address, framehop's case.
    let slots = [(0x1000, 0x7300), (0x1010, 0x2000), (0x1018, 0x7777)];
    let mut regs = UnwindRegsX86_64::new(0x7100, 0x1000, 0x1010);
    assert_eq!(
        uncovered_leaf_step(&mut regs, &mut stack_of(&slots), is_code),
        None
    );
    // A frame pointer that leads nowhere: left to framehop.
    let slots = [(0x1000, 0x5), (0x1010, 0x2000), (0x1018, 0x9999)];
    let mut regs = UnwindRegsX86_64::new(0x7100, 0x1000, 0x1010);
    assert_eq!(
        uncovered_leaf_step(&mut regs, &mut stack_of(&slots), is_code),
        None
    );
}
