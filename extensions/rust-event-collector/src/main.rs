//! `rust-event-collector`: a Lambda extension that, on each INVOKE, stores
//! `{deadline_ms, request_id, invoked_function_arn}` in S3 under
//! `{AWS_LAMBDA_FUNCTION_NAME}/{unix ms}.json` and only then calls next.
//!
//! Bucket: `EVENT_COLLECTOR_BUCKET`. An S3 failure is logged and the extension still
//! calls next. It registers under its executable's file name (lambda-extension's rule).

mod record;
mod s3;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::{Client, error::DisplayErrorContext, primitives::ByteStream};
use lambda_extension::{Error, Extension, LambdaEvent, NextEvent, service_fn};

use record::{InvokeRecord, object_key};

const NAME: &str = "rust-event-collector";

struct Collector {
    client: Client,
    bucket: String,
    function_name: String,
}

impl Collector {
    async fn handle(&self, event: LambdaEvent) -> Result<(), Error> {
        match event.next {
            NextEvent::Invoke(invoke) => {
                println!("[{NAME}] INVOKE {}", invoke.request_id);
                let unix_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default();
                let key = object_key(&self.function_name, unix_ms);
                let body = InvokeRecord {
                    deadline_ms: invoke.deadline_ms,
                    request_id: &invoke.request_id,
                    invoked_function_arn: &invoke.invoked_function_arn,
                }
                .to_json();
                let put = self
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .content_type("application/json")
                    .body(ByteStream::from(body))
                    .send()
                    .await;
                if let Err(err) = put {
                    eprintln!(
                        "[{NAME}] PutObject s3://{}/{key} failed: {}",
                        self.bucket,
                        DisplayErrorContext(&err)
                    );
                }
            }
            NextEvent::Shutdown(shutdown) => {
                println!("[{NAME}] SHUTDOWN {}", shutdown.shutdown_reason);
            }
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let Ok(bucket) = std::env::var("EVENT_COLLECTOR_BUCKET") else {
        eprintln!("[{NAME}] EVENT_COLLECTOR_BUCKET is not set: set it to the bucket to write to");
        std::process::exit(1);
    };
    let function_name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "unknown-function".into());
    let collector = Collector {
        client: s3::client_from_env().await,
        bucket,
        function_name,
    };
    let collector = &collector;
    Extension::new()
        .with_events(&["INVOKE", "SHUTDOWN"])
        .with_events_processor(service_fn(move |event| collector.handle(event)))
        .run()
        .await
}
