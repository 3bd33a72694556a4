//! Exporters: pure functions from a [`Recording`](crate::model::Recording)
//! to file contents or text.
//!
//! - [`chrome`]: `trace.json`, the Chrome Trace Event Format that Perfetto's
//!   JSON importer reads, and a validator for it;
//! - [`report`]: `report.json`, per-process figures for scripts and tests;
//! - [`summary`]: the terminal summary.

pub mod chrome;
pub mod report;
pub mod summary;

/// Version of lxprof written into every output.
pub const LXPROF_VERSION: &str = env!("CARGO_PKG_VERSION");
