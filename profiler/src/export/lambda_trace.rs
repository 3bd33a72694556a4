//! The Lambda tracks of a `record --lambda` `trace.json`, appended with
//! [`chrome::to_json_with`](super::chrome::to_json_with): a `Lambda`
//! pseudo-process ([`LAMBDA_PID`], above any real pid) with one thread track
//! per environment carrying nested `X` slices built from the emulator's phase
//! events:
//!
//! - `Init` with `Extension init` [InitStart, ExtensionsRegistered] and
//!   `Runtime init` [ExtensionsRegistered, InitEnd] inside;
//! - `Invoke <request id>` with `Runtime` [InvokeStart, RuntimeDone (or
//!   RuntimeNext)] and `PostRuntimeExtensions` [RuntimeNext, InvokeEnd] inside;
//!   its args hold the invocation's metrics and per-role attribution;
//! - `Frozen` [Frozen, Thawed] and `Shutdown` [ShutdownStart, ShutdownEnd].
//!
//! A slice still open when an unrelated phase begins (an invocation cut by a
//! shutdown) or at the end of the recording is closed there, so slices never
//! cross. Counters on the `Lambda` process: `env N memory` (cgroup bytes) and,
//! per role, `faults <role>` and `alloc <role>` per 10 ms.

use std::collections::BTreeMap;

use lxprof_emulator::{InvocationMetrics, PhaseEvent};
use serde_json::{Value, json};

use super::lambda_attrib::{Attribution, InvocationAttribution, LambdaRun, process_roles};

/// pid of the `Lambda` pseudo-process: above Linux's largest pid_max (2^22).
pub const LAMBDA_PID: u32 = 5_000_000;
/// A phase event and an invocation's phase time this close are the same boundary.
const MATCH_NS: u64 = 1_000_000;
/// Width of the per-role fault and allocation buckets.
pub const ROLE_BUCKET_NS: u64 = 10_000_000;

/// Track (tid) of environment `env` in the `Lambda` process.
pub fn env_tid(env: usize) -> u32 {
    let env = u32::try_from(env).unwrap_or(u32::MAX);
    (LAMBDA_PID + 1).saturating_add(env)
}

/// Nanoseconds as trace microseconds (the same 3-decimal form as chrome.rs).
fn us(ns: u64) -> Value {
    if ns.is_multiple_of(1000) {
        json!(ns / 1000)
    } else {
        json!(ns as f64 / 1000.0)
    }
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// The `Lambda` process's events: metadata, phase slices, counters.
pub fn lambda_events(run: &LambdaRun, attr: &Attribution) -> Vec<Value> {
    let pid = LAMBDA_PID;
    let mut out = vec![
        json!({"ph": "M", "name": "process_name", "pid": pid, "tid": pid,
            "args": {"name": "Lambda"}}),
        json!({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": pid,
            "args": {"sort_index": -1}}),
    ];
    let mut envs: Vec<usize> = run.phases.iter().map(|p| p.0).collect();
    envs.extend(run.report.invocations.iter().map(|m| m.environment));
    envs.sort_unstable();
    envs.dedup();
    for &env in &envs {
        let tid = env_tid(env);
        out.push(
            json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
            "args": {"name": format!("environment {env}")}}),
        );
        out.push(
            json!({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
            "args": {"sort_index": env}}),
        );
        let slices = env_slices(run, attr, env);
        out.extend(slices.into_iter().map(|s| s.to_event(tid)));
    }
    for &(env, ns, bytes) in run.memory {
        out.push(
            json!({"ph": "C", "name": format!("env {env} memory"), "pid": pid,
            "ts": us(ns.saturating_sub(run.start_ns)), "args": {"bytes": bytes}}),
        );
    }
    role_counters(run, &mut out);
    out
}

/// One `X` slice, relative ns.
#[derive(Debug, Clone, PartialEq)]
struct Slice {
    name: String,
    start: u64,
    end: u64,
    args: Value,
}

impl Slice {
    fn new(name: impl Into<String>, start: u64, end: u64, args: Value) -> Slice {
        Slice {
            name: name.into(),
            start,
            end: end.max(start),
            args,
        }
    }

