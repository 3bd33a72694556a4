//! The per-environment state machine without I/O: who registered, who waits in `next`,
//! which phase runs, and the Runtime/Extensions API rules with Lambda's error answers.
use serde::Serialize;

use crate::metrics::Status;

/// Lambda-shaped API error: status code and `{errorMessage, errorType}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    /// HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// `errorMessage`.
    #[serde(rename = "errorMessage")]
    pub message: String,
    /// `errorType`.
    #[serde(rename = "errorType")]
    pub error_type: String,
}

impl ApiError {
    /// Builds one.
    pub fn new(status: u16, error_type: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            error_type: error_type.to_string(),
        }
    }
}

/// The environment's phase.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Extensions register, runtime and function initialise.
    Init,
    /// Between invokes (frozen).
    Idle,
    /// An event is being handled.
    Invoke {
        /// Its request id.
        request_id: String,
    },
    /// SHUTDOWN sent.
    Shutdown,
}

/// How the runtime finished an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `/response`.
    Response,
    /// `/error` with the error type.
    Error(String),
}

/// A registered extension.
#[derive(Debug, Clone)]
pub struct Registered {
    /// `Lambda-Extension-Identifier`.
    pub id: String,
    /// `Lambda-Extension-Name`.
    pub name: String,
    /// Subscribed to INVOKE.
    pub invoke: bool,
    /// Subscribed to SHUTDOWN.
    pub shutdown: bool,
    /// Waiting in `next`.
    pub waiting: bool,
    /// CLOCK_MONOTONIC ns of its last `next` call.
    pub last_next_ns: u64,
}

/// The state.
#[derive(Debug)]
pub struct Core {
    /// Current phase.
    pub phase: Phase,
    /// Registered extensions.
    pub extensions: Vec<Registered>,
    /// The runtime waits in `next`.
    pub runtime_waiting: bool,
    /// The runtime's answer to the current invoke.
    pub outcome: Option<Outcome>,
    /// `POST /runtime/init/error` or `/extension/init/error` type.
    pub init_error: Option<String>,
    /// `/extension/exit/error` type.
    pub exit_error: Option<String>,
    /// File names in `/opt/extensions` (external extensions register under them; empty = not
    /// known, every name accepted).
    pub external: Vec<String>,
}

impl Default for Core {
    fn default() -> Self {
        Core::new()
    }
}

impl Core {
    /// A fresh environment in Init.
    pub fn new() -> Core {
        Core {
            phase: Phase::Init,
            extensions: Vec::new(),
            runtime_waiting: false,
            outcome: None,
            init_error: None,
            exit_error: None,
            external: Vec::new(),
        }
    }

    /// External extensions (files in `/opt/extensions`) that have not registered yet.
    pub fn unregistered(&self) -> Vec<String> {
        self.external
            .iter()
            .filter(|f| !self.extensions.iter().any(|x| &x.name == *f))
            .cloned()
            .collect()
    }

    /// Who has not called next yet: `runtime` and/or the extensions by name.
    pub fn not_waiting(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        if !self.runtime_waiting {
            v.push("the runtime".into());
        }
        v.extend(
            self.extensions
                .iter()
                .filter(|x| !x.waiting)
                .map(|x| format!("extension {}", x.name)),
        );
        v
    }

