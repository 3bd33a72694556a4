//! Where `extensions/build.sh` lays out the presets, and running its non-cargo steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Every preset extension name, as the emulator resolves them.
pub const EXTENSIONS: &[&str] = &[
    "rust-blank",
    "rust-event-collector",
    "csharp-blank",
    "csharp-event-collector",
    "csharp-aot-event-collector",
    "node-event-collector",
];

/// The event collectors (each stores one S3 object per INVOKE).
pub const EVENT_COLLECTORS: &[&str] = &[
    "rust-event-collector",
    "csharp-event-collector",
    "csharp-aot-event-collector",
    "node-event-collector",
];

/// Errors of the layout helpers.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot run {script}: {source}")]
    Spawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{script} {steps} failed with {status}:\n{stderr}\nrun it by hand to see why")]
    Failed {
        script: PathBuf,
        steps: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `extensions/build` (or `LXPROF_EXT_BUILD`).
pub fn build_dir() -> PathBuf {
    std::env::var_os("LXPROF_EXT_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("extensions/build"))
}

/// The layer directory of a preset extension (mounted at `/opt`).
pub fn layer_dir(name: &str) -> PathBuf {
    build_dir().join("layers").join(name)
}

/// The file Lambda starts for a preset extension: `layers/<name>/extensions/<name>`.
pub fn extension_file(name: &str) -> PathBuf {
    layer_dir(name).join("extensions").join(name)
}

/// The deployment package directory of a preset function.
pub fn function_dir(name: &str) -> PathBuf {
    build_dir().join("functions").join(name)
}

/// Intermediate C# outputs (`SigV4Test.exe`, ...).
pub fn csharp_obj(file: &str) -> PathBuf {
    build_dir().join("obj/csharp").join(file)
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Runs `extensions/build.sh STEPS...` (idempotent; serialized within this process).
/// Only for the steps without cargo (`csharp`, `aot`, `node`, `s3`): cargo's build lock is
/// held by the `cargo test` that runs us.
pub fn build_steps(steps: &[&str]) -> Result<(), LayoutError> {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let script = repo_root().join("extensions/build.sh");
    let output = Command::new(&script)
        .args(steps)
        .output()
        .map_err(|source| LayoutError::Spawn {
            script: script.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(LayoutError::Failed {
            script,
            steps: steps.join(" "),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_documented_convention() {
        let file = extension_file("rust-blank");
        assert!(file.ends_with("layers/rust-blank/extensions/rust-blank"));
        assert!(function_dir("header-counter").ends_with("functions/header-counter"));
        assert!(repo_root().join("extensions/build.sh").exists());
    }

    #[test]
    fn every_collector_is_a_preset() {
        for c in EVENT_COLLECTORS {
            assert!(EXTENSIONS.contains(c));
        }
    }
}