    /// A child slice clamped inside `self`.
    fn child(&self, name: &str, start: u64, end: u64) -> Slice {
        let start = start.clamp(self.start, self.end);
        Slice::new(name, start, end.clamp(start, self.end), json!({}))
    }

    fn to_event(&self, tid: u32) -> Value {
        json!({"ph": "X", "name": self.name, "cat": "lambda", "pid": LAMBDA_PID, "tid": tid,
            "ts": us(self.start), "dur": us(self.end - self.start), "args": self.args})
    }
}

/// What is open on an environment's track while its phase events are replayed.
#[derive(Debug, Default)]
struct Open {
    init: Option<u64>,
    extensions_registered: Option<u64>,
    invoke: Option<u64>,
    runtime_done: Option<u64>,
    runtime_next: Option<u64>,
    frozen: Option<u64>,
    shutdown: Option<u64>,
}

/// The slices of one environment's track, parents before their children.
fn env_slices(run: &LambdaRun, attr: &Attribution, env: usize) -> Vec<Slice> {
    let rel = |ns: u64| ns.saturating_sub(run.start_ns);
    let mut events: Vec<(PhaseEvent, u64)> = run
        .phases
        .iter()
        .filter(|p| p.0 == env)
        .map(|p| (p.1, rel(p.2)))
        .collect();
    events.sort_by_key(|e| e.1);
    let end_of_recording = events
        .last()
        .map_or(run.rec.duration_ns, |e| e.1.max(run.rec.duration_ns));
    let ctx = Ctx { run, attr, env };
    let mut open = Open::default();
    let mut out = Vec::new();
    for (event, ns) in events {
        use PhaseEvent::*;
        match event {
            InitStart => {
                ctx.close_all(&mut open, ns, &mut out);
                open.init = Some(ns);
            }
            ExtensionsRegistered => {
                if open.init.is_some() {
                    open.extensions_registered = Some(ns);
                }
            }
            InitEnd => ctx.close_init(&mut open, ns, &mut out),
            InvokeStart => {
                ctx.close_all(&mut open, ns, &mut out);
                open.invoke = Some(ns);
            }
            RuntimeDone => {
                if open.invoke.is_some() && open.runtime_done.is_none() {
                    open.runtime_done = Some(ns);
                }
            }
            RuntimeNext => {
                if open.invoke.is_some() && open.runtime_next.is_none() {
                    open.runtime_next = Some(ns);
                }
            }
            InvokeEnd => ctx.close_invoke(&mut open, ns, &mut out),
            Frozen => {
                ctx.close_all(&mut open, ns, &mut out);
                open.frozen = Some(ns);
            }
            Thawed => ctx.close_frozen(&mut open, ns, &mut out),
            ShutdownStart => {
                ctx.close_all(&mut open, ns, &mut out);
                open.shutdown = Some(ns);
            }
            ShutdownEnd => {
                if let Some(start) = open.shutdown.take() {
                    out.push(Slice::new("Shutdown", start, ns, json!({})));
                }
            }
        }
    }
    ctx.close_all(&mut open, end_of_recording, &mut out);
    if let Some(start) = open.shutdown.take() {
        out.push(Slice::new("Shutdown", start, end_of_recording, json!({})));
    }
    out
}

struct Ctx<'a> {
    run: &'a LambdaRun<'a>,
    attr: &'a Attribution,
    env: usize,
}

