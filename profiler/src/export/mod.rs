//! Exporters: pure functions from a [`Recording`](crate::model::Recording)
//! to file contents or text.
//!
//! - [`chrome`]: `trace.json`, the Chrome Trace Event Format that Perfetto's
//!   JSON importer reads, and a validator for it;
//! - [`report`]: `report.json`, per-process figures for scripts and tests;
//! - [`summary`]: the terminal summary;
//! - [`lambda_attrib`]: `record --lambda`'s per-invocation, per-role
//!   attribution of CPU, page faults and allocations, and [`lambda_roles`]:
//!   its per-role summary and cgroup cross-check;
//! - [`lambda_report`]: the `lambda` section of its `report.json` and the
//!   per-role summary lines;
//! - [`lambda_trace`]: the `Lambda` phase tracks and counters of its `trace.json`.

pub mod chrome;
pub mod lambda_attrib;
pub mod lambda_report;
pub mod lambda_roles;
#[cfg(test)]
mod lambda_testdata;
pub mod lambda_trace;
pub mod report;
pub mod summary;

/// Version of lxprof written into every output.
pub const LXPROF_VERSION: &str = env!("CARGO_PKG_VERSION");

use std::path::PathBuf;

use crate::model::Recording;
use crate::output::{OutputDir, OutputError};

/// Writes `trace.json` and `report.json` of `rec` into `out` atomically;
/// returns `(label, path)` of each, in that order, for [`summary::render`].
pub fn write_files(
    rec: &Recording,
    out: &OutputDir,
) -> Result<Vec<(&'static str, PathBuf)>, OutputError> {
    Ok(vec![
        (
            "trace",
            out.write_atomic_with("trace.json", |w| chrome::write_json(rec, w))?,
        ),
        (
            "report",
            out.write_atomic("report.json", &report::to_json(rec))?,
        ),
    ])
}
