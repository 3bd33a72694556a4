//! Per-invocation metrics, the REPORT line and the run's [`LambdaReport`] with its summary.
use serde::Serialize;

/// CLOCK_MONOTONIC in ns (the clock of eBPF's `bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// `platform.report` status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The runtime answered.
    #[default]
    Success,
    /// The runtime reported an error or crashed.
    Error,
    /// The invoke phase passed the timeout.
    Timeout,
    /// The environment failed (init error, extension crash, out of memory).
    Failure,
}

impl Status {
    /// The value as Lambda writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Failure => "failure",
        }
    }
}

/// CLOCK_MONOTONIC ns of each phase boundary (0 = did not happen).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseTimes {
    /// Init started (cold starts only).
    pub init_start_ns: u64,
    /// Init ended: runtime and all extensions called next.
    pub init_end_ns: u64,
    /// The event was handed out.
    pub invoke_start_ns: u64,
    /// The runtime posted its response or error.
    pub runtime_done_ns: u64,
    /// The runtime called next again.
    pub runtime_next_ns: u64,
    /// The last extension called next: the invoke phase ended.
    pub invoke_end_ns: u64,
}

/// One invocation's measurements.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InvocationMetrics {
    /// Lambda request id.
    pub request_id: String,
    /// Environment index.
    pub environment: usize,
    /// Whether this invocation initialised the environment.
    pub cold: bool,
    /// Init duration (cold starts).
    pub init_duration_ms: Option<f64>,
    /// Invoke phase duration (extension time included).
    pub duration_ms: f64,
    /// Duration rounded up to 1 ms.
    pub billed_duration_ms: u64,
    /// From the runtime's next to the last extension's next.
    pub post_runtime_extensions_duration_ms: f64,
    /// Peak memory of the environment's cgroup during this invocation.
    pub max_memory_used_mb: u64,
    /// Outcome.
    pub status: Status,
    /// Lambda's error type when not successful.
    pub error_type: Option<String>,
    /// What went wrong, in words, when not successful: the runtime's exit status or signal
    /// (`Runtime exited with error: signal: 9 (SIGKILL)`), the extensions that never
    /// registered, the `errorMessage` the function posted, …
    pub error_message: Option<String>,
    /// What went wrong without failing the invocation (a process of the environment killed
    /// by the OOM killer while the runtime survived).
    pub warnings: Vec<String>,
    /// Phase boundaries.
    pub phases: PhaseTimes,
    /// CPU time (ns) the environment's cgroup consumed during the invoke phase, all its
    /// processes together, user + system (`cpuacct.usage` on cgroup v1, `cpu.stat`
    /// `usage_usec` on v2). The window: the counter is read just before the event is handed
    /// out (≤ `phases.invoke_start_ns`) and just after the emulator sees the phase end (a few
    /// µs after `phases.invoke_end_ns`, while every process waits in next, so nothing runs in
    /// between). `None` when the counter could not be read, or when init failed (no invoke).
    pub cgroup_cpu_ns: Option<u64>,
    /// Cold starts: CPU time (ns) of the environment's cgroup during init, read at
    /// `phases.init_start_ns` (the cgroup is new: nothing ran in it yet) and just after init
    /// ended (or failed). `None` for warm invocations or when the counter could not be read.
    pub init_cgroup_cpu_ns: Option<u64>,
}

impl InvocationMetrics {
    /// CloudWatch's REPORT line.
    pub fn report_line(&self, memory_mb: u32) -> String {
        let mut s = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            self.duration_ms,
            self.billed_duration_ms,
            memory_mb,
            self.max_memory_used_mb
        );
        if let Some(i) = self.init_duration_ms {
            s.push_str(&format!("\tInit Duration: {i:.2} ms"));
        }
        if self.status != Status::Success {
            s.push_str(&format!("\tStatus: {}", self.status.as_str()));
            if let Some(t) = &self.error_type {
                s.push_str(&format!("\tError Type: {t}"));
            }
            if let Some(m) = &self.error_message {
                s.push_str(&format!("\tError: {m}"));
            }
        }
        for w in &self.warnings {
            s.push_str(&format!("\tWarning: {w}"));
        }
        s
    }
}

/// avg/p50/p99/max of a series.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    /// Mean.
    pub avg: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl Stats {
    /// Stats of `v` (all zero when empty).
    pub fn of(v: &[f64]) -> Stats {
        if v.is_empty() {
            return Stats::default();
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Stats {
            avg: s.iter().sum::<f64>() / s.len() as f64,
            p50: rank(0.5),
            p99: rank(0.99),
            max: s[s.len() - 1],
        }
    }
}

/// avg/max of max memory used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemoryStats {
    /// Mean MB.
    pub avg: f64,
    /// Max MB.
    pub max: u64,
}

/// The run's summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Duration.
    pub duration_ms: Stats,
    /// Post-runtime extensions duration.
    pub post_runtime_extensions_duration_ms: Stats,
    /// Init duration over cold starts.
    pub init_duration_ms: Stats,
    /// Number of cold starts.
    pub cold_starts: u32,
    /// Max memory used.
    pub max_memory_used_mb: MemoryStats,
}

/// `report.json`'s `lambda` object.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaReport {
    /// Configured memory.
    pub memory_mb: u32,
    /// Function directory.
    pub function: String,
    /// Extension names started.
    pub extensions: Vec<String>,
    /// Every invocation, in order of start.
    pub invocations: Vec<InvocationMetrics>,
    /// Aggregates.
    pub summary: Summary,
}

impl Summary {
    /// Aggregates `inv`.
    pub fn of(inv: &[InvocationMetrics]) -> Summary {
        let d: Vec<f64> = inv.iter().map(|m| m.duration_ms).collect();
        let p: Vec<f64> = inv
            .iter()
            .map(|m| m.post_runtime_extensions_duration_ms)
            .collect();
        let i: Vec<f64> = inv.iter().filter_map(|m| m.init_duration_ms).collect();
        let mem: Vec<u64> = inv.iter().map(|m| m.max_memory_used_mb).collect();
        Summary {
            duration_ms: Stats::of(&d),
            post_runtime_extensions_duration_ms: Stats::of(&p),
            init_duration_ms: Stats::of(&i),
            cold_starts: inv.iter().filter(|m| m.cold).count() as u32,
            max_memory_used_mb: MemoryStats {
                avg: if mem.is_empty() {
                    0.0
                } else {
                    mem.iter().sum::<u64>() as f64 / mem.len() as f64
                },
                max: mem.iter().copied().max().unwrap_or(0),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&v);
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        assert!((s.avg - 50.5).abs() < 1e-9);
        assert!(monotonic_ns() > 0);
    }
}
