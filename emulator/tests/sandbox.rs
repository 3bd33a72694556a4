//! Sandbox tests with real processes, cgroups and mount namespaces (root). With CI=true they
//! fail when the facilities are missing; otherwise they skip with a printed reason.
//!
//! Processes that need a known allocation or CPU work run this test binary again in "helper"
//! mode (`LXPROF_SANDBOX_HELPER`), see [`helper`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lxprof_emulator::sandbox::{Sandbox, SandboxCommand, SandboxSpec};

#[path = "sandbox/lifecycle.rs"]
mod lifecycle;
#[path = "sandbox/resources.rs"]
mod resources;
#[path = "sandbox/view.rs"]
mod view;

/// Serializes the timing-sensitive tests (CPU limit, freezer).
static TIMING: Mutex<()> = Mutex::new(());

/// Helper mode: `alloc MB HOLD_MS` touches MB MiB then sleeps; `spin N` burns N iterations;
/// `busy` spins forever. Without the variable this test does nothing.
#[test]
fn helper() {
    let Ok(cmd) = std::env::var("LXPROF_SANDBOX_HELPER") else {
        return;
    };
    let words: Vec<u64> = cmd
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    match cmd.split_whitespace().next() {
        Some("alloc") => {
            let mb = words.first().copied().unwrap_or(1) as usize;
            let mut v = vec![0u8; mb << 20];
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
            std::thread::sleep(Duration::from_millis(words.get(1).copied().unwrap_or(0)));
        }
        Some("spin") => {
            spin(words.first().copied().unwrap_or(1));
        }
        Some("busy") => loop {
            spin(1_000_000);
        },
        Some("orphan") => orphan_maker(cmd.split_whitespace().nth(1).unwrap_or("orphan")),
        _ => panic!("unknown helper command {cmd:?}"),
    }
}

/// Runs on the host as root: creates an environment, starts `sleep 60` in it, prints its pid and
/// waits to be SIGKILLed by the test.
fn orphan_maker(name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sandbox-tests")
        .join(name);
    let sb = Sandbox::create(spec(name, dir)).expect("create");
    let rt = runtime();
    let child = rt
        .block_on(async { sb.spawn(sh("exec sleep 60"), |_| {}) })
        .expect("spawn");
    println!("pid {}", child.id().unwrap_or(0));
    std::thread::sleep(Duration::from_secs(60));
}

fn spin(n: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

/// Whether the sandbox can run here; panics under CI=true when it cannot.
fn available() -> bool {
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("not root".to_string())
    } else {
        lxprof_emulator::sandbox::cgroup::Layout::detect()
            .err()
            .map(|e| e.to_string())
            .or_else(|| {
                let ok = std::process::Command::new("unshare")
                    .args(["--mount", "true"])
                    .status()
                    .is_ok_and(|s| s.success());
                (!ok).then(|| "unshare --mount true failed: no mount namespaces".to_string())
            })
    };
    match reason {
        None => true,
        Some(r) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("sandbox unavailable under CI: {r}")
        }
        Some(r) => {
            eprintln!("skipping: sandbox unavailable: {r}");
            false
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sandbox-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn spec(name: &str, function_dir: PathBuf) -> SandboxSpec {
    SandboxSpec {
        name: format!("test-{name}-{}", std::process::id()),
        memory_mb: 256,
        cpu_limit: None,
        function_dir,
        layers: vec![],
        extra_extensions: vec![],
        run_as: None,
        tmp_mb: None,
    }
}

fn sh(script: &str) -> SandboxCommand {
    SandboxCommand {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: "/var/task".into(),
    }
}

/// This test binary at a path the environment shows: a checkout under `/tmp` is hidden
/// there by the environment's own `/tmp`, so the binary is then copied to `/var/tmp`
/// (once per binary: the name carries cargo's hash of it).
fn helper_program() -> PathBuf {
    static PROGRAM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current exe");
            let real = std::fs::canonicalize(&exe).unwrap_or_else(|_| exe.clone());
            if lxprof_emulator::sandbox::hidden_inside(&real).is_none() {
                return exe;
            }
            let name = real.file_name().expect("exe name").to_string_lossy();
            let copy = PathBuf::from(format!("/var/tmp/lxprof-test-{name}"));
            let tmp = PathBuf::from(format!(
                "/var/tmp/.lxprof-test-{name}.{}",
                std::process::id()
            ));
            std::fs::copy(&real, &tmp).expect("copy the test binary out of /tmp");
            std::fs::rename(&tmp, &copy).expect("rename the copy");
            copy
        })
        .clone()
}

fn helper_cmd(what: &str) -> SandboxCommand {
    SandboxCommand {
        program: helper_program(),
        args: vec![
            "helper".into(),
            "--exact".into(),
            "--test-threads=1".into(),
            "--nocapture".into(),
        ],
        env: vec![("LXPROF_SANDBOX_HELPER".into(), what.into())],
        cwd: "/tmp".into(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `cmd` to completion in `sb`; returns (exit code, stdout, stderr).
fn run(sb: &Sandbox, cmd: SandboxCommand) -> (Option<i32>, String, String) {
    let rt = runtime();
    let child = rt.block_on(async { sb.spawn(cmd, |_| {}) }).expect("spawn");
    let out = rt.block_on(child.wait_with_output()).expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
