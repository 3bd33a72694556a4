//! A local S3 server (moto, through `scripts/local-s3.sh`) for one test: its own state file,
//! its own port and bucket; stopped by PID when the guard drops.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::layout::repo_root;

/// Errors of the local S3 guard.
#[derive(Debug, thiserror::Error)]
pub enum LocalS3Error {
    #[error("cannot create a temporary directory for the S3 state: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("cannot run {script}: {source}")]
    Spawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{script} {action} failed with {status}: {stderr}")]
    Failed {
        script: PathBuf,
        action: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("state file {path} is unreadable or lacks {field}")]
    State { path: PathBuf, field: &'static str },
}

/// A running moto server; `stop` (or drop) ends it by PID.
#[derive(Debug)]
pub struct LocalS3 {
    dir: PathBuf,
    state: PathBuf,
    pid: u32,
    port: u16,
    bucket: String,
    /// `http://…` or, with TLS, `https://…`.
    endpoint: String,
    /// With TLS: the CA, the system's CAs plus it, and the Mono store's home.
    ca_file: Option<PathBuf>,
    ca_bundle: Option<PathBuf>,
    mono_home: Option<PathBuf>,
    stopped: bool,
}

fn script() -> PathBuf {
    repo_root().join("scripts/local-s3.sh")
}

fn run(state: &Path, args: &[&str]) -> Result<String, LocalS3Error> {
    let script = script();
    let output = Command::new(&script)
        .args(args)
        .env("LXPROF_S3_STATE", state)
        .env("AWS_REGION", "us-east-1")
        .output()
        .map_err(|source| LocalS3Error::Spawn {
            script: script.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(LocalS3Error::Failed {
            script,
            action: args.join(" "),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl LocalS3 {
    /// Starts a server on a free loopback port with `bucket` created.
    pub fn start(bucket: &str) -> Result<Self, LocalS3Error> {
        Self::start_with(bucket, false)
    }

    /// The same over HTTPS, with a certificate from a CA made at start.
    pub fn start_tls(bucket: &str) -> Result<Self, LocalS3Error> {
        Self::start_with(bucket, true)
    }

    fn start_with(bucket: &str, tls: bool) -> Result<Self, LocalS3Error> {
        let dir =
            std::env::temp_dir().join(format!("lxprof-s3-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(LocalS3Error::TempDir)?;
        let state = dir.join("state");
        if tls {
            run(&state, &["start", "--tls", bucket])?;
        } else {
            run(&state, &["start", bucket])?;
        }
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        let fields: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let field = |name: &'static str| {
            fields.get(name).ok_or(LocalS3Error::State {
                path: state.clone(),
                field: name,
            })
        };
        let pid = field("PID")?.parse().map_err(|_| LocalS3Error::State {
            path: state.clone(),
            field: "PID",
        })?;
        let port = field("PORT")?.parse().map_err(|_| LocalS3Error::State {
            path: state.clone(),
            field: "PORT",
        })?;
        let path = |name: &str| fields.get(name).map(PathBuf::from);
        Ok(Self {
            endpoint: field("ENDPOINT")?.to_string(),
            ca_file: path("CA_FILE"),
            ca_bundle: path("CA_BUNDLE"),
            mono_home: path("MONO_CONFIG_HOME"),
            bucket: field("BUCKET")?.to_string(),
            dir,
            state,
            pid,
            port,
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The CA that signed the server's certificate (TLS only).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub fn state_file(&self) -> &Path {
        &self.state
    }

    /// The environment an event collector needs to write to this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_S3", self.endpoint()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("EVENT_COLLECTOR_BUCKET", self.bucket.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(self.trust_env())
        .collect()
    }

    /// With TLS, each runtime's standard setting to trust the CA: SSL_CERT_FILE (Rust's
    /// rustls-native-certs, OpenSSL, .NET), NODE_EXTRA_CA_CERTS, and XDG_CONFIG_HOME for
    /// Mono's certificate store.
    pub fn trust_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        let mut put = |k: &str, v: &Option<PathBuf>| {
            if let Some(p) = v {
                env.push((k.to_string(), p.display().to_string()));
            }
        };
        put("SSL_CERT_FILE", &self.ca_bundle);
        put("NODE_EXTRA_CA_CERTS", &self.ca_file);
        put("XDG_CONFIG_HOME", &self.mono_home);
        env
    }

    /// Stops the server by PID (through the script) and removes its state.
    pub fn stop(mut self) -> Result<(), LocalS3Error> {
        self.stopped = true;
        let result = run(&self.state, &["stop"]).map(|_| ());
        let _ = std::fs::remove_dir_all(&self.dir);
        result
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = run(&self.state, &["stop"]);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_exists_and_is_executable() {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(script()).expect("scripts/local-s3.sh");
        assert!(meta.permissions().mode() & 0o111 != 0);
    }
}