    /// `POST /extension/register`.
    pub fn register(&mut self, name: Option<&str>, body: &[u8]) -> Result<Registered, ApiError> {
        let name = name.filter(|n| !n.is_empty()).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidRequestFormat",
                "missing Lambda-Extension-Name header",
            )
        })?;
        if self.phase != Phase::Init {
            return Err(ApiError::new(
                403,
                "Extension.RegistrationError",
                "extensions can only register during the init phase",
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                400,
                "InvalidRequestFormat",
                format!("invalid register body: {e}"),
            )
        })?;
        let events = v.get("events").and_then(|e| e.as_array()).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidRequestFormat",
                "register body needs an `events` array",
            )
        })?;
        let (mut invoke, mut shutdown) = (false, false);
        for e in events {
            match e.as_str() {
                Some("INVOKE") => invoke = true,
                Some("SHUTDOWN") => shutdown = true,
                other => {
                    return Err(ApiError::new(
                        400,
                        "InvalidRequestFormat",
                        format!("unknown event type {other:?}"),
                    ));
                }
            }
        }
        if self.extensions.len() >= 10 {
            return Err(ApiError::new(
                403,
                "Extension.TooManyExtensions",
                "at most 10 extensions may register",
            ));
        }
        // Lambda starts each file in /opt/extensions and expects it to register under its file
        // name; any other name is an internal extension, which cannot subscribe to SHUTDOWN.
        if shutdown && !self.external.is_empty() && !self.external.iter().any(|f| f == name) {
            return Err(ApiError::new(
                403,
                "Extension.RegistrationError",
                format!(
                    "Lambda-Extension-Name {name:?} is not the file name of an extension in /opt/extensions ({}): an external extension registers under its file name, and an internal one cannot register for SHUTDOWN",
                    self.external.join(", ")
                ),
            ));
        }
        if self.extensions.iter().any(|x| x.name == name) {
            return Err(ApiError::new(
                409,
                "Extension.AlreadyRegistered",
                format!("extension {name} is already registered"),
            ));
        }
        let r = Registered {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            invoke,
            shutdown,
            waiting: false,
            last_next_ns: 0,
        };
        self.extensions.push(r.clone());
        Ok(r)
    }

    /// Finds a registered extension by identifier (403 otherwise).
    pub fn extension(&self, id: Option<&str>) -> Result<&Registered, ApiError> {
        let id = id.ok_or_else(|| {
            ApiError::new(
                403,
                "Extension.MissingExtensionIdentifier",
                "missing Lambda-Extension-Identifier header",
            )
        })?;
        self.extensions.iter().find(|x| x.id == id).ok_or_else(|| {
            ApiError::new(
                403,
                "Extension.InvalidExtensionIdentifier",
                format!("unknown extension identifier {id}: register first"),
            )
        })
    }

    /// `GET /extension/event/next`.
    pub fn extension_next(&mut self, id: Option<&str>) -> Result<(), ApiError> {
        let id = self.extension(id)?.id.clone();
        if let Some(x) = self.extensions.iter_mut().find(|x| x.id == id) {
            x.waiting = true;
        }
        Ok(())
    }

    /// `GET /runtime/invocation/next`.
    pub fn runtime_next(&mut self) {
        self.runtime_waiting = true;
    }

    /// `POST /runtime/invocation/{id}/response|error`.
    pub fn runtime_answer(&mut self, request_id: &str, outcome: Outcome) -> Result<(), ApiError> {
        match &self.phase {
            Phase::Invoke { request_id: cur } if cur == request_id => {
                if self.outcome.is_some() {
                    return Err(ApiError::new(
                        400,
                        "InvalidStateTransition",
                        "a response was already posted for this request",
                    ));
                }
                self.outcome = Some(outcome);
                Ok(())
            }
            _ => Err(ApiError::new(
                400,
                "InvalidRequestID",
                format!("request {request_id} is not being invoked"),
            )),
        }
    }

    /// Everyone (runtime and all extensions) waits in next: a phase may end.
    pub fn all_waiting(&self) -> bool {
        self.runtime_waiting && self.extensions.iter().all(|x| x.waiting)
    }

    /// Every registered extension waits in next.
    pub fn extensions_waiting(&self) -> bool {
        self.extensions.iter().all(|x| x.waiting)
    }

    /// Starts an invoke: returns the ids of the extensions to send INVOKE.
    pub fn begin_invoke(&mut self, request_id: &str) -> Vec<String> {
        self.phase = Phase::Invoke {
            request_id: request_id.to_string(),
        };
        self.outcome = None;
        self.runtime_waiting = false;
        let mut ids = Vec::new();
        for x in self.extensions.iter_mut().filter(|x| x.invoke) {
            x.waiting = false;
            ids.push(x.id.clone());
        }
        ids
    }

    /// Starts shutdown: returns the ids of the extensions to send SHUTDOWN.
    pub fn begin_shutdown(&mut self) -> Vec<String> {
        self.phase = Phase::Shutdown;
        let mut ids = Vec::new();
        for x in self.extensions.iter_mut().filter(|x| x.shutdown) {
            x.waiting = false;
            ids.push(x.id.clone());
        }
        ids
    }
}

/// How an invoke phase ended (what the environment observed).
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeEnd {
    /// The runtime answered and everyone called next again.
    Done(Outcome),
    /// A process exited: the function (`true`) or an extension.
    Crash(bool),
    /// An extension posted `/extension/exit/error`.
    ExitError(String),
    /// The timeout passed first.
    Timeout,
}

