//! The recording model built from kernel events: processes, their threads,
//! on-CPU intervals, page faults and RSS, in nanoseconds relative to the
//! start of the recording.
//!
//! [`ModelBuilder`] consumes decoded [`Event`](crate::events::Event)s (and a
//! few facts read from `/proc` by the recorder) and [`ModelBuilder::finish`]
//! returns a plain-data [`Recording`] that the exporters turn into files.
//!
//! Rules, in short (details on the fields):
//! - Events are applied in timestamp order through a reorder window
//!   ([`REORDER_WINDOW_NS`]); `/proc` facts (`seed_process`, `set_cmdline`,
//!   `set_exe`) apply after every event pushed before them.
//! - FORK of a new process: parent = the forking process; exe and cmdline
//!   inherited until an exec. A pid (or tid) reused after an exit starts a
//!   new [`Process`] (or [`Thread`]).
//! - EXEC: new exe, comm, `exec_comm`; the cmdline inherited from the parent
//!   is dropped (a seeded or `/proc` cmdline survives the first exec); RSS
//!   counters and the RSS peak restart (new mm); a non-leader caller's tid
//!   ends there and the leader tid (== pid) continues.
//! - EXIT: the thread's exact fault counters and scheduler CPU time (as of
//!   its last tick); with `group_dead`, the process's end and [`ExitStatus`].
//! - CPU: `cpu_ns` = the scheduler's CPU counts the thread's ON_CPU records
//!   carry (the part within the recording), on intervals sorted, clamped to
//!   the recording, overlaps removed; `cpu_kernel_ns` / `cpu_missing_ns`
//!   check it against the kernel's lifetime totals. The recorder sends what
//!   the kernel holds for live threads when it stops as ordinary records.
//! - Faults: per thread, the EXIT counters when it exited, else the counts of
//!   its FAULTS records (counted as minor); `page_faults_exact` says which.
//! - Roles: set with [`ModelBuilder::set_role`], else "command" for
//!   [`RecordingInfo::root_pid`] and "descendant" for every other process.

mod builder;
mod types;

pub use builder::{ModelBuilder, REORDER_WINDOW_NS, SeedProcess};
pub use types::*;

#[cfg(test)]
mod tests;
