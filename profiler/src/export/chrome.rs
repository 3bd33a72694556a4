//! `trace.json`: the Chrome Trace Event Format, as Perfetto's JSON importer
//! reads it. Times in microseconds relative to the start of the recording,
//! with three decimals (nanosecond precision: Perfetto's importer rounds
//! fractional microseconds to the nearest ns). No `displayTimeUnit`: Perfetto
//! ignores it now and older versions let it change how times parse.
//!
//! Per process: `M` `process_name` (`"comm [role] pid"`), `process_sort_index`
//! (the root process first); per thread an `M` `thread_name` and one `X`
//! slice "on-CPU" per on-CPU interval (disjoint by construction of the
//! model); `C` counters "RSS" (bytes: `total`, `file`, `anon`, `shmem`, at
//! most one sample per [`RSS_RESOLUTION_NS`]) and "page faults" (`per 10ms`:
//! PAGE_FAULT records per [`FAULT_BUCKET_NS`], back to 0 after a burst);
//! Perfetto names counter tracks `"<name> <arg>"`, e.g. "RSS anon";
//! process-scoped `i` instants "exec FILE" and "exit". Top-level `metadata`
//! holds the command, kernel release, lost events and lxprof version.
//!
//! JIT and GC (with `--freq`): a thread with runs of JIT-compilation or GC
//! samples (`Thread::category_runs`, set by [`crate::explain`]) gets a second
//! track in its process, a pseudo-thread named `"<thread name> JIT/GC"` with
//! tid [`jit_gc_tid`]`(tid)`, holding one `X` slice `JIT` or `GC` (cat `jit` /
//! `gc`, `args.samples`) per run. A run spans many on-CPU slices (and the
//! gaps between them), so on the thread's own track it would cross them;
//! on its own track Perfetto draws it as a plain slice right under the
//! thread's tracks, selectable and summed like any other. Pseudo tids are
//! unique across processes because Perfetto's JSON importer keys threads by
//! tid alone.
//!
//! One event per line, so the file diffs and greps well.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::{Value, json};

use crate::export::LXPROF_VERSION;
use crate::model::{Process, Recording};

/// Width of the page-fault rate buckets.
pub const FAULT_BUCKET_NS: u64 = 10_000_000;
/// RSS counter samples closer than this are coalesced (the last one wins).
pub const RSS_RESOLUTION_NS: u64 = 1_000_000;
/// Added to a tid to make its JIT/GC track's pseudo tid (above Linux's
/// largest pid_max, 2^22).
pub const JIT_GC_TID_OFFSET: u32 = 1 << 30;

/// The pseudo tid of the JIT/GC track of thread `tid`.
pub fn jit_gc_tid(tid: u32) -> u32 {
    tid | JIT_GC_TID_OFFSET
}

/// Nanoseconds as trace microseconds (3 decimals, exact in an f64 for any
/// recording shorter than ~100 days).
fn us(ns: u64) -> Value {
    if ns.is_multiple_of(1000) {
        json!(ns / 1000)
    } else {
        json!(ns as f64 / 1000.0)
    }
}

/// The process's track name: `"comm [role] pid"`.
pub fn process_label(p: &Process) -> String {
    format!("{} [{}] {}", p.comm, p.role, p.pid)
}

/// Writes `ns` as trace microseconds, the bytes [`us`] serializes to: whole
/// microseconds as an integer, else up to three decimals without trailing zeros
/// (the shortest form of `ns / 1000.0`, exact below 2^53 ns).
fn write_us(out: &mut Vec<u8>, ns: u64) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", ns / 1000);
    if !ns.is_multiple_of(1000) {
        let _ = write!(out, ".{:03}", ns % 1000);
        while out.last() == Some(&b'0') {
            out.pop();
        }
    }
}

/// An on-CPU slice: the bulk of a trace, so written directly rather than
/// through serde (the bytes a `Value` of it would serialize to, its fields
/// in that order: `{"cat":"cpu","dur":…,"name":"on-CPU","ph":"X","pid":…,
/// "tdur":…,"tid":…,"ts":…}`, `tdur` only when known).
struct CpuSlice {
    dur_ns: u64,
    pid: u32,
    tdur_ns: Option<u64>,
    tid: u32,
    ts_ns: u64,
}

