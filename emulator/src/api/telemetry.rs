//! Telemetry API (`/2022-07-01`) and Logs API (`/2020-08-15`): subscriptions with their
//! buffering limits, and delivery of `{time, type, record}` batches to each subscriber's HTTP
//! endpoint (`sandbox.localdomain` = 127.0.0.1), one batch at a time, retried while refused.
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::Shared;
use crate::lifecycle::ApiError;

/// Events kept for subscribers that subscribe later (init events happen before subscription).
const BACKLOG: usize = 1000;

/// Buffering of one subscription.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buffering {
    /// Flush at this many items.
    pub max_items: usize,
    /// Flush at this many bytes.
    pub max_bytes: usize,
    /// Flush this long after the first buffered item.
    pub timeout_ms: u64,
}

enum Msg {
    Event(Arc<Value>),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Sub {
    types: Vec<String>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// Subscriptions and the event backlog of one environment.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<(Vec<Sub>, Vec<Arc<Value>>)>,
}

fn category(t: &str) -> &str {
    if t.starts_with("platform.") {
        "platform"
    } else {
        t
    }
}

impl Hub {
    /// No subscribers.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// Publishes an event `{time, type, record}` to every subscriber of its category.
    pub fn emit(&self, event_type: &str, record: Value) {
        let ev = Arc::new(json!({"time": now_rfc3339(), "type": event_type, "record": record}));
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for s in &g.0 {
            if s.types.iter().any(|t| t == category(event_type)) {
                let _ = s.tx.send(Msg::Event(Arc::clone(&ev)));
            }
        }
        if g.1.len() < BACKLOG {
            g.1.push(ev);
        }
    }

    fn add(&self, types: Vec<String>, buffering: Buffering, dest: String) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for ev in &g.1 {
            let t = ev["type"].as_str().unwrap_or("");
            if types.iter().any(|x| x == category(t)) {
                let _ = tx.send(Msg::Event(Arc::clone(ev)));
            }
        }
        g.0.push(Sub { types, tx });
        tokio::spawn(deliver(rx, buffering, dest));
    }

    /// Number of subscriptions.
    pub fn subscribers(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }

    /// Flushes every subscriber's buffer and waits (at most `limit`) until delivered.
    pub async fn flush(&self, limit: Duration) {
        let acks: Vec<_> = {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.0.iter()
                .filter_map(|s| {
                    let (tx, rx) = oneshot::channel();
                    s.tx.send(Msg::Flush(tx)).ok().map(|()| rx)
                })
                .collect()
        };
        let _ = tokio::time::timeout(limit, async {
            for a in acks {
                let _ = a.await;
            }
        })
        .await;
    }

    /// Ends every subscription (their delivery tasks stop).
    pub fn close(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0.clear();
    }
}

