//! The records the kernel programs send to user space, decoded.
//!
//! The layouts come from `ebpf/lxprof.h` through bindgen (see `build.rs`):
//! this module adds a typed [`Event`] and [`Event::from_bytes`], which checks
//! lengths instead of trusting them.

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all
)]
pub mod raw {
    //! Generated from `ebpf/lxprof.h`. Do not edit.
    include!(concat!(env!("OUT_DIR"), "/lxprof_bindings.rs"));
}

use raw::*;

/// One decoded ring-buffer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    OnCpu(OnCpu),
    Fork(Fork),
    Exec(Exec),
    Exit(Exit),
    Comm(Comm),
    Faults(Faults),
    Rss(Rss),
    Alloc(Alloc),
    Sample(Sample),
    StackCopy(StackCopy),
}

/// Fields every record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub cpu: u32,
    /// CLOCK_MONOTONIC ns.
    pub ts_ns: u64,
    /// Process (tgid).
    pub pid: u32,
    /// Thread.
    pub tid: u32,
}

/// A thread was on a CPU, in `stints` stints, between `start_ns` and
/// `header.ts_ns` (see `struct lxprof_on_cpu`): `cpu_ns` is the scheduler's CPU time since the
/// thread's previous record, `cpu_total_ns` its lifetime total now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCpu {
    pub header: Header,
    pub start_ns: u64,
    pub cpu_ns: u64,
    pub cpu_total_ns: u64,
    pub prev_state: u32,
    /// `enum lxprof_on_cpu_flag` bits (see [`OnCpu::FIRST`] and the others).
    pub flags: u32,
    /// Stints on a CPU the record covers (stints of a thread within the
    /// on-CPU window share a record).
    pub stints: u32,
}

impl OnCpu {
    /// The switch-in was not seen: `start_ns` is now minus the scheduler's stint.
    pub const NO_SWITCH_IN: u32 = lxprof_on_cpu_flag::LXPROF_ON_CPU_NO_SWITCH_IN as u32;
    /// First record of the thread: `cpu_ns` counts from its current stint.
    pub const FIRST: u32 = lxprof_on_cpu_flag::LXPROF_ON_CPU_FIRST as u32;
    /// The thread's last switch-out.
    pub const DEAD: u32 = lxprof_on_cpu_flag::LXPROF_ON_CPU_DEAD as u32;

    /// The thread's lifetime CPU when it was first seen (what `cpu_ns` of its
    /// records counts from).
    pub fn cpu_before_ns(&self) -> u64 {
        self.cpu_total_ns.saturating_sub(self.cpu_ns)
    }
}

/// A task was created; `child_pid == header.pid` for a new thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    pub header: Header,
    pub child_pid: u32,
    pub child_tid: u32,
    pub comm: String,
}

impl Fork {
    /// True when the new task is a thread of the parent's process.
    pub fn is_thread(&self) -> bool {
        self.child_pid == self.header.pid
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub header: Header,
    pub old_tid: u32,
    pub comm: String,
    pub filename: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub header: Header,
    /// Wait status: `(code << 8) | signal`.
    pub exit_code: u32,
    /// The last thread of the process exited.
    pub group_dead: bool,
    /// Minor page faults of this thread over its life.
    pub min_flt: u64,
    /// Major page faults of this thread over its life.
    pub maj_flt: u64,
    /// CPU time of this thread over its life, per the scheduler.
    pub sum_exec_runtime_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comm {
    pub header: Header,
    pub comm: String,
}

/// `count` page faults of a thread between `first_ns` and `header.ts_ns`
/// (the kernel's per-task counters, `struct lxprof_faults`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    pub header: Header,
    pub first_ns: u64,
    /// Minor and major.
    pub count: u32,
    /// Of which major (the page needed I/O).
    pub major: u32,
}

/// Which RSS counter changed (`enum lxprof_rss_member`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RssMember {
    File,
    Anon,
    Swap,
    Shmem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rss {
    pub header: Header,
    pub member: RssMember,
    pub size_bytes: u64,
}

/// Allocation operation (`enum lxprof_alloc_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocOp {
    Malloc,
    Calloc,
    Realloc,
    Free,
    Mmap,
    Munmap,
    Brk,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alloc {
    pub header: Header,
    pub op: AllocOp,
    pub size: u64,
    pub address: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub header: Header,
    pub user_stack_id: Option<u32>,
    pub kernel_stack_id: Option<u32>,
}

/// A cpu-clock sample to unwind in user space (`struct lxprof_stack_copy`):
/// the user registers, the kernel stack and the top of the user stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackCopy {
    pub header: Header,
    /// User instruction pointer, stack pointer and frame pointer.
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// Where the stack ends above `sp` (0: unknown): when `sp + stack.len()`
    /// reaches it, the whole stack was copied.
    pub stack_top: u64,
    /// Kernel addresses, leaf first (empty: the sample hit user mode).
    pub kernel: Vec<u64>,
    /// User stack bytes from `sp` upwards.
    pub stack: Vec<u8>,
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its header")]
    TooShortForHeader { len: usize },
    #[error("record kind {kind} needs {need} bytes, got {len}")]
    TooShort { kind: u32, need: usize, len: usize },
    #[error("unknown record kind {kind}")]
    UnknownKind { kind: u32 },
    #[error("record kind {kind} has unknown value {value} in field {field}")]
    BadField {
        kind: u32,
        field: &'static str,
        value: u64,
    },
}

