//! Per-invocation attribution of a `record --lambda` recording: for each
//! invocation and each role (`function`, `extension:<name>`, `emulator`), the
//! CPU time, page faults and allocations inside the invoke phase and inside its
//! post-runtime part; for cold starts, the same for the init phase per process.
//! [`attribute`] also fills the per-role summary and the cgroup cross-check of
//! [`lambda_roles`](super::lambda_roles).
//!
//! Rules:
//! - A process belongs to the environment that spawned it or one of its
//!   ancestors (`spawned` + `Process.ppid` chains). Only the environment's own
//!   processes count for its invocations, plus every `emulator` process (shown
//!   apart: it is not part of Lambda's cost and serves all environments).
//!   With concurrent environments, the emulator's usage at any instant is
//!   shared equally among the invocations busy then (in init or invoke), so
//!   that summed over invocations it is counted once.
//! - Windows are half-open `[start, end)` in ns relative to the recording
//!   start. CPU = overlap of the threads' on-CPU intervals with the window;
//!   faults = PAGE_FAULT records in it; allocations = records whose op
//!   [`allocates`](crate::model::AllocOp::allocates).
//! - Categories (app/jit/gc/runtime/kernel) of a role in a window (invoke,
//!   post-runtime, a process's init): the weights of its classified samples in
//!   the window, scaled to the window's CPU (None when it has no sample there).

use std::collections::{BTreeMap, HashMap};

use lxprof_emulator::{InvocationMetrics, LambdaReport, PhaseEvent};
use serde::Serialize;

use super::lambda_roles::cgroup_check;
pub use super::lambda_roles::{Agg, CgroupCheck, RoleSummary, role_order, summarize};
use crate::classify::CategoryTotals;
use crate::model::{Interval, Process, Recording};
use crate::stacks::ResolvedSample;

/// The role of the emulator's own processes (not billed by Lambda).
pub const EMULATOR_ROLE: &str = "emulator";

/// Everything a Lambda recording produced, as `record --lambda` holds it.
#[derive(Debug, Clone, Copy)]
pub struct LambdaRun<'a> {
    /// The recording, roles set (`function`, `extension:<name>`, `emulator`).
    pub rec: &'a Recording,
    /// CLOCK_MONOTONIC ns of the recording start (time 0 of the model).
    pub start_ns: u64,
    /// `(environment, pid, role)` of every process the emulator started, in order.
    pub spawned: &'a [(usize, u32, String)],
    /// `(environment, event, CLOCK_MONOTONIC ns)` of every phase boundary.
    pub phases: &'a [(usize, PhaseEvent, u64)],
    /// The emulator's metrics (phase times in CLOCK_MONOTONIC ns).
    pub report: &'a LambdaReport,
    /// `(environment, CLOCK_MONOTONIC ns, bytes)` cgroup memory samples.
    pub memory: &'a [(usize, u64, u64)],
    /// Classified samples from [`crate::explain::Explained::samples`]
    /// (CLOCK_MONOTONIC ns); empty without sampling.
    pub samples: &'a [ResolvedSample],
}

/// A half-open window `[start_ns, end_ns)`, ns relative to the recording start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    /// The window between two CLOCK_MONOTONIC times (None when either is 0 or
    /// they are reversed).
    pub fn from_abs(start_abs: u64, end_abs: u64, origin: u64) -> Option<Window> {
        (start_abs != 0 && end_abs != 0 && start_abs <= end_abs).then(|| Window {
            start_ns: start_abs.saturating_sub(origin),
            end_ns: end_abs.saturating_sub(origin),
        })
    }

    pub fn len_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// CPU, faults and allocations of some processes in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub cpu_ns: u64,
    pub page_faults: u64,
    /// Bytes of malloc/calloc/realloc/mmap/brk records.
    pub alloc_bytes: u64,
    /// Number of those records.
    pub alloc_count: u64,
}

impl Usage {
    fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}

