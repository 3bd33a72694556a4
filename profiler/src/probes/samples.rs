//! cpu-clock stack sampling (program `sample_cpu` in `ebpf/samples.bpf.h`):
//! one software perf event per online CPU, all pids, at a frequency, sending
//! STACK_COPY records; the `stack_errors` failure counters.

use aya::Ebpf;
use aya::maps::{MapData, PerCpuArray};
use aya::programs::PerfEvent;
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};

use super::ProbeError;

/// The perf_event program's name in the object.
pub(super) const PROGRAM: &str = "sample_cpu";
/// Bytes of user stack copied per sample by default (`--stack-bytes`): at most
/// this much, copies stop at the top of the stack. Chosen by measurement
/// (docs/BENCHMARKS.md): 16 KiB cut Node's deeper stacks, and async Rust
/// (tokio + the AWS SDK, the rust-event-collector) runs up to ~144 KiB deep
/// during an S3 put. A copy costs what the stack holds, not this bound.
pub const DEFAULT_STACK_BYTES: u32 = 256 * 1024;
/// Most bytes of user stack a sample can carry (`LXPROF_STACK_BYTES_MAX`).
pub const MAX_STACK_BYTES: u32 = crate::events::raw::LXPROF_STACK_BYTES_MAX;

/// Sampling outcome counted in the kernel (sums over CPUs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleCounters {
    /// Samples of traced threads taken.
    pub samples: u64,
    /// Samples whose user stack could not be copied at all.
    pub user_stack_errors: u64,
    /// Samples whose kernel stack could not be taken (samples taken in user
    /// mode have none, and are not counted).
    pub kernel_stack_errors: u64,
    /// Samples whose stack copy has a hole (a page not present, e.g. a large
    /// local buffer never touched, copied as zeros) or was shortened (the
    /// stack's end not found: halved until readable).
    pub shortened: u64,
    /// Samples not sent: the ring buffer was more than half full (samples
    /// give way to the other records while the reader catches up).
    pub ring_busy: u64,
}

/// The attached sampler and its counters.
pub(super) struct Sampler {
    errors: PerCpuArray<MapData, u64>,
}

impl Sampler {
    /// Loads `sample_cpu` and attaches it to a cpu-clock event at `freq` Hz on
    /// every online CPU.
    pub(super) fn attach(ebpf: &mut Ebpf, freq: u32) -> Result<Sampler, ProbeError> {
        let cpus = aya::util::online_cpus().map_err(|(path, source)| ProbeError::Cpus {
            path: path.to_string(),
            source,
        })?;
        let prog: &mut PerfEvent = super::program(ebpf, PROGRAM, |source| ProbeError::PerfEvent {
            cpu: None,
            source,
        })?;
        prog.load()
            .map_err(|source| ProbeError::PerfEvent { cpu: None, source })?;
        for cpu in cpus {
            prog.attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Frequency(u64::from(freq)),
                false,
            )
            .map_err(|source| ProbeError::PerfEvent {
                cpu: Some(cpu),
                source,
            })?;
        }
        let map_err = |map| move |source| ProbeError::Map { map, source };
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name)
                .ok_or(ProbeError::Missing { kind: "map", name })
        };
        let errors =
            PerCpuArray::try_from(take(ebpf, "stack_errors")?).map_err(map_err("stack_errors"))?;
        Ok(Sampler { errors })
    }

    pub(super) fn counters(&self) -> SampleCounters {
        let sum = |i: u32| {
            self.errors
                .get(&i, 0)
                .map(|v| v.iter().sum::<u64>())
                .unwrap_or(0)
        };
        SampleCounters {
            user_stack_errors: sum(0),
            kernel_stack_errors: sum(1),
            shortened: sum(2),
            samples: sum(3),
            ring_busy: sum(4),
        }
    }
}
