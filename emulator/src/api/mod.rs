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
    /// Processes that exited: (is the function, what Lambda would say of it).
    pub exited: Vec<(bool, String)>,
    /// The message of the runtime's error answer (its `errorMessage`, or Lambda's own when the
    /// response was refused).
    pub answer_message: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One HTTP/1.1 request over loopback: (status, lower-case headers, body).
    async fn http(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let hs = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        (status, hs, body.to_string())
    }

    fn header(h: &[(String, String)], k: &str) -> Option<String> {
        h.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone())
    }

    async fn serve() -> (Arc<Shared>, std::net::SocketAddr) {
        let sh = Arc::new(Shared::new(FunctionInfo {
            name: "f".into(),
            version: "$LATEST".into(),
            handler: "bootstrap".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            memory_mb: 128,
        }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let app = router(Arc::clone(&sh));
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        (sh, addr)
    }

    #[tokio::test]
    async fn extensions_api_answers_like_lambda() {
        let (_sh, addr) = serve().await;
        let (st, _, body) = http(addr, "GET", "/2020-01-01/extension/event/next", &[], "").await;
        assert_eq!(st, 403, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
        assert!(
            v["errorType"].is_string() && v["errorMessage"].is_string(),
            "{v}"
        );
        let name = [("Lambda-Extension-Name", "x")];
        let reg = "/2020-01-01/extension/register";
        let (st, _, body) = http(addr, "POST", reg, &name, "{bad").await;
        assert_eq!(st, 400, "{body}");
        let (st, h, body) = http(addr, "POST", reg, &name, r#"{"events":["INVOKE"]}"#).await;
        assert_eq!(st, 200, "{body}");
        let id = header(&h, "lambda-extension-identifier").expect("identifier");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["functionName"], "f");
        let tel = "/2022-07-01/telemetry";
        let idh = [("Lambda-Extension-Identifier", id.as_str())];
        let bad = r#"{"types":["platform"],"buffering":{"timeoutMs":1},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:1"}}"#;
        assert_eq!(http(addr, "PUT", tel, &idh, bad).await.0, 400);
        let good = r#"{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:1"}}"#;
        assert_eq!(http(addr, "PUT", tel, &[], good).await.0, 403);
        assert_eq!(http(addr, "PUT", tel, &idh, good).await.0, 200);
    }

    #[tokio::test]
    async fn runtime_api_hands_out_the_event_and_takes_one_answer() {
        let (sh, addr) = serve().await;
        let next = tokio::spawn(http(
            addr,
            "GET",
            "/2018-06-01/runtime/invocation/next",
            &[],
            "",
        ));
        sh.wait_for(|s| s.core.runtime_waiting.then_some(())).await;
        assert_ne!(
            sh.lock().all_waiting_ns,
            0,
            "init ends when the runtime waits"
        );
        sh.update(|s| {
            s.core.begin_invoke("r1");
            s.runtime_event = Some(PendingEvent {
                request_id: "r1".into(),
                deadline_ms: 42,
                trace_id: "Root=1-0-0".into(),
                body: b"{\"k\":1}".to_vec(),
            });
        });
        let (st, h, body) = next.await.expect("join");
        assert_eq!(st, 200);
        assert_eq!(body, "{\"k\":1}");
        assert_eq!(
            header(&h, "lambda-runtime-aws-request-id").as_deref(),
            Some("r1")
        );
        assert_eq!(
            header(&h, "lambda-runtime-deadline-ms").as_deref(),
            Some("42")
        );
        let resp = "/2018-06-01/runtime/invocation/r1/response";
        assert_eq!(http(addr, "POST", resp, &[], "ok").await.0, 202);
        assert_eq!(http(addr, "POST", resp, &[], "again").await.0, 400);
        let other = "/2018-06-01/runtime/invocation/r2/error";
        assert_eq!(http(addr, "POST", other, &[], "{}").await.0, 400);
        assert!(sh.lock().answer_ns != 0);
    }
}
