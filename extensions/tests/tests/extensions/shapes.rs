//! The documented object shapes of each event collector: key pattern and body.

use serde_json::Value;

/// Which shape a collector writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Rust and Node: `{fn}/{unix ms}.json`, body `{deadline_ms, request_id, invoked_function_arn}`.
    Metadata,
    /// C# (JIT and AOT): `{fn}/{UTC file time}.json`, body = the raw INVOKE event.
    RawInvoke,
}

pub fn shape_of(collector: &str) -> Shape {
    if collector.starts_with("csharp") || collector.starts_with("dotnet") {
        Shape::RawInvoke
    } else {
        Shape::Metadata
    }
}

/// Checks one stored object; returns its request id.
pub fn check_object(
    shape: Shape,
    function: &str,
    key: &str,
    body: &[u8],
) -> Result<String, String> {
    let stem = key
        .strip_prefix(&format!("{function}/"))
        .and_then(|k| k.strip_suffix(".json"))
        .ok_or_else(|| format!("key {key} is not {function}/<time>.json"))?;
    let time: u64 = stem
        .parse()
        .map_err(|_| format!("key {key}: {stem} is not an integer time"))?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("{key}: body is not JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{key}: body is not a JSON object"))?;
    let field = |name: &str| {
        obj.get(name)
            .ok_or_else(|| format!("{key}: no {name} in {value}"))
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    match shape {
        Shape::Metadata => {
            if obj.len() != 3 {
                return Err(format!("{key}: expected exactly 3 fields, got {value}"));
            }
            // unix ms, within the last hour
            if !(now_ms.saturating_sub(3_600_000)..=now_ms + 60_000).contains(&time) {
                return Err(format!("{key}: {time} is not a recent unix time in ms"));
            }
            field("deadline_ms")?
                .as_u64()
                .ok_or_else(|| format!("{key}: deadline_ms is not an integer"))?;
            let arn = field("invoked_function_arn")?.as_str().unwrap_or_default();
            if !arn.ends_with(&format!(":function:{function}")) {
                return Err(format!(
                    "{key}: invoked_function_arn {arn} is not {function}'s"
                ));
            }
            field("request_id")?
                .as_str()
                .map(String::from)
                .ok_or_else(|| format!("{key}: request_id is not a string"))
        }
        Shape::RawInvoke => {
            // Windows file time: 100 ns ticks since 1601-01-01.
            let unix_ms = (time / 10_000).saturating_sub(11_644_473_600_000);
            if !(now_ms.saturating_sub(3_600_000)..=now_ms + 60_000).contains(&unix_ms) {
                return Err(format!("{key}: {time} is not a recent UTC file time"));
            }
            if field("eventType")?.as_str() != Some("INVOKE") {
                return Err(format!("{key}: eventType is not INVOKE in {value}"));
            }
            field("deadlineMs")?
                .as_u64()
                .ok_or_else(|| format!("{key}: deadlineMs is not an integer"))?;
            let arn = field("invokedFunctionArn")?.as_str().unwrap_or_default();
            if !arn.ends_with(&format!(":function:{function}")) {
                return Err(format!(
                    "{key}: invokedFunctionArn {arn} is not {function}'s"
                ));
            }
            field("requestId")?
                .as_str()
                .map(String::from)
                .ok_or_else(|| format!("{key}: requestId is not a string"))
        }
    }
}

#[test]
fn shapes_accept_the_documented_bodies_and_reject_others() {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:fn-a";
    let meta = format!(r#"{{"deadline_ms":1,"request_id":"r-1","invoked_function_arn":"{arn}"}}"#);
    assert_eq!(
        check_object(
            Shape::Metadata,
            "fn-a",
            &format!("fn-a/{now_ms}.json"),
            meta.as_bytes()
        ),
        Ok("r-1".to_string())
    );
    let file_time = (now_ms + 11_644_473_600_000) * 10_000;
    let raw = format!(
        r#"{{"eventType":"INVOKE","deadlineMs":5,"requestId":"r-2","invokedFunctionArn":"{arn}","tracing":{{}}}}"#
    );
    assert_eq!(
        check_object(
            Shape::RawInvoke,
            "fn-a",
            &format!("fn-a/{file_time}.json"),
            raw.as_bytes()
        ),
        Ok("r-2".to_string())
    );
    // wrong prefix, wrong time unit, wrong shape
    assert!(
        check_object(
            Shape::Metadata,
            "fn-b",
            &format!("fn-a/{now_ms}.json"),
            meta.as_bytes()
        )
        .is_err()
    );
    assert!(
        check_object(
            Shape::RawInvoke,
            "fn-a",
            &format!("fn-a/{now_ms}.json"),
            raw.as_bytes()
        )
        .is_err()
    );
    assert!(
        check_object(
            Shape::Metadata,
            "fn-a",
            &format!("fn-a/{now_ms}.json"),
            raw.as_bytes()
        )
        .is_err()
    );
    assert_eq!(shape_of("csharp-aot-event-collector"), Shape::RawInvoke);
    assert_eq!(shape_of("dotnet-event-collector"), Shape::RawInvoke);
    assert_eq!(shape_of("node-event-collector"), Shape::Metadata);
}
