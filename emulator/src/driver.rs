//! Drives N invocations over C environments (each cold-starts once, again after a reset),
//! reports progress and builds the [`LambdaReport`]. Cancellation: a [`CancellationToken`]
//! (or [`request_shutdown`]) stops starting invocations, cuts a running one short and shuts
//! every environment down; dropping the future also kills every process and removes every
//! sandbox.
use crate::environment::Environment;
use crate::metrics::{InvocationMetrics, LambdaReport, Summary};
use crate::{EmulatorConfig, EmulatorError, RunObserver};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
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

/// The load, as Lambda sees it: `concurrency` clients each send a request, wait for its
/// response (the runtime's, not the end of the invoke phase: extensions may still be working)
/// and send the next, arriving [`CLIENT_ROUND_TRIP`] later, until `invocations` were sent. A request goes to an idle environment
/// (the lowest-numbered); only when every existing one is busy is a new one created (a cold
/// start), up to `max_environments` (default: `concurrency`); beyond that it waits for one to
/// become idle. With more environments allowed than requests in flight, an extension still
/// working after the response makes Lambda start new environments, as at AWS.
struct Dispatch {
    /// Requests the clients have yet to send.
    unsent: u32,
    /// Sent requests waiting for an environment: when each reaches Lambda.
    pending: VecDeque<Instant>,
    /// Created environments that are idle (their invoke phase ended).
    idle: BTreeSet<usize>,
    /// Environments created so far (indices `0..started`).
    started: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// From a response leaving Lambda to the same client's next request reaching it (through API
/// Gateway and back at AWS). A phase that ends within this after the response (extensions
/// already done) frees its environment for that next request.
pub const CLIENT_ROUND_TRIP: Duration = Duration::from_millis(20);

/// A client got its response: it sends its next request, if any is left.
fn client_sends_next(dispatch: &Mutex<Dispatch>, changed: &Notify) {
    let mut d = lock(dispatch);
    if d.unsent > 0 {
        d.unsent -= 1;
        d.pending.push_back(Instant::now() + CLIENT_ROUND_TRIP);
    }
    drop(d);
    changed.notify_waiters();
}

/// Waits until environment `i` should take a pending request (true), or until none is left
/// or the run is cancelled (false).
async fn take_request(
    i: usize,
    dispatch: &Mutex<Dispatch>,
    changed: &Notify,
    cancel: &CancellationToken,
) -> bool {
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut arrives = None;
        {
            let mut d = lock(dispatch);
            if cancel.is_cancelled() || (d.unsent == 0 && d.pending.is_empty()) {
                return false;
            }
            match d.pending.front().copied() {
                Some(t) if t <= Instant::now() => {
                    let mine = match d.idle.first() {
                        Some(&first) => first == i,
                        // Every created environment is busy: the next one starts.
                        None => d.started == i,
                    };
                    if mine {
                        d.pending.pop_front();
                        d.idle.remove(&i);
                        d.started = d.started.max(i + 1);
                        drop(d);
                        // Another pending request may be for another environment.
                        changed.notify_waiters();
                        return true;
                    }
                }
                Some(t) => arrives = Some(t),
                None => {}
            }
        }
        let arrival = async {
            match arrives {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut notified => {}
            () = arrival => {}
            () = cancel.cancelled() => return false,
        }
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
    let clients = cfg.concurrency.min(cfg.invocations);
    let max_envs = cfg.max_environments.unwrap_or(cfg.concurrency);
    let mut envs = Vec::new();
    for i in 0..max_envs.min(cfg.invocations) {
        envs.push(Environment::create(i as usize, Arc::clone(&cfg)).await?);
    }
    let total = cfg.invocations;
    let dispatch = Mutex::new(Dispatch {
        unsent: total - clients,
        pending: (0..clients).map(|_| Instant::now()).collect(),
        idle: BTreeSet::new(),
        started: 0,
    });
    let changed = Notify::new();
    let done = AtomicU32::new(0);
    let results: Mutex<Vec<InvocationMetrics>> = Mutex::new(Vec::new());
    let errors: Mutex<Option<EmulatorError>> = Mutex::new(None);
    let loops = envs.iter_mut().map(|env| {
        let (dispatch, changed, done, results, event, cfg, errors, cancel) = (
            &dispatch, &changed, &done, &results, &event, &cfg, &errors, &cancel,
        );
        async move {
            let i = env.index();
            loop {
                if !take_request(i, dispatch, changed, cancel).await {
                    break;
                }
                let responded = AtomicBool::new(false);
                let on_response = || {
                    if !responded.swap(true, Ordering::SeqCst) {
                        client_sends_next(dispatch, changed);
                    }
                };
                let r = tokio::select! {
                    r = env.invoke_notifying(event, observer, &on_response) => r,
                    () = cancel.cancelled() => {
                        env.kill(observer);
                        break;
                    }
                };
                // A client whose invocation ended without a response (error, timeout) gets
                // its answer now, and sends its next request.
                on_response();
                lock(dispatch).idle.insert(i);
                changed.notify_waiters();
                let m = match r {
                    Ok(m) => m,
                    Err(e) => {
                        lock(errors).get_or_insert(e);
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
                lock(results).push(m);
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
