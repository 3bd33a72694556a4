//! The recording model built from kernel events: processes, their threads,
//! on-CPU intervals, page faults and RSS, in nanoseconds relative to the
//! start of the recording.
//!
//! [`ModelBuilder`] consumes decoded [`Event`](crate::events::Event)s (and a
//! few facts read from `/proc` by the recorder) and [`ModelBuilder::finish`]
//! returns a plain-data [`Recording`] that the exporters turn into files.

mod builder;
mod types;

pub use builder::{ModelBuilder, REORDER_WINDOW_NS, SeedProcess};
pub use types::*;

#[cfg(test)]
mod tests;