/// What an invoke phase's end means: `platform.report` status, error type, and whether (and
/// with which SHUTDOWN reason) the environment resets.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Report status.
    pub status: Status,
    /// Lambda's error type.
    pub error_type: Option<String>,
    /// `Some(shutdownReason)` when the environment must be reset.
    pub reset: Option<&'static str>,
}

/// Checks whether the invoke phase has ended, given the state and the processes that exited
/// (`(is_function, description)`) and the time everyone was waiting (0 = not yet).
pub fn invoke_progress(
    core: &Core,
    exited: &[(bool, String)],
    all_waiting_ns: u64,
) -> Option<InvokeEnd> {
    if let Some((is_fn, _)) = exited.first() {
        return Some(InvokeEnd::Crash(*is_fn));
    }
    if let Some(e) = &core.exit_error {
        return Some(InvokeEnd::ExitError(e.clone()));
    }
    match &core.outcome {
        Some(o) if all_waiting_ns != 0 => Some(InvokeEnd::Done(o.clone())),
        _ => None,
    }
}

/// Why init failed, if it did: an init/error post, or a process that exited.
/// Statuses as in invoke: the runtime's exit is `error` (`Runtime.ExitError`, as Lambda's
/// `INIT_REPORT … Status: error` says), an extension's crash or a posted init error `failure`.
pub fn init_failure(core: &Core, exited: &[(bool, String)]) -> Option<(Status, String)> {
    if let Some(t) = &core.init_error {
        return Some((Status::Failure, t.clone()));
    }
    exited.first().map(|(is_fn, _)| {
        if *is_fn {
            (Status::Error, "Runtime.ExitError".to_string())
        } else {
            (Status::Failure, "Extension.Crash".to_string())
        }
    })
}

/// The verdict of an ended invoke phase; `oom` = the cgroup counted an OOM kill meanwhile.
pub fn verdict(end: &InvokeEnd, oom: bool) -> Verdict {
    let v = |status, t: Option<&str>, reset| Verdict {
        status,
        error_type: t.map(str::to_string),
        reset,
    };
    match end {
        InvokeEnd::Done(Outcome::Response) => v(Status::Success, None, None),
        InvokeEnd::Done(Outcome::Error(t)) => v(Status::Error, Some(t), None),
        InvokeEnd::Crash(_) if oom => v(
            Status::Failure,
            Some("Runtime.OutOfMemory"),
            Some("failure"),
        ),
        InvokeEnd::Crash(true) => v(Status::Error, Some("Runtime.ExitError"), Some("failure")),
        InvokeEnd::Crash(false) => v(Status::Failure, Some("Extension.Crash"), Some("failure")),
        InvokeEnd::ExitError(t) => v(Status::Failure, Some(t), Some("failure")),
        InvokeEnd::Timeout => v(Status::Timeout, Some("Sandbox.Timedout"), Some("timeout")),
    }
}

/// (runtime's next after its answer, PostRuntimeExtensionsDuration) in ns: from the runtime's
/// `next` to the end of the phase (its normal end, or the timeout or crash that cut it short
/// while an extension still held it); 0 when the runtime never answered and called next.
pub fn post_runtime_ns(answer_ns: u64, runtime_next_ns: u64, end_ns: u64) -> (u64, u64) {
    let next = if answer_ns != 0 && runtime_next_ns >= answer_ns {
        runtime_next_ns
    } else {
        0
    };
    let post = if next != 0 {
        end_ns.saturating_sub(next)
    } else {
        0
    };
    (next, post)
}

/// The shutdown cap: 2,000 ms with external extensions, 0 without.
pub fn shutdown_cap(external_extensions: usize) -> std::time::Duration {
    if external_extensions > 0 {
        std::time::Duration::from_millis(2000)
    } else {
        std::time::Duration::ZERO
    }
}

