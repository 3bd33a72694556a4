//! `lxprof run --lambda` through the real binary: every preset runs from the
//! extensions build (`extensions/build.sh`, run by `scripts/setup.sh`), the
//! event collectors against a real local S3 server (moto, `scripts/local-s3.sh`),
//! stopped by PID at the end. Needs root (cgroups, mount namespaces); with
//! `CI=true` a missing facility fails instead of skipping.

use std::process::Command;

use serde_json::Value;

mod support;

use support::{LocalS3, lambda_facility, scratch, signal_after_first_report};

#[test]
fn every_preset_runs_from_the_cli() {
    let Some(build) = lambda_facility() else {
        return;
    };
    let tmp = scratch("lambda-cli");
    let state = tmp.join("s3.state");
    let Some(_s3) = LocalS3::start(state.clone(), "lxprof-cli-test") else {
        return;
    };

    let presets = [
        "rust-blank",
        "csharp-blank",
        "rust-event-collector",
        "csharp-event-collector",
        "csharp-aot-event-collector",
        "node-event-collector",
    ];
    for preset in presets {
        let out_dir = tmp.join(preset);
        let out = Command::new(env!("CARGO_BIN_EXE_lxprof"))
            .args(["run", "--lambda", "--extension", preset, "--memory", "512"])
            .args(["--invocations", "2", "--timeout", "10"])
            .args(["--env", "HEADER_COUNTER_DELAY_MS=50", "-o"])
            .arg(&out_dir)
            .env("LXPROF_S3_STATE", &state)
            .env("LXPROF_EXTENSIONS_BUILD", &build)
            .output()
            .expect("running lxprof");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{preset}: lxprof exited {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("2 of 2 succeeded"), "{preset}: {stdout}");
        let report: Value = serde_json::from_slice(
            &std::fs::read(out_dir.join("report.json")).expect("report.json"),
        )
        .expect("report.json is JSON");
        let lambda = &report["lambda"];
        assert_eq!(lambda["extensions"][0], preset);
        assert_eq!(lambda["memory_mb"], 512);
        let inv = lambda["invocations"].as_array().expect("invocations");
        assert_eq!(inv.len(), 2, "{preset}");
        assert!(
            inv.iter().all(|i| i["status"] == "success"),
            "{preset}: {inv:?}"
        );
        assert_eq!(lambda["summary"]["cold_starts"], 1, "{preset}");
    }
}

