//! lxprof: an eBPF profiler that shows what an AWS Lambda extension costs the
//! function it rides along with.
//!
//! The binary (`main.rs`) only parses the command line; everything else is here.

pub mod events;