impl CpuSlice {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"cat\":\"cpu\",\"dur\":");
        write_us(out, self.dur_ns);
        let _ = write!(
            out,
            ",\"name\":\"on-CPU\",\"ph\":\"X\",\"pid\":{}",
            self.pid
        );
        if let Some(t) = self.tdur_ns {
            out.extend_from_slice(b",\"tdur\":");
            write_us(out, t);
        }
        let _ = write!(out, ",\"tid\":{},\"ts\":", self.tid);
        write_us(out, self.ts_ns);
        out.push(b'}');
    }
}

/// Bytes of serialized events held before they go to the writer.
const FLUSH_BYTES: usize = 1 << 20;

/// Trace events serialized as they are produced, one per line, and written out
/// a MiB at a time (no big intermediate tree nor buffer: a long recording has
/// millions of slices, hundreds of MB). The first write error is kept.
struct Events<'w> {
    out: Vec<u8>,
    count: usize,
    sink: &'w mut dyn Write,
    error: Option<std::io::Error>,
}

impl Events<'_> {
    fn push(&mut self, event: Value) {
        self.push_ser(&event);
    }

    fn push_ser(&mut self, event: &impl serde::Serialize) {
        self.separate();
        // Writing into a Vec cannot fail; the events serialize infallibly.
        let _ = serde_json::to_writer(&mut self.out, event);
    }

    fn push_slice(&mut self, slice: &CpuSlice) {
        self.separate();
        slice.write(&mut self.out);
    }

    fn separate(&mut self) {
        if self.out.len() >= FLUSH_BYTES {
            self.flush();
        }
        if self.count > 0 {
            self.out.extend_from_slice(b",\n");
        }
        self.count += 1;
    }

    fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.sink.write_all(&self.out)
        {
            self.error = Some(e);
        }
        self.out.clear();
    }
}

/// The trace as JSON bytes.
pub fn to_json(rec: &Recording) -> Vec<u8> {
    to_json_with(rec, &[])
}

/// The trace as JSON bytes, with `extra` events (e.g. the Lambda phase
/// tracks) appended after the processes' own.
pub fn to_json_with(rec: &Recording, extra: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_json_with(rec, extra, &mut out);
    out
}

/// Writes the trace as JSON to `sink` as it is serialized.
pub fn write_json(rec: &Recording, sink: &mut dyn Write) -> std::io::Result<()> {
    write_json_with(rec, &[], sink)
}

/// [`write_json`], with `extra` events appended after the processes' own.
pub fn write_json_with(
    rec: &Recording,
    extra: &[Value],
    sink: &mut dyn Write,
) -> std::io::Result<()> {
    let mut events = Events {
        out: Vec::with_capacity(FLUSH_BYTES + (64 << 10)),
        count: 0,
        sink,
        error: None,
    };
    events.out.extend_from_slice(b"{\"traceEvents\":[\n");
    let root = rec.info.root_pid;
    let mut sort: Vec<u32> = rec.processes.iter().map(|p| p.pid).collect();
    sort.sort_by_key(|&pid| (Some(pid) != root, pid));
    for p in &rec.processes {
        process_events(p, &sort, &mut events);
    }
    for e in extra {
        events.push(e.clone());
    }
    let metadata = json!({
        "lxprof_version": LXPROF_VERSION,
        "command": rec.info.command,
        "root_pid": rec.info.root_pid,
        "kernel_release": rec.info.kernel_release,
        "duration_ns": rec.duration_ns,
        "lost_events": rec.info.lost_events,
        "lost_per_cpu": rec.info.lost_per_cpu,
        "decode_errors": rec.info.decode_errors,
        "clock": "CLOCK_MONOTONIC, relative to the start of the recording",
    });
    events
        .out
        .extend_from_slice(format!("\n],\n\"metadata\":{metadata}}}\n").as_bytes());
    events.flush();
    events.error.map_or(Ok(()), Err)
}

