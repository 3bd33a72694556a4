//! Helpers shared by the integration tests that run the emulator through the
//! `lxprof` binary: paths, the skip-or-fail rule and a local S3 server.
#![allow(dead_code)] // each test binary uses its own subset

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One emulated Lambda run (or recording) at a time within a test binary.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs an `lxprof` command; asserts it succeeded and returns its stdout.
pub fn lxprof_stdout(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running lxprof");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} exited {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Under `CI=true` a missing facility fails the test; elsewhere it skips
/// with the reason printed.
pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {why}");
    }
    eprintln!("skipping: {why}");
}

/// The extensions build directory when root and the presets are available
/// (else skips or fails with the reason).
pub fn lambda_facility() -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip_or_fail("not root: the emulator needs cgroups and mount namespaces, the recorder BPF");
        return None;
    }
    let build = repo().join("extensions/build");
    if !build.join("functions/header-counter/bootstrap").exists() {
        skip_or_fail("presets not built: run extensions/build.sh (scripts/setup.sh does)");
        return None;
    }
    Some(build)
}

/// `<target>/debug`, where the workspace's binaries (fixtures) are.
pub fn target_debug() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary under <target>/debug/deps")
        .to_path_buf()
}

/// A fresh scratch directory under the target's tmp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A local S3 server for a test, stopped (by PID, through the script) on drop.
pub struct LocalS3 {
    pub state: PathBuf,
}

impl LocalS3 {
    /// Starts `scripts/local-s3.sh` with its state file at `state`.
    pub fn start(state: PathBuf, bucket: &str) -> Option<LocalS3> {
        let out = Command::new(repo().join("scripts/local-s3.sh"))
            .args(["start", bucket])
            .env("LXPROF_S3_STATE", &state)
            .output()
            .expect("running scripts/local-s3.sh");
        if !out.status.success() {
            skip_or_fail(&format!(
                "local S3 did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        }
        Some(LocalS3 { state })
    }
}

impl LocalS3 {
    /// The `ENDPOINT=` of its state file.
    pub fn endpoint(&self) -> String {
        let text = std::fs::read_to_string(&self.state).expect("local S3 state file");
        text.lines()
            .find_map(|l| l.strip_prefix("ENDPOINT="))
            .expect("ENDPOINT in the state file")
            .trim_matches('"')
            .to_string()
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/local-s3.sh"))
            .arg("stop")
            .env("LXPROF_S3_STATE", &self.state)
            .status();
    }
}

/// Sends `signal` to `child` (an `lxprof run|record --lambda` with piped
/// stdout and stderr) once its first invocation finished (its first REPORT
/// line on stderr, within 60 s), then waits for it: what it wrote, and how it
/// ended. A fixed delay instead raced the cold start under load.
pub fn signal_after_first_report(
    mut child: std::process::Child,
    signal: i32,
) -> std::process::Output {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("REPORT RequestId") {
                let _ = tx.send(());
            }
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
        }
        all
    });
    let _ = rx.recv_timeout(std::time::Duration::from_secs(60));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let mut output = child.wait_with_output().expect("lxprof exits");
    output.stderr = reader.join().unwrap_or_default();
    output
}
