//! `lxprof record`: one recording from start to written outputs.

use std::{ffi::OsString, path::PathBuf, time::Duration};

/// What to record.
#[derive(Debug, Clone)]
pub enum Target {
    /// Launch this command (program and arguments) and follow its process tree.
    Command(Vec<OsString>),
    /// Follow an existing process and its descendants.
    Pid(u32),
}

/// Options of one recording (the CLI translates its flags into this).
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub target: Target,
    /// Stop after this long (default: when the target exits, or on Ctrl-C).
    pub duration: Option<Duration>,
    /// Output directory; default `./lxprof-out/<UTC timestamp>/`.
    pub output_dir: Option<PathBuf>,
}
