//! A hand-built two-environment `record --lambda` run shared by the tests of
//! the Lambda exporters ([`lambda_attrib`](super::lambda_attrib),
//! [`lambda_trace`](super::lambda_trace), [`lambda_report`](super::lambda_report)).

use lxprof_emulator::{InvocationMetrics, LambdaReport, PhaseEvent, PhaseTimes, Status, Summary};

use crate::model::{AllocOp, AllocPoint, FaultBatch, Interval, Process, Recording, Thread};
use crate::stacks::{Category, ResolvedSample};

use super::lambda_attrib::LambdaRun;

/// CLOCK_MONOTONIC ns of the recording start.
pub const ORIGIN: u64 = 1_000_000_000;

/// Owns what a [`LambdaRun`] borrows.
pub struct Fixture {
    pub rec: Recording,
    pub spawned: Vec<(usize, u32, String)>,
    pub phases: Vec<(usize, PhaseEvent, u64)>,
    pub report: LambdaReport,
    pub memory: Vec<(usize, u64, u64)>,
    pub samples: Vec<ResolvedSample>,
}

impl Fixture {
    pub fn run(&self) -> LambdaRun<'_> {
        LambdaRun {
            rec: &self.rec,
            start_ns: ORIGIN,
            spawned: &self.spawned,
            phases: &self.phases,
            report: &self.report,
            memory: &self.memory,
            samples: &self.samples,
        }
    }
}

fn process(pid: u32, ppid: u32, role: &str, cpu: &[(u64, u64)], end_ns: u64) -> Process {
    let intervals: Vec<Interval> = cpu
        .iter()
        .map(|&(start_ns, end_ns)| Interval::new(start_ns, end_ns))
        .collect();
    Process {
        pid,
        ppid,
        comm: format!("p{pid}"),
        role: role.into(),
        start_ns: cpu.first().map_or(0, |c| c.0),
        end_ns,
        cpu_ns: intervals.iter().map(|i| i.end_ns - i.start_ns).sum(),
        threads: vec![Thread {
            tid: pid,
            name: format!("p{pid}"),
            intervals,
            ..Thread::default()
        }],
        ..Process::default()
    }
}

fn invocation(id: &str, env: usize, cold: bool, rel: [u64; 6]) -> InvocationMetrics {
    let abs = |t: u64| if t == 0 { 0 } else { ORIGIN + t };
    InvocationMetrics {
        request_id: id.into(),
        environment: env,
        cold,
        init_duration_ms: cold.then(|| (rel[1] - rel[0]) as f64 / 1e6),
        duration_ms: (rel[5] - rel[2]) as f64 / 1e6,
        billed_duration_ms: 1,
        post_runtime_extensions_duration_ms: (rel[5] - rel[4]) as f64 / 1e6,
        max_memory_used_mb: 20,
        status: Status::Success,
        error_type: None,
        phases: PhaseTimes {
            init_start_ns: abs(rel[0]),
            init_end_ns: abs(rel[1]),
            invoke_start_ns: abs(rel[2]),
            runtime_done_ns: abs(rel[3]),
            runtime_next_ns: abs(rel[4]),
            invoke_end_ns: abs(rel[5]),
        },
        ..InvocationMetrics::default()
    }
}

