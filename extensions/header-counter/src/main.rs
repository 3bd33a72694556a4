//! HeaderCounter: the function of aws-samples/lambda-extension-optimization. Logs a line,
//! waits `HEADER_COUNTER_DELAY_MS` (default 500) and answers an API Gateway proxy response
//! `200 "Your request has N headers"`.
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::time::Duration;

fn delay() -> Duration {
    let ms = std::env::var("HEADER_COUNTER_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(500);
    Duration::from_millis(ms)
}

fn count_headers(event: &Value) -> usize {
    event
        .get("headers")
        .and_then(Value::as_object)
        .map_or(0, |h| h.len())
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let n = count_headers(&event.payload);
    println!(
        "HeaderCounter: request {} has {n} headers",
        event.context.request_id
    );
    tokio::time::sleep(delay()).await;
    Ok(json!({
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "isBase64Encoded": false,
        "body": format!("Your request has {n} headers"),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_headers() {
        assert_eq!(count_headers(&json!({"headers": {"a": "1", "b": "2"}})), 2);
        assert_eq!(count_headers(&json!({})), 0);
    }
}
