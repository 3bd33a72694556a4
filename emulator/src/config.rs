//! What to run: the function, extensions, layers, memory, timeout and load, validated.
use std::path::PathBuf;
use std::time::Duration;

/// One emulator run.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Deployment package directory holding an executable `bootstrap` (becomes `/var/task`).
    pub function: PathBuf,
    /// Extension executables (exposed as `/opt/extensions/<file name>`).
    pub extensions: Vec<PathBuf>,
    /// Layer directories merged into `/opt` (their `extensions/*` are started).
    pub layers: Vec<PathBuf>,
    /// Memory size in MB, 128..=10240.
    pub memory_mb: u32,
    /// Function timeout (whole invoke phase).
    pub timeout: Duration,
    /// Number of invocations.
    pub invocations: u32,
    /// Requests in flight: this many clients each send a request, wait for its response and
    /// send the next (see [`crate::driver`]).
    pub concurrency: u32,
    /// Most environments Lambda may create (its concurrency limit); a new one starts only when
    /// every existing one is busy. `None`: `concurrency`.
    pub max_environments: Option<u32>,
    /// Event payload; `None` = the default API Gateway proxy event.
    pub event: Option<Vec<u8>>,
    /// Extra environment variables for the function and extensions.
    pub env: Vec<(String, String)>,
    /// Cap CPU at memory/1769 of one CPU (Lambda's rule).
    pub cpu_cap: bool,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// Print a REPORT line per invocation on stderr.
    pub print_reports: bool,
    /// Echo the processes' log lines on stderr.
    pub print_logs: bool,
    /// Size of `/tmp` in MB (Lambda's ephemeral storage), 512..=10240.
    pub ephemeral_storage_mb: u32,
}

impl EmulatorConfig {
    /// A config with Lambda's defaults (128 MB, 3 s timeout, 1 invocation, 1 environment).
    pub fn new(function: PathBuf) -> EmulatorConfig {
        EmulatorConfig {
            function,
            extensions: Vec::new(),
            layers: Vec::new(),
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            invocations: 1,
            concurrency: 1,
            max_environments: None,
            event: None,
            env: Vec::new(),
            cpu_cap: true,
            function_name: "lxprof-function".to_string(),
            print_reports: true,
            print_logs: false,
            ephemeral_storage_mb: 512,
        }
    }

    /// Checks ranges and paths; the error says what to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(128..=10240).contains(&self.memory_mb) {
            return Err(ConfigError::Memory(self.memory_mb));
        }
        if !(512..=10240).contains(&self.ephemeral_storage_mb) {
            return Err(ConfigError::EphemeralStorage(self.ephemeral_storage_mb));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(900) {
            return Err(ConfigError::Timeout(self.timeout));
        }
        if self.invocations == 0 || self.concurrency == 0 || self.max_environments == Some(0) {
            return Err(ConfigError::Load);
        }
        let bootstrap = self.function.join("bootstrap");
        if !bootstrap.is_file() {
            return Err(ConfigError::NoBootstrap(self.function.clone()));
        }
        for e in &self.extensions {
            if !e.is_file() {
                return Err(ConfigError::Extension(e.clone()));
            }
        }
        for l in &self.layers {
            if !l.is_dir() {
                return Err(ConfigError::Layer(l.clone()));
            }
        }
        if let Some(event) = &self.event {
            check_event(event)?;
        }
        if self.function_name.is_empty() || self.function_name.len() > 64 {
            return Err(ConfigError::FunctionName(self.function_name.clone()));
        }
        Ok(())
    }

    /// CPU fraction of one CPU, or `None` without a cap.
    pub fn cpu_limit(&self) -> Option<f64> {
        self.cpu_cap.then(|| f64::from(self.memory_mb) / 1769.0)
    }
}

/// Lambda's limit on a synchronous invocation's payload, request and response alike (6 MB).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// Checks an event payload as Lambda's Invoke API does: JSON
/// (`InvalidRequestContentException` otherwise) of at most 6 MB
/// (`RequestEntityTooLargeException`).
pub fn check_event(event: &[u8]) -> Result<(), ConfigError> {
    if event.len() > MAX_SYNC_PAYLOAD_BYTES {
        return Err(ConfigError::EventTooLarge(event.len()));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(event)
        .map(|_| ())
        .map_err(|e| ConfigError::EventNotJson(e.to_string()))
}

/// An invalid [`EmulatorConfig`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Memory out of Lambda's range.
    #[error("memory {0} MB is outside Lambda's range 128..=10240 MB")]
    Memory(u32),
    /// Ephemeral storage out of range.
    #[error("ephemeral storage {0} MB is outside Lambda's range 512..=10240 MB")]
    EphemeralStorage(u32),
    /// Timeout out of range.
    #[error("timeout {0:?} must be between 1 ms and 900 s")]
    Timeout(Duration),
    /// Zero invocations or environments.
    #[error("invocations, concurrency and max environments must be at least 1")]
    Load,
    /// The function directory has no bootstrap.
    #[error(
        "{0} holds no `bootstrap` file: --function takes a deployment package directory or a preset name"
    )]
    NoBootstrap(PathBuf),
    /// An extension is not a file.
    #[error("extension {0} is not a file: --extension takes an executable or a preset name")]
    Extension(PathBuf),
    /// A layer is not a directory.
    #[error("layer {0} is not a directory")]
    Layer(PathBuf),
    /// The event is not JSON.
    #[error(
        "the event is not JSON ({0}): Lambda rejects such a payload (InvalidRequestContentException)"
    )]
    EventNotJson(String),
    /// The event is over Lambda's 6 MB.
    #[error(
        "the event is {0} bytes, over Lambda's 6 MB (6291456 bytes) for a synchronous invocation (RequestEntityTooLargeException)"
    )]
    EventTooLarge(usize),
    /// Bad function name.
    #[error("function name {0:?} must be 1-64 characters")]
    FunctionName(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_memory_and_missing_bootstrap() {
        let mut c = EmulatorConfig::new(PathBuf::from("/nonexistent"));
        assert!(matches!(c.validate(), Err(ConfigError::NoBootstrap(_))));
        c.memory_mb = 64;
        assert!(matches!(c.validate(), Err(ConfigError::Memory(64))));
        c.memory_mb = 1769;
        assert_eq!(c.cpu_limit(), Some(1.0));
    }

    #[test]
    fn events_must_be_json_within_six_mb() {
        assert!(check_event(br#"{"a": [1, "x"]}"#).is_ok());
        assert!(check_event(b"\"just a string\"").is_ok());
        for bad in [&b"not json"[..], b"{\"a\": ", b""] {
            assert!(
                matches!(check_event(bad), Err(ConfigError::EventNotJson(_))),
                "{bad:?}"
            );
        }
        let big = format!("\"{}\"", "x".repeat(MAX_SYNC_PAYLOAD_BYTES));
        assert!(matches!(
            check_event(big.as_bytes()),
            Err(ConfigError::EventTooLarge(_))
        ));
    }
}
