//! The emulator end to end: real fixture processes (lambda_runtime / lambda-extension clients)
//! in real sandboxes, real HTTP. Needs root and cgroups: with CI=true a missing facility FAILS,
//! otherwise the test prints why and skips. Build the fixtures first:
//! `cargo build -p header-counter -p rust-blank -p lxprof-fixtures`.
//! All tests are serialized (one static lock): they measure time and check for leftovers.
mod lambda {
    pub mod common;
    mod cpu;
    mod diagnostics;
    mod faults;
    mod happy;
    mod load;
    mod observer;
}