/// One role's figures in one invocation (report.json `by_role.<role>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RoleUsage {
    /// In the invoke phase `[invoke_start, invoke_end)`.
    pub cpu_ns: u64,
    pub page_faults: u64,
    pub alloc_bytes: u64,
    pub alloc_count: u64,
    /// In its post-runtime part `[runtime_next, invoke_end)`.
    pub post_runtime_cpu_ns: u64,
    pub post_runtime_page_faults: u64,
    pub post_runtime_alloc_bytes: u64,
    pub post_runtime_alloc_count: u64,
    /// The invoke phase's `cpu_ns` split by category (None without samples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<CategoryTotals>,
    /// The same for `post_runtime_cpu_ns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_runtime_categories: Option<CategoryTotals>,
}

/// One process's figures in a cold start's init phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInit {
    pub pid: u32,
    pub role: String,
    pub comm: String,
    pub cpu_ns: u64,
    pub page_faults: u64,
    pub alloc_bytes: u64,
    pub alloc_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<CategoryTotals>,
}

/// One invocation's attribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvocationAttribution {
    pub request_id: String,
    pub environment: usize,
    pub cold: bool,
    /// The invoke phase (None when it did not start).
    pub invoke: Option<Window>,
    /// Its post-runtime part (None when the runtime did not call next).
    pub post_runtime: Option<Window>,
    /// The init phase of a cold start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<Window>,
    /// Role → figures; every role of the environment, and `emulator`.
    pub by_role: BTreeMap<String, RoleUsage>,
    /// Cold starts: every process of the environment (and the emulator's)
    /// alive during init.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_by_process: Vec<ProcessInit>,
}

impl InvocationAttribution {
    /// CPU of every role but the emulator in the invoke phase (what the
    /// environment's cgroup accounts).
    pub fn billed_cpu_ns(&self) -> u64 {
        self.by_role
            .iter()
            .filter(|(r, _)| r.as_str() != EMULATOR_ROLE)
            .map(|(_, u)| u.cpu_ns)
            .sum()
    }

    /// CPU of every process but the emulator's in the init phase.
    pub fn billed_init_cpu_ns(&self) -> u64 {
        self.init_by_process
            .iter()
            .filter(|p| p.role != EMULATOR_ROLE)
            .map(|p| p.cpu_ns)
            .sum()
    }
}

/// The whole attribution of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attribution {
    /// In the order of `LambdaReport::invocations`.
    pub invocations: Vec<InvocationAttribution>,
    /// `function` first, then extensions by name, other roles, `emulator` last.
    pub roles: Vec<RoleSummary>,
    /// Attributed CPU against the environments' cgroup accounting, over the
    /// invocations whose cgroup counter was read (None: none was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_check: Option<CgroupCheck>,
}

/// Which environment and role each process of the recording has, by index in
/// `rec.processes` (None: not of any environment, not the emulator).
pub fn process_roles(rec: &Recording, spawned: &[(usize, u32, String)]) -> Vec<Option<Owner>> {
    let by_pid: HashMap<u32, (usize, &str)> = spawned
        .iter()
        .map(|(env, pid, role)| (*pid, (*env, role.as_str())))
        .collect();
    rec.processes
        .iter()
        .zip(rec.nearest_ancestor_in(&by_pid))
        .map(|(p, spawner)| match spawner {
            Some(&(env, role)) => Some(Owner {
                env: Some(env),
                role: model_role(p, role),
            }),
            None => (p.role == EMULATOR_ROLE).then(|| Owner {
                env: None,
                role: EMULATOR_ROLE.to_string(),
            }),
        })
        .collect()
}

/// The model's role unless it is only the recorder's default.
fn model_role(p: &Process, spawned_role: &str) -> String {
    match p.role.as_str() {
        "" | "command" | "descendant" => spawned_role.to_string(),
        r => r.to_string(),
    }
}

/// The environment (None: the emulator) and role of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub env: Option<usize>,
    pub role: String,
}

/// CPU of sorted, disjoint `intervals` inside `w` (each interval's CPU in
/// proportion to its overlap with `w`).
pub fn cpu_in(intervals: &[Interval], w: Window) -> u64 {
    let first = intervals.partition_point(|i| i.end_ns < w.start_ns);
    intervals[first..]
        .iter()
        .take_while(|i| i.start_ns < w.end_ns)
        .map(|i| i.cpu_within(w.start_ns, w.end_ns))
        .sum()
}

