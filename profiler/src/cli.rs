//! The command line: clap structs, translated into the library's plain option
//! structs. Nothing outside this file and `main.rs` knows about clap.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use lxprof::record::{RecordOptions, Target};

/// What an AWS Lambda extension costs the function it rides along with:
/// eBPF recordings of CPU time, page faults and memory, per process.
#[derive(Debug, Parser)]
#[command(name = "lxprof", version, about, propagate_version = true)]
pub struct Cli {
    /// Write lxprof's own spans as a Chrome trace to FILE (for profiling lxprof).
    #[arg(long, global = true, value_name = "FILE")]
    pub self_trace: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record a command (or a running process) and its whole process tree.
    Record(RecordArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Output directory [default: ./lxprof-out/<UTC timestamp>/]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Follow this running process and its descendants instead of launching a command.
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,

    /// Stop recording after this many seconds (default: when the target exits, or Ctrl-C).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub duration: Option<Duration>,

    /// Kernel ring buffer size in MiB (a power of two); raise it if events are lost.
    #[arg(long, value_name = "MIB", value_parser = parse_ring_mib)]
    pub ring_buffer_mb: Option<u32>,

    /// Stack sampling frequency in Hz (cpu-clock, per CPU, traced processes
    /// only): flamegraphs and app/JIT/GC/runtime/kernel categories. 0: off.
    #[arg(long, value_name = "HZ", default_value_t = 0)]
    pub freq: u32,

    /// The command to launch and record, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!(
            "duration must be a positive number of seconds, got `{s}`"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_ring_mib(s: &str) -> Result<u32, String> {
    let mib: u32 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of MiB"))?;
    if !mib.is_power_of_two() || mib > 1024 {
        return Err(format!(
            "ring buffer size must be a power of two from 1 to 1024 MiB, got {mib}"
        ));
    }
    Ok(mib)
}

impl RecordArgs {
    /// Translates the flags into [`RecordOptions`]; `Err` is a usage message.
    pub fn to_options(&self) -> Result<RecordOptions, String> {
        let target = match (self.pid, self.command.is_empty()) {
            (Some(pid), true) => Target::Pid(pid),
            (None, false) => Target::Command(self.command.clone()),
            (None, true) => {
                return Err("nothing to record: give `-- CMD [ARGS...]` or `--pid PID`".into());
            }
            (Some(_), false) => return Err("give either `--pid` or a command, not both".into()),
        };
        let mut opts = RecordOptions::new(target);
        opts.duration = self.duration;
        opts.output_dir = self.output.clone();
        opts.ring_buffer_bytes = self.ring_buffer_mb.map(|mib| mib << 20);
        opts.freq = Some(self.freq).filter(|&f| f > 0);
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn record_needs_a_target() {
        let cli = Cli::try_parse_from(["lxprof", "record"]).unwrap();
        let Command::Record(args) = cli.command;
        assert!(args.to_options().is_err());
        let cli = Cli::try_parse_from(["lxprof", "record", "-o", "x", "--", "sleep", "1"]).unwrap();
        let Command::Record(args) = cli.command;
        let opts = args.to_options().unwrap();
        assert!(matches!(opts.target, Target::Command(ref c) if c.len() == 2));
        assert!(
            Cli::try_parse_from(["lxprof", "record", "--duration", "-3", "--pid", "1"]).is_err()
        );
    }
}
