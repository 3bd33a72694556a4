//! The command line: clap structs, translated into the library's plain option
//! structs. Nothing outside this file and `main.rs` knows about clap.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use lxprof::{
    lambda::LambdaRunOptions,
    probes::AllocMode,
    record::{RecordOptions, Target, lambda::LambdaRecordOptions},
    suite::{Scenario, SuiteOptions},
};

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
    /// Run a function and its extensions in the emulated Lambda environment.
    Run(RunArgs),
    /// Compare two recordings side by side: compare.md and differential flamegraphs.
    Compare(CompareArgs),
    /// Record the AWS experiment's matrix (every extension × memory sizes): suite.md, suite.json.
    Suite(SuiteArgs),
    /// Remove what crashed or killed runs left behind (cgroups, /run/lxprof/sandbox/*);
    /// environments of running lxprof processes are left alone.
    Clean,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline recording's output directory.
    #[arg(value_name = "DIR_A")]
    pub a: PathBuf,

    /// The recording compared with it (ratios are B/A).
    #[arg(value_name = "DIR_B")]
    pub b: PathBuf,

    /// Where to write compare.md and flamegraphs/ [default: ./lxprof-out/<UTC timestamp>/]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Skip the differential flamegraphs.
    #[arg(long)]
    pub no_flamegraphs: bool,
}

/// `lxprof run --lambda …`: the emulator without profiling.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the emulated AWS Lambda execution environment (required: the only mode).
    #[arg(long)]
    pub lambda: bool,

    #[command(flatten)]
    pub lambda_args: LambdaArgs,

    /// Output directory [default: ./lxprof-out/<UTC timestamp>/]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// The Lambda environment: function, extensions, memory, load.
#[derive(Debug, Args)]
pub struct LambdaArgs {
    /// The function: a preset name (header-counter: Rust; header-counter-dotnet: C# on
    /// .NET CoreCLR) or a deployment package directory holding `bootstrap`.
    #[arg(long, value_name = "NAME|DIR", default_value = lxprof::lambda::DEFAULT_FUNCTION)]
    pub function: String,

    /// An extension: a preset name (rust-blank, rust-event-collector, csharp-blank,
    /// csharp-event-collector, csharp-aot-event-collector on Mono; dotnet-blank,
    /// dotnet-event-collector on .NET CoreCLR; node-event-collector) or an executable
    /// file. Repeatable.
    #[arg(long = "extension", value_name = "NAME|FILE")]
    pub extensions: Vec<String>,

    /// A layer directory, merged into /opt (its extensions/* are started). Repeatable.
    #[arg(long = "layer", value_name = "DIR")]
    pub layers: Vec<PathBuf>,

    /// Memory size in MB (128-10240); CPU is proportional (1769 MB = one vCPU).
    #[arg(long, value_name = "MB", default_value_t = 128, value_parser = clap::value_parser!(u32).range(128..=10240))]
    pub memory: u32,

    /// Function timeout in seconds (covers the whole invoke phase).
    #[arg(long, value_name = "SECONDS", default_value = "3", value_parser = parse_seconds)]
    pub timeout: Duration,

    /// Size of /tmp in MB (Lambda's ephemeral storage, 512-10240).
    #[arg(long, value_name = "MB", default_value_t = 512, value_parser = clap::value_parser!(u32).range(512..=10240))]
    pub ephemeral_storage: u32,

    /// Number of invocations.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub invocations: u32,

    /// Requests in flight: C clients each send a request, wait for its response and send the
    /// next; a new environment (a cold start) only when every existing one is busy.
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: u32,

    /// Most environments (Lambda's concurrency limit) [default: C]. Above C, an extension
    /// still working after the response makes new environments start, as at AWS.
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_environments: Option<u32>,

    /// Event JSON file [default: an API Gateway REST proxy event].
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,

    /// Extra environment variable for the function and extensions. Repeatable.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// S3-compatible endpoint for the event collectors [default: a running
    /// scripts/local-s3.sh server, else real S3 with your AWS credentials].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// Bucket for the event collectors [default: lxprof-events].
    #[arg(long, value_name = "BUCKET")]
    pub bucket: Option<String>,

    /// Don't cap CPU at memory/1769 MB of one CPU.
    #[arg(long)]
    pub no_cpu_cap: bool,

