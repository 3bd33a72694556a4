//! Runtime API (`/2018-06-01`): next, response, error, init/error.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, accepted};
use crate::lifecycle::{Outcome, Phase};
use crate::metrics::monotonic_ns;

/// `GET /runtime/invocation/next`: blocks until an event is handed out.
pub async fn next(State(sh): State<Arc<Shared>>) -> Response {
    sh.update(|s| {
        s.core.runtime_next();
        s.runtime_next_ns = monotonic_ns();
    });
    let ev = sh
        .wait_for(|s| {
            if s.core.phase == Phase::Shutdown {
                return None;
            }
            s.runtime_event.take()
        })
        .await;
    let mut h = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", ev.request_id.clone());
    put("lambda-runtime-deadline-ms", ev.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", sh.info.arn.clone());
    put("lambda-runtime-trace-id", ev.trace_id.clone());
    put("content-type", "application/json".into());
    (StatusCode::OK, h, ev.body).into_response()
}

fn answer(sh: &Shared, id: &str, outcome: Outcome) -> Response {
    let r = sh.update(|s| {
        let r = s.core.runtime_answer(id, outcome.clone());
        if r.is_ok() {
            s.answer_ns = monotonic_ns();
        }
        r.map(|()| s.answer_ns.saturating_sub(s.phase_start_ns))
    });
    match r {
        Ok(ns) => {
            let (status, error_type) = match &outcome {
                Outcome::Response => ("success", None),
                Outcome::Error(t) => ("error", Some(t.clone())),
            };
            let mut rec = json!({
                "requestId": id,
                "status": status,
                "metrics": {"durationMs": ns as f64 / 1e6, "producedBytes": 0},
            });
            if let Some(t) = error_type {
                rec["errorType"] = json!(t);
            }
            sh.telemetry.emit("platform.runtimeDone", rec);
            accepted()
        }
        Err(e) => e.into_response(),
    }
}

/// The largest response Lambda accepts from a runtime for a synchronous invocation (6 MB, as
/// its error message counts it).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// `POST /runtime/invocation/{id}/response`. A body over [`MAX_RESPONSE_BYTES`] is refused as
/// Lambda does (413 to the runtime; the invocation fails with `Function.ResponseSizeTooLarge`).
pub async fn response(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Response {
    match axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await {
        Ok(_) => answer(&sh, &id, Outcome::Response),
        Err(_) => {
            let message = format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            );
            let _ = answer_error(&sh, &id, "Function.ResponseSizeTooLarge", message.clone());
            let body = json!({"errorMessage": message, "errorType": "RequestEntityTooLarge"});
            (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
        }
    }
}

/// The runtime's answer is an error of type `t` with `message`.
fn answer_error(sh: &Shared, id: &str, t: &str, message: String) -> Response {
    let r = answer(sh, id, Outcome::Error(t.to_string()));
    if r.status().is_success() {
        sh.update(|s| s.answer_message = Some(message));
    }
    r
}

/// The error type of an `/error` post: the header, else the body's `errorType`.
pub(crate) fn error_type(headers: &HeaderMap, body: &[u8], default: &str) -> String {
    for name in [
        "lambda-runtime-function-error-type",
        "lambda-extension-function-error-type",
    ] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return v.to_string();
        }
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_string))
        .unwrap_or_else(|| default.to_string())
}

/// `POST /runtime/invocation/{id}/error`.
pub async fn error(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = error_type(&headers, &body, "Runtime.Unknown");
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("errorMessage")?.as_str().map(str::to_string))
        .unwrap_or_default();
    answer_error(&sh, &id, &t, message)
}

/// `POST /runtime/init/error`.
pub async fn init_error(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = error_type(&headers, &body, "Runtime.InitError");
    sh.update(|s| s.core.init_error = Some(t));
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_from_header_or_body() {
        let mut h = HeaderMap::new();
        assert_eq!(error_type(&h, br#"{"errorType":"X"}"#, "D"), "X");
        assert_eq!(error_type(&h, b"junk", "D"), "D");
        h.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("H"),
        );
        assert_eq!(error_type(&h, br#"{"errorType":"X"}"#, "D"), "H");
    }
}
