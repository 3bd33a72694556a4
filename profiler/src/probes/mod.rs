//! The kernel programs of `lxprof record`, loaded with aya and attached to BTF
//! tracepoints; the `traced` filter map; the `events` ring buffer and the
//! per-CPU `counters`.
//!
//! Allocation probes ([`AllocMode`]) are attached by `--alloc`; with
//! [`AllocMode::Full`], [`Probes::watch_libc`] probes each further libc the
//! traced processes map.
//!
//! All families are one BPF object (`ebpf/lxprof.bpf.c`) because they share
//! the `traced`, `events` and `counters` maps. Dropping [`Probes`] detaches
//! and unloads every program: nothing stays loaded after lxprof exits.

mod alloc;
mod process;
mod ring;
mod samples;
mod sched;

use aya::maps::{HashMap, MapData, PerCpuArray};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

use crate::events::raw::{lxprof_counter, lxprof_thread, lxprof_traced};
pub use ring::{EventReader, ReadStats};
pub use samples::{DEFAULT_STACK_BYTES, MAX_STACK_BYTES, SampleCounters};

/// The compiled object (see `build.rs`).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lxprof.bpf.o"));

// SAFETY: a plain C struct of integers (bindgen from lxprof.h), any bit pattern is valid.
unsafe impl aya::Pod for lxprof_traced {}
// SAFETY: as above (lxprof.h rules: integers only, explicit padding).
unsafe impl aya::Pod for lxprof_thread {}

/// One `tp_btf` program and the tracepoint it attaches to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BtfProgram {
    pub program: &'static str,
    pub tracepoint: &'static str,
}

/// Loading options.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Size of the `events` ring buffer in bytes: a power of two, at least a page.
    pub ring_buffer_bytes: u32,
    /// cpu-clock stack sampling frequency in Hz; None or 0: no sampling.
    pub sample_freq: Option<u32>,
    /// Bytes of user stack copied per sample (at most [`samples::MAX_STACK_BYTES`]).
    pub stack_bytes: u32,
    /// Which allocation probes to attach.
    pub alloc: AllocMode,
    /// Stints of a thread closer together than this share an ON_CPU record
    /// (0: a record per stint). Default 1 ms.
    pub oncpu_window_ns: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            ring_buffer_bytes: 16 * 1024 * 1024,
            sample_freq: None,
            stack_bytes: samples::DEFAULT_STACK_BYTES,
            alloc: AllocMode::default(),
            oncpu_window_ns: DEFAULT_ONCPU_WINDOW_NS,
        }
    }
}

/// Default of [`ProbeOptions::oncpu_window_ns`].
pub const DEFAULT_ONCPU_WINDOW_NS: u64 = 1_000_000;

/// Allocation probes (`--alloc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AllocMode {
    /// None.
    Off,
    /// mmap/munmap/brk syscall tracepoints only.
    #[default]
    Syscalls,
    /// The syscalls plus uprobes on malloc/calloc/realloc/free of each libc.
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("ring buffer size {bytes} is not a power of two of at least 4096 bytes")]
    RingBufferSize { bytes: u32 },
    #[error(
        "--stack-bytes {bytes} is more than the {max} bytes of user stack a sample can carry",
        max = samples::MAX_STACK_BYTES
    )]
    StackBytes { bytes: u32 },
    #[error("cannot read the kernel BTF (/sys/kernel/btf/vmlinux): {0}")]
    Btf(#[source] aya::BtfError),
    #[error("cannot load the lxprof BPF object (run as root on a kernel with BTF): {0}")]
    Load(#[source] aya::EbpfError),
    #[error("BPF object has no {kind} named {name} (build mismatch: rebuild lxprof)")]
    Missing {
        kind: &'static str,
        name: &'static str,
    },
    #[error("BPF program {program} failed to load or attach to tracepoint {tracepoint}: {source}")]
    Program {
        program: &'static str,
        tracepoint: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("cannot list the online CPUs ({path}): {source}")]
    Cpus {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "stack sampling (perf_event cpu-clock, CPU {cpu:?}) failed to load or attach: {source}; record without --freq"
    )]
    PerfEvent {
        cpu: Option<u32>,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error(
        "cannot attach allocation probe {program} to {path}: {source}; record with --alloc syscalls"
    )]
    Uprobe {
        program: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error(
        "no libc is mapped by lxprof itself (/proc/self/maps): cannot probe malloc; record with --alloc syscalls"
    )]
    NoLibc,
    #[error("BPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// Per-CPU record counters read from the `counters` map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Records dropped because the ring buffer was full, per CPU.
    pub lost_per_cpu: Vec<u64>,
    /// Records written, per CPU.
    pub events_per_cpu: Vec<u64>,
    /// Children or threads not tracked because a map was full, per CPU.
    pub map_full_per_cpu: Vec<u64>,
    /// Switch-outs of traced threads whose switch-in was not seen.
    pub no_switch_in: u64,
    /// ON_CPU records that carried CPU time of stints whose records were
    /// missed (counted exactly all the same).
    pub cpu_carried: u64,
    /// `threads` map updates refused although the map was not full.
    pub map_busy: u64,
    /// Runs of each program the kernel skipped because another BPF program
    /// was running on that CPU (`recursion_misses`), by program; only those
    /// with misses.
    pub recursion_misses: Vec<(String, u64)>,
}