fn process_events(p: &Process, sort: &[u32], ev: &mut Events) {
    let pid = p.pid;
    let sort_index = sort.iter().position(|&x| x == pid).unwrap_or(0);
    ev.push(
        json!({"ph": "M", "name": "process_name", "pid": pid, "tid": pid,
        "args": {"name": process_label(p)}}),
    );
    ev.push(
        json!({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": pid,
        "args": {"sort_index": sort_index}}),
    );
    // thread_name for every thread, and for the leader tid the instants use.
    let mut named: BTreeMap<u32, &str> =
        p.threads.iter().map(|t| (t.tid, t.name.as_str())).collect();
    named.entry(pid).or_insert(p.comm.as_str());
    for (tid, name) in &named {
        let name = if name.is_empty() { "?" } else { name };
        ev.push(
            json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
            "args": {"name": name}}),
        );
    }
    for t in &p.threads {
        for i in &t.intervals {
            // Stints a window apart share an interval: its CPU time is less
            // than its length (Perfetto shows `tdur` as the slice's thread time).
            let tdur_ns = (i.cpu_ns.abs_diff(i.len_ns()) >= 1_000).then_some(i.cpu_ns);
            ev.push_slice(&CpuSlice {
                dur_ns: i.end_ns - i.start_ns,
                pid,
                tdur_ns,
                tid: t.tid,
                ts_ns: i.start_ns,
            });
        }
    }
    category_runs(p, ev);
    rss_counters(p, ev);
    fault_counters(p, ev);
    alloc_counters(p, ev);
    for x in &p.execs {
        ev.push(
            json!({"ph": "i", "s": "p", "name": format!("exec {}", x.filename),
            "cat": "process", "pid": pid, "tid": pid, "ts": us(x.ts_ns),
            "args": {"filename": x.filename, "comm": x.comm, "old_tid": x.old_tid}}),
        );
    }
    if let Some(exit) = &p.exit {
        ev.push(
            json!({"ph": "i", "s": "p", "name": "exit", "cat": "process",
            "pid": pid, "tid": pid, "ts": us(p.end_ns),
            "args": {"code": exit.code, "signal": exit.signal, "raw": exit.raw}}),
        );
    }
}

/// The JIT/GC track of each thread with runs (see the module doc).
fn category_runs(p: &Process, ev: &mut Events) {
    let mut named = BTreeSet::new();
    for t in p.threads.iter().filter(|t| !t.category_runs.is_empty()) {
        let tid = jit_gc_tid(t.tid);
        if named.insert(tid) {
            let name = if t.name.is_empty() { "?" } else { &t.name };
            ev.push(
                json!({"ph": "M", "name": "thread_name", "pid": p.pid, "tid": tid,
                "args": {"name": format!("{name} JIT/GC")}}),
            );
        }
        for r in &t.category_runs {
            ev.push(
                json!({"ph": "X", "name": crate::explain::run_name(r.category),
                "cat": r.category.as_str(), "pid": p.pid, "tid": tid,
                "ts": us(r.start_ns), "dur": us(r.end_ns.saturating_sub(r.start_ns)),
                "args": {"samples": r.samples, "thread": t.tid}}),
            );
        }
    }
}

fn rss_counters(p: &Process, ev: &mut Events) {
    let mut last_bucket = None;
    let mut pending = None;
    let flush = |s: Option<crate::model::RssSample>, ev: &mut Events| {
        if let Some(s) = s {
            ev.push(
                json!({"ph": "C", "name": "RSS", "pid": p.pid, "ts": us(s.ts_ns),
                "args": {"total": s.rss(), "file": s.file, "anon": s.anon, "shmem": s.shmem}}),
            );
        }
    };
    for s in &p.rss {
        let bucket = s.ts_ns / RSS_RESOLUTION_NS;
        if last_bucket != Some(bucket) {
            flush(pending.take(), ev);
            last_bucket = Some(bucket);
        }
        pending = Some(*s);
    }
    flush(pending, ev);
}