impl Ctx<'_> {
    fn close_all(&self, open: &mut Open, ns: u64, out: &mut Vec<Slice>) {
        self.close_init(open, ns, out);
        self.close_invoke(open, ns, out);
        self.close_frozen(open, ns, out);
    }

    fn close_frozen(&self, open: &mut Open, ns: u64, out: &mut Vec<Slice>) {
        if let Some(start) = open.frozen.take() {
            out.push(Slice::new("Frozen", start, ns, json!({})));
        }
    }

    /// The invocation of this environment whose phase `field` is nearest `ns`
    /// (within [`MATCH_NS`]: the emulator reports the same ns in both).
    fn nearest(
        &self,
        ns: u64,
        field: fn(&InvocationMetrics) -> u64,
    ) -> Option<(&InvocationMetrics, Option<&InvocationAttribution>)> {
        let abs = ns + self.run.start_ns;
        let (i, m) = self
            .run
            .report
            .invocations
            .iter()
            .enumerate()
            .filter(|(_, m)| m.environment == self.env && field(m) != 0)
            .filter(|(_, m)| field(m).abs_diff(abs) <= MATCH_NS)
            .min_by_key(|(_, m)| field(m).abs_diff(abs))?;
        Some((m, self.attr.invocations.get(i)))
    }

    fn close_init(&self, open: &mut Open, ns: u64, out: &mut Vec<Slice>) {
        let Some(start) = open.init.take() else {
            return;
        };
        let registered = open.extensions_registered.take();
        let mut args = json!({"duration_ms": ms(ns - start)});
        if let Some((m, a)) =
            self.nearest(start, |m| if m.cold { m.phases.init_start_ns } else { 0 })
        {
            args["request_id"] = json!(m.request_id);
            if let Some(a) = a {
                let mut by_role: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
                for p in &a.init_by_process {
                    let e = by_role.entry(p.role.as_str()).or_default();
                    e.0 += p.cpu_ns;
                    e.1 += p.page_faults;
                    e.2 += p.alloc_bytes;
                }
                let by_role: BTreeMap<&str, Value> = by_role
                    .into_iter()
                    .map(|(r, (cpu, faults, bytes))| {
                        (
                            r,
                            json!({"cpu_ms": ms(cpu), "page_faults": faults, "alloc_bytes": bytes}),
                        )
                    })
                    .collect();
                args["by_role"] = json!(by_role);
            }
        }
        let init = Slice::new("Init", start, ns, args);
        let children = registered.map(|r| {
            [
                init.child("Extension init", start, r),
                init.child("Runtime init", r, ns),
            ]
        });
        out.push(init);
        out.extend(children.into_iter().flatten());
    }

    fn close_invoke(&self, open: &mut Open, ns: u64, out: &mut Vec<Slice>) {
        let Some(start) = open.invoke.take() else {
            return;
        };
        let done = open.runtime_done.take();
        let next = open.runtime_next.take();
        let mut name = "Invoke".to_string();
        let mut args = json!({"duration_ms": ms(ns - start)});
        if let Some((m, a)) = self.nearest(start, |m| m.phases.invoke_start_ns) {
            name = format!("Invoke {}", m.request_id);
            args = json!({
                "request_id": m.request_id,
                "status": m.status.as_str(),
                "cold": m.cold,
                "duration_ms": m.duration_ms,
                "billed_duration_ms": m.billed_duration_ms,
                "post_runtime_extensions_duration_ms": m.post_runtime_extensions_duration_ms,
                "max_memory_used_mb": m.max_memory_used_mb,
            });
            if let Some(t) = &m.error_type {
                args["error_type"] = json!(t);
            }
            if let Some(a) = a {
                let by_role: BTreeMap<&str, Value> = a
                    .by_role
                    .iter()
                    .map(|(r, u)| {
                        (
                            r.as_str(),
                            json!({"cpu_ms": ms(u.cpu_ns),
                                "post_runtime_cpu_ms": ms(u.post_runtime_cpu_ns),
                                "page_faults": u.page_faults, "alloc_bytes": u.alloc_bytes}),
                        )
                    })
                    .collect();
                args["by_role"] = json!(by_role);
            }
        }
        let invoke = Slice::new(name, start, ns, args);
        let runtime = invoke.child("Runtime", start, done.or(next).unwrap_or(ns));
        let post = next.map(|n| invoke.child("PostRuntimeExtensions", n, ns));
        out.push(invoke);
        out.push(runtime);
        out.extend(post);
    }
}

