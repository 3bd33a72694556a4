//! One execution environment: a sandbox, its extension and runtime processes, its API server
//! and lifecycle; init (on the first invoke, again after a reset), invoke, freeze, shutdown.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::{FunctionInfo, PendingEvent, Shared, router};
use crate::config::EmulatorConfig;
use crate::envvars::{extension_env, runtime_env};
use crate::lifecycle::{
    INIT_LIMIT, InvokeEnd, Phase, Verdict, init_failure, invoke_progress, post_runtime_ns,
    shutdown_cap, verdict,
};
use crate::metrics::{InvocationMetrics, PhaseTimes, Status, monotonic_ns};
use crate::observe::{MemorySlot, Note, pump, spawn_reader};
use crate::sandbox::{Sandbox, SandboxCommand, SandboxSpec, Signal};
use crate::{EmulatorError, PhaseEvent, Role, RunObserver};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// What a live (initialised) environment holds.
struct Live {
    sandbox: Arc<Sandbox>,
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    server: JoinHandle<()>,
    runtime_pid: Option<u32>,
    extensions: usize,
    waiters: Vec<JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
    frozen: bool,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.telemetry.close();
        for t in self.waiters.iter().chain(&self.readers) {
            t.abort();
        }
    }
}

/// A successful init: its bounds and the cgroup's CPU time meanwhile.
struct InitDone {
    start_ns: u64,
    end_ns: u64,
    cpu_ns: Option<u64>,
}

/// Why init failed.
struct InitFail {
    status: Status,
    error_type: String,
    /// What went wrong, in words.
    message: Option<String>,
    start_ns: u64,
    end_ns: u64,
    cpu_ns: Option<u64>,
}

/// CPU time of the sandbox's cgroup since `since` (a reading of the same counter).
fn cpu_since(sandbox: &Sandbox, since: Option<u64>) -> Option<u64> {
    let now = sandbox.cpu_usage_ns().ok()?;
    Some(now.saturating_sub(since?))
}

