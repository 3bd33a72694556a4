//! perf-event software counters on the launched child (task-clock, minor and
//! major faults, context switches), inherited by its whole tree and enabled
//! at its exec: tree totals reported beside the eBPF figures as a cross-check.

use perf_event::events::Software;
use perf_event::{Builder, Counter};

use crate::model::PerfCounts;

/// The four counters of one traced tree. Totals include exited descendants
/// (an inherited counter receives a child's count when the child exits).
pub struct TreeCounters {
    task_clock: Counter,
    minor: Counter,
    major: Counter,
    switches: Counter,
}

/// Why the counters could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("perf_event_open({event}) on pid {pid} failed (perf counters are skipped): {source}")]
pub struct CountersError {
    pub pid: u32,
    pub event: &'static str,
    #[source]
    pub source: std::io::Error,
}

fn open(pid: u32, event: &'static str, kind: Software) -> Result<Counter, CountersError> {
    let mut b = Builder::new().kind(kind).observe_pid(pid as i32).any_cpu();
    // The crate excludes kernel mode by default: that would drop context
    // switches entirely (they happen in the kernel) and system time.
    b.inherit(true)
        .enabled(false)
        .enable_on_exec(true)
        .exclude_kernel(false);
    b.build()
        .map_err(|source| CountersError { pid, event, source })
}

impl TreeCounters {
    /// Opens the counters on `pid`, which must not have exec'd yet (they start
    /// counting at its exec, and follow every task it creates afterwards).
    pub fn open_before_exec(pid: u32) -> Result<TreeCounters, CountersError> {
        Ok(TreeCounters {
            task_clock: open(pid, "task-clock", Software::TASK_CLOCK)?,
            minor: open(pid, "minor-faults", Software::PAGE_FAULTS_MIN)?,
            major: open(pid, "major-faults", Software::PAGE_FAULTS_MAJ)?,
            switches: open(pid, "context-switches", Software::CONTEXT_SWITCHES)?,
        })
    }

    /// Current totals; `None` if the kernel refuses a read.
    pub fn read(&mut self) -> Option<PerfCounts> {
        Some(PerfCounts {
            task_clock_ns: self.task_clock.read().ok()?,
            page_faults_minor: self.minor.read().ok()?,
            page_faults_major: self.major.read().ok()?,
            context_switches: self.switches.read().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_on_a_missing_pid_fail_with_context() {
        // pid_max is at most 2^22: this pid cannot exist.
        let err = TreeCounters::open_before_exec(0x7fff_fff0)
            .err()
            .expect("no such pid");
        assert!(err.to_string().contains("task-clock"), "{err}");
    }
}