fn fault_counters(p: &Process, ev: &mut Events) {
    let rate = p.fault_rate(FAULT_BUCKET_NS);
    let counter = |ts: u64, n: u64| {
        json!({"ph": "C", "name": "page faults", "pid": p.pid, "ts": us(ts),
            "args": {"per 10ms": n}})
    };
    for (i, &(start, n)) in rate.iter().enumerate() {
        ev.push(counter(start, n));
        let next = start + FAULT_BUCKET_NS;
        if rate.get(i + 1).is_none_or(|&(s, _)| s != next) {
            ev.push(counter(next, 0));
        }
    }
}

/// "alloc" counter of a process with allocation records: bytes allocated
/// (malloc/calloc/realloc requests, mmap lengths, brk growth) and calls per
/// [`FAULT_BUCKET_NS`], back to 0 after a burst.
fn alloc_counters(p: &Process, ev: &mut Events) {
    let mut buckets: Vec<(u64, u64, u64)> = Vec::new();
    for a in p.alloc_points.iter().filter(|a| a.op.allocates()) {
        let b = a.ts_ns / FAULT_BUCKET_NS * FAULT_BUCKET_NS;
        match buckets.last_mut() {
            Some((start, bytes, n)) if *start == b => {
                *bytes = bytes.saturating_add(a.bytes);
                *n += 1;
            }
            _ => buckets.push((b, a.bytes, 1)),
        }
    }
    let counter = |ts: u64, bytes: u64, n: u64| {
        json!({"ph": "C", "name": "alloc", "pid": p.pid, "ts": us(ts),
            "args": {"bytes per 10ms": bytes, "calls per 10ms": n}})
    };
    for (i, &(start, bytes, n)) in buckets.iter().enumerate() {
        ev.push(counter(start, bytes, n));
        let next = start + FAULT_BUCKET_NS;
        if buckets.get(i + 1).is_none_or(|&(s, _, _)| s != next) {
            ev.push(counter(next, 0, 0));
        }
    }
}

/// An `X` slice while validating: start, end (µs), event index.
type Slice = (f64, f64, usize);