/// One execution environment (index `index` of the run).
pub struct Environment {
    index: usize,
    cfg: Arc<EmulatorConfig>,
    generation: u32,
    live: Option<Live>,
    notes_tx: mpsc::UnboundedSender<Note>,
    notes_rx: mpsc::UnboundedReceiver<Note>,
    memory: MemorySlot,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Starts one process; the observer learns its pid before it execs.
async fn spawn_proc(
    live: &mut Live,
    notes: &mpsc::UnboundedSender<Note>,
    role: Role,
    cmd: SandboxCommand,
) -> Result<u32, EmulatorError> {
    let tx = notes.clone();
    let r = role.clone();
    let gate = move |pid: u32| {
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        if tx.send(Note::Spawned(pid, r, ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(Duration::from_secs(30));
        }
    };
    let mut child = live.sandbox.spawn_async(cmd, gate).await?;
    let pid = child.id().unwrap_or(0);
    if let Some(o) = child.stdout.take() {
        let h = spawn_reader(o, role.clone(), Arc::clone(&live.shared), notes.clone());
        live.readers.push(h);
    }
    if let Some(e) = child.stderr.take() {
        let h = spawn_reader(e, role.clone(), Arc::clone(&live.shared), notes.clone());
        live.readers.push(h);
    }
    let sh = Arc::clone(&live.shared);
    let is_fn = role == Role::Function;
    live.waiters.push(tokio::spawn(async move {
        let st = child.wait().await;
        let who = match &role {
            Role::Function => "Runtime".to_string(),
            Role::Extension(n) => format!("Extension {n}"),
        };
        // Lambda's words: "Runtime exited with error: signal: killed".
        let what = match st {
            Ok(s) if s.success() => format!("{who} exited without providing a reason"),
            Ok(s) => format!("{who} exited with error: {s}"),
            Err(e) => format!("{who}: wait failed: {e}"),
        };
        sh.update(|s| s.exited.push((is_fn, what)));
    }));
    Ok(pid)
}

impl Environment {
    /// An environment that initialises on its first invoke.
    pub async fn create(
        index: usize,
        cfg: Arc<EmulatorConfig>,
    ) -> Result<Environment, EmulatorError> {
        let (notes_tx, notes_rx) = mpsc::unbounded_channel();
        Ok(Environment {
            index,
            cfg,
            generation: 0,
            live: None,
            notes_tx,
            notes_rx,
            memory: Arc::new(Mutex::new(None)),
        })
    }

    /// The environment's number in its run.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `127.0.0.1:PORT` of the APIs while the environment is live.
    pub fn api_address(&self) -> Option<String> {
        self.live.as_ref().map(|l| l.addr.to_string())
    }

    /// Host pids of the environment's processes (empty when not live).
    pub fn pids(&self) -> Vec<u32> {
        self.live
            .as_ref()
            .map(|l| l.sandbox.pids())
            .unwrap_or_default()
    }

    /// Creates the sandbox and API server, starts extensions then the runtime and waits until
    /// all called next. Hard errors (sandbox, listen) are `Err`; init failures `Ok(Err)`.
    /// Reports `InitStart` and `ExtensionsRegistered` (the caller reports `InitEnd`).
    async fn init(
        &mut self,
        obs: &dyn RunObserver,
    ) -> Result<Result<InitDone, InitFail>, EmulatorError> {
        self.generation += 1;
        let cfg = Arc::clone(&self.cfg);
        let name = format!(
            "lxprof-{}-{}-e{}g{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            self.index,
            self.generation
        );
        let spec = SandboxSpec {
            name,
            memory_mb: cfg.memory_mb,
            cpu_limit: cfg.cpu_limit(),
            function_dir: cfg.function.clone(),
            layers: cfg.layers.clone(),
            extra_extensions: cfg.extensions.clone(),
            run_as: None,
            tmp_mb: Some(cfg.ephemeral_storage_mb),
        };
        let sandbox = Arc::new(
            tokio::task::spawn_blocking(move || Sandbox::create(spec))
                .await
                .map_err(|e| EmulatorError::Internal(e.to_string()))??,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(EmulatorError::Listen)?;
        let addr = listener.local_addr().map_err(EmulatorError::Listen)?;
        let shared = Arc::new(Shared::new(FunctionInfo {
            name: cfg.function_name.clone(),
            version: "$LATEST".into(),
            handler: "bootstrap".into(),
            arn: format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                cfg.function_name
            ),
            memory_mb: cfg.memory_mb,
        }));
        let app = router(Arc::clone(&shared));
        // Answers are written in pieces: without TCP_NODELAY, Nagle + delayed ACK stall them.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let exts = sandbox.extension_paths();
        shared.update(|s| {
            s.core.external = exts
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
        });
        *self.memory.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&sandbox));
        let sb = Arc::clone(&sandbox);
        let live = self.live.insert(Live {
            sandbox,
            shared: Arc::clone(&shared),
            addr,
            server,
            runtime_pid: None,
            extensions: exts.len(),
            waiters: Vec::new(),
            readers: Vec::new(),
            frozen: false,
        });
        let cpu0 = sb.cpu_usage_ns().ok();
        let start = monotonic_ns();
        obs.phase(self.index, PhaseEvent::InitStart, start);
        shared.update(|s| s.phase_start_ns = start);
        shared.telemetry.emit(
            "platform.initStart",
            json!({"initializationType": "on-demand", "phase": "init"}),
        );
        let deadline = tokio::time::Instant::now() + INIT_LIMIT;
        let renv = runtime_env(&cfg, &addr.to_string());
        let xenv = extension_env(&renv);
        let fail = |status, t: &str, message: Option<String>| InitFail {
            status,
            error_type: t.to_string(),
            message,
            start_ns: start,
            end_ns: monotonic_ns(),
            cpu_ns: cpu_since(&sb, cpu0),
        };
        for p in &exts {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let cmd = SandboxCommand {
                program: p.clone(),
                args: vec![],
                env: xenv.clone(),
                cwd: "/".into(),
            };
            if let Err(e) = spawn_proc(live, &self.notes_tx, Role::Extension(n), cmd).await {
                eprintln!("lxprof: environment {}: {e}", self.index);
                let message = Some(e.to_string());
                return Ok(Err(fail(Status::Failure, "Extension.LaunchError", message)));
            }
        }
        let n = exts.len();
        // Why init failed, in words: who exited how, or what was posted.
        let why = |s: &crate::api::State| {
            s.exited
                .first()
                .map(|(_, w)| w.clone())
                .or_else(|| s.core.init_error.clone())
        };
        let registered = tokio::time::timeout_at(
            deadline,
            shared.wait_for(|s| match init_failure(&s.core, &s.exited) {
                Some(f) => Some(Err((f, why(s)))),
                None => s.core.unregistered().is_empty().then_some(Ok(())),
            }),
        )
        .await;
        match registered {
            Err(_) => {
                let missing = shared.lock().core.unregistered().join(", ");
                let message = format!(
                    "extension(s) {missing} did not register within {} s (an extension registers under its file name in /opt/extensions)",
                    INIT_LIMIT.as_secs()
                );
                return Ok(Err(fail(
                    Status::Timeout,
                    "Sandbox.InitTimeout",
                    Some(message),
                )));
            }
            Ok(Err(((st, t), m))) => return Ok(Err(fail(st, &t, m))),
            Ok(Ok(())) => {}
        }
        let registered_ns = if n == 0 { start } else { monotonic_ns() };
        obs.phase(self.index, PhaseEvent::ExtensionsRegistered, registered_ns);
        let cmd = SandboxCommand {
            program: "/var/task/bootstrap".into(),
            args: vec![],
            env: renv,
            cwd: "/var/task".into(),
        };
        match spawn_proc(live, &self.notes_tx, Role::Function, cmd).await {
            Ok(pid) => live.runtime_pid = Some(pid),
            Err(e) => {
                eprintln!("lxprof: environment {}: {e}", self.index);
                let message = Some(e.to_string());
                return Ok(Err(fail(
                    Status::Failure,
                    "Runtime.InvalidEntrypoint",
                    message,
                )));
            }
        }
        let done = tokio::time::timeout_at(
            deadline,
            shared.wait_for(|s| match init_failure(&s.core, &s.exited) {
                Some(f) => Some(Err((f, why(s)))),
                None => (s.all_waiting_ns != 0).then_some(Ok(s.all_waiting_ns)),
            }),
        )
        .await;
        let end = match done {
            Err(_) => {
                let late = shared.lock().core.not_waiting().join(", ");
                let message = format!("{late} did not call next within {} s", INIT_LIMIT.as_secs());
                return Ok(Err(fail(
                    Status::Timeout,
                    "Sandbox.InitTimeout",
                    Some(message),
                )));
            }
            Ok(Err(((st, t), m))) => return Ok(Err(fail(st, &t, m))),
            Ok(Ok(end)) => end,
        };
        let cpu_ns = cpu_since(&sb, cpu0);
        shared.update(|s| s.core.phase = Phase::Idle);
        shared.telemetry.emit(
            "platform.initRuntimeDone",
            json!({"initializationType": "on-demand", "phase": "init", "status": "success"}),
        );
        shared.telemetry.emit(
            "platform.initReport",
            json!({"initializationType": "on-demand", "phase": "init", "status": "success",
                   "metrics": {"durationMs": ms(end - start)}}),
        );
        Ok(Ok(InitDone {
            start_ns: start,
            end_ns: end,
            cpu_ns,
        }))
    }