    /// Print the function's and extensions' log lines.
    #[arg(long)]
    pub logs: bool,
}

impl LambdaArgs {
    /// The emulator's options; `output` is the output directory.
    pub fn to_run_options(&self, output: Option<PathBuf>) -> LambdaRunOptions {
        let a = self;
        let mut o = LambdaRunOptions::new();
        o.function = a.function.clone();
        o.extensions = a.extensions.clone();
        o.layers = a.layers.clone();
        o.memory_mb = a.memory;
        o.timeout = a.timeout;
        o.ephemeral_storage_mb = a.ephemeral_storage;
        o.invocations = a.invocations;
        o.concurrency = a.concurrency;
        o.max_environments = a.max_environments;
        o.event = a.event.clone();
        o.env = a.env.clone();
        o.s3_endpoint = a.s3_endpoint.clone();
        o.bucket = a.bucket.clone();
        o.cpu_cap = !a.no_cpu_cap;
        o.print_logs = a.logs;
        o.output_dir = output;
        o.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        o
    }

    /// True when any Lambda flag differs from its default (they need `--lambda`).
    fn any_given(&self) -> bool {
        self.function != lxprof::lambda::DEFAULT_FUNCTION
            || !self.extensions.is_empty()
            || !self.layers.is_empty()
            || self.memory != 128
            || self.ephemeral_storage != 512
            || self.invocations != 1
            || self.concurrency != 1
            || self.max_environments.is_some()
            || self.event.is_some()
            || !self.env.is_empty()
            || self.s3_endpoint.is_some()
            || self.bucket.is_some()
            || self.no_cpu_cap
            || self.logs
    }
}

/// `--alloc`: which allocation probes to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AllocArg {
    /// No allocation probes.
    Off,
    /// mmap/munmap/brk syscalls only (how managed runtimes grow their heaps).
    Syscalls,
    /// The syscalls plus malloc/calloc/realloc/free uprobes on each process's libc.
    Full,
}

impl From<AllocArg> for AllocMode {
    fn from(a: AllocArg) -> AllocMode {
        match a {
            AllocArg::Off => AllocMode::Off,
            AllocArg::Syscalls => AllocMode::Syscalls,
            AllocArg::Full => AllocMode::Full,
        }
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not K=V")),
    }
}

impl RunArgs {
    /// Translates the flags into [`LambdaRunOptions`]; `Err` is a usage message.
    pub fn to_options(&self) -> Result<LambdaRunOptions, String> {
        if !self.lambda {
            return Err(
                "`lxprof run` needs --lambda (the emulated Lambda environment is its only mode)"
                    .into(),
            );
        }
        Ok(self.lambda_args.to_run_options(self.output.clone()))
    }
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Output directory [default: ./lxprof-out/<UTC timestamp>/]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Record a run of the emulated AWS Lambda environment (function, extensions,
    /// every invocation) instead of a command: takes the flags of `lxprof run --lambda`.
    #[arg(long, conflicts_with_all = ["pid", "command", "duration"])]
    pub lambda: bool,

    #[command(flatten)]
    pub lambda_args: LambdaArgs,

    /// Allocation probes: `syscalls` (mmap/munmap/brk, from the raw syscall
    /// tracepoints: every syscall of the machine runs a small program, ~10 % on
    /// a syscall-bound pipe ping-pong), `full` (plus malloc/calloc/realloc/free
    /// uprobes on libc: ~5.5 µs per call, paid by every process using that libc
    /// while recording) or `off`.
    #[arg(long, value_enum, value_name = "MODE", default_value = "syscalls")]
    pub alloc: AllocArg,

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
    /// 499 Hz gives ~17 samples per 500 ms invocation at 128 MB (~35 ms of
    /// CPU) and no measurable CPU cost to the traced process.
    #[arg(long, value_name = "HZ", default_value_t = 499)]
    pub freq: u32,

    /// On-CPU intervals: a thread's stints less than this many µs apart share
    /// one (its CPU time stays exact; the trace shows the span with its CPU
    /// time). 0: one interval per stint, a kernel record per context switch.
    #[arg(long, value_name = "US", default_value_t = 1000)]
    pub oncpu_window_us: u64,

    /// Also count the launched command's tree with inherited perf-event
    /// software counters (task-clock, faults, context switches), printed beside
    /// lxprof's figures as a cross-check. Off by default: they cost every
    /// context switch of the tree (~20 % of a pipe ping-pong).
    #[arg(long)]
    pub perf_counters: bool,

    /// Bytes of user stack copied with each sample and unwound with the
    /// programs' unwind tables (frame pointers in JIT code). Deeper stacks end
    /// in a `[truncated]` frame. At most 262144.
    #[arg(long, value_name = "BYTES", default_value_t = lxprof::probes::DEFAULT_STACK_BYTES,
          value_parser = clap::value_parser!(u32).range(0..=lxprof::probes::MAX_STACK_BYTES as i64))]
    pub stack_bytes: u32,

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
        if self.lambda_args.any_given() {
            return Err("the function/extension/memory/… flags need --lambda".into());
        }
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
        opts.stack_bytes = Some(self.stack_bytes);
        opts.alloc = self.alloc.into();
        opts.oncpu_window_ns = Some(self.oncpu_window_us.saturating_mul(1000));
        opts.perf_counters = self.perf_counters;
        Ok(opts)
    }

    /// Translates `record --lambda` flags into [`LambdaRecordOptions`].
    pub fn to_lambda_options(&self) -> LambdaRecordOptions {
        let mut o = LambdaRecordOptions::new(self.lambda_args.to_run_options(self.output.clone()));
        o.alloc = self.alloc.into();
        o.freq = Some(self.freq).filter(|&f| f > 0);
        o.stack_bytes = Some(self.stack_bytes);
        o.ring_buffer_bytes = self.ring_buffer_mb.map(|mib| mib << 20);
        o.oncpu_window_ns = Some(self.oncpu_window_us.saturating_mul(1000));
        o
    }
}

