//! The `lxprof` command line: parses arguments, calls the library, prints
//! errors as one line (`lxprof: …`) and maps exit codes.

use std::process::ExitCode;

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use tracing_subscriber::{
    EnvFilter,
    filter::{FilterExt, filter_fn},
    prelude::*,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _self_trace = match init_logging(&cli) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("lxprof: {err:#}");
            return ExitCode::from(1);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lxprof: {}", one_line(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each said once: a cause whose text
/// its wrapper already shows (`"cannot write X: No space left"` over `"No
/// space left"`) is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `RUST_LOG` controls the tool's own logs (default: warnings); `--self-trace`
/// adds a Chrome-trace layer. The returned guard flushes that file on drop.
fn init_logging(cli: &Cli) -> anyhow::Result<Option<tracing_chrome::FlushGuard>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    // The filter applies to the terminal log only; spans pass it so that the
    // self-trace sees them (fmt prints no lines for spans).
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter.or(filter_fn(|meta| meta.is_span())));
    let registry = tracing_subscriber::registry().with(fmt);
    match &cli.self_trace {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                anyhow::anyhow!("cannot create self-trace file {}: {e}", path.display())
            })?;
            let (chrome, guard) = tracing_chrome::ChromeLayerBuilder::new()
                .writer(file)
                .build();
            registry.with(chrome).init();
            Ok(Some(guard))
        }
        None => {
            registry.init();
            Ok(None)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let opts = args.to_options().map_err(anyhow::Error::msg)?;
            let outcome = lxprof::lambda::run_lambda(&opts, std::env::args().collect())?;
            print!("{}", outcome.summary);
            Ok(finish(
                outcome.interrupted,
                &outcome.unwritten,
                lambda_exit_code(&outcome.report),
            ))
        }
        Command::Compare(args) => {
            let opts = lxprof::compare::CompareOptions {
                no_flamegraphs: args.no_flamegraphs,
                ..Default::default()
            };
            let output = lxprof::compare::compare(&args.a, &args.b, &opts)?;
            let dir = lxprof::output::OutputDir::create(args.output)?;
            let written = output.write(dir.path())?;
            print!("{}", output.markdown);
            println!("outputs:");
            for path in written {
                println!("  {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Record(args) if args.lambda => {
            let opts = args.to_lambda_options();
            let outcome = lxprof::record::lambda::record_lambda(&opts, std::env::args().collect())?;
            print!("{}", outcome.summary);
            Ok(finish(
                outcome.interrupted,
                &outcome.unwritten,
                lambda_exit_code(&outcome.report),
            ))
        }
        Command::Suite(args) => {
            let opts = args.to_options();
            let outcome = lxprof::suite::run_suite(&opts, std::env::args().collect())?;
            print!("{}", outcome.summary);
            println!("outputs:");
            for (_, path) in &outcome.outputs {
                println!("  {}", path.display());
            }
            // 130 after Ctrl-C, 3 when a scenario or an invocation failed.
            Ok(if outcome.interrupted {
                ExitCode::from(130)
            } else if outcome.all_succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Clean => {
            let removed = lxprof::lambda::clean()?;
            print!("{}", lxprof::lambda::render_cleanup(&removed));
            Ok(ExitCode::SUCCESS)
        }
        Command::Record(args) => {
            let opts = args.to_options().map_err(anyhow::Error::msg)?;
            let outcome = lxprof::record::record(&opts)?;
            print!("{}", outcome.summary);
            if let Some(line) = outcome.unwritten.line() {
                eprintln!("lxprof: {line}");
                return Ok(ExitCode::from(1));
            }
            // Exit as the recorded command did, so lxprof can wrap it in scripts.
            let code = match outcome.exit_status {
                Some(status) => match (status.code, status.signal) {
                    (Some(code), _) => code,
                    (None, Some(sig)) => 128 + sig,
                    (None, None) => 0,
                },
                None => 0,
            };
            Ok(ExitCode::from(
                u8::try_from(code.clamp(0, 255)).unwrap_or(1),
            ))
        }
    }
}

/// After a Lambda run's summary: 130 when a signal cut it short, 1 (with one
/// line saying which outputs and why) when an output could not be written,
/// else `code`.
fn finish(interrupted: bool, unwritten: &lxprof::output::Unwritten, code: ExitCode) -> ExitCode {
    if let Some(line) = unwritten.line() {
        eprintln!("lxprof: {line}");
    }
    if interrupted {
        ExitCode::from(130)
    } else if !unwritten.is_empty() {
        ExitCode::from(1)
    } else {
        code
    }
}

/// 3 when an invocation did not succeed, else 0.
fn lambda_exit_code(report: &lxprof_emulator::LambdaReport) -> ExitCode {
    let failed = report
        .invocations
        .iter()
        .any(|i| i.status != lxprof_emulator::Status::Success);
    if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn each_cause_is_said_once() {
        // ENOSPC.
        let io = std::io::Error::from_raw_os_error(28);
        let inner = anyhow::Error::new(io)
            .context("cannot write /x/trace.json: No space left on device (os error 28)");
        let outer = inner.context(
            "cannot write /x/trace.json: No space left on device (os error 28); check free space",
        );
        let line = one_line(&outer);
        assert_eq!(line.matches("No space left").count(), 1, "{line}");
        let chained = anyhow::anyhow!("root cause").context("while doing y");
        assert_eq!(one_line(&chained), "while doing y: root cause");
    }
}
