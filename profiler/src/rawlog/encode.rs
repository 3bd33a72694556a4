//! Events encoded back into kernel record layout, for synthetic logs and tests.

use crate::events::{Event, raw};

/// Encodes an event as the kernel lays out its record (the inverse of
/// [`Event::from_bytes`]): for synthetic logs and tests. Strings longer than
/// their field are truncated (keeping the NUL).
pub fn encode_event(event: &Event) -> Vec<u8> {
    use crate::events::{AllocOp, RssMember};
    use raw::lxprof_event_kind as K;
    fn hdr(h: &crate::events::Header, kind: K) -> raw::lxprof_event_header {
        raw::lxprof_event_header {
            kind: kind as u32,
            cpu: h.cpu,
            ts_ns: h.ts_ns,
            pid: h.pid,
            tid: h.tid,
        }
    }
    fn put(dst: &mut [std::os::raw::c_char], s: &str) {
        let n = s.len().min(dst.len().saturating_sub(1));
        for (d, b) in dst.iter_mut().zip(&s.as_bytes()[..n]) {
            *d = *b as std::os::raw::c_char;
        }
    }
    fn bytes<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: T is a bindgen struct of integers and byte arrays with
        // explicit padding fields (lxprof.h rules), so every byte is
        // initialized; we only read them.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }
    match event {
        Event::OnCpu(e) => bytes(&raw::lxprof_on_cpu {
            header: hdr(&e.header, K::LXPROF_EVENT_ON_CPU),
            start_ns: e.start_ns,
            cpu_ns: e.cpu_ns,
            cpu_total_ns: e.cpu_total_ns,
            prev_state: e.prev_state,
            flags: e.flags,
            stints: e.stints,
            _pad: 0,
        }),
        Event::Fork(e) => {
            let mut r = raw::lxprof_fork {
                header: hdr(&e.header, K::LXPROF_EVENT_FORK),
                child_pid: e.child_pid,
                child_tid: e.child_tid,
                ..Default::default()
            };
            put(&mut r.comm, &e.comm);
            bytes(&r)
        }
        Event::Exec(e) => {
            let mut r = raw::lxprof_exec {
                header: hdr(&e.header, K::LXPROF_EVENT_EXEC),
                old_tid: e.old_tid,
                ..Default::default()
            };
            put(&mut r.comm, &e.comm);
            put(&mut r.filename, &e.filename);
            bytes(&r)
        }
        Event::Exit(e) => bytes(&raw::lxprof_exit {
            header: hdr(&e.header, K::LXPROF_EVENT_EXIT),
            exit_code: e.exit_code,
            group_dead: u32::from(e.group_dead),
            min_flt: e.min_flt,
            maj_flt: e.maj_flt,
            sum_exec_runtime_ns: e.sum_exec_runtime_ns,
        }),
        Event::Comm(e) => {
            let mut r = raw::lxprof_comm {
                header: hdr(&e.header, K::LXPROF_EVENT_COMM),
                ..Default::default()
            };
            put(&mut r.comm, &e.comm);
            bytes(&r)
        }
        Event::Faults(e) => bytes(&raw::lxprof_faults {
            header: hdr(&e.header, K::LXPROF_EVENT_FAULTS),
            first_ns: e.first_ns,
            count: e.count,
            major: e.major,
        }),
        Event::Rss(e) => bytes(&raw::lxprof_rss {
            header: hdr(&e.header, K::LXPROF_EVENT_RSS),
            member: match e.member {
                RssMember::File => 0,
                RssMember::Anon => 1,
                RssMember::Swap => 2,
                RssMember::Shmem => 3,
            },
            size_bytes: e.size_bytes,
            ..Default::default()
        }),
        Event::Alloc(e) => bytes(&raw::lxprof_alloc {
            header: hdr(&e.header, K::LXPROF_EVENT_ALLOC),
            op: match e.op {
                AllocOp::Malloc => 1,
                AllocOp::Calloc => 2,
                AllocOp::Realloc => 3,
                AllocOp::Free => 4,
                AllocOp::Mmap => 5,
                AllocOp::Munmap => 6,
                AllocOp::Brk => 7,
            },
            size: e.size,
            address: e.address,
            ..Default::default()
        }),
        Event::Sample(e) => bytes(&raw::lxprof_sample {
            header: hdr(&e.header, K::LXPROF_EVENT_SAMPLE),
            user_stack_id: e.user_stack_id.map_or(-1, |v| v as i32),
            kernel_stack_id: e.kernel_stack_id.map_or(-1, |v| v as i32),
        }),
        Event::StackCopy(e) => {
            let mut out = bytes(&raw::lxprof_stack_copy {
                header: hdr(&e.header, K::LXPROF_EVENT_STACK_COPY),
                ip: e.ip,
                sp: e.sp,
                bp: e.bp,
                stack_top: e.stack_top,
                kernel_depth: e.kernel.len() as u32,
                stack_len: e.stack.len() as u32,
            });
            out.extend(e.kernel.iter().flat_map(|a| a.to_le_bytes()));
            out.extend_from_slice(&e.stack);
            out
        }
    }
}