impl KernelCounters {
    pub fn lost(&self) -> u64 {
        self.lost_per_cpu.iter().sum()
    }
    pub fn events(&self) -> u64 {
        self.events_per_cpu.iter().sum()
    }
    pub fn map_full(&self) -> u64 {
        self.map_full_per_cpu.iter().sum()
    }
}

/// The loaded and attached programs with their maps.
pub struct Probes {
    // Field order is drop order: maps first, then the object (programs, links).
    traced: HashMap<MapData, u32, lxprof_traced>,
    threads: HashMap<MapData, u32, lxprof_thread>,
    counters: PerCpuArray<MapData, u64>,
    reader: Option<EventReader>,
    sampler: Option<samples::Sampler>,
    /// The libc files with malloc probes (`--alloc full`).
    libcs: Option<alloc::LibcWatch>,
    ebpf: Ebpf,
}

/// Program `name` of the object as its type `P` (`TracePoint`, `UProbe`, …);
/// a type mismatch is reported through `err`.
fn program<'a, P>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    err: impl FnOnce(aya::programs::ProgramError) -> ProbeError,
) -> Result<&'a mut P, ProbeError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(ProbeError::Missing {
            kind: "program",
            name,
        })?
        .try_into()
        .map_err(err)
}

/// Loads and attaches one `tp_btf` program.
fn attach_btf(ebpf: &mut Ebpf, p: &BtfProgram, btf: &Btf) -> Result<(), ProbeError> {
    let err = |source| ProbeError::Program {
        program: p.program,
        tracepoint: p.tracepoint,
        source,
    };
    let prog: &mut BtfTracePoint = program(ebpf, p.program, err)?;
    prog.load(p.tracepoint, btf).map_err(err)?;
    prog.attach().map_err(err)?;
    Ok(())
}

fn families() -> impl Iterator<Item = &'static BtfProgram> {
    sched::PROGRAMS.iter().chain(process::PROGRAMS)
}

