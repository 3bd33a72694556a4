"""Decode an lxprof Perfetto trace with Perfetto's OWN proto classes.

Usage: python decode_perfetto.py TRACE  -> JSON on stdout.

Uses perfetto.protos.perfetto.trace.perfetto_trace_pb2 from the `perfetto`
PyPI package (its bundled, generated copy of perfetto_trace.proto), so any
field number lxprof got wrong shows up as a missing or mistyped field here.
Interned data is resolved the way trace processor does it: per sequence,
cleared by SEQ_INCREMENTAL_STATE_CLEARED.
"""
import json
import sys

from google.protobuf import unknown_fields
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb


def count_unknown(msg):
    """Unknown fields in msg and every set sub-message: a wrong field number
    in lxprof's .proto lands here."""
    n = len(unknown_fields.UnknownFieldSet(msg))
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        for v in (value if field.is_repeated else [value]):
            n += count_unknown(v)
    return n


def main(path):
    trace = pb.Trace()
    with open(path, "rb") as f:
        trace.ParseFromString(f.read())
    state = {}
    out = {"packets": len(trace.packet), "stack_samples": [], "perf_samples": [],
           "threads": [], "processes": [], "clocks": [], "slices": 0, "counters": 0,
           "defaults_source": None, "unknown_fields": 0}
    for p in trace.packet:
        out["unknown_fields"] += count_unknown(p)
        seq = p.trusted_packet_sequence_id
        if p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED:
            state[seq] = {"names": {}, "frames": {}, "stacks": {}, "mappings": {}, "paths": {}, "counters": {}}
        if p.HasField("trace_packet_defaults") and p.trace_packet_defaults.HasField("stack_sample_defaults"):
            out["defaults_source"] = p.trace_packet_defaults.stack_sample_defaults.source
        if p.HasField("interned_data"):
            st = state[seq]
            d = p.interned_data
            for s in d.function_names:
                st["names"][s.iid] = s.str.decode()
            for s in d.mapping_paths:
                st["paths"][s.iid] = s.str.decode()
            for m in d.mappings:
                st["mappings"][m.iid] = "/".join(st["paths"][i] for i in m.path_string_ids)
            for fr in d.frames:
                st["frames"][fr.iid] = (st["names"][fr.function_name_id], st["mappings"][fr.mapping_id])
            for cs in d.callstacks:
                st["stacks"][cs.iid] = [st["frames"][i] for i in cs.frame_ids]
            for c in d.stack_sample_counter_descriptors:
                st["counters"][c.iid] = (c.name, pb.StackSample.Unit.Name(c.unit))
        if p.HasField("clock_snapshot"):
            out["clocks"] = [[c.clock_id, c.timestamp] for c in p.clock_snapshot.clocks]
        if p.HasField("track_descriptor"):
            td = p.track_descriptor
            if td.HasField("thread"):
                out["threads"].append([td.thread.pid, td.thread.tid, td.thread.thread_name])
            if td.HasField("process"):
                out["processes"].append([td.process.pid, td.process.process_name])
        if p.HasField("track_event"):
            if p.track_event.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
                out["slices"] += 1
            if p.track_event.type == pb.TrackEvent.TYPE_COUNTER:
                out["counters"] += 1
        if p.HasField("stack_sample"):
            s = p.stack_sample
            st = state[seq]
            name, unit = st["counters"][s.primary_descriptor_iid]
            out["stack_samples"].append({
                "ts": p.timestamp, "pid": s.task_context.pid, "tid": s.task_context.tid,
                "frames": [f[0] for f in st["stacks"][s.callstack_iid]],
                "modules": [f[1] for f in st["stacks"][s.callstack_iid]],
                "weight": s.primary_weight, "counter": name, "unit": unit,
                "mode": pb.StackSample.Mode.Name(s.execution_context.mode)})
        if p.HasField("perf_sample"):
            s = p.perf_sample
            out["perf_samples"].append({
                "ts": p.timestamp, "pid": s.pid, "tid": s.tid,
                "frames": [f[0] for f in state[seq]["stacks"][s.callstack_iid]]})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
