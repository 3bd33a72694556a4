//! The S3 client, configured from the standard AWS environment.
//!
//! `AWS_REGION`, credentials and `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` are read by
//! `aws-config`. With a custom endpoint the client uses path-style addressing (what
//! S3-compatible servers such as moto expect); without one it talks to real S3.
//! TLS is rustls on `ring` (smaller and faster to build than aws-lc).

use std::time::Duration;

use aws_config::{BehaviorVersion, timeout::TimeoutConfig};
use aws_sdk_s3::Client;
use aws_smithy_http_client::{
    Builder,
    tls::{Provider, rustls_provider::CryptoMode},
};

/// Upper bound of one PutObject, retries included: an invocation must never hang on S3.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds the client from the environment.
pub async fn client_from_env() -> Client {
    let http_client = Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts)
        .load()
        .await;
    // `endpoint_url()` is only the global AWS_ENDPOINT_URL; the S3 one is applied below.
    let path_style = shared.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style)
        .build();
    Client::from_conf(config)
}