/// `lxprof suite`: the AWS experiment's matrix, recorded.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Scenarios, comma separated: `no-extension` and extension presets (or files), each
    /// optionally `@FUNCTION` to run with another function.
    #[arg(
        long,
        value_name = "NAME,…",
        value_delimiter = ',',
        default_value = "no-extension,no-extension@header-counter,rust-blank,csharp-blank,dotnet-blank,rust-event-collector,csharp-event-collector,dotnet-event-collector,csharp-aot-event-collector,node-event-collector"
    )]
    pub scenarios: Vec<String>,

    /// The function: a preset name (header-counter-dotnet: C# on .NET, as in the AWS
    /// experiment; header-counter: Rust) or a deployment package directory. A scenario
    /// `NAME@FUNCTION` runs with another function.
    #[arg(long, value_name = "NAME|DIR", default_value = lxprof::suite::DEFAULT_SUITE_FUNCTION)]
    pub function: String,

    /// Function timeout in seconds (the whole invoke phase); generous so that a
    /// slow extension shows as a long Duration rather than a timeout.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub timeout: Duration,

    /// Memory sizes in MB, comma separated.
    #[arg(long, value_name = "MB,…", value_delimiter = ',', default_value = "128,512",
          value_parser = clap::value_parser!(u32).range(128..=10240))]
    pub memory: Vec<u32>,

    /// Requests per scenario (the seed sent 5,000).
    #[arg(long, value_name = "N", default_value_t = lxprof::suite::DEFAULT_INVOCATIONS, value_parser = clap::value_parser!(u32).range(1..))]
    pub invocations: u32,

    /// Requests in flight per scenario (the seed had 250); a new environment (a cold start)
    /// only when every existing one is busy.
    #[arg(long, value_name = "C", default_value_t = lxprof::suite::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: u32,

    /// Most environments per scenario (Lambda's concurrency limit) [default: 2 × C].
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_environments: Option<u32>,

    /// Extra environment variable for the function and extensions (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// S3-compatible endpoint for the event collectors [default: a running
    /// scripts/local-s3.sh server, else real S3 with your AWS credentials].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// Bucket the event collectors write to [default: lxprof-events].
    #[arg(long, value_name = "BUCKET")]
    pub bucket: Option<String>,

    /// Allocation probes (see `lxprof record --alloc`).
    #[arg(long, value_enum, value_name = "MODE", default_value = "syscalls")]
    pub alloc: AllocArg,

    /// Stack sampling frequency in Hz; 0: off.
    #[arg(long, value_name = "HZ", default_value_t = 499)]
    pub freq: u32,

    /// Output directory [default: ./lxprof-out/<UTC timestamp>/]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

