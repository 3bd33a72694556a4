//! lxprof: an eBPF profiler that shows what an AWS Lambda extension costs the
//! function it rides along with.
//!
//! The binary (`main.rs`) only parses the command line; everything else is here.
//! Recording is apart from conversion: [`probes`] emit [`events`], [`model`]
//! builds processes and threads from them, [`export`] turns the model into files.

pub mod classify;
pub mod compare;
pub mod counters;
pub mod events;
pub mod explain;
pub mod export;
pub mod flamegraph;
pub mod lambda;
pub mod launch;
pub mod model;
pub mod output;
pub mod perfetto;
pub mod preflight;
pub mod probes;
pub mod rawlog;
pub mod record;
pub mod runtime_env;
pub mod stacks;
pub mod suite;
pub mod symbolize;
pub mod unwind;
