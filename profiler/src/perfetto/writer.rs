//! [`to_protobuf`]: [`PerfettoInput`] → the bytes of a Perfetto trace (see
//! the module docs of [`super`] for the packets and the clock).

use std::collections::BTreeMap;

use prost::Message;

use super::intern::Interner;
use super::proto::{
    self, ClockSnapshot, CounterDescriptor, ProcessDescriptor, ThreadDescriptor, TracePacket,
    TrackDescriptor, TrackEvent, clock_snapshot, stack_sample, trace_packet::SequenceFlags,
    track_event,
};
use super::{PerfettoInput, PerfettoOptions, WeightUnit};
use crate::stacks::{FrameKind, ResolvedSample};

const SEQUENCE: u32 = 1;
const PROCESS_UUID: u64 = 1 << 40;
const THREAD_UUID: u64 = 2 << 40;
const COUNTER_UUID: u64 = 3 << 40;

/// [`to_protobuf_with`] with the default [`PerfettoOptions`].
pub fn to_protobuf(input: &PerfettoInput) -> Vec<u8> {
    to_protobuf_with(input, &PerfettoOptions::default())
}

/// Encodes `input` as a Perfetto trace (a serialized `perfetto.protos.Trace`).
pub fn to_protobuf_with(input: &PerfettoInput, opts: &PerfettoOptions) -> Vec<u8> {
    let rel = |ts: u64| ts.saturating_sub(input.origin_mono_ns);
    let mut interner = Interner::default();

    // Counter descriptors: one per unit present, iids in unit order.
    let mut units: Vec<WeightUnit> = input.samples.iter().map(|s| s.unit).collect();
    units.sort();
    units.dedup();
    let unit_iid = |u: WeightUnit| {
        units
            .iter()
            .position(|&x| x == u)
            .map_or(0, |p| p as u64 + 1)
    };
    let descriptors = proto::InternedData {
        stack_sample_counter_descriptors: units
            .iter()
            .map(|&u| stack_sample::CounterDescriptor {
                iid: Some(unit_iid(u)),
                name: Some(u.counter_name().to_string()),
                unit_field: Some(stack_sample::counter_descriptor::UnitField::Unit(
                    unit_code(u) as i32,
                )),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };

    // Everything timed, sorted by time (stable: input order on ties).
    let mut timed: Vec<(u64, Timed)> = Vec::new();
    for stream in &input.samples {
        for s in stream.samples {
            timed.push((rel(s.ts_ns), Timed::Sample(s, stream.unit)));
        }
    }
    for sl in &input.slices {
        let track = THREAD_UUID + u64::from(sl.tid);
        let begin = TrackEvent {
            r#type: Some(track_event::Type::SliceBegin as i32),
            track_uuid: Some(track),
            categories: sl.category.iter().cloned().collect(),
            name: Some(sl.name.clone()),
            ..Default::default()
        };
        let end = TrackEvent {
            r#type: Some(track_event::Type::SliceEnd as i32),
            track_uuid: Some(track),
            ..Default::default()
        };
        let start = rel(sl.start_ns);
        timed.push((start, Timed::Other(Box::new(event_packet(start, begin)))));
        let stop = rel(sl.start_ns.saturating_add(sl.dur_ns));
        timed.push((stop, Timed::Other(Box::new(event_packet(stop, end)))));
    }
    for (i, c) in input.counters.iter().enumerate() {
        for &(ts, value) in &c.points {
            let ev = TrackEvent {
                r#type: Some(track_event::Type::Counter as i32),
                track_uuid: Some(COUNTER_UUID + i as u64),
                double_counter_value: Some(value),
                ..Default::default()
            };
            timed.push((rel(ts), Timed::Other(Box::new(event_packet(rel(ts), ev)))));
        }
    }
    timed.sort_by_key(|(ts, _)| *ts);

    // The packet that starts the sequence comes first, then the clocks.
    let mut packets = vec![
        first_packet(descriptors, opts),
        clock_packet(input.origin_mono_ns),
    ];
    packets.extend(track_packets(input));
    // Samples intern their callstacks in file order: each packet carries the
    // interned entries it is the first to use.
    for (ts, item) in timed {
        match item {
            Timed::Other(p) => packets.push(*p),
            Timed::Sample(s, unit) => {
                let callstack = interner.callstack(&s.frames);
                let mut p = stack_sample_packet(s, ts, callstack, unit_iid(unit));
                p.interned_data = interner.take_new();
                packets.push(p);
                if opts.perf_samples && unit == WeightUnit::CpuNanoseconds {
                    packets.push(perf_sample_packet(s, ts, callstack));
                }
            }
        }
    }
    proto::Trace { packet: packets }.encode_to_vec()
}

/// A timed item: a sample (packets made in time order, for interning) or a
/// finished packet.
enum Timed<'a> {
    Sample(&'a ResolvedSample, WeightUnit),
    Other(Box<TracePacket>),
}

fn unit_code(u: WeightUnit) -> stack_sample::Unit {
    match u {
        WeightUnit::CpuNanoseconds => stack_sample::Unit::Nanoseconds,
        WeightUnit::PageFaults => stack_sample::Unit::PageFaults,
        WeightUnit::AllocatedBytes => stack_sample::Unit::Bytes,
    }
}

fn in_kernel(s: &ResolvedSample) -> bool {
    s.frames
        .first()
        .is_some_and(|f| f.kind == FrameKind::Kernel)
}

fn stack_sample_packet(s: &ResolvedSample, ts: u64, callstack: u64, unit: u64) -> TracePacket {
    let mode = if in_kernel(s) {
        stack_sample::Mode::Kernel
    } else {
        stack_sample::Mode::User
    };
    let sample = proto::StackSample {
        task_context_field: Some(stack_sample::TaskContextField::TaskContext(
            stack_sample::TaskContext {
                iid: None,
                pid: Some(s.pid),
                tid: Some(s.tid),
            },
        )),
        execution_context_field: Some(stack_sample::ExecutionContextField::ExecutionContext(
            stack_sample::ExecutionContext {
                iid: None,
                cpu: None,
                mode: Some(mode as i32),
            },
        )),
        callstack_field: Some(stack_sample::CallstackField::CallstackIid(callstack)),
        primary_descriptor_field: Some(stack_sample::PrimaryDescriptorField::PrimaryDescriptorIid(
            unit,
        )),
        primary_weight: Some(s.weight),
    };
    TracePacket {
        stack_sample: Some(sample),
        ..sequenced(ts)
    }
}

fn perf_sample_packet(s: &ResolvedSample, ts: u64, callstack: u64) -> TracePacket {
    let mode = if in_kernel(s) {
        proto::profiling::CpuMode::ModeKernel
    } else {
        proto::profiling::CpuMode::ModeUser
    };
    let sample = proto::PerfSample {
        cpu: None,
        pid: Some(s.pid),
        tid: Some(s.tid),
        cpu_mode: Some(mode as i32),
        callstack_iid: Some(callstack),
    };
    TracePacket {
        perf_sample: Some(sample),
        ..sequenced(ts)
    }
}

fn event_packet(ts: u64, ev: TrackEvent) -> TracePacket {
    TracePacket {
        track_event: Some(ev),
        ..sequenced(ts)
    }
}

/// A packet of lxprof's sequence that uses its incremental state.
fn sequenced(ts: u64) -> TracePacket {
    TracePacket {
        timestamp: Some(ts),
        trusted_packet_sequence_id: Some(SEQUENCE),
        sequence_flags: Some(SequenceFlags::SeqNeedsIncrementalState as u32),
        ..Default::default()
    }
}

fn clock_packet(origin_mono_ns: u64) -> TracePacket {
    let clock = |id: proto::BuiltinClock, ts: u64| clock_snapshot::Clock {
        clock_id: Some(id as u32),
        timestamp: Some(ts),
    };
    TracePacket {
        timestamp: Some(0),
        trusted_packet_sequence_id: Some(SEQUENCE),
        clock_snapshot: Some(ClockSnapshot {
            clocks: vec![
                clock(proto::BuiltinClock::Boottime, 0),
                clock(proto::BuiltinClock::Monotonic, origin_mono_ns),
            ],
            primary_trace_clock: Some(proto::BuiltinClock::Boottime as i32),
        }),
        ..Default::default()
    }
}

fn first_packet(interned: proto::InternedData, opts: &PerfettoOptions) -> TracePacket {
    TracePacket {
        timestamp: Some(0),
        trusted_packet_sequence_id: Some(SEQUENCE),
        sequence_flags: Some(SequenceFlags::SeqIncrementalStateCleared as u32),
        first_packet_on_sequence: Some(true),
        trace_packet_defaults: Some(proto::TracePacketDefaults {
            timestamp_clock_id: None,
            stack_sample_defaults: Some(proto::StackSampleDefaults {
                source: Some(opts.source.clone()),
                primary_descriptor: None,
            }),
        }),
        interned_data: Some(interned),
        ..Default::default()
    }
}

/// Process, thread and counter track descriptors, in pid/tid order.
fn track_packets(input: &PerfettoInput) -> Vec<TracePacket> {
    // pid → (name, tid → name)
    let mut procs: BTreeMap<u32, (String, BTreeMap<u32, String>)> = BTreeMap::new();
    for p in &input.processes {
        let entry = procs
            .entry(p.pid)
            .or_insert_with(|| (p.name.clone(), BTreeMap::new()));
        for t in &p.threads {
            entry.1.insert(t.tid, t.name.clone());
        }
    }
    let seen = input
        .samples
        .iter()
        .flat_map(|s| {
            s.samples
                .iter()
                .map(|s| (s.pid, s.tid, s.thread_name.clone()))
        })
        .chain(input.slices.iter().map(|s| (s.pid, s.tid, String::new())));
    for (pid, tid, name) in seen {
        let entry = procs
            .entry(pid)
            .or_insert_with(|| (format!("pid {pid}"), BTreeMap::new()));
        entry.1.entry(tid).or_insert(name);
    }
    for c in &input.counters {
        procs
            .entry(c.pid)
            .or_insert_with(|| (format!("pid {}", c.pid), BTreeMap::new()));
    }

    let descriptor = |td: TrackDescriptor| TracePacket {
        timestamp: Some(0),
        trusted_packet_sequence_id: Some(SEQUENCE),
        track_descriptor: Some(td),
        ..Default::default()
    };
    let mut out = Vec::new();
    for (pid, (name, threads)) in &procs {
        out.push(descriptor(TrackDescriptor {
            uuid: Some(PROCESS_UUID + u64::from(*pid)),
            process: Some(ProcessDescriptor {
                pid: Some(*pid as i32),
                cmdline: Vec::new(),
                process_name: Some(name.clone()),
            }),
            ..Default::default()
        }));
        for (tid, tname) in threads {
            out.push(descriptor(TrackDescriptor {
                uuid: Some(THREAD_UUID + u64::from(*tid)),
                parent_uuid: Some(PROCESS_UUID + u64::from(*pid)),
                thread: Some(ThreadDescriptor {
                    pid: Some(*pid as i32),
                    tid: Some(*tid as i32),
                    thread_name: (!tname.is_empty()).then(|| tname.clone()),
                }),
                ..Default::default()
            }));
        }
    }
    for (i, c) in input.counters.iter().enumerate() {
        out.push(descriptor(TrackDescriptor {
            uuid: Some(COUNTER_UUID + i as u64),
            parent_uuid: Some(PROCESS_UUID + u64::from(c.pid)),
            name: Some(c.name.clone()),
            counter: Some(CounterDescriptor::default()),
            ..Default::default()
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perfetto::SampleStream;
    use crate::stacks::{Category, Frame};

    #[test]
    fn samples_become_stack_and_perf_samples_relative_to_origin() {
        let s = ResolvedSample {
            pid: 7,
            tid: 8,
            thread_name: "w".into(),
            ts_ns: 1_500,
            weight: 10,
            frames: vec![Frame {
                name: "f".into(),
                module: None,
                kind: FrameKind::Kernel,
            }],
            category: Category::Kernel,
        };
        let samples = [s];
        let input = PerfettoInput {
            origin_mono_ns: 1_000,
            samples: vec![SampleStream {
                unit: WeightUnit::CpuNanoseconds,
                samples: &samples,
            }],
            ..Default::default()
        };
        let trace = proto::Trace::decode(to_protobuf(&input).as_slice()).unwrap();
        let ss: Vec<_> = trace
            .packet
            .iter()
            .filter(|p| p.stack_sample.is_some())
            .collect();
        assert_eq!(ss.len(), 1);
        assert_eq!(ss[0].timestamp, Some(500));
        assert_eq!(
            ss[0].stack_sample.as_ref().unwrap().primary_weight,
            Some(10)
        );
        assert_eq!(
            trace
                .packet
                .iter()
                .filter(|p| p.perf_sample.is_some())
                .count(),
            1
        );
        let threads = trace
            .packet
            .iter()
            .filter_map(|p| p.track_descriptor.as_ref()?.thread.as_ref());
        assert_eq!(threads.map(|t| t.tid).collect::<Vec<_>>(), vec![Some(8)]);
    }
}