/// CPU, faults and allocations of `p` inside `w`.
pub fn usage_in(p: &Process, w: Window) -> Usage {
    let cpu_ns = p.threads.iter().map(|t| cpu_in(&t.intervals, w)).sum();
    let page_faults = p.faults_within(w.start_ns, w.end_ns);
    let first = p.alloc_points.partition_point(|a| a.ts_ns < w.start_ns);
    let (mut alloc_bytes, mut alloc_count) = (0, 0);
    for a in p.alloc_points[first..]
        .iter()
        .take_while(|a| a.ts_ns < w.end_ns)
    {
        if a.op.allocates() {
            alloc_bytes += a.bytes;
            alloc_count += 1;
        }
    }
    Usage {
        cpu_ns,
        page_faults,
        alloc_bytes,
        alloc_count,
    }
}

/// How many invocations are busy (in their init or invoke phase) over time:
/// sorted, disjoint `[start, end)` segments with their count (≥ 1).
struct Busy {
    segments: Vec<(Window, u32)>,
}

impl Busy {
    fn new(windows: impl IntoIterator<Item = Window>) -> Self {
        let mut edges: Vec<(u64, i64)> = Vec::new();
        for w in windows.into_iter().filter(|w| w.len_ns() > 0) {
            edges.push((w.start_ns, 1));
            edges.push((w.end_ns, -1));
        }
        edges.sort_unstable();
        let mut segments = Vec::new();
        let mut count = 0i64;
        let mut prev = None;
        for (t, d) in edges {
            if let Some(p) = prev
                && t > p
                && count > 0
            {
                let w = Window {
                    start_ns: p,
                    end_ns: t,
                };
                segments.push((w, count as u32));
            }
            count += d;
            prev = Some(t);
        }
        Busy { segments }
    }

    /// `w` cut where the busy count changes, each part with its count (1
    /// where no invocation is busy).
    fn split(&self, w: Window) -> Vec<(Window, u32)> {
        let first = self
            .segments
            .partition_point(|(s, _)| s.end_ns <= w.start_ns);
        let mut parts = Vec::new();
        let mut at = w.start_ns;
        for (s, n) in self.segments[first..]
            .iter()
            .take_while(|(s, _)| s.start_ns < w.end_ns)
        {
            if s.start_ns > at {
                parts.push((window(at, s.start_ns), 1));
            }
            let end = s.end_ns.min(w.end_ns);
            parts.push((window(at.max(s.start_ns), end), *n));
            at = end;
        }
        if at < w.end_ns {
            parts.push((window(at, w.end_ns), 1));
        }
        parts
    }

    /// Usage of `p` in `w`, each instant's share divided among the
    /// invocations busy then.
    fn shared_usage_in(&self, p: &Process, w: Window) -> Usage {
        let parts = self.split(w);
        if parts.iter().all(|(_, n)| *n <= 1) {
            return usage_in(p, w);
        }
        let (mut cpu, mut faults, mut bytes, mut count) = (0.0, 0.0, 0.0, 0.0);
        for (part, n) in parts {
            let u = usage_in(p, part);
            let n = f64::from(n.max(1));
            cpu += u.cpu_ns as f64 / n;
            faults += u.page_faults as f64 / n;
            bytes += u.alloc_bytes as f64 / n;
            count += u.alloc_count as f64 / n;
        }
        Usage {
            cpu_ns: cpu.round() as u64,
            page_faults: faults.round() as u64,
            alloc_bytes: bytes.round() as u64,
            alloc_count: count.round() as u64,
        }
    }
}

fn window(start_ns: u64, end_ns: u64) -> Window {
    Window { start_ns, end_ns }
}

/// The init (cold starts) and invoke windows of an invocation.
fn phase_windows(m: &InvocationMetrics, origin: u64) -> (Option<Window>, Option<Window>) {
    let ph = &m.phases;
    let invoke_end = if ph.invoke_end_ns != 0 {
        ph.invoke_end_ns
    } else {
        // The invoke phase never ended (timeout, crash): up to the last boundary seen.
        ph.runtime_next_ns.max(ph.runtime_done_ns)
    };
    let invoke = Window::from_abs(ph.invoke_start_ns, invoke_end, origin);
    let init_end = if ph.init_end_ns != 0 {
        ph.init_end_ns
    } else {
        ph.invoke_start_ns
    };
    let init = if m.cold {
        Window::from_abs(ph.init_start_ns, init_end, origin)
    } else {
        None
    };
    (init, invoke)
}

