//! Drives N invocations over C environments (each cold-starts once, again after a reset),
//! reports progress and builds the [`LambdaReport`]. Cancellation: a [`CancellationToken`]
//! (or [`request_shutdown`]) stops starting invocations, cuts a running one short and shuts
//! every environment down; dropping the future also kills every process and removes every
//! sandbox.
use crate::environment::Environment;
use crate::metrics::{InvocationMetrics, LambdaReport, Summary};
use crate::{EmulatorConfig, EmulatorError, RunObserver};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Tokens of the runs in progress (for [`request_shutdown`]).
static RUNS: Mutex<Vec<(u64, CancellationToken)>> = Mutex::new(Vec::new());
static RUN_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Cancels every run in progress in this process (e.g. from a Ctrl-C handler).
pub fn request_shutdown() {
    for (_, t) in RUNS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        t.cancel();
    }
}

struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        RUNS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}

/// Runs the configured invocations and returns the report. The observer hears every
/// environment's phases, shutdown included (see [`crate::PhaseEvent`]). Dropping the future
/// kills every process and removes every sandbox, without further callbacks.
pub async fn run(
    config: EmulatorConfig,
    observer: &dyn RunObserver,
) -> Result<LambdaReport, EmulatorError> {
    run_cancellable(config, observer, &CancellationToken::new()).await
}

/// [`run`] that stops when `cancel` is cancelled: no new invocation starts, a running one is
/// cut short (its environment killed: `ShutdownStart`/`ShutdownEnd` around the kill), the
/// others get SHUTDOWN; then it returns [`EmulatorError::Cancelled`] with nothing left behind.
pub async fn run_cancellable(
    config: EmulatorConfig,
    observer: &dyn RunObserver,
    cancel: &CancellationToken,
) -> Result<LambdaReport, EmulatorError> {
    config.validate()?;
    let cancel = cancel.child_token();
    let id = RUN_SEQ.fetch_add(1, Ordering::SeqCst);
    RUNS.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id, cancel.clone()));
    let _registered = Registered(id);
    let cfg = Arc::new(config);
    let event = cfg
        .event
        .clone()
        .unwrap_or_else(crate::event::default_event);
    let mut envs = Vec::new();
    for i in 0..cfg.concurrency.min(cfg.invocations) {
        envs.push(Environment::create(i as usize, Arc::clone(&cfg)).await?);
    }
    let next = AtomicU32::new(0);
    let done = AtomicU32::new(0);
    let results: Mutex<Vec<InvocationMetrics>> = Mutex::new(Vec::new());
    let errors: Mutex<Option<EmulatorError>> = Mutex::new(None);
    let total = cfg.invocations;
    let loops = envs.iter_mut().map(|env| {
        let (next, done, results, event, cfg, errors, cancel) =
            (&next, &done, &results, &event, &cfg, &errors, &cancel);
        async move {
            loop {
                if cancel.is_cancelled() || next.fetch_add(1, Ordering::SeqCst) >= total {
                    break;
                }
                let r = tokio::select! {
                    r = env.invoke(event, observer) => r,
                    () = cancel.cancelled() => {
                        env.kill(observer);
                        break;
                    }
                };
                let m = match r {
                    Ok(m) => m,
                    Err(e) => {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        cancel.cancel();
                        break;
                    }
                };
                if cfg.print_reports {
                    eprintln!("{}", m.report_line(cfg.memory_mb));
                }
                observer.invocation_done(&m);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                observer.progress(n, total);
                if cfg.print_reports && total >= 50 && n % (total / 10).max(1) == 0 {
                    eprintln!("lxprof: {n}/{total} invocations done");
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).push(m);
            }
            let reason = if cancel.is_cancelled() {
                "failure"
            } else {
                "spindown"
            };
            env.shutdown(reason, observer).await;
        }
    });
    futures_util::future::join_all(loops).await;
    drop(envs);
    if let Some(e) = errors.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(EmulatorError::Cancelled);
    }
    let mut invocations = results.into_inner().unwrap_or_else(|p| p.into_inner());
    invocations.sort_by_key(|m| m.phases.invoke_start_ns.max(m.phases.init_start_ns));
    let mut extensions: Vec<String> = cfg
        .extensions
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for l in &cfg.layers {
        if let Ok(rd) = std::fs::read_dir(l.join("extensions")) {
            extensions.extend(
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    extensions.sort();
    Ok(LambdaReport {
        memory_mb: cfg.memory_mb,
        function: cfg.function.display().to_string(),
        extensions,
        summary: Summary::of(&invocations),
        invocations,
    })
}