/// env 0: cold req-1 (init 0.1–0.6 ms, extensions registered at 0.3 ms,
/// invoke 1.0–2.0 ms, runtime done 1.4, next 1.5), frozen 2.0–3.0, warm
/// req-2 (3.0–3.5 ms, next 3.3), shutdown 4.0–4.1 ms. env 1: cold req-3
/// (init 0.15–0.5, invoke 1.2–1.8, next 1.7). Processes: emulator 50,
/// function 200 (+ child 201 "descendant") and extension:ext 300 in env 0,
/// function 400 in env 1, an unrelated 900.
pub fn fixture() -> Fixture {
    use PhaseEvent::*;
    let mut function = process(
        200,
        1,
        "function",
        &[
            (200_000, 250_000),
            (1_000_000, 1_300_000),
            (1_450_000, 1_520_000),
            (3_000_000, 3_100_000),
        ],
        4_050_000,
    );
    function.faults = [210_000, 1_010_000, 1_020_000, 1_600_000, 3_050_000]
        .map(FaultBatch::at)
        .to_vec();
    let child = process(201, 200, "descendant", &[(1_900_000, 2_100_000)], 2_100_000);
    let mut ext = process(
        300,
        1,
        "extension:ext",
        &[
            (120_000, 220_000),
            (1_600_000, 1_900_000),
            (3_350_000, 3_400_000),
        ],
        4_050_000,
    );
    let point = |ts_ns, op, bytes| AllocPoint {
        ts_ns,
        tid: 300,
        op,
        bytes,
    };
    ext.alloc_points = vec![
        point(150_000, AllocOp::Brk, 8192),
        point(1_650_000, AllocOp::Malloc, 1000),
        point(1_700_000, AllocOp::Free, 0),
        point(1_800_000, AllocOp::Mmap, 4096),
    ];
    let emulator = process(
        50,
        1,
        "emulator",
        &[(0, 50_000), (1_100_000, 1_150_000)],
        5_000_000,
    );
    let other = process(900, 1, "descendant", &[(1_000_000, 2_000_000)], 5_000_000);
    let env1 = process(400, 1, "function", &[(1_200_000, 1_250_000)], 4_000_000);
    let rec = Recording {
        duration_ns: 5_000_000,
        processes: vec![emulator, function, child, ext, env1, other],
        ..Recording::default()
    };
    let spawned = vec![
        (0, 300, "extension:ext".to_string()),
        (0, 200, "function".to_string()),
        (1, 400, "function".to_string()),
    ];
    let ev = |env, e, rel: u64| (env, e, ORIGIN + rel);
    let phases = vec![
        ev(0, InitStart, 100_000),
        ev(1, InitStart, 150_000),
        ev(0, ExtensionsRegistered, 300_000),
        ev(1, ExtensionsRegistered, 200_000),
        ev(1, InitEnd, 500_000),
        ev(0, InitEnd, 600_000),
        ev(0, InvokeStart, 1_000_000),
        ev(1, InvokeStart, 1_200_000),
        ev(0, RuntimeDone, 1_400_000),
        ev(0, RuntimeNext, 1_500_000),
        ev(1, RuntimeDone, 1_650_000),
        ev(1, RuntimeNext, 1_700_000),
        ev(1, InvokeEnd, 1_800_000),
        ev(1, Frozen, 1_800_000),
        ev(0, InvokeEnd, 2_000_000),
        ev(0, Frozen, 2_000_000),
        ev(0, Thawed, 3_000_000),
        ev(0, InvokeStart, 3_000_000),
        ev(0, RuntimeDone, 3_200_000),
        ev(0, RuntimeNext, 3_300_000),
        ev(0, InvokeEnd, 3_500_000),
        ev(0, Frozen, 3_500_000),
        ev(0, Thawed, 4_000_000),
        ev(0, ShutdownStart, 4_000_000),
        ev(0, ShutdownEnd, 4_100_000),
    ];
    let mut invocations = vec![
        invocation(
            "req-1",
            0,
            true,
            [100_000, 600_000, 1_000_000, 1_400_000, 1_500_000, 2_000_000],
        ),
        invocation(
            "req-3",
            1,
            true,
            [150_000, 500_000, 1_200_000, 1_650_000, 1_700_000, 1_800_000],
        ),
        invocation(
            "req-2",
            0,
            false,
            [0, 0, 3_000_000, 3_200_000, 3_300_000, 3_500_000],
        ),
    ];
    invocations[0].cgroup_cpu_ns = Some(800_000);
    invocations[0].init_cgroup_cpu_ns = Some(160_000);
    invocations[2].cgroup_cpu_ns = Some(150_000);
    let report = LambdaReport {
        memory_mb: 128,
        function: "f".into(),
        extensions: vec!["ext".into()],
        summary: Summary::of(&invocations),
        invocations,
    };
    let sample = |ts: u64, category, weight| ResolvedSample {
        pid: 300,
        tid: 300,
        thread_name: "p300".into(),
        ts_ns: ORIGIN + ts,
        weight,
        frames: Vec::new(),
        category,
    };
    let samples = vec![
        sample(160_000, Category::Runtime, 10),
        sample(1_700_000, Category::Jit, 10),
        sample(1_800_000, Category::Gc, 10),
        sample(1_850_000, Category::App, 20),
    ];
    let memory = vec![
        (0, ORIGIN + 100_000, 10 << 20),
        (0, ORIGIN + 1_000_000, 12 << 20),
        (1, ORIGIN + 1_500_000, 9 << 20),
    ];
    Fixture {
        rec,
        spawned,
        phases,
        report,
        memory,
        samples,
    }
}