/// Per-role `faults <role>` and `alloc <role>` counters per [`ROLE_BUCKET_NS`],
/// back to 0 after each burst.
fn role_counters(run: &LambdaRun, out: &mut Vec<Value>) {
    let owners = process_roles(run.rec, run.spawned);
    let mut faults: BTreeMap<&str, BTreeMap<u64, u64>> = BTreeMap::new();
    let mut allocs: BTreeMap<&str, BTreeMap<u64, u64>> = BTreeMap::new();
    for (p, owner) in run.rec.processes.iter().zip(&owners) {
        let Some(owner) = owner else { continue };
        for (t, n) in p.fault_rate(ROLE_BUCKET_NS) {
            *faults
                .entry(owner.role.as_str())
                .or_default()
                .entry(t / ROLE_BUCKET_NS)
                .or_default() += n;
        }
        for a in p.alloc_points.iter().filter(|a| a.op.allocates()) {
            *allocs
                .entry(owner.role.as_str())
                .or_default()
                .entry(a.ts_ns / ROLE_BUCKET_NS)
                .or_default() += a.bytes;
        }
    }
    let mut emit = |name: String, key: &str, buckets: &BTreeMap<u64, u64>| {
        for (&b, &v) in buckets {
            let counter = |bucket: u64, v: u64| {
                json!({"ph": "C", "name": name, "pid": LAMBDA_PID,
                    "ts": us(bucket * ROLE_BUCKET_NS), "args": {key: v}})
            };
            out.push(counter(b, v));
            if !buckets.contains_key(&(b + 1)) {
                out.push(counter(b + 1, 0));
            }
        }
    };
    for (role, b) in &faults {
        emit(format!("faults {role}"), "per 10ms", b);
    }
    for (role, b) in &allocs {
        emit(format!("alloc {role}"), "bytes per 10ms", b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::chrome;
    use crate::export::lambda_attrib::attribute;
    use crate::export::lambda_testdata::{Fixture, fixture};

    /// The Lambda events of `f`'s run.
    fn events_of(f: &Fixture) -> Vec<Value> {
        let run = f.run();
        lambda_events(&run, &attribute(&run))
    }

    /// Panics unless `events` and `f`'s processes make a valid trace.
    fn assert_valid(f: &Fixture, events: &[Value]) {
        let trace: Value =
            serde_json::from_slice(&chrome::to_json_with(&f.rec, events)).expect("json");
        chrome::validate(&trace).expect("valid trace");
    }

    /// An X slice as [`slices`] lists it.
    fn s(name: &str, ts: f64, dur: f64) -> (String, f64, f64) {
        (name.to_string(), ts, dur)
    }

    fn slices(events: &[Value], tid: u32) -> Vec<(String, f64, f64)> {
        events
            .iter()
            .filter(|e| e["ph"] == "X" && e["tid"] == tid)
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or("").to_string(),
                    e["ts"].as_f64().unwrap_or(-1.0),
                    e["dur"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect()
    }

    #[test]
    fn environments_get_nested_phase_slices_that_validate() {
        let f = fixture();
        let events = events_of(&f);
        assert_valid(&f, &events);
        assert_eq!(
            slices(&events, env_tid(0)),
            [
                s("Init", 100.0, 500.0),
                s("Extension init", 100.0, 200.0),
                s("Runtime init", 300.0, 300.0),
                s("Invoke req-1", 1000.0, 1000.0),
                s("Runtime", 1000.0, 400.0),
                s("PostRuntimeExtensions", 1500.0, 500.0),
                s("Frozen", 2000.0, 1000.0),
                s("Invoke req-2", 3000.0, 500.0),
                s("Runtime", 3000.0, 200.0),
                s("PostRuntimeExtensions", 3300.0, 200.0),
                s("Frozen", 3500.0, 500.0),
                s("Shutdown", 4000.0, 100.0),
            ]
        );
        // env 1 stays frozen until the end of the recording (5 ms).
        let env1 = slices(&events, env_tid(1));
        assert_eq!(env1[0], s("Init", 150.0, 350.0));
        assert_eq!(env1[3].0, "Invoke req-3");
        assert_eq!(env1.last(), Some(&s("Frozen", 1800.0, 3200.0)));
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["ph"] == "M" && e["pid"] == LAMBDA_PID)
            .filter_map(|e| e["args"]["name"].as_str())
            .collect();
        assert_eq!(names, ["Lambda", "environment 0", "environment 1"]);
    }

    #[test]
    fn invoke_and_init_args_carry_metrics_and_attribution() {
        let f = fixture();
        let events = events_of(&f);
        let find = |name: &str| {
            events
                .iter()
                .find(|e| e["name"] == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        let inv = &find("Invoke req-1")["args"];
        assert_eq!(inv["request_id"], "req-1");
        assert_eq!(inv["status"], "success");
        assert_eq!(inv["cold"], true);
        assert_eq!(inv["post_runtime_extensions_duration_ms"], 0.5);
        assert_eq!(inv["by_role"]["function"]["cpu_ms"], 0.47);
        assert_eq!(inv["by_role"]["extension:ext"]["post_runtime_cpu_ms"], 0.3);
        assert_eq!(inv["by_role"]["extension:ext"]["alloc_bytes"], 5096);
        let init = &events
            .iter()
            .find(|e| e["name"] == "Init" && e["tid"] == env_tid(0))
            .expect("init")["args"];
        assert_eq!(init["request_id"], "req-1");
        assert_eq!(init["by_role"]["extension:ext"]["cpu_ms"], 0.1);
    }

    #[test]
    fn counters_for_memory_faults_and_allocations() {
        let f = fixture();
        let events = events_of(&f);
        let counter = |name: &str| -> Vec<(f64, Value)> {
            events
                .iter()
                .filter(|e| e["ph"] == "C" && e["name"] == name)
                .map(|e| (e["ts"].as_f64().unwrap_or(-1.0), e["args"].clone()))
                .collect()
        };
        assert_eq!(
            counter("env 0 memory"),
            [
                (100.0, json!({"bytes": 10 << 20})),
                (1000.0, json!({"bytes": 12 << 20}))
            ]
        );
        assert_eq!(counter("env 1 memory").len(), 1);
        // The function's 5 faults all fall in the first 10 ms bucket.
        assert_eq!(
            counter("faults function"),
            [
                (0.0, json!({"per 10ms": 5})),
                (10_000.0, json!({"per 10ms": 0}))
            ]
        );
        assert_eq!(
            counter("alloc extension:ext")[0].1["bytes per 10ms"],
            8192 + 5096
        );
        assert!(counter("faults descendant").is_empty(), "unrelated process");
    }

    #[test]
    fn a_cut_invocation_closes_at_the_shutdown() {
        use PhaseEvent::*;
        let mut f = fixture();
        let o = crate::export::lambda_testdata::ORIGIN;
        f.phases = vec![
            (0, InvokeStart, o + 1_000),
            (0, RuntimeDone, o + 2_000),
            (0, ShutdownStart, o + 3_000),
        ];
        f.report.invocations.clear();
        let events = events_of(&f);
        assert_eq!(
            slices(&events, env_tid(0)),
            [
                s("Invoke", 1.0, 2.0),
                s("Runtime", 1.0, 1.0),
                s("Shutdown", 3.0, 4997.0),
            ]
        );
        assert_valid(&f, &events);
    }

    #[test]
    fn a_failed_init_and_a_reset_start_again_at_init() {
        use PhaseEvent::*;
        let mut f = fixture();
        let o = crate::export::lambda_testdata::ORIGIN;
        let t = |us: u64| o + us * 1_000;
        f.phases = vec![
            // Init failed before every extension registered: no sub-slices.
            (0, InitStart, t(10)),
            (0, InitEnd, t(20)),
            (0, ShutdownStart, t(20)),
            (0, ShutdownEnd, t(25)),
            // A new environment; its invocation times out (no RuntimeDone/Next).
            (0, InitStart, t(30)),
            (0, ExtensionsRegistered, t(30)),
            (0, InitEnd, t(40)),
            (0, InvokeStart, t(40)),
            (0, InvokeEnd, t(100)),
            (0, ShutdownStart, t(100)),
            (0, ShutdownEnd, t(110)),
        ];
        f.report.invocations.clear();
        let events = events_of(&f);
        assert_eq!(
            slices(&events, env_tid(0)),
            [
                s("Init", 10.0, 10.0),
                s("Shutdown", 20.0, 5.0),
                s("Init", 30.0, 10.0),
                s("Extension init", 30.0, 0.0),
                s("Runtime init", 30.0, 10.0),
                s("Invoke", 40.0, 60.0),
                s("Runtime", 40.0, 60.0),
                s("Shutdown", 100.0, 10.0),
            ]
        );
        assert_valid(&f, &events);
    }
}
