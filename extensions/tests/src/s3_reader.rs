//! Reads back what the event collectors stored: every object under a prefix, with its body.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::{Client, config::Credentials, error::DisplayErrorContext};
use aws_smithy_http_client::{
    Builder,
    tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode},
};

/// Errors of the S3 reader.
#[derive(Debug, thiserror::Error)]
pub enum S3ReadError {
    #[error("cannot start a tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("listing s3://{bucket}/{prefix} at {endpoint} failed: {message}")]
    List {
        endpoint: String,
        bucket: String,
        prefix: String,
        message: String,
    },
    #[error("reading s3://{bucket}/{key} at {endpoint} failed: {message}")]
    Get {
        endpoint: String,
        bucket: String,
        key: String,
        message: String,
    },
}

/// One stored object.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub key: String,
    pub body: Vec<u8>,
}

/// Every object under `prefix` in `bucket` at a path-style `endpoint`, sorted by key.
pub fn read_objects(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<StoredObject>, S3ReadError> {
    read_objects_trusting(endpoint, bucket, prefix, None)
}

/// [`read_objects`] over HTTPS trusting the CA certificate `ca_pem` (besides the system's).
pub fn read_objects_trusting(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    ca_pem: Option<&[u8]>,
) -> Result<Vec<StoredObject>, S3ReadError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(S3ReadError::Runtime)?;
    runtime.block_on(async {
        let mut trust = TrustStore::default();
        if let Some(pem) = ca_pem {
            trust = trust.with_pem_certificate(pem.to_vec());
        }
        let http = Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(
                TlsContext::builder()
                    .with_trust_store(trust)
                    .build()
                    .map_err(|e| S3ReadError::List {
                        endpoint: endpoint.to_string(),
                        bucket: bucket.to_string(),
                        prefix: prefix.to_string(),
                        message: format!("TLS settings: {e}"),
                    })?,
            )
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        let client = Client::from_conf(config);
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| S3ReadError::List {
                    endpoint: endpoint.to_string(),
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                    message: DisplayErrorContext(&e).to_string(),
                })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            token = page.next_continuation_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            let get_error = |message: String| S3ReadError::Get {
                endpoint: endpoint.to_string(),
                bucket: bucket.to_string(),
                key: key.clone(),
                message,
            };
            let out = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| get_error(DisplayErrorContext(&e).to_string()))?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| get_error(e.to_string()))?
                .into_bytes()
                .to_vec();
            objects.push(StoredObject { key, body });
        }
        Ok(objects)
    })
}