/// Checks what Perfetto's importer and our tests rely on: a `traceEvents`
/// array; each event has the fields its phase needs (`M`: a known name and
/// its arg; `X`: name, tid, ts, dur ≥ 0; `C`: name, ts, numeric args; `i`/`I`:
/// name, ts, scope g/p/t; `B`/`E`: tid, ts); every pid used has a
/// `process_name` and every (pid, tid) used a `thread_name`; `X` slices on one
/// thread never cross (they may nest). Returns the first problem found.
pub fn validate(trace: &Value) -> Result<(), String> {
    let events = trace
        .get("traceEvents")
        .and_then(Value::as_array)
        .ok_or("no traceEvents array")?;
    let mut process_names = BTreeSet::new();
    let mut thread_names = BTreeSet::new();
    let mut pids_used = BTreeSet::new();
    let mut tids_used = BTreeSet::new();
    let mut slices: BTreeMap<(u64, u64), Vec<Slice>> = BTreeMap::new();
    for (n, e) in events.iter().enumerate() {
        let at = |msg: &str| format!("event {n} ({e}): {msg}");
        let ph = e
            .get("ph")
            .and_then(Value::as_str)
            .ok_or_else(|| at("no ph"))?;
        let pid = e
            .get("pid")
            .and_then(Value::as_u64)
            .ok_or_else(|| at("no pid"))?;
        let name = e.get("name").and_then(Value::as_str);
        let tid = e.get("tid").and_then(Value::as_u64);
        let ts = e.get("ts").and_then(Value::as_f64);
        let need_ts = || match ts {
            Some(t) if t >= 0.0 => Ok(t),
            _ => Err(at("needs ts >= 0")),
        };
        let need_tid = || tid.ok_or_else(|| at("needs tid"));
        match ph {
            "M" => {
                let arg = |k: &str| e.get("args").and_then(|a| a.get(k)).cloned();
                match name {
                    Some("process_name") => {
                        arg("name")
                            .filter(Value::is_string)
                            .ok_or_else(|| at("args.name"))?;
                        process_names.insert(pid);
                    }
                    Some("thread_name") => {
                        arg("name")
                            .filter(Value::is_string)
                            .ok_or_else(|| at("args.name"))?;
                        thread_names.insert((pid, need_tid()?));
                    }
                    Some("process_sort_index" | "thread_sort_index") => {
                        arg("sort_index")
                            .filter(Value::is_number)
                            .ok_or_else(|| at("args.sort_index"))?;
                    }
                    _ => return Err(at("unknown metadata name")),
                }
            }
            "X" => {
                name.ok_or_else(|| at("needs name"))?;
                let tid = need_tid()?;
                let ts = need_ts()?;
                let dur = e.get("dur").and_then(Value::as_f64).filter(|d| *d >= 0.0);
                let dur = dur.ok_or_else(|| at("needs dur >= 0"))?;
                pids_used.insert(pid);
                tids_used.insert((pid, tid));
                slices
                    .entry((pid, tid))
                    .or_default()
                    .push((ts, ts + dur, n));
            }
            "C" => {
                name.ok_or_else(|| at("needs name"))?;
                need_ts()?;
                let args = e.get("args").and_then(Value::as_object);
                let args = args.filter(|a| !a.is_empty() && a.values().all(Value::is_number));
                args.ok_or_else(|| at("needs numeric args"))?;
                pids_used.insert(pid);
            }
            "i" | "I" => {
                name.ok_or_else(|| at("needs name"))?;
                need_ts()?;
                let s = e.get("s").and_then(Value::as_str).unwrap_or("t");
                if !matches!(s, "g" | "p" | "t") {
                    return Err(at("scope must be g, p or t"));
                }
                pids_used.insert(pid);
                if s == "t" || tid.is_some() {
                    tids_used.insert((pid, need_tid()?));
                }
            }
            "B" | "E" => {
                need_ts()?;
                pids_used.insert(pid);
                tids_used.insert((pid, need_tid()?));
            }
            other => return Err(at(&format!("unexpected phase {other:?}"))),
        }
    }
    if let Some(pid) = pids_used.difference(&process_names).next() {
        return Err(format!("pid {pid} has no process_name metadata"));
    }
    if let Some((pid, tid)) = tids_used.difference(&thread_names).next() {
        return Err(format!("pid {pid} tid {tid} has no thread_name metadata"));
    }
    // Half a nanosecond of slack for the decimal rounding of microseconds.
    const EPS_US: f64 = 0.0005;
    for ((pid, tid), mut v) in slices {
        // Earlier start first; of two starting together, the longer (outer) one.
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        // Slices may nest (a child inside its parent) but never cross.
        let mut open: Vec<&Slice> = Vec::new();
        for s in &v {
            while open.last().is_some_and(|o| o.1 <= s.0 + EPS_US) {
                open.pop();
            }
            if let Some(o) = open.last()
                && s.1 > o.1 + EPS_US
            {
                return Err(format!(
                    "pid {pid} tid {tid}: X slices overlap (events {} and {})",
                    o.2, s.2
                ));
            }
            open.push(s);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FaultBatch, Interval, RecordingInfo, RssSample, Thread};

    /// The directly written slices are the bytes serde writes for the same `Value`.
    #[test]
    fn cpu_slices_are_written_as_serde_writes_them() {
        let mut ns: Vec<u64> = vec![0, 1, 10, 100, 999, 1000, 1001, 1010, 1100, 123_456_789];
        // A spread of magnitudes and fractions (a fixed LCG: the same every run).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ns.push((x >> 11) % 10u64.pow(1 + (x % 14) as u32));
        }
        for &n in &ns {
            let mut out = Vec::new();
            write_us(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&us(n)).expect("json"), "{n} ns");
        }
        for (tdur, n) in [
            (None, 1_234_567u64),
            (Some(2_000), 7),
            (Some(999), 1_000_000),
        ] {
            let slice = CpuSlice {
                dur_ns: n,
                pid: 7,
                tdur_ns: tdur,
                tid: 8,
                ts_ns: n * 3 + 1,
            };
            let mut v = json!({"cat": "cpu", "dur": us(n), "name": "on-CPU", "ph": "X",
                "pid": 7, "tid": 8, "ts": us(n * 3 + 1)});
            if let Some(t) = tdur {
                v["tdur"] = us(t);
            }
            let mut out = Vec::new();
            slice.write(&mut out);
            assert_eq!(
                String::from_utf8(out).expect("utf8"),
                serde_json::to_string(&v).expect("json")
            );
        }
    }

    fn thread(tid: u32, name: &str, intervals: &[(u64, u64)]) -> Thread {
        Thread {
            tid,
            name: name.into(),
            names: vec![name.into()],
            intervals: intervals
                .iter()
                .map(|&(start_ns, end_ns)| Interval::new(start_ns, end_ns))
                .collect(),
            ..Thread::default()
        }
    }

    fn recording() -> Recording {
        let child = Process {
            pid: 20,
            ppid: 30,
            comm: "child".into(),
            role: "descendant".into(),
            threads: vec![thread(20, "child", &[(1_500, 2_000), (2_000, 9_001)])],
            execs: vec![crate::model::ExecRecord {
                ts_ns: 1_000,
                old_tid: 20,
                filename: "/bin/child".into(),
                comm: "child".into(),
            }],
            exit: Some(crate::model::ExitStatus::from_wait_status(1 << 8)),
            end_ns: 9_500,
            faults: [1_000, 2_000, 25_000_000].map(FaultBatch::at).to_vec(),
            rss: vec![
                RssSample {
                    ts_ns: 100,
                    anon: 4096,
                    ..RssSample::default()
                },
                RssSample {
                    ts_ns: 200,
                    anon: 8192,
                    ..RssSample::default()
                },
                RssSample {
                    ts_ns: 2_000_000,
                    file: 4096,
                    anon: 8192,
                    ..RssSample::default()
                },
            ],
            ..Process::default()
        };
        let root = Process {
            pid: 30,
            comm: "root".into(),
            role: "command".into(),
            // No thread record for the leader: its name must still appear.
            threads: vec![thread(31, "worker", &[(0, 10)])],
            ..Process::default()
        };
        Recording {
            duration_ns: 30_000_000,
            processes: vec![child, root],
            info: RecordingInfo {
                command: vec!["root".into()],
                root_pid: Some(30),
                lost_events: 2,
                kernel_release: "6.1".into(),
                ..RecordingInfo::default()
            },
        }
    }

    fn events_of(v: &Value) -> &Vec<Value> {
        v["traceEvents"].as_array().unwrap()
    }

    #[test]
    fn trace_has_names_slices_counters_and_instants() {
        let v: Value = serde_json::from_slice(&to_json(&recording())).unwrap();
        validate(&v).unwrap();
        let evs = events_of(&v);
        let find = |ph: &str, name: &str, pid: u64| {
            evs.iter()
                .filter(|e| e["ph"] == ph && e["name"] == name && e["pid"] == pid)
                .collect::<Vec<_>>()
        };
        let sort = |pid| find("M", "process_sort_index", pid)[0]["args"]["sort_index"].clone();
        assert_eq!((sort(30), sort(20)), (json!(0), json!(1)), "root first");
        assert_eq!(
            find("M", "process_name", 20)[0]["args"]["name"],
            "child [descendant] 20"
        );
        let leader = find("M", "thread_name", 30);
        assert!(
            leader
                .iter()
                .any(|e| e["tid"] == 30 && e["args"]["name"] == "root")
        );
        let slices = find("X", "on-CPU", 20);
        assert_eq!(slices.len(), 2);
        assert_eq!(
            (slices[0]["ts"].as_f64(), slices[0]["dur"].as_f64()),
            (Some(1.5), Some(0.5))
        );
        assert_eq!(slices[1]["dur"].as_f64(), Some(7.001), "ns precision kept");
        // Two samples within 1 ms coalesce to the later one.
        let rss = find("C", "RSS", 20);
        assert_eq!(rss.len(), 2);
        assert_eq!(rss[0]["args"]["total"], 8192);
        assert_eq!(rss[1]["args"]["file"], 4096);
        let faults: Vec<_> = find("C", "page faults", 20)
            .iter()
            .map(|e| {
                (
                    e["ts"].as_u64().unwrap(),
                    e["args"]["per 10ms"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(faults, [(0, 2), (10_000, 0), (20_000, 1), (30_000, 0)]);
        assert_eq!(find("i", "exec /bin/child", 20).len(), 1);
        assert_eq!(find("i", "exit", 20)[0]["args"]["code"], 1);
        assert_eq!(v["metadata"]["lost_events"], 2);
        assert_eq!(v["metadata"]["command"], json!(["root"]));
    }

    #[test]
    fn jit_and_gc_runs_are_slices_on_their_own_track() {
        use crate::model::CategoryRun;
        use crate::stacks::Category;
        let mut rec = recording();
        let run = |category, start_ns, end_ns| CategoryRun {
            category,
            start_ns,
            end_ns,
            samples: 3,
        };
        // Runs spanning the thread's two on-CPU slices and the gap between.
        rec.processes[0].threads[0].category_runs = vec![
            run(Category::Jit, 1_600, 2_500),
            run(Category::Gc, 2_500, 9_500),
        ];
        let v: Value = serde_json::from_slice(&to_json(&rec)).unwrap();
        validate(&v).unwrap();
        let evs = events_of(&v);
        let track = u64::from(jit_gc_tid(20));
        let name = evs
            .iter()
            .find(|e| e["ph"] == "M" && e["tid"] == track)
            .expect("thread_name of the JIT/GC track");
        assert_eq!(name["args"]["name"], "child JIT/GC");
        let slices: Vec<_> = evs
            .iter()
            .filter(|e| e["ph"] == "X" && e["tid"] == track)
            .map(|e| {
                (
                    e["name"].as_str().unwrap(),
                    e["cat"].as_str().unwrap(),
                    e["ts"].as_f64().unwrap(),
                    e["dur"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(slices, [("JIT", "jit", 1.6, 0.9), ("GC", "gc", 2.5, 7.0)]);
        // On the thread's own track they would cross its on-CPU slices.
        let mut crossing = v.clone();
        for e in crossing["traceEvents"].as_array_mut().unwrap() {
            if e["ph"] == "X" && e["tid"] == track {
                e["tid"] = json!(20);
            }
        }
        assert!(validate(&crossing).unwrap_err().contains("overlap"));
    }

    #[test]
    fn validator_rejects_broken_traces() {
        let ok = json!({"traceEvents": [
            {"ph": "M", "name": "process_name", "pid": 1, "tid": 1, "args": {"name": "p"}},
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "t"}},
            {"ph": "X", "name": "a", "pid": 1, "tid": 2, "ts": 1.0, "dur": 1.0},
            {"ph": "X", "name": "a", "pid": 1, "tid": 2, "ts": 2.0, "dur": 1.0},
        ]});
        validate(&ok).unwrap();
        let broken = |i: usize, patch: Value| {
            let mut v = ok.clone();
            let e = &mut v["traceEvents"][i];
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    e.as_object_mut().unwrap().remove(k);
                } else {
                    e[k] = val.clone();
                }
            }
            validate(&v).unwrap_err()
        };
        assert!(broken(3, json!({"ts": 1.5})).contains("overlap"));
        assert!(broken(3, json!({"dur": null})).contains("dur"));
        assert!(broken(3, json!({"tid": 3})).contains("thread_name"));
        assert!(broken(3, json!({"pid": 4})).contains("process_name"));
        assert!(broken(2, json!({"ph": "C", "args": {"x": "y"}})).contains("numeric"));
        assert!(broken(2, json!({"ph": "i", "s": "q"})).contains("scope"));
        assert!(broken(2, json!({"ph": "Z"})).contains("phase"));
        assert!(broken(0, json!({"args": {}})).contains("args.name"));
        assert!(validate(&json!({"events": []})).is_err());
    }
}
