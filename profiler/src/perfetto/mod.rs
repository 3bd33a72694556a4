//! Perfetto protobuf traces (`trace.perfetto-trace`): processes, threads,
//! weighted stack samples Perfetto draws as flamegraphs, slices and counters.
//!
//! # Packets
//! - The first packet of sequence 1 clears incremental state and carries the
//!   `TracePacketDefaults` (`StackSampleDefaults.source = "lxprof"`) and one
//!   interned `StackSample.CounterDescriptor` per [`WeightUnit`]
//!   (`InternedData` field 50).
//! - `ClockSnapshot`: trace time 0 (BOOTTIME domain, Perfetto's default trace
//!   clock) is [`PerfettoInput::origin_mono_ns`] on CLOCK_MONOTONIC.
//! - Profiling `InternedData` (function names, one mapping per module,
//!   frames, callstacks root first) rides on the first sample packet that
//!   uses each entry, in time order, as Perfetto's own producers do.
//! - `TrackDescriptor`s for every process and thread (and counter tracks).
//! - One `StackSample` (TracePacket field 135, Perfetto v59) per sample:
//!   inline task context (pid, tid), execution mode (kernel when the leaf is a
//!   kernel frame), `callstack_iid`, `primary_descriptor_iid` and
//!   `primary_weight` = [`ResolvedSample::weight`].
//! - With [`PerfettoOptions::perf_samples`], CPU samples are also written as
//!   `PerfSample` packets (field 66, traced_perf's long-standing format,
//!   unweighted: one per sampling interval), so a UI whose StackSample
//!   support is missing still draws a CPU flamegraph.
//! - Slices as `TrackEvent` begin/end pairs on thread tracks; counters as
//!   `TrackEvent` counter values on process-scoped counter tracks.
//!
//! # Clock
//! Sample, slice and counter times are CLOCK_MONOTONIC ns. Every packet
//! timestamp is `ts - origin_mono_ns` (ns since the recording start, clamped
//! at 0). `trace.json` writes `(ts - origin) / 1000` µs, so an event at
//! `ts_us` there is at `ts_us * 1000` ns here: both files share one timeline.
//! "BOOTTIME" only names that trace-time domain; the snapshot's MONOTONIC
//! entry is what ties it to the kernel's clock.

mod intern;
mod slices;
mod writer;

use crate::stacks::ResolvedSample;

pub use slices::category_slices;
pub use writer::{to_protobuf, to_protobuf_with};

/// Rust types generated at build time from `proto/perfetto_subset.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/perfetto.protos.rs"));
}

/// Everything a Perfetto trace is built from.
#[derive(Debug, Clone, Default)]
pub struct PerfettoInput<'a> {
    /// CLOCK_MONOTONIC ns of the recording start: time 0 of the trace (and of
    /// `trace.json`).
    pub origin_mono_ns: u64,
    /// Processes and their threads. Threads that only appear in samples are
    /// added with the samples' thread names.
    pub processes: Vec<ProcessInfo>,
    /// Sample streams, each with the unit of its weights.
    pub samples: Vec<SampleStream<'a>>,
    /// Optional slices (e.g. JIT / GC phases, Lambda phases) on thread tracks.
    pub slices: Vec<Slice>,
    /// Optional counters (e.g. RSS) on process tracks.
    pub counters: Vec<Counter>,
}

/// A process and the threads to describe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub pid: u32,
    /// Process name shown in the UI (role or comm).
    pub name: String,
    pub threads: Vec<ThreadInfo>,
}

/// A thread of a [`ProcessInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadInfo {
    pub tid: u32,
    pub name: String,
}

/// What the weights of a [`SampleStream`] count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WeightUnit {
    /// CPU time: each sample stands for its weight in nanoseconds.
    CpuNanoseconds,
    /// Page faults taken at this stack.
    PageFaults,
    /// Bytes allocated at this stack.
    AllocatedBytes,
}

impl WeightUnit {
    /// Counter name shown by Perfetto.
    pub fn counter_name(self) -> &'static str {
        match self {
            WeightUnit::CpuNanoseconds => "cpu-time",
            WeightUnit::PageFaults => "page-faults",
            WeightUnit::AllocatedBytes => "allocated-bytes",
        }
    }
}

/// Samples whose weights share one unit.
#[derive(Debug, Clone, Copy)]
pub struct SampleStream<'a> {
    pub unit: WeightUnit,
    pub samples: &'a [ResolvedSample],
}

/// A complete slice on a thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub pid: u32,
    pub tid: u32,
    pub name: String,
    /// Optional category string (e.g. `"gc"`).
    pub category: Option<String>,
    /// CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    pub dur_ns: u64,
}

/// A counter series of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    pub pid: u32,
    /// Track name, e.g. `"rss_bytes"`.
    pub name: String,
    /// `(CLOCK_MONOTONIC ns, value)` points.
    pub points: Vec<(u64, f64)>,
}

/// Options of [`to_protobuf_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfettoOptions {
    /// Also write CPU samples as `PerfSample` packets (see the module docs).
    /// Default: `true`.
    pub perf_samples: bool,
    /// `StackSampleDefaults.source`. Default: `"lxprof"`.
    pub source: String,
}

impl Default for PerfettoOptions {
    fn default() -> Self {
        PerfettoOptions {
            perf_samples: true,
            source: "lxprof".to_string(),
        }
    }
}