/// Init's limit.
pub const INIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_next_invoke_rules() {
        let mut c = Core::new();
        assert_eq!(c.register(Some("a"), b"{bad").expect_err("400").status, 400);
        assert_eq!(c.register(None, b"{}").expect_err("400").status, 400);
        assert_eq!(c.extension_next(Some("nope")).expect_err("403").status, 403);
        let r = c
            .register(Some("a"), br#"{"events":["INVOKE","SHUTDOWN"]}"#)
            .expect("register");
        assert!(!c.all_waiting());
        c.extension_next(Some(&r.id)).expect("next");
        c.runtime_next();
        assert!(c.all_waiting());
        c.phase = Phase::Idle;
        assert_eq!(
            c.register(Some("b"), br#"{"events":[]}"#)
                .expect_err("late")
                .status,
            403
        );
        assert_eq!(c.begin_invoke("r1"), vec![r.id.clone()]);
        assert!(!c.all_waiting());
        assert!(c.runtime_answer("r2", Outcome::Response).is_err());
        c.runtime_answer("r1", Outcome::Response).expect("answer");
        assert!(c.runtime_answer("r1", Outcome::Response).is_err());
        c.runtime_next();
        assert!(!c.all_waiting());
        c.extension_next(Some(&r.id)).expect("next");
        assert!(c.all_waiting());
        assert_eq!(c.begin_shutdown(), vec![r.id]);
    }

    #[test]
    fn external_extensions_register_under_their_file_names() {
        let mut c = Core::new();
        c.external = vec!["ext-a".into(), "ext-b".into()];
        let body = br#"{"events":["INVOKE","SHUTDOWN"]}"#;
        let e = c.register(Some("other"), body).expect_err("misnamed");
        assert_eq!(
            (e.status, e.error_type.as_str()),
            (403, "Extension.RegistrationError")
        );
        assert!(e.message.contains("ext-a, ext-b"), "{}", e.message);
        // An internal extension (INVOKE only) may take any name.
        c.register(Some("internal"), br#"{"events":["INVOKE"]}"#)
            .expect("internal");
        c.register(Some("ext-a"), body).expect("file name");
        assert_eq!(c.unregistered(), vec!["ext-b".to_string()]);
        assert_eq!(
            c.not_waiting(),
            vec!["the runtime", "extension internal", "extension ext-a"]
        );
    }

    #[test]
    fn verdicts_and_resets() {
        let v = verdict(&InvokeEnd::Done(Outcome::Response), false);
        assert_eq!((v.status, v.reset), (Status::Success, None));
        let v = verdict(&InvokeEnd::Done(Outcome::Error("E".into())), false);
        assert_eq!(
            (v.status, v.error_type.as_deref(), v.reset),
            (Status::Error, Some("E"), None)
        );
        let v = verdict(&InvokeEnd::Crash(true), true);
        assert_eq!(
            (v.status, v.error_type.as_deref()),
            (Status::Failure, Some("Runtime.OutOfMemory"))
        );
        assert_eq!(
            verdict(&InvokeEnd::Crash(true), false).reset,
            Some("failure")
        );
        let v = verdict(&InvokeEnd::Timeout, false);
        assert_eq!((v.status, v.reset), (Status::Timeout, Some("timeout")));
        assert_eq!(shutdown_cap(0).as_millis(), 0);
        assert_eq!(shutdown_cap(1).as_millis(), 2000);
    }

    #[test]
    fn phase_end_and_post_runtime() {
        let mut c = Core::new();
        let r = c
            .register(Some("a"), br#"{"events":["INVOKE"]}"#)
            .expect("register");
        assert_eq!(init_failure(&c, &[]), None);
        assert_eq!(
            init_failure(&c, &[(false, "x".into())]),
            Some((Status::Failure, "Extension.Crash".into()))
        );
        c.begin_invoke("r");
        assert_eq!(invoke_progress(&c, &[], 0), None);
        c.runtime_answer("r", Outcome::Response).expect("answer");
        assert_eq!(invoke_progress(&c, &[], 0), None, "extension still busy");
        c.extension_next(Some(&r.id)).expect("next");
        assert_eq!(
            invoke_progress(&c, &[], 5),
            Some(InvokeEnd::Done(Outcome::Response))
        );
        assert_eq!(
            invoke_progress(&c, &[(true, "f".into())], 5),
            Some(InvokeEnd::Crash(true))
        );
        // answer at 10, runtime next at 12, last extension next at 112: post-runtime 100.
        assert_eq!(post_runtime_ns(10, 12, 112), (12, 100));
        assert_eq!(post_runtime_ns(0, 12, 112), (0, 0));
        assert_eq!(
            post_runtime_ns(10, 5, 112),
            (0, 0),
            "next before the answer"
        );
        // An extension held the phase after the runtime's next until the timeout at 1612.
        assert_eq!(post_runtime_ns(10, 12, 1612), (12, 1600));
    }
}