#[test]
fn bad_input_is_a_one_line_error() {
    let bin = env!("CARGO_BIN_EXE_lxprof");
    for args in [
        &["run", "--lambda", "--extension", "no-such-preset"][..],
        &["run", "--lambda", "--function", "/nonexistent/dir"][..],
        &["run", "--lambda", "--event", "/nonexistent.json"][..],
        &["run"][..],
    ] {
        let out = Command::new(bin)
            .args(args)
            .output()
            .expect("running lxprof");
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("lxprof: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Starts `lxprof run --lambda ARGS -o OUT` with its outputs piped.
fn spawn_run(build: &std::path::Path, args: &[&str], out: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lxprof"))
        .args(["run", "--lambda"])
        .args(args)
        .arg("-o")
        .arg(out)
        .env("LXPROF_EXTENSIONS_BUILD", build)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running lxprof")
}

/// The cgroup and state directories of lxprof process `pid`'s environments.
fn leftovers_of(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("lxprof-{pid}-");
    let mut dirs = lxprof_emulator::sandbox::lxprof_parents();
    dirs.push("/run/lxprof/sandbox".into());
    dirs.iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Polls `cond` every 50 ms for up to `secs` seconds.
fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[test]
fn a_signal_keeps_the_finished_invocations() {
    let Some(build) = lambda_facility() else {
        return;
    };
    let tmp = scratch("lambda-cli-signal");
    for (sig, name) in [(libc::SIGINT, "int"), (libc::SIGHUP, "hup")] {
        let out_dir = tmp.join(name);
        let child = spawn_run(
            &build,
            &[
                "--invocations",
                "200",
                "--env",
                "HEADER_COUNTER_DELAY_MS=100",
            ],
            &out_dir,
        );
        let pid = child.id();
        // Once an invocation finished, the signal (to lxprof alone).
        let out = signal_after_first_report(child, sig);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}: {stdout}\n{stderr}");
        assert!(stdout.contains("interrupted:"), "{name}: {stdout}");
        assert!(stdout.contains("Duration (avg / max)"), "{name}: {stdout}");
        let report: Value = serde_json::from_slice(
            &std::fs::read(out_dir.join("report.json")).expect("report.json"),
        )
        .expect("report.json is JSON");
        let n = report["lambda"]["invocations"]
            .as_array()
            .expect("invocations")
            .len();
        assert!((1..200).contains(&n), "{name}: {n} invocations kept");
        assert!(
            leftovers_of(pid).is_empty(),
            "{name}: {:?}",
            leftovers_of(pid)
        );
    }
}

#[test]
fn sigkill_leftovers_are_removed_by_clean_and_by_the_next_run() {
    let Some(build) = lambda_facility() else {
        return;
    };
    let tmp = scratch("lambda-cli-sigkill");
    let bin = env!("CARGO_BIN_EXE_lxprof");
    for next in ["clean", "run"] {
        let mut child = spawn_run(
            &build,
            &[
                "--invocations",
                "200",
                "--env",
                "HEADER_COUNTER_DELAY_MS=100",
            ],
            &tmp.join("killed"),
        );
        let pid = child.id();
        // Kill it once its environment exists (pid reuse aside, what a
        // closed terminal's SIGHUP to a stuck process or the OOM killer leave).
        assert!(
            wait_until(20, || leftovers_of(pid).len() >= 2),
            "no environment of {pid} appeared"
        );
        // Freeze the environment first, as between two invocations: its processes outlive
        // lxprof (a frozen process dies of SIGKILL only once thawed).
        for dir in leftovers_of(pid) {
            let _ = std::fs::write(dir.join("freezer.state"), "FROZEN");
            let _ = std::fs::write(dir.join("cgroup.freeze"), "1");
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        assert!(
            !leftovers_of(pid).is_empty(),
            "SIGKILL left nothing to test"
        );
        let out = if next == "clean" {
            Command::new(bin)
                .arg("clean")
                .output()
                .expect("lxprof clean")
        } else {
            Command::new(bin)
                .args([
                    "run",
                    "--lambda",
                    "--env",
                    "HEADER_COUNTER_DELAY_MS=0",
                    "-o",
                ])
                .arg(tmp.join("next"))
                .env("LXPROF_EXTENSIONS_BUILD", &build)
                .output()
                .expect("lxprof run")
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{next}: {stdout}\n{stderr}");
        assert!(
            leftovers_of(pid).is_empty(),
            "{next} left {:?}\n{stdout}\n{stderr}",
            leftovers_of(pid)
        );
        if next == "clean" {
            // Another test's run may have removed them first; either way nothing is left.
            assert!(stdout.starts_with("lxprof: "), "{stdout}");
        }
    }
}

#[test]
fn a_full_disk_keeps_the_summary_and_says_why_once() {
    let Some(build) = lambda_facility() else {
        return;
    };
    let full = scratch("lambda-cli-full");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&full)
        .status()
        .expect("mount");
    assert!(mounted.success(), "mount tmpfs on {}", full.display());
    // Fill it, leaving no room for report.json.
    let _ = std::fs::write(full.join("filler"), vec![0u8; 64 * 1024]);
    let out = Command::new(env!("CARGO_BIN_EXE_lxprof"))
        .args(["run", "--lambda", "--invocations", "2"])
        .args(["--env", "HEADER_COUNTER_DELAY_MS=0", "-o"])
        .arg(full.join("out"))
        .env("LXPROF_EXTENSIONS_BUILD", &build)
        .output()
        .expect("running lxprof");
    let _ = Command::new("umount").arg(&full).status();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2 of 2 succeeded"),
        "summary lost: {stdout}\n{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("No space left"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(errors[0].matches("No space left").count(), 1, "{stderr}");
    assert!(errors[0].contains("report.json"), "{stderr}");
}

#[test]
fn an_event_that_is_not_json_is_rejected_up_front() {
    let tmp = scratch("lambda-cli-event");
    let event = tmp.join("event.txt");
    std::fs::write(&event, "hello, not JSON").expect("event file");
    let out = Command::new(env!("CARGO_BIN_EXE_lxprof"))
        .args(["run", "--lambda", "--event"])
        .arg(&event)
        .output()
        .expect("running lxprof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("not JSON") && stderr.contains("event.txt"),
        "{stderr}"
    );
}

#[test]
fn host_paths_the_environment_cannot_see_are_named() {
    let Some(build) = lambda_facility() else {
        return;
    };
    let tmp = scratch("lambda-cli-hidden");
    // A host file under /tmp: the environment has its own /tmp.
    let hidden = std::env::temp_dir().join(format!("lxprof-hidden-{}", std::process::id()));
    std::fs::copy(build.join("functions/header-counter/bootstrap"), &hidden)
        .expect("copy bootstrap");
    let run = |args: &[&str], function: Option<&std::path::Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lxprof"));
        cmd.args(["run", "--lambda", "--env", "HEADER_COUNTER_DELAY_MS=0"])
            .args(args)
            .arg("-o")
            .arg(tmp.join("out"))
            .env("LXPROF_EXTENSIONS_BUILD", &build);
        if let Some(f) = function {
            cmd.arg("--function").arg(f);
        }
        cmd.output().expect("running lxprof")
    };
    let env_arg = format!("DATA_FILE={}", hidden.display());
    let out = run(&["--env", &env_arg], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: --env DATA_FILE=") && stderr.contains("its own /tmp"),
        "{stderr}"
    );
    // A bootstrap that is a symlink into /tmp.
    let function = tmp.join("function");
    std::fs::create_dir_all(&function).expect("function dir");
    std::os::unix::fs::symlink(&hidden, function.join("bootstrap")).expect("symlink");
    let out = run(&[], Some(&function));
    let _ = std::fs::remove_file(&hidden);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is a symlink to") && stderr.contains("copy the file"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("is a symlink to").count(), 1, "{stderr}");
}

#[test]
fn a_closed_terminal_keeps_the_finished_invocations() {
    use std::os::unix::process::CommandExt;
    let Some(build) = lambda_facility() else {
        return;
    };
    let out_dir = scratch("lambda-cli-hangup");
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty fills two fds; the null pointers ask for defaults.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lxprof"));
    cmd.args(["run", "--lambda", "--invocations", "200"])
        .args(["--env", "HEADER_COUNTER_DELAY_MS=100", "-o"])
        .arg(&out_dir)
        .env("LXPROF_EXTENSIONS_BUILD", &build);
    // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
    // controlling terminal is the pty, which becomes stdin, stdout and stderr.
    unsafe {
        cmd.pre_exec(move || {
            // The master stays the test's alone: closing it must hang the terminal up.
            libc::close(master);
            libc::setsid();
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            for fd in 0..3 {
                libc::dup2(slave, fd);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("running lxprof");
    // SAFETY: the parent's copy of the slave is not needed.
    unsafe { libc::close(slave) };
    // Read the terminal (a full pty would block lxprof) until an invocation finished (its
    // REPORT line), then close it: the kernel hangs up the session (SIGHUP), as when a
    // terminal window is closed.
    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < std::time::Duration::from_secs(60)
        && !String::from_utf8_lossy(&seen).contains("REPORT RequestId")
    {
        let mut pfd = libc::pollfd {
            fd: master,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling and reading our own fd into a local buffer.
        let n = unsafe {
            if libc::poll(&mut pfd, 1, 100) > 0 {
                libc::read(master, buf.as_mut_ptr().cast(), buf.len())
            } else {
                0
            }
        };
        if n > 0 {
            seen.extend_from_slice(&buf[..n as usize]);
        }
    }
    // SAFETY: closing our own fd.
    unsafe { libc::close(master) };
    let status = child.wait().expect("lxprof exits");
    assert_eq!(status.code(), Some(130), "{status:?}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("report.json"))
            .expect("report.json is JSON");
    let n = report["lambda"]["invocations"]
        .as_array()
        .map_or(0, Vec::len);
    assert!((1..200).contains(&n), "{n} invocations kept");
}