/// Classified samples by pid, sorted by time (relative ns).
struct SampleIndex<'a> {
    by_pid: HashMap<u32, Vec<(u64, &'a ResolvedSample)>>,
}

impl<'a> SampleIndex<'a> {
    fn new(samples: &'a [ResolvedSample], origin: u64) -> Self {
        let mut by_pid: HashMap<u32, Vec<(u64, &ResolvedSample)>> = HashMap::new();
        for s in samples {
            by_pid
                .entry(s.pid)
                .or_default()
                .push((s.ts_ns.saturating_sub(origin), s));
        }
        for v in by_pid.values_mut() {
            v.sort_by_key(|(t, _)| *t);
        }
        SampleIndex { by_pid }
    }

    /// Adds the weights of `pid`'s samples in `w`; true if there was one.
    fn add(&self, pid: u32, w: Window, into: &mut CategoryTotals) -> bool {
        let Some(v) = self.by_pid.get(&pid) else {
            return false;
        };
        let first = v.partition_point(|(t, _)| *t < w.start_ns);
        let mut any = false;
        for (_, s) in v[first..].iter().take_while(|(t, _)| *t < w.end_ns) {
            into.add_sample(s);
            any = true;
        }
        any
    }

    /// Adds `pid`'s samples in `w` to `role`'s totals (no entry without one).
    fn add_to_role(
        &self,
        pid: u32,
        w: Window,
        role: &str,
        totals: &mut BTreeMap<String, CategoryTotals>,
    ) {
        let mut cats = CategoryTotals::default();
        if self.add(pid, w, &mut cats) {
            totals.entry(role.to_string()).or_default().merge(&cats);
        }
    }
}

/// Attributes every invocation of `run.report`; see the module docs.
pub fn attribute(run: &LambdaRun) -> Attribution {
    let owners = process_roles(run.rec, run.spawned);
    let samples = SampleIndex::new(run.samples, run.start_ns);
    let busy = Busy::new(run.report.invocations.iter().flat_map(|m| {
        let (init, invoke) = phase_windows(m, run.start_ns);
        init.into_iter().chain(invoke)
    }));
    let invocations: Vec<InvocationAttribution> = run
        .report
        .invocations
        .iter()
        .map(|m| attribute_one(run, m, &owners, &samples, &busy))
        .collect();
    let roles = summarize(&invocations);
    let cgroup_check = cgroup_check(run.report, &invocations);
    Attribution {
        invocations,
        roles,
        cgroup_check,
    }
}

