//! Perfetto protobuf traces.