/// Reads a `T` from the start of `bytes`, which must be long enough.
fn read<T: Copy>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::TooShort {
            kind,
            need,
            len: bytes.len(),
        });
    }
    // SAFETY: length checked above; T is a plain-old-data bindgen struct
    // (integers and byte arrays only), valid for any bit pattern; read_unaligned
    // copes with any alignment of the ring-buffer record.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A NUL-terminated C string in a fixed array, lossily as UTF-8.
pub fn c_str(chars: &[std::os::raw::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn header(h: &lxprof_event_header) -> Header {
    Header {
        cpu: h.cpu,
        ts_ns: h.ts_ns,
        pid: h.pid,
        tid: h.tid,
    }
}

fn stack_id(id: i32) -> Option<u32> {
    u32::try_from(id).ok()
}

impl Event {
    /// Decodes one ring-buffer record. Records may be longer than the struct
    /// (ring buffer padding); never shorter.
    pub fn from_bytes(bytes: &[u8]) -> Result<Event, DecodeError> {
        if bytes.len() < size_of::<lxprof_event_header>() {
            return Err(DecodeError::TooShortForHeader { len: bytes.len() });
        }
        let h: lxprof_event_header = read(bytes, 0)?;
        let kind = h.kind;
        use lxprof_event_kind as K;
        let ev = match kind {
            k if k == K::LXPROF_EVENT_ON_CPU as u32 => {
                let r: lxprof_on_cpu = read(bytes, kind)?;
                Event::OnCpu(OnCpu {
                    header: header(&r.header),
                    start_ns: r.start_ns,
                    cpu_ns: r.cpu_ns,
                    cpu_total_ns: r.cpu_total_ns,
                    prev_state: r.prev_state,
                    flags: r.flags,
                    stints: r.stints,
                })
            }
            k if k == K::LXPROF_EVENT_FORK as u32 => {
                let r: lxprof_fork = read(bytes, kind)?;
                Event::Fork(Fork {
                    header: header(&r.header),
                    child_pid: r.child_pid,
                    child_tid: r.child_tid,
                    comm: c_str(&r.comm),
                })
            }
            k if k == K::LXPROF_EVENT_EXEC as u32 => {
                let r: lxprof_exec = read(bytes, kind)?;
                Event::Exec(Exec {
                    header: header(&r.header),
                    old_tid: r.old_tid,
                    comm: c_str(&r.comm),
                    filename: c_str(&r.filename),
                })
            }
            k if k == K::LXPROF_EVENT_EXIT as u32 => {
                let r: lxprof_exit = read(bytes, kind)?;
                Event::Exit(Exit {
                    header: header(&r.header),
                    exit_code: r.exit_code,
                    group_dead: r.group_dead != 0,
                    min_flt: r.min_flt,
                    maj_flt: r.maj_flt,
                    sum_exec_runtime_ns: r.sum_exec_runtime_ns,
                })
            }
            k if k == K::LXPROF_EVENT_COMM as u32 => {
                let r: lxprof_comm = read(bytes, kind)?;
                Event::Comm(Comm {
                    header: header(&r.header),
                    comm: c_str(&r.comm),
                })
            }
            k if k == K::LXPROF_EVENT_FAULTS as u32 => {
                let r: lxprof_faults = read(bytes, kind)?;
                Event::Faults(Faults {
                    header: header(&r.header),
                    first_ns: r.first_ns,
                    count: r.count,
                    major: r.major,
                })
            }
            k if k == K::LXPROF_EVENT_RSS as u32 => {
                let r: lxprof_rss = read(bytes, kind)?;
                let member = match r.member {
                    0 => RssMember::File,
                    1 => RssMember::Anon,
                    2 => RssMember::Swap,
                    3 => RssMember::Shmem,
                    v => {
                        return Err(DecodeError::BadField {
                            kind,
                            field: "member",
                            value: v.into(),
                        });
                    }
                };
                Event::Rss(Rss {
                    header: header(&r.header),
                    member,
                    size_bytes: r.size_bytes,
                })
            }
            k if k == K::LXPROF_EVENT_ALLOC as u32 => {
                let r: lxprof_alloc = read(bytes, kind)?;
                let op = match r.op {
                    1 => AllocOp::Malloc,
                    2 => AllocOp::Calloc,
                    3 => AllocOp::Realloc,
                    4 => AllocOp::Free,
                    5 => AllocOp::Mmap,
                    6 => AllocOp::Munmap,
                    7 => AllocOp::Brk,
                    v => {
                        return Err(DecodeError::BadField {
                            kind,
                            field: "op",
                            value: v.into(),
                        });
                    }
                };
                Event::Alloc(Alloc {
                    header: header(&r.header),
                    op,
                    size: r.size,
                    address: r.address,
                })
            }
            k if k == K::LXPROF_EVENT_SAMPLE as u32 => {
                let r: lxprof_sample = read(bytes, kind)?;
                Event::Sample(Sample {
                    header: header(&r.header),
                    user_stack_id: stack_id(r.user_stack_id),
                    kernel_stack_id: stack_id(r.kernel_stack_id),
                })
            }
            k if k == K::LXPROF_EVENT_STACK_COPY as u32 => {
                Event::StackCopy(StackCopy::from_bytes(bytes)?)
            }
            _ => return Err(DecodeError::UnknownKind { kind }),
        };
        Ok(ev)
    }

    /// The common header.
    pub fn header(&self) -> &Header {
        match self {
            Event::OnCpu(e) => &e.header,
            Event::Fork(e) => &e.header,
            Event::Exec(e) => &e.header,
            Event::Exit(e) => &e.header,
            Event::Comm(e) => &e.header,
            Event::Faults(e) => &e.header,
            Event::Rss(e) => &e.header,
            Event::Alloc(e) => &e.header,
            Event::Sample(e) => &e.header,
            Event::StackCopy(e) => &e.header,
        }
    }
}

impl StackCopy {
    /// Decodes a STACK_COPY record: the fixed part, then exactly
    /// `kernel_depth` addresses and `stack_len` stack bytes (more bytes are
    /// ring-buffer padding; fewer is an error).
    pub fn from_bytes(bytes: &[u8]) -> Result<StackCopy, DecodeError> {
        let kind = lxprof_event_kind::LXPROF_EVENT_STACK_COPY as u32;
        let r: lxprof_stack_copy = read(bytes, kind)?;
        let fixed = size_of::<lxprof_stack_copy>();
        let depth = r.kernel_depth as usize;
        if depth > LXPROF_KERNEL_STACK_MAX as usize {
            return Err(DecodeError::BadField {
                kind,
                field: "kernel_depth",
                value: depth as u64,
            });
        }
        let stack_at = fixed + 8 * depth;
        let need = stack_at + r.stack_len as usize;
        if bytes.len() < need {
            return Err(DecodeError::TooShort {
                kind,
                need,
                len: bytes.len(),
            });
        }
        let kernel = bytes[fixed..stack_at]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        Ok(StackCopy {
            header: header(&r.header),
            ip: r.ip,
            sp: r.sp,
            bp: r.bp,
            stack_top: r.stack_top,
            kernel,
            stack: bytes[stack_at..need].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_bytes<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: T is a plain bindgen struct; we only read its bytes.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    #[test]
    fn records_are_multiples_of_eight_bytes() {
        for size in [
            size_of::<lxprof_event_header>(),
            size_of::<lxprof_on_cpu>(),
            size_of::<lxprof_fork>(),
            size_of::<lxprof_exec>(),
            size_of::<lxprof_exit>(),
            size_of::<lxprof_comm>(),
            size_of::<lxprof_faults>(),
            size_of::<lxprof_thread>(),
            size_of::<lxprof_rss>(),
            size_of::<lxprof_alloc>(),
            size_of::<lxprof_sample>(),
            size_of::<lxprof_stack_copy>(),
        ] {
            assert_eq!(size % 8, 0, "size {size}");
        }
    }

    #[test]
    fn decodes_on_cpu_and_rejects_short_buffers() {
        let mut r = lxprof_on_cpu::default();
        r.header.kind = lxprof_event_kind::LXPROF_EVENT_ON_CPU as u32;
        r.header.ts_ns = 2_000;
        r.header.pid = 7;
        r.header.tid = 8;
        r.start_ns = 1_500;
        let bytes = as_bytes(&r);
        let ev = Event::from_bytes(&bytes).unwrap();
        assert_eq!(
            ev,
            Event::OnCpu(OnCpu {
                header: Header {
                    cpu: 0,
                    ts_ns: 2_000,
                    pid: 7,
                    tid: 8
                },
                start_ns: 1_500,
                cpu_ns: 0,
                cpu_total_ns: 0,
                prev_state: 0,
                flags: 0,
                stints: 0
            })
        );
        // Longer (padded) is fine; shorter is an error, never a panic.
        let mut padded = bytes.clone();
        padded.extend([0u8; 8]);
        assert!(Event::from_bytes(&padded).is_ok());
        assert!(matches!(
            Event::from_bytes(&bytes[..bytes.len() - 1]),
            Err(DecodeError::TooShort { .. })
        ));
        assert!(matches!(
            Event::from_bytes(&bytes[..3]),
            Err(DecodeError::TooShortForHeader { .. })
        ));
    }

    #[test]
    fn stack_copy_round_trips_and_rejects_short_payloads() {
        let copy = StackCopy {
            header: Header {
                cpu: 1,
                ts_ns: 5,
                pid: 7,
                tid: 8,
            },
            ip: 0x1000,
            sp: 0x7ff0,
            bp: 0x7ff8,
            stack_top: 0x9000,
            kernel: vec![0xffff_ffff_8100_0000, 0xffff_ffff_8100_0010],
            stack: (0..40u8).collect(),
        };
        let bytes = crate::rawlog::encode_event(&Event::StackCopy(copy.clone()));
        assert_eq!(bytes.len(), size_of::<lxprof_stack_copy>() + 16 + 40);
        assert_eq!(
            Event::from_bytes(&bytes),
            Ok(Event::StackCopy(copy.clone()))
        );
        let mut padded = bytes.clone();
        padded.extend([0u8; 4]);
        assert_eq!(Event::from_bytes(&padded), Ok(Event::StackCopy(copy)));
        assert!(matches!(
            Event::from_bytes(&bytes[..bytes.len() - 1]),
            Err(DecodeError::TooShort { need, .. }) if need == bytes.len()
        ));
        assert!(matches!(
            Event::from_bytes(&bytes[..size_of::<lxprof_stack_copy>() - 1]),
            Err(DecodeError::TooShort { .. })
        ));
    }

    #[test]
    fn decodes_strings_and_rejects_unknown_kinds() {
        let mut r = lxprof_exec::default();
        r.header.kind = lxprof_event_kind::LXPROF_EVENT_EXEC as u32;
        for (i, b) in b"/bin/true".iter().enumerate() {
            r.filename[i] = *b as _;
        }
        let Event::Exec(e) = Event::from_bytes(&as_bytes(&r)).unwrap() else {
            panic!()
        };
        assert_eq!(e.filename, "/bin/true");
        r.header.kind = 99;
        assert_eq!(
            Event::from_bytes(&as_bytes(&r)),
            Err(DecodeError::UnknownKind { kind: 99 })
        );
    }
}