impl Probes {
    /// Loads the object, attaches every program. Needs root and kernel BTF
    /// (see [`crate::preflight`]).
    pub fn load(opts: &ProbeOptions) -> Result<Probes, ProbeError> {
        let bytes = opts.ring_buffer_bytes;
        if bytes < 4096 || !bytes.is_power_of_two() {
            return Err(ProbeError::RingBufferSize { bytes });
        }
        let freq = opts.sample_freq.filter(|&f| f > 0);
        if opts.stack_bytes > samples::MAX_STACK_BYTES {
            return Err(ProbeError::StackBytes {
                bytes: opts.stack_bytes,
            });
        }
        let btf = {
            let _span = tracing::info_span!("read_btf").entered();
            Btf::from_sys_fs().map_err(ProbeError::Btf)?
        };
        // One record scratch buffer per CPU id (ids may exceed the online count).
        let cpu_slots = match freq {
            Some(_) => aya::util::nr_cpus()
                .map_err(|(path, source)| ProbeError::Cpus {
                    path: path.to_string(),
                    source,
                })?
                .max(1) as u32,
            None => 1,
        };
        // 0 without sampling: the kernel then keeps no stack ranges (stack_top.bpf.h).
        let stack_bytes: u32 = if freq.is_some() { opts.stack_bytes } else { 0 };
        let load_span = tracing::info_span!("load_object").entered();
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries("events", bytes)
            .map_max_entries("stack_scratch", cpu_slots)
            .override_global("lxprof_stack_bytes", &stack_bytes, true)
            .override_global("lxprof_oncpu_window_ns", &opts.oncpu_window_ns, true)
            .load(OBJECT)
            .map_err(ProbeError::Load)?;
        drop(load_span);
        for p in families() {
            let _span = tracing::info_span!("attach", program = p.program).entered();
            attach_btf(&mut ebpf, p, &btf)?;
        }
        if opts.alloc != AllocMode::Off {
            let _span = tracing::info_span!("attach_alloc").entered();
            alloc::attach_syscalls(&mut ebpf, &btf)?;
        }
        let libcs = match opts.alloc {
            AllocMode::Full => Some(alloc::LibcWatch::load(&mut ebpf)?),
            AllocMode::Off | AllocMode::Syscalls => None,
        };
        let sampler = match freq {
            Some(f) => {
                let _span = tracing::info_span!("attach_sampler").entered();
                Some(samples::Sampler::attach(&mut ebpf, f)?)
            }
            None => None,
        };
        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or(ProbeError::Missing { kind: "map", name })
        };
        let map_err = |map| move |source| ProbeError::Map { map, source };
        let traced = HashMap::try_from(take("traced")?).map_err(map_err("traced"))?;
        let threads = HashMap::try_from(take("threads")?).map_err(map_err("threads"))?;
        let counters = PerCpuArray::try_from(take("counters")?).map_err(map_err("counters"))?;
        let ring = aya::maps::RingBuf::try_from(take("events")?).map_err(map_err("events"))?;
        Ok(Probes {
            traced,
            threads,
            counters,
            reader: Some(EventReader::new(ring)),
            sampler,
            libcs,
            ebpf,
        })
    }

    /// Follows process `pid` (and, from now on, every process it forks).
    pub fn trace_pid(&mut self, pid: u32, root_pid: u32) -> Result<(), ProbeError> {
        let v = lxprof_traced {
            root_pid,
            ..Default::default()
        };
        self.traced
            .insert(pid, v, 0)
            .map_err(|source| ProbeError::Map {
                map: "traced",
                source,
            })
    }

    /// Stops following `pid` (e.g. it died before lxprof saw its exit).
    pub fn untrace_pid(&mut self, pid: u32) {
        // Already gone is fine.
        let _ = self.traced.remove(&pid);
    }

    /// The processes followed now.
    pub fn traced_pids(&self) -> Vec<u32> {
        self.traced.keys().filter_map(Result::ok).collect()
    }

    /// Seeds the kernel's state of thread `tid` of process `pid`, alive
    /// before it was traced (`--pid`): its CPU counts from `cpu_total_ns`
    /// (its lifetime CPU now, `/proc/.../schedstat`) and its page faults
    /// from `faults` (`(minor, major)` so far, `/proc/.../stat`), and it is
    /// on a CPU since `on_cpu_since_ns` when running. A state the kernel
    /// already made (the thread ran in between) is kept.
    pub fn seed_thread(
        &mut self,
        pid: u32,
        tid: u32,
        on_cpu_since_ns: Option<u64>,
        cpu_total_ns: u64,
        faults: (u64, u64),
    ) {
        const BPF_NOEXIST: u64 = 1;
        let v = lxprof_thread {
            pid,
            start_ns: on_cpu_since_ns.unwrap_or(0),
            cpu_seen_ns: cpu_total_ns,
            flt_seen: faults.0 + faults.1,
            maj_seen: faults.1,
            ..Default::default()
        };
        let _ = self.threads.insert(tid, v, BPF_NOEXIST);
    }

    /// The kernel's state of every traced thread still alive or not yet
    /// switched out for the last time: `(tid, state)`.
    pub fn thread_states(&self) -> Vec<(u32, lxprof_thread)> {
        self.threads.iter().filter_map(Result::ok).collect()
    }

    /// With `--alloc full`: probes malloc/calloc/realloc/free of every libc
    /// file process `pid` maps that is not probed yet (reached through
    /// `/proc/PID/root`, so a container's own libc works; files are told
    /// apart by device and inode). Returns true when `pid` maps a libc (now
    /// probed), false when it maps none yet (an exec'd process before its
    /// loader mapped libc; a static binary; a process gone): call again
    /// later. Always false without `--alloc full`.
    pub fn watch_libc(&mut self, pid: u32) -> Result<bool, ProbeError> {
        match self.libcs.as_mut() {
            Some(w) => w.watch(&mut self.ebpf, pid),
            None => Ok(false),
        }
    }

    /// The libc files with malloc probes, in the order attached (the host's
    /// first); empty without `--alloc full`.
    pub fn probed_libcs(&self) -> Vec<std::path::PathBuf> {
        self.libcs
            .as_ref()
            .map(|w| w.paths.clone())
            .unwrap_or_default()
    }

    /// The ring-buffer reader (once). It stays valid while `self` lives.
    pub fn take_reader(&mut self) -> Option<EventReader> {
        self.reader.take()
    }

    /// Sampling counters; None when sampling is off.
    pub fn sample_counters(&self) -> Option<SampleCounters> {
        self.sampler.as_ref().map(samples::Sampler::counters)
    }

    /// Lost and written records per CPU, as counted in the kernel.
    pub fn counters(&self) -> Result<KernelCounters, ProbeError> {
        let read = |which: lxprof_counter| {
            self.counters
                .get(&(which as u32), 0)
                .map(|v| v.iter().copied().collect::<Vec<u64>>())
                .map_err(|source| ProbeError::Map {
                    map: "counters",
                    source,
                })
        };
        let sum = |which| read(which).map(|v| v.iter().sum());
        Ok(KernelCounters {
            lost_per_cpu: read(lxprof_counter::LXPROF_COUNTER_LOST)?,
            events_per_cpu: read(lxprof_counter::LXPROF_COUNTER_EVENTS)?,
            map_full_per_cpu: read(lxprof_counter::LXPROF_COUNTER_MAP_FULL)?,
            no_switch_in: sum(lxprof_counter::LXPROF_COUNTER_NO_SWITCH_IN)?,
            cpu_carried: sum(lxprof_counter::LXPROF_COUNTER_CPU_CARRIED)?,
            map_busy: sum(lxprof_counter::LXPROF_COUNTER_MAP_BUSY)?,
            recursion_misses: self.recursion_misses(),
        })
    }

    /// `recursion_misses` of every attached program with some, from
    /// `/proc/self/fdinfo` of its fd (aya 0.14 does not expose the field).
    fn recursion_misses(&self) -> Vec<(String, u64)> {
        use std::os::fd::{AsFd, AsRawFd};
        let mut out = Vec::new();
        for (name, prog) in self.ebpf.programs() {
            let Ok(fd) = prog.fd() else { continue };
            let raw = fd.as_fd().as_raw_fd();
            let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")) else {
                continue;
            };
            let misses = info
                .lines()
                .find_map(|l| l.strip_prefix("recursion_misses:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if misses > 0 {
                out.push((name.to_string(), misses));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_program_is_in_the_object() {
        // Each program's name is a NUL-terminated symbol of the object.
        let strings = String::from_utf8_lossy(OBJECT);
        for p in families() {
            assert!(
                strings.contains(&format!("\0{}\0", p.program)),
                "{} missing",
                p.program
            );
        }
        assert!(strings.contains(&format!("\0{}\0", samples::PROGRAM)));
        for p in alloc::SYSCALL_PROGRAMS {
            assert!(strings.contains(&format!("\0{}\0", p.program)));
        }
        for (p, _) in alloc::UPROBES {
            assert!(strings.contains(&format!("\0{p}\0")));
        }
        assert!(!strings.contains("\0no_such_program\0"));
    }

    #[test]
    fn rejects_bad_ring_sizes() {
        let err = Probes::load(&ProbeOptions {
            ring_buffer_bytes: 5000,
            ..ProbeOptions::default()
        })
        .err()
        .expect("5000 is not a power of two");
        assert!(matches!(err, ProbeError::RingBufferSize { bytes: 5000 }));
    }

    #[test]
    fn rejects_stack_copies_larger_than_a_record_carries() {
        let err = Probes::load(&ProbeOptions {
            stack_bytes: MAX_STACK_BYTES + 1,
            ..ProbeOptions::default()
        })
        .err()
        .expect("too large");
        assert!(matches!(err, ProbeError::StackBytes { .. }), "{err}");
    }
}