impl SuiteArgs {
    /// Translates the flags into [`SuiteOptions`].
    pub fn to_options(&self) -> SuiteOptions {
        let mut o = SuiteOptions::new();
        o.function = self.function.clone();
        o.scenarios = self.scenarios.iter().map(|s| Scenario::parse(s)).collect();
        o.memory_mb = self.memory.clone();
        o.invocations = self.invocations;
        o.concurrency = self.concurrency;
        o.max_environments = self
            .max_environments
            .unwrap_or(self.concurrency.saturating_mul(2));
        o.timeout = self.timeout;
        o.env = self.env.clone();
        o.s3_endpoint = self.s3_endpoint.clone();
        o.bucket = self.bucket.clone();
        o.alloc = self.alloc.into();
        o.freq = Some(self.freq).filter(|&f| f > 0);
        o.output_dir = self.output.clone();
        o.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
        o
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
        let Command::Record(args) = cli.command else {
            panic!()
        };
        assert!(args.to_options().is_err());
        let cli = Cli::try_parse_from(["lxprof", "record", "-o", "x", "--", "sleep", "1"]).unwrap();
        let Command::Record(args) = cli.command else {
            panic!()
        };
        let opts = args.to_options().unwrap();
        assert!(matches!(opts.target, Target::Command(ref c) if c.len() == 2));
        assert!(
            Cli::try_parse_from(["lxprof", "record", "--duration", "-3", "--pid", "1"]).is_err()
        );
    }

    #[test]
    fn sampling_is_on_by_default_and_zero_turns_it_off() {
        let freq = |extra: &[&str]| {
            let mut argv = vec!["lxprof", "record"];
            argv.extend(extra);
            argv.extend(["--", "true"]);
            let Command::Record(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("record")
            };
            args.to_options().unwrap().freq
        };
        assert_eq!(freq(&[]), Some(499));
        assert_eq!(freq(&["--freq", "99"]), Some(99));
        assert_eq!(freq(&["--freq", "0"]), None);
    }

    #[test]
    fn suite_translates_its_flags() {
        let Command::Suite(args) = Cli::try_parse_from(["lxprof", "suite"]).unwrap().command else {
            panic!("suite")
        };
        let o = args.to_options();
        assert_eq!(o.memory_mb, vec![128, 512]);
        assert_eq!(o.scenarios, lxprof::suite::Scenario::defaults());
        assert_eq!((o.invocations, o.freq), (200, Some(499)));
        let Command::Suite(args) = Cli::try_parse_from([
            "lxprof",
            "suite",
            "--memory",
            "128",
            "--invocations",
            "5",
            "--scenarios",
            "none,rust-blank",
            "--env",
            "A=b",
            "--s3-endpoint",
            "http://127.0.0.1:9",
            "--freq",
            "0",
            "-o",
            "d",
        ])
        .unwrap()
        .command
        else {
            panic!("suite")
        };
        let o = args.to_options();
        assert_eq!((o.memory_mb.as_slice(), o.invocations), (&[128][..], 5));
        assert_eq!(o.scenarios.len(), 2);
        assert_eq!(o.scenarios[0].extension, None);
        assert_eq!(o.env, vec![("A".to_string(), "b".to_string())]);
        assert_eq!(o.s3_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(o.freq, None);
        assert_eq!(o.output_dir, Some(PathBuf::from("d")));
        assert!(Cli::try_parse_from(["lxprof", "suite", "--memory", "64"]).is_err());
    }

    #[test]
    fn run_translates_lambda_flags() {
        let cli = Cli::try_parse_from([
            "lxprof",
            "run",
            "--lambda",
            "--extension",
            "rust-blank",
            "--memory",
            "512",
            "--invocations",
            "5",
            "--env",
            "A=b=c",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        let o = args.to_options().unwrap();
        assert_eq!(
            (o.memory_mb, o.invocations, o.function.as_str()),
            (512, 5, "header-counter")
        );
        assert_eq!(o.env, vec![("A".to_string(), "b=c".to_string())]);
        let cli = Cli::try_parse_from(["lxprof", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        assert!(args.to_options().is_err());
        assert!(Cli::try_parse_from(["lxprof", "run", "--lambda", "--memory", "64"]).is_err());
        assert!(Cli::try_parse_from(["lxprof", "run", "--lambda", "--env", "novalue"]).is_err());
    }
}
