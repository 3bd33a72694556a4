//! Kernel probes: load, attach, read.
