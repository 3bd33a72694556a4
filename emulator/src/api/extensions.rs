//! Extensions API (`/2020-01-01`): register, event/next, init/error, exit/error.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::runtime::error_type;
use super::{Shared, accepted};
use crate::lifecycle::ApiError;
use crate::metrics::monotonic_ns;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /extension/register`.
pub async fn register(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let name = header(&headers, "lambda-extension-name");
    let r = sh.update(|s| {
        let r = s.core.register(name, &body)?;
        s.ext_events.insert(r.id.clone(), Default::default());
        Ok::<_, ApiError>(r)
    });
    match r {
        Ok(r) => {
            let mut events = Vec::new();
            if r.invoke {
                events.push("INVOKE");
            }
            if r.shutdown {
                events.push("SHUTDOWN");
            }
            sh.telemetry.emit(
                "platform.extension",
                json!({"name": r.name, "state": "Ready", "events": events}),
            );
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&r.id) {
                h.insert("lambda-extension-identifier", v);
            }
            let body = json!({
                "functionName": sh.info.name,
                "functionVersion": sh.info.version,
                "handler": sh.info.handler,
            });
            (StatusCode::OK, h, axum::Json(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /extension/event/next`: blocks until an INVOKE or SHUTDOWN event.
pub async fn next(State(sh): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let id = header(&headers, "lambda-extension-identifier").map(str::to_string);
    if let Err(e) = sh.update(|s| s.core.extension_next(id.as_deref())) {
        return e.into_response();
    }
    let Some(id) = id else {
        return ApiError::new(
            403,
            "Extension.MissingExtensionIdentifier",
            "missing identifier",
        )
        .into_response();
    };
    sh.update(|s| {
        if let Some(x) = s.core.extensions.iter_mut().find(|x| x.id == id) {
            x.last_next_ns = monotonic_ns();
        }
    });
    let ev = sh
        .wait_for(|s| s.ext_events.get_mut(&id).and_then(|q| q.pop_front()))
        .await;
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("lambda-extension-event-identifier", v);
    }
    (StatusCode::OK, h, axum::Json(ev)).into_response()
}

fn record_error(sh: &Shared, headers: &HeaderMap, body: &[u8], exit: bool) -> Response {
    let id = header(headers, "lambda-extension-identifier");
    let t = error_type(headers, body, "Extension.Unknown");
    let r = sh.update(|s| {
        let name = s.core.extension(id)?.name.clone();
        let t = format!("{t} ({name})");
        if exit {
            s.core.exit_error = Some(t);
        } else {
            s.core.init_error = Some(t);
        }
        Ok::<_, ApiError>(())
    });
    match r {
        Ok(()) => accepted(),
        Err(e) => e.into_response(),
    }
}

/// `POST /extension/init/error`.
pub async fn init_error(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record_error(&sh, &headers, &body, false)
}

/// `POST /extension/exit/error`.
pub async fn exit_error(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record_error(&sh, &headers, &body, true)
}