    /// Runs one invocation (initialising first when cold) and returns its metrics. A crash,
    /// timeout, OOM or init failure resets the environment: the next invoke is cold again.
    pub async fn invoke(
        &mut self,
        event: &[u8],
        obs: &dyn RunObserver,
    ) -> Result<InvocationMetrics, EmulatorError> {
        self.invoke_notifying(event, obs, &|| {}).await
    }

    /// [`Self::invoke`] that calls `responded` as soon as the runtime has posted its response
    /// (when the client gets it, while extensions may still be working); not called when the
    /// invocation ends without a response.
    pub async fn invoke_notifying(
        &mut self,
        event: &[u8],
        obs: &dyn RunObserver,
        responded: &(dyn Fn() + Send + Sync),
    ) -> Result<InvocationMetrics, EmulatorError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (index, print_logs) = (self.index, self.cfg.print_logs);
        let mut cold = None;
        if self.live.is_none() {
            let mut rx = std::mem::replace(&mut self.notes_rx, mpsc::unbounded_channel().1);
            let memory = Arc::clone(&self.memory);
            let r = pump(&mut rx, index, obs, print_logs, &memory, self.init(obs)).await;
            self.notes_rx = rx;
            match r? {
                Ok(t) => {
                    obs.phase(index, PhaseEvent::InitEnd, t.end_ns);
                    cold = Some(t);
                }
                Err(mut f) => {
                    let oom = self
                        .live
                        .as_ref()
                        .and_then(|l| l.sandbox.oom_kills().ok())
                        .unwrap_or(0);
                    if oom > 0 && f.error_type.ends_with("ExitError") {
                        f.error_type = "Runtime.OutOfMemory".into();
                    }
                    let message = f.message.clone();
                    obs.phase(index, PhaseEvent::InitEnd, f.end_ns);
                    let mem = self
                        .live
                        .as_ref()
                        .and_then(|l| l.sandbox.memory_peak_bytes().ok())
                        .unwrap_or(0);
                    if let Some(l) = &self.live {
                        l.shared.telemetry.emit(
                            "platform.initRuntimeDone",
                            json!({"initializationType": "on-demand", "phase": "init",
                                   "status": f.status.as_str(), "errorType": f.error_type}),
                        );
                    }
                    self.shutdown_inner("failure", obs).await;
                    let init_ms = ms(f.end_ns - f.start_ns);
                    return Ok(InvocationMetrics {
                        request_id,
                        environment: index,
                        cold: true,
                        init_duration_ms: Some(init_ms),
                        duration_ms: 0.0,
                        billed_duration_ms: 0,
                        post_runtime_extensions_duration_ms: 0.0,
                        max_memory_used_mb: mem.div_ceil(1 << 20),
                        status: f.status,
                        error_type: Some(f.error_type),
                        error_message: message,
                        warnings: Vec::new(),
                        phases: PhaseTimes {
                            init_start_ns: f.start_ns,
                            init_end_ns: f.end_ns,
                            ..PhaseTimes::default()
                        },
                        cgroup_cpu_ns: None,
                        init_cgroup_cpu_ns: f.cpu_ns,
                    });
                }
            }
        }
        let timeout = self.cfg.timeout;
        let memory_mb = self.cfg.memory_mb;
        let Some(live) = self.live.as_mut() else {
            return Err(EmulatorError::Internal(
                "environment not live after init".into(),
            ));
        };
        if live.frozen {
            let sb = Arc::clone(&live.sandbox);
            tokio::task::spawn_blocking(move || sb.thaw())
                .await
                .map_err(|e| EmulatorError::Internal(e.to_string()))??;
            live.frozen = false;
            obs.phase(index, PhaseEvent::Thawed, monotonic_ns());
        }
        let _ = live.sandbox.reset_memory_peak();
        let oom0 = live.sandbox.oom_kills().unwrap_or(0);
        let shared = Arc::clone(&live.shared);
        let trace = format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            epoch_ms() / 1000,
            &uuid::Uuid::new_v4().simple().to_string()[..24],
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let deadline_ms = epoch_ms() + timeout.as_millis() as u64;
        let sandbox = Arc::clone(&live.sandbox);
        let cpu0 = sandbox.cpu_usage_ns().ok();
        let start = monotonic_ns();
        shared.update(|s| {
            let ids = s.core.begin_invoke(&request_id);
            s.all_waiting_ns = 0;
            s.answer_ns = 0;
            s.answer_message = None;
            s.runtime_next_ns = 0;
            s.phase_start_ns = start;
            let ev = json!({"eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": request_id,
                "invokedFunctionArn": shared.info.arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": trace}});
            for id in ids {
                s.ext_events.entry(id).or_default().push_back(ev.clone());
            }
            s.runtime_event = Some(PendingEvent {
                request_id: request_id.clone(),
                deadline_ms,
                trace_id: trace.clone(),
                body: event.to_vec(),
            });
        });
        obs.phase(index, PhaseEvent::InvokeStart, start);
        shared.telemetry.emit(
            "platform.start",
            json!({"requestId": request_id, "version": "$LATEST",
                   "tracing": {"type": "X-Amzn-Trace-Id", "value": trace}}),
        );
        let wait = shared.wait_for(|s| invoke_progress(&s.core, &s.exited, s.all_waiting_ns));
        let mut rx = std::mem::replace(&mut self.notes_rx, mpsc::unbounded_channel().1);
        let answered = async {
            shared.wait_for(|s| (s.answer_ns != 0).then_some(())).await;
            responded();
            std::future::pending::<InvokeEnd>().await
        };
        let end = pump(&mut rx, index, obs, print_logs, &self.memory, async {
            tokio::select! {
                biased;
                r = tokio::time::timeout(timeout, wait) => r.unwrap_or(InvokeEnd::Timeout),
                r = answered => r,
            }
        })
        .await;
        let cgroup_cpu_ns = cpu_since(&sandbox, cpu0);
        self.notes_rx = rx;
        let Some(live) = self.live.as_mut() else {
            return Err(EmulatorError::Internal("environment vanished".into()));
        };
        let (all_ns, answer_ns, next_ns) = {
            let s = shared.lock();
            (s.all_waiting_ns, s.answer_ns, s.runtime_next_ns)
        };
        let oom_kills = live.sandbox.oom_kills().unwrap_or(0).saturating_sub(oom0);
        let oom = oom_kills > 0;
        let error_message = {
            let s = shared.lock();
            match &end {
                InvokeEnd::Crash(_) => s.exited.first().map(|(_, w)| w.clone()),
                InvokeEnd::ExitError(t) => {
                    Some(format!("an extension posted /extension/exit/error ({t})"))
                }
                InvokeEnd::Timeout => {
                    let late = s.core.not_waiting().join(", ");
                    Some(format!(
                        "Task timed out after {:.2} seconds ({late} had not called next)",
                        timeout.as_secs_f64()
                    ))
                }
                InvokeEnd::Done(_) => s.answer_message.clone().filter(|m| !m.is_empty()),
            }
        };
        let Verdict {
            status,
            error_type,
            reset,
        } = verdict(&end, oom);
        let done = matches!(end, InvokeEnd::Done(_));
        let end_ns = if done { all_ns } else { monotonic_ns() };
        let (runtime_next_ns, post_ns) = post_runtime_ns(answer_ns, next_ns, end_ns);
        let mut warnings = Vec::new();
        if oom && status == Status::Success {
            warnings.push(format!(
                "the OOM killer killed {oom_kills} process(es) of the environment at its {memory_mb} MB limit; the runtime survived"
            ));
        }
        let duration_ms = ms(end_ns - start);
        let peak = live.sandbox.memory_peak_bytes().unwrap_or(0);
        let init_duration_ms = cold.as_ref().map(|c| ms(c.end_ns - c.start_ns));
        let m = InvocationMetrics {
            request_id: request_id.clone(),
            environment: index,
            cold: cold.is_some(),
            init_duration_ms,
            duration_ms,
            billed_duration_ms: duration_ms.ceil() as u64,
            post_runtime_extensions_duration_ms: ms(post_ns),
            max_memory_used_mb: peak.div_ceil(1 << 20),
            status,
            error_type: error_type.clone(),
            error_message: error_message.filter(|_| status != Status::Success),
            warnings,
            phases: PhaseTimes {
                init_start_ns: cold.as_ref().map_or(0, |c| c.start_ns),
                init_end_ns: cold.as_ref().map_or(0, |c| c.end_ns),
                invoke_start_ns: start,
                runtime_done_ns: answer_ns,
                runtime_next_ns,
                invoke_end_ns: end_ns,
            },
            cgroup_cpu_ns,
            init_cgroup_cpu_ns: cold.as_ref().and_then(|c| c.cpu_ns),
        };
        if answer_ns == 0 {
            let mut rec = json!({"requestId": request_id, "status": status.as_str(),
                "metrics": {"durationMs": duration_ms, "producedBytes": 0}});
            if let Some(t) = &error_type {
                rec["errorType"] = json!(t);
            }
            shared.telemetry.emit("platform.runtimeDone", rec);
        }
        let mut metrics = json!({"durationMs": duration_ms, "billedDurationMs": m.billed_duration_ms,
            "memorySizeMB": memory_mb, "maxMemoryUsedMB": m.max_memory_used_mb});
        if let Some(i) = init_duration_ms {
            metrics["initDurationMs"] = json!(i);
        }
        let mut rec =
            json!({"requestId": request_id, "status": status.as_str(), "metrics": metrics});
        if let Some(t) = &error_type {
            rec["errorType"] = json!(t);
        }
        shared.telemetry.emit("platform.report", rec);
        if answer_ns != 0 {
            obs.phase(index, PhaseEvent::RuntimeDone, answer_ns);
        }
        if runtime_next_ns != 0 {
            obs.phase(index, PhaseEvent::RuntimeNext, runtime_next_ns);
        }
        obs.phase(index, PhaseEvent::InvokeEnd, end_ns);
        match reset {
            Some(reason) => self.shutdown_inner(reason, obs).await,
            None => {
                shared.update(|s| s.core.phase = Phase::Idle);
                let sb = Arc::clone(&live.sandbox);
                tokio::task::spawn_blocking(move || sb.freeze())
                    .await
                    .map_err(|e| EmulatorError::Internal(e.to_string()))??;
                live.frozen = true;
                obs.phase(index, PhaseEvent::Frozen, monotonic_ns());
            }
        }
        Ok(m)
    }

    /// Kills the environment at once (cancellation): every process, its cgroups and mounts.
    /// Reports `ShutdownStart` and `ShutdownEnd` when it was live.
    pub fn kill(&mut self, obs: &dyn RunObserver) {
        *self.memory.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(live) = self.live.take() {
            obs.phase(self.index, PhaseEvent::ShutdownStart, monotonic_ns());
            drop(live);
            obs.phase(self.index, PhaseEvent::ShutdownEnd, monotonic_ns());
        }
    }

    /// Shuts the environment down (SHUTDOWN to extensions, SIGTERM to the runtime, 2 s cap with
    /// external extensions, then SIGKILL) and removes its sandbox. The observer gets the last
    /// log lines.
    pub async fn shutdown(&mut self, reason: &str, obs: &dyn RunObserver) {
        self.shutdown_inner(reason, obs).await;
    }

    async fn shutdown_inner(&mut self, reason: &str, obs: &dyn RunObserver) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        let (index, print_logs) = (self.index, self.cfg.print_logs);
        let mut rx = std::mem::replace(&mut self.notes_rx, mpsc::unbounded_channel().1);
        let memory = Arc::clone(&self.memory);
        pump(&mut rx, index, obs, print_logs, &memory, async {
            let sb = Arc::clone(&live.sandbox);
            let _ = tokio::task::spawn_blocking(move || sb.thaw()).await;
            if std::mem::replace(&mut live.frozen, false) {
                obs.phase(index, PhaseEvent::Thawed, monotonic_ns());
            }
            obs.phase(index, PhaseEvent::ShutdownStart, monotonic_ns());
            let cap = shutdown_cap(live.extensions);
            let deadline_ms = epoch_ms() + cap.as_millis() as u64;
            let shared = Arc::clone(&live.shared);
            // Telemetry buffered while frozen (the last invocation's platform.report)
            // reaches the subscribers before SHUTDOWN: an extension that exits on
            // SHUTDOWN would otherwise race its own last records.
            if !cap.is_zero() {
                shared.telemetry.flush(cap / 2).await;
            }
            shared.update(|s| {
                let ids = s.core.begin_shutdown();
                let ev = json!({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms});
                for id in ids {
                    s.ext_events.entry(id).or_default().push_back(ev.clone());
                }
            });
            if let Some(pid) = live.runtime_pid {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    Signal::SIGTERM,
                );
            }
            if !cap.is_zero() {
                let exts = live.extensions;
                let _ = tokio::time::timeout(cap, async {
                    shared.telemetry.flush(cap).await;
                    shared
                        .wait_for(|s| {
                            let quiet = s
                                .core
                                .extensions
                                .iter()
                                .filter(|x| x.shutdown)
                                .all(|x| x.waiting);
                            let gone = s.exited.iter().filter(|(f, _)| !f).count() >= exts;
                            (quiet || gone).then_some(())
                        })
                        .await
                })
                .await;
            }
            let sb = Arc::clone(&live.sandbox);
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || sb.kill_all()).await {
                eprintln!("lxprof: environment {index}: {e}");
            }
            obs.phase(index, PhaseEvent::ShutdownEnd, monotonic_ns());
            for r in std::mem::take(&mut live.readers) {
                let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
            }
        })
        .await;
        self.notes_rx = rx;
        *self.memory.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let sandbox = Arc::clone(&live.sandbox);
        drop(live);
        let _ = tokio::task::spawn_blocking(move || drop(sandbox)).await;
    }
}