fn attribute_one(
    run: &LambdaRun,
    m: &InvocationMetrics,
    owners: &[Option<Owner>],
    samples: &SampleIndex,
    busy: &Busy,
) -> InvocationAttribution {
    let ph = &m.phases;
    let (init, invoke) = phase_windows(m, run.start_ns);
    let post_runtime = Window::from_abs(ph.runtime_next_ns, ph.invoke_end_ns, run.start_ns);
    let mine = |owner: &Owner| owner.env.is_none_or(|e| e == m.environment);
    let mut by_role: BTreeMap<String, RoleUsage> = BTreeMap::new();
    // Sample weights per role in the invoke phase and its post-runtime part.
    let mut sampled: BTreeMap<String, CategoryTotals> = BTreeMap::new();
    let mut sampled_post: BTreeMap<String, CategoryTotals> = BTreeMap::new();
    let mut init_by_process = Vec::new();
    for (p, owner) in run.rec.processes.iter().zip(owners) {
        let Some(owner) = owner.as_ref().filter(|ow| mine(ow)) else {
            continue;
        };
        by_role.entry(owner.role.clone()).or_default();
        // The emulator serves every environment: share it among busy invocations.
        let usage = |w| match owner.env {
            Some(_) => usage_in(p, w),
            None => busy.shared_usage_in(p, w),
        };
        if let Some(w) = invoke {
            let u = usage(w);
            let r = by_role.entry(owner.role.clone()).or_default();
            r.cpu_ns += u.cpu_ns;
            r.page_faults += u.page_faults;
            r.alloc_bytes += u.alloc_bytes;
            r.alloc_count += u.alloc_count;
            samples.add_to_role(p.pid, w, &owner.role, &mut sampled);
        }
        if let Some(w) = post_runtime {
            let u = usage(w);
            let r = by_role.entry(owner.role.clone()).or_default();
            r.post_runtime_cpu_ns += u.cpu_ns;
            r.post_runtime_page_faults += u.page_faults;
            r.post_runtime_alloc_bytes += u.alloc_bytes;
            r.post_runtime_alloc_count += u.alloc_count;
            samples.add_to_role(p.pid, w, &owner.role, &mut sampled_post);
        }
        if let Some(w) = init {
            let alive = p.start_ns < w.end_ns && p.end_ns >= w.start_ns;
            let u = usage(w);
            if alive || !u.is_zero() {
                let mut cats = CategoryTotals::default();
                let categories = samples
                    .add(p.pid, w, &mut cats)
                    .then(|| cats.scale_to(u.cpu_ns));
                init_by_process.push(ProcessInit {
                    pid: p.pid,
                    role: owner.role.clone(),
                    comm: p.comm.clone(),
                    cpu_ns: u.cpu_ns,
                    page_faults: u.page_faults,
                    alloc_bytes: u.alloc_bytes,
                    alloc_count: u.alloc_count,
                    categories,
                });
            }
        }
    }
    for (role, cats) in sampled {
        if let Some(r) = by_role.get_mut(&role) {
            r.categories = Some(cats.scale_to(r.cpu_ns));
        }
    }
    for (role, cats) in sampled_post {
        if let Some(r) = by_role.get_mut(&role) {
            r.post_runtime_categories = Some(cats.scale_to(r.post_runtime_cpu_ns));
        }
    }
    InvocationAttribution {
        request_id: m.request_id.clone(),
        environment: m.environment,
        cold: m.cold,
        invoke,
        post_runtime,
        init,
        by_role,
        init_by_process,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::lambda_testdata::fixture;

    #[test]
    fn owners_follow_spawned_pids_and_parents() {
        let f = fixture();
        let owners = process_roles(&f.rec, &f.spawned);
        let got: Vec<Option<(Option<usize>, &str)>> = owners
            .iter()
            .map(|o| o.as_ref().map(|o| (o.env, o.role.as_str())))
            .collect();
        assert_eq!(
            got,
            [
                Some((None, "emulator")),
                Some((Some(0), "function")),
                Some((Some(0), "function")),
                Some((Some(0), "extension:ext")),
                Some((Some(1), "function")),
                None,
            ]
        );
    }

    #[test]
    fn cpu_overlap_clamps_to_the_window() {
        let iv = Interval::new;
        let v = [iv(0, 10), iv(20, 30), iv(40, 50)];
        let w = |s, e| Window {
            start_ns: s,
            end_ns: e,
        };
        assert_eq!(cpu_in(&v, w(5, 45)), 5 + 10 + 5);
        assert_eq!(cpu_in(&v, w(10, 20)), 0);
        assert_eq!(cpu_in(&v, w(0, 100)), 30);
        assert_eq!(cpu_in(&[], w(0, 100)), 0);
        assert_eq!(Window::from_abs(0, 5, 0), None);
        assert_eq!(Window::from_abs(9, 5, 0), None);
    }

    #[test]
    fn invocations_get_their_environment_roles_and_the_emulator() {
        let f = fixture();
        let a = attribute(&f.run());
        let ids: Vec<&str> = a
            .invocations
            .iter()
            .map(|i| i.request_id.as_str())
            .collect();
        assert_eq!(ids, ["req-1", "req-3", "req-2"]);
        let r1 = &a.invocations[0];
        let roles: Vec<&str> = r1.by_role.keys().map(String::as_str).collect();
        assert_eq!(roles, ["emulator", "extension:ext", "function"]);
        let func = r1.by_role["function"];
        // 300 + 70 µs of the function, 100 µs of its child (clamped at the end).
        assert_eq!(func.cpu_ns, 470_000);
        assert_eq!(func.page_faults, 3);
        // Post-runtime [1.5, 2.0): 20 µs of the function + 100 µs of the child.
        assert_eq!(func.post_runtime_cpu_ns, 120_000);
        assert_eq!(func.post_runtime_page_faults, 1);
        let ext = r1.by_role["extension:ext"];
        assert_eq!((ext.cpu_ns, ext.post_runtime_cpu_ns), (300_000, 300_000));
        assert_eq!(
            (ext.alloc_bytes, ext.alloc_count),
            (5096, 2),
            "free not counted"
        );
        assert_eq!(ext.post_runtime_alloc_bytes, 5096);
        let cats = ext.categories.expect("sampled");
        assert_eq!(
            (cats.jit_ns, cats.gc_ns, cats.app_ns, cats.total_ns()),
            (75_000, 75_000, 150_000, 300_000)
        );
        assert_eq!(func.categories, None, "no samples of the function");
        // Post-runtime [1.5, 2.0): the same three samples, scaled to 300 µs.
        assert_eq!(ext.post_runtime_categories, Some(cats));
        assert_eq!(r1.by_role["emulator"].cpu_ns, 50_000);
        assert_eq!(r1.billed_cpu_ns(), 770_000);

        // env 1 sees only its own function and the emulator (idle then).
        let r3 = &a.invocations[1];
        let roles: Vec<&str> = r3.by_role.keys().map(String::as_str).collect();
        assert_eq!(roles, ["emulator", "function"]);
        assert_eq!(r3.by_role["function"].cpu_ns, 50_000);
        assert_eq!(r3.by_role["emulator"].cpu_ns, 0);

        let r2 = &a.invocations[2];
        assert!(!r2.cold && r2.init.is_none() && r2.init_by_process.is_empty());
        assert_eq!(r2.by_role["function"].cpu_ns, 100_000);
        assert_eq!(r2.by_role["extension:ext"].post_runtime_cpu_ns, 50_000);
    }

    #[test]
    fn concurrent_invocations_share_the_emulator() {
        let mut f = fixture();
        // 100 µs of emulator CPU while req-1 (env 0) and req-3 (env 1) both
        // run (1.3–1.4 ms), 50 µs while only req-1 does (1.1–1.15 ms).
        let emu = &mut f.rec.processes[0].threads[0].intervals;
        emu.push(Interval::new(1_300_000, 1_400_000));
        let a = attribute(&f.run());
        let emulator = |i: usize| a.invocations[i].by_role["emulator"].cpu_ns;
        assert_eq!((emulator(0), emulator(1)), (100_000, 50_000));
        // Counted once in all: 150 µs of the emulator's CPU fell in invocations.
        let total: u64 = (0..a.invocations.len()).map(emulator).sum();
        assert_eq!(total, 150_000);
        // The environments' own roles are not shared.
        assert_eq!(a.invocations[1].by_role["function"].cpu_ns, 50_000);
    }

    #[test]
    fn busy_counts_overlapping_windows() {
        let busy = Busy::new([window(0, 10), window(5, 20), window(30, 40)]);
        assert_eq!(
            busy.split(window(0, 50)),
            [
                (window(0, 5), 1),
                (window(5, 10), 2),
                (window(10, 20), 1),
                (window(20, 30), 1),
                (window(30, 40), 1),
                (window(40, 50), 1),
            ]
        );
        assert_eq!(busy.split(window(7, 8)), [(window(7, 8), 2)]);
        assert_eq!(Busy::new([]).split(window(1, 2)), [(window(1, 2), 1)]);
    }

    #[test]
    fn cold_starts_list_init_per_process() {
        let f = fixture();
        let a = attribute(&f.run());
        let init = &a.invocations[0].init_by_process;
        let rows: Vec<(u32, &str, u64, u64)> = init
            .iter()
            .map(|p| (p.pid, p.role.as_str(), p.cpu_ns, p.alloc_bytes))
            .collect();
        // The child was not alive yet; the emulator ran 0–50 µs, before init.
        assert_eq!(
            rows,
            [
                (50, "emulator", 0, 0),
                (200, "function", 50_000, 0),
                (300, "extension:ext", 100_000, 8192)
            ]
        );
        assert_eq!(init[1].page_faults, 1);
        let runtime = init[2].categories.expect("sampled in init");
        assert_eq!(runtime.runtime_ns, 100_000);
    }
}