async fn deliver(mut rx: mpsc::UnboundedReceiver<Msg>, b: Buffering, dest: String) {
    let mut buf: Vec<Arc<Value>> = Vec::new();
    let mut bytes = 0usize;
    let mut first: Option<tokio::time::Instant> = None;
    loop {
        let due = first.map(|f| f + Duration::from_millis(b.timeout_ms));
        let msg = tokio::select! {
            m = rx.recv() => m,
            () = async { match due { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                post_batch(&dest, &mut buf).await;
                bytes = 0;
                first = None;
                continue;
            }
        };
        match msg {
            Some(Msg::Event(ev)) => {
                bytes += ev.to_string().len();
                buf.push(ev);
                first.get_or_insert_with(tokio::time::Instant::now);
                if buf.len() >= b.max_items || bytes >= b.max_bytes {
                    post_batch(&dest, &mut buf).await;
                    bytes = 0;
                    first = None;
                }
            }
            Some(Msg::Flush(ack)) => {
                post_batch(&dest, &mut buf).await;
                bytes = 0;
                first = None;
                let _ = ack.send(());
            }
            None => {
                post_batch(&dest, &mut buf).await;
                return;
            }
        }
    }
}

async fn post_batch(dest: &str, buf: &mut Vec<Arc<Value>>) {
    if buf.is_empty() {
        return;
    }
    let body = Value::Array(buf.drain(..).map(|v| (*v).clone()).collect()).to_string();
    // A subscriber that is not listening yet, resets the connection or
    // answers an error gets the batch again (for up to 2 s), as Lambda retries.
    for _ in 0..40 {
        match post(dest, &body).await {
            Ok(status) if (200..300).contains(&status) => return,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `http://host:port/path` → (`127.0.0.1:port` for sandbox.localdomain, path).
pub fn parse_destination(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = hostport.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host {
        "sandbox.localdomain" | "sandbox" | "localhost" => "127.0.0.1",
        h => h,
    };
    Some((format!("{host}:{port}"), path.to_string()))
}

/// POSTs one JSON body and returns the HTTP status.
async fn post(dest: &str, body: &str) -> std::io::Result<u16> {
    let (addr, path) = parse_destination(dest)
        .ok_or_else(|| std::io::Error::other(format!("bad destination {dest}")))?;
    let mut s = TcpStream::connect(&addr).await?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: sandbox.localdomain\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    let line = String::from_utf8_lossy(&resp);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status in the answer"))
}

/// Parses and validates a subscription body (Lambda's ranges).
pub fn parse_subscription(body: &[u8]) -> Result<(Vec<String>, Buffering, String), ApiError> {
    let bad = |m: String| ApiError::new(400, "ValidationError", m);
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid subscription body: {e}")))?;
    let types: Vec<String> = v["types"]
        .as_array()
        .ok_or_else(|| bad("`types` must be an array".into()))?
        .iter()
        .map(|t| t.as_str().unwrap_or("").to_string())
        .collect();
    if let Some(t) = types
        .iter()
        .find(|t| !["platform", "function", "extension"].contains(&t.as_str()))
    {
        return Err(bad(format!(
            "unknown type {t:?}: use platform, function or extension"
        )));
    }
    let b = &v["buffering"];
    let get = |a: &str, c: &str, d: u64| {
        b.get(a)
            .or_else(|| b.get(c))
            .and_then(Value::as_u64)
            .unwrap_or(d)
    };
    let buffering = Buffering {
        max_items: get("maxItems", "max_items", 10_000) as usize,
        max_bytes: get("maxBytes", "max_bytes", 262_144) as usize,
        timeout_ms: get("timeoutMs", "timeout_ms", 1_000),
    };
    if !(25..=30_000).contains(&buffering.timeout_ms)
        || !(262_144..=1_048_576).contains(&buffering.max_bytes)
        || !(1_000..=10_000).contains(&buffering.max_items)
    {
        return Err(bad(format!(
            "buffering {buffering:?} out of range: timeoutMs 25-30000, maxBytes 262144-1048576, maxItems 1000-10000"
        )));
    }
    let d = &v["destination"];
    let uri = d["URI"].as_str().unwrap_or("").to_string();
    if d["protocol"].as_str() != Some("HTTP") || parse_destination(&uri).is_none() {
        return Err(bad(format!(
            "destination must be {{\"protocol\":\"HTTP\",\"URI\":\"http://sandbox.localdomain:PORT/PATH\"}}, got {d}"
        )));
    }
    Ok((types, buffering, uri))
}

async fn do_subscribe(sh: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let id = headers
        .get("lambda-extension-identifier")
        .and_then(|v| v.to_str().ok());
    let name = match sh.lock().core.extension(id) {
        Ok(x) => x.name.clone(),
        Err(e) => return e.into_response(),
    };
    match parse_subscription(body) {
        Ok((types, b, uri)) => {
            sh.telemetry.emit(
                "platform.telemetrySubscription",
                json!({"name": name, "state": "Subscribed", "types": types}),
            );
            sh.telemetry.add(types, b, uri);
            (StatusCode::OK, "OK").into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `PUT /2022-07-01/telemetry`.
pub async fn subscribe(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    do_subscribe(&sh, &headers, &body).await
}

/// `PUT /2020-08-15/logs` (same delivery as the Telemetry API).
pub async fn subscribe_logs(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    do_subscribe(&sh, &headers, &body).await
}

/// The current UTC time as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_millis() as i64)
}

fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn subscription_validation() {
        let ok = br#"{"schemaVersion":"2022-07-01","types":["platform"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":100},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:9003"}}"#;
        let (t, b, u) = parse_subscription(ok).expect("valid");
        assert_eq!(
            (t, b.timeout_ms, u.as_str()),
            (
                vec!["platform".to_string()],
                100,
                "http://sandbox.localdomain:9003"
            )
        );
        let bad = br#"{"types":["platform"],"buffering":{"timeoutMs":5},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:9003"}}"#;
        assert_eq!(parse_subscription(bad).expect_err("range").status, 400);
        assert_eq!(
            parse_destination("http://sandbox.localdomain:9003/x"),
            Some(("127.0.0.1:9003".into(), "/x".into()))
        );
    }

    /// Accepts one HTTP POST, answers 200 and returns its JSON body.
    async fn receive_one(l: &tokio::net::TcpListener) -> Value {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.expect("read");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .expect("answer");
                    return serde_json::from_str(body).expect("JSON batch");
                }
            }
            if n == 0 {
                panic!("connection closed early");
            }
        }
    }

    #[tokio::test]
    async fn delivers_backlog_and_new_events_in_timed_batches() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let hub = Hub::new();
        hub.emit(
            "platform.initStart",
            json!({"initializationType": "on-demand", "phase": "init"}),
        );
        hub.emit("extension", json!("not subscribed"));
        let b = Buffering {
            max_items: 1000,
            max_bytes: 262_144,
            timeout_ms: 50,
        };
        let t0 = std::time::Instant::now();
        hub.add(
            vec!["platform".into(), "function".into()],
            b,
            format!("http://sandbox.localdomain:{port}/in"),
        );
        hub.emit("function", json!("hello"));
        let batch = receive_one(&l).await;
        assert!(
            t0.elapsed() >= Duration::from_millis(45),
            "flushed before timeoutMs"
        );
        let types: Vec<&str> = batch
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect();
        assert_eq!(types, vec!["platform.initStart", "function"]);
        assert_eq!(batch[1]["record"], "hello");
        hub.emit("platform.start", json!({"requestId": "r"}));
        let (batch, ()) = tokio::join!(receive_one(&l), hub.flush(Duration::from_secs(5)));
        assert_eq!(batch[0]["record"]["requestId"], "r");
        assert_eq!(hub.subscribers(), 1);
    }
}
