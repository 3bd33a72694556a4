//! Drives N invocations over C environments (each cold-starts once, again after a reset),
//! reports progress and builds the [`LambdaReport`].
use crate::environment::Environment;
use crate::metrics::{InvocationMetrics, LambdaReport, Summary};
use crate::{EmulatorConfig, EmulatorError, RunObserver};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Asks a running [`run`] to stop starting invocations and shut its environments down.
pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// Runs the configured invocations and returns the report. Dropping the future kills every
/// process and removes every sandbox.
pub async fn run(
    config: EmulatorConfig,
    observer: &dyn RunObserver,
) -> Result<LambdaReport, EmulatorError> {
    config.validate()?;
    SHUTDOWN.store(false, Ordering::SeqCst);
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
        let (next, done, results, event, cfg, errors) =
            (&next, &done, &results, &event, &cfg, &errors);
        async move {
            loop {
                if SHUTDOWN.load(Ordering::SeqCst) || next.fetch_add(1, Ordering::SeqCst) >= total {
                    break;
                }
                let m = match env.invoke(event, observer).await {
                    Ok(m) => m,
                    Err(e) => {
                        errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        SHUTDOWN.store(true, Ordering::SeqCst);
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
            env.shutdown("spindown", observer).await;
        }
    });
    futures_util::future::join_all(loops).await;
    drop(envs);
    if let Some(e) = errors.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut invocations = results.into_inner().unwrap_or_else(|p| p.into_inner());
    invocations.sort_by_key(|m| (m.phases.invoke_start_ns, m.phases.init_start_ns));
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
