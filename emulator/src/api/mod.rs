//! One environment's HTTP APIs on its own loopback port: the shared state the handlers and the
//! environment driver both see, change notification, and the axum router.
pub mod extensions;
pub mod runtime;
pub mod telemetry;

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::sync::watch;

use crate::lifecycle::{ApiError, Core};
use crate::metrics::monotonic_ns;

/// What the runtime gets from its next `GET /next`.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms` (epoch ms).
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// The event.
    pub body: Vec<u8>,
}

/// Static facts about the function the APIs hand out.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub version: String,
    /// `_HANDLER`.
    pub handler: String,
    /// The function ARN.
    pub arn: String,
    /// Configured memory.
    pub memory_mb: u32,
}

/// Mutable state of one environment (behind [`Shared::lock`]).
#[derive(Debug, Default)]
pub struct State {
    /// The lifecycle rules.
    pub core: Core,
    /// The event waiting for the runtime's next.
    pub runtime_event: Option<PendingEvent>,
    /// Events waiting for each extension's next, by identifier.
    pub ext_events: HashMap<String, VecDeque<serde_json::Value>>,
    /// When the phase started (init or invoke).
    pub phase_start_ns: u64,
    /// When the runtime last called next.
    pub runtime_next_ns: u64,
    /// When the runtime posted its response or error.
    pub answer_ns: u64,
    /// When the runtime and every extension were last all waiting in next (0 = not yet).
    pub all_waiting_ns: u64,
    /// Processes that exited: (is the function, "role: status").
    pub exited: Vec<(bool, String)>,
}

/// State shared by the HTTP handlers and the environment.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    /// The Telemetry/Logs API hub.
    pub telemetry: telemetry::Hub,
    /// The function.
    pub info: FunctionInfo,
}

impl Shared {
    /// Fresh state in Init.
    pub fn new(info: FunctionInfo) -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
            telemetry: telemetry::Hub::new(),
            info,
        }
    }

    /// Locks the state (a poisoned lock is taken over: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes `State` and wakes every waiter.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let t = {
            let mut s = self.lock();
            let t = f(&mut s);
            if s.all_waiting_ns == 0 && s.core.all_waiting() {
                s.all_waiting_ns = monotonic_ns();
            }
            t
        };
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        t
    }

    /// Waits until `f` returns `Some` (checked now and after every change).
    pub async fn wait_for<T>(&self, mut f: impl FnMut(&mut State) -> Option<T>) -> T {
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(t) = f(&mut self.lock()) {
                return t;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(self)).into_response()
    }
}

/// 202 `{"status":"OK"}`, Lambda's acknowledgement.
pub(crate) fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "OK"})),
    )
        .into_response()
}

/// The router of every API.
pub fn router(shared: std::sync::Arc<Shared>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(runtime::next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(runtime::response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(runtime::error),
        )
        .route("/2018-06-01/runtime/init/error", post(runtime::init_error))
        .route("/2020-01-01/extension/register", post(extensions::register))
        .route("/2020-01-01/extension/event/next", get(extensions::next))
        .route(
            "/2020-01-01/extension/init/error",
            post(extensions::init_error),
        )
        .route(
            "/2020-01-01/extension/exit/error",
            post(extensions::exit_error),
        )
        .route("/2022-07-01/telemetry", put(telemetry::subscribe))
        .route("/2020-08-15/logs", put(telemetry::subscribe_logs))
        .fallback(|| async {
            ApiError::new(404, "InvalidRequestFormat", "unknown API path").into_response()
        })
        .with_state(shared)
}
