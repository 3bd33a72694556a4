//! Perfetto protobuf traces.

/// Rust types generated at build time from `proto/perfetto_subset.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/perfetto.protos.rs"));
}
