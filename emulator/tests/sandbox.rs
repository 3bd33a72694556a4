//! Sandbox tests with real processes, cgroups and mount namespaces (root). With CI=true they
//! fail when the facilities are missing; otherwise they skip with a printed reason.
//!
//! Processes that need a known allocation or CPU work run this test binary again in "helper"
//! mode (`LXPROF_SANDBOX_HELPER`), see [`helper`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lxprof_emulator::sandbox::{Sandbox, SandboxCommand, SandboxSpec};

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

fn helper_cmd(what: &str) -> SandboxCommand {
    SandboxCommand {
        program: std::env::current_exe().expect("current exe"),
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

#[test]
fn environment_view_user_tmp_and_hosts() {
    if !available() {
        return;
    }
    let dir = scratch("view");
    let func = dir.join("function");
    write_exec(&func.join("bootstrap"), "#!/bin/sh\necho bootstrap\n");
    let (l1, l2) = (dir.join("layer1"), dir.join("layer2"));
    write_exec(&l1.join("extensions/x"), "#!/bin/sh\necho x\n");
    std::fs::write(l1.join("which"), "layer1").expect("write");
    std::fs::create_dir_all(&l2).expect("mkdir");
    std::fs::write(l2.join("which"), "layer2").expect("write");
    write_exec(&dir.join("extra/y"), "#!/bin/sh\necho y\n");
    let mut s = spec("view", func);
    s.layers = vec![l1, l2];
    s.extra_extensions = vec![dir.join("extra/y")];
    let sb = Sandbox::create(s).expect("create");
    assert_eq!(
        sb.extension_paths(),
        vec![
            PathBuf::from("/opt/extensions/x"),
            PathBuf::from("/opt/extensions/y")
        ]
    );

    let marker = format!("lxprof-sandbox-marker-{}", std::process::id());
    let script = format!(
        "set -e; id -u; id -g; test -x /var/task/bootstrap; /var/task/bootstrap; /opt/extensions/x; /opt/extensions/y; \
         cat /opt/which; echo; getent hosts sandbox.localdomain; echo hello > /tmp/{marker}; \
         if touch /var/task/nope 2>/dev/null; then echo var-task-writable; fi; \
         if touch /opt/nope 2>/dev/null; then echo opt-writable; fi"
    );
    let (code, out, err) = run(&sb, sh(&script));
    assert_eq!(code, Some(0), "stdout {out} stderr {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..6],
        ["65534", "65534", "bootstrap", "x", "y", "layer2"].as_slice(),
        "{out}"
    );
    assert!(
        lines[6].starts_with("127.0.0.1") && lines[6].contains("sandbox.localdomain"),
        "{out}"
    );
    assert!(
        !out.contains("writable"),
        "read-only mounts were writable: {out}"
    );

    // A second process of the same environment sees the file; the host's /tmp does not.
    let (code, out, _) = run(
        &sb,
        sh(&format!("cat /tmp/{marker}; stat -c %u /tmp/{marker}")),
    );
    assert_eq!((code, out.as_str()), (Some(0), "hello\n65534\n"));
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "the sandbox /tmp leaked to the host"
    );
    assert!(sb.tmp_dir().join(&marker).exists());
}

#[test]
fn gate_runs_before_exec_inside_the_cgroup() {
    if !available() {
        return;
    }
    let dir = scratch("gate");
    let sb = Sandbox::create(spec("gate", dir)).expect("create");
    let rt = runtime();
    let me = std::fs::read_link("/proc/self/exe").expect("exe");
    let mut seen = None;
    let child = rt
        .block_on(async {
            sb.spawn(sh("exit 7"), |pid| {
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let session = stat
                    .rsplit_once(") ")
                    .and_then(|(_, r)| r.split_whitespace().nth(3).map(str::to_owned));
                let uid = status
                    .lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(str::to_owned);
                std::thread::sleep(Duration::from_millis(50));
                let exe_later = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
                seen = Some((pid, exe, exe_later, sb.pids(), uid, session));
            })
        })
        .expect("spawn");
    let (pid, exe, exe_later, pids, uid, session) = seen.expect("gate ran");
    assert_eq!(
        session,
        Some(pid.to_string()),
        "the child is not a session leader"
    );
    assert_eq!(child.id(), Some(pid));
    assert_eq!(
        exe.as_deref(),
        Some(me.as_path()),
        "exec happened before the gate"
    );
    assert_eq!(
        exe_later.as_deref(),
        Some(me.as_path()),
        "exec did not wait for the gate"
    );
    assert!(
        pids.contains(&pid),
        "pid {pid} not in the cgroup during the gate: {pids:?}"
    );
    assert!(uid.is_some_and(|u| u.split_whitespace().nth(1) == Some("65534")));
    let out = rt.block_on(child.wait_with_output()).expect("wait");
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn spawn_errors_name_the_program() {
    if !available() {
        return;
    }
    let sb = Sandbox::create(spec("missing", scratch("missing"))).expect("create");
    let rt = runtime();
    let mut cmd = sh("true");
    cmd.program = "/var/task/does-not-exist".into();
    let err = rt
        .block_on(async { sb.spawn(cmd, |_| {}) })
        .expect_err("must fail");
    assert!(
        err.to_string().contains("/var/task/does-not-exist"),
        "{err}"
    );
    let mut cmd = sh("true");
    cmd.cwd = "/no/such/dir".into();
    let err = rt
        .block_on(async { sb.spawn(cmd, |_| {}) })
        .expect_err("must fail");
    assert!(err.to_string().contains("working directory"), "{err}");
    assert!(sb.pids().is_empty());
}

#[test]
fn memory_peak_and_oom_kill() {
    if !available() {
        return;
    }
    let mut s = spec("mem", scratch("mem"));
    s.memory_mb = 128;
    let sb = Sandbox::create(s).expect("create");
    sb.reset_memory_peak().expect("reset");
    let (code, _, err) = run(&sb, helper_cmd("alloc 64 100"));
    assert_eq!(code, Some(0), "{err}");
    let peak = sb.memory_peak_bytes().expect("peak");
    assert!(
        ((64 << 20)..(128 << 20)).contains(&peak),
        "peak {peak} for a 64 MiB allocation"
    );
    assert_eq!(sb.oom_kills().expect("oom"), 0);
    sb.reset_memory_peak().expect("reset");
    let after = sb.memory_peak_bytes().expect("peak");
    assert!(after < 32 << 20, "peak after reset {after}");
    assert!(sb.memory_current_bytes().expect("current") <= after.max(1 << 20) + (1 << 20));

    let (code, _, _) = run(&sb, helper_cmd("alloc 256 0"));
    assert_eq!(code, None, "the hog was not killed by a signal");
    assert!(sb.oom_kills().expect("oom") >= 1);
    assert!(sb.memory_peak_bytes().expect("peak") <= 128 << 20);
}

fn wait_cpu_growth(sb: &Sandbox, over: Duration) -> u64 {
    let a = sb.cpu_usage_ns().expect("cpu");
    std::thread::sleep(over);
    sb.cpu_usage_ns().expect("cpu") - a
}

#[test]
fn freeze_stops_cpu_accounting_and_thaw_resumes() {
    if !available() {
        return;
    }
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::create(spec("freeze", scratch("freeze"))).expect("create");
    freeze_checks(&sb);
}

fn freeze_checks(sb: &Sandbox) {
    let rt = runtime();
    let _child = rt
        .block_on(async { sb.spawn(helper_cmd("busy"), |_| {}) })
        .expect("spawn");
    assert!(
        wait_cpu_growth(sb, Duration::from_millis(300)) > 30_000_000,
        "the busy loop does not run"
    );
    sb.freeze().expect("freeze");
    let err = rt
        .block_on(async { sb.spawn(sh("true"), |_| {}) })
        .expect_err("spawn while frozen");
    assert!(err.to_string().contains("thaw"), "{err}");
    std::thread::sleep(Duration::from_millis(20));
    let frozen = wait_cpu_growth(sb, Duration::from_millis(400));
    assert!(frozen < 2_000_000, "{frozen} ns of CPU while frozen");
    sb.thaw().expect("thaw");
    assert!(
        wait_cpu_growth(sb, Duration::from_millis(300)) > 30_000_000,
        "no CPU after thaw"
    );
    sb.kill_all().expect("kill_all");
    assert!(sb.pids().is_empty());
}

#[test]
fn cpu_limit_quarter_cpu_is_four_times_slower() {
    if !available() {
        return;
    }
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let work = "spin 80000000";
    let timed = |cap: Option<f64>, tag: &str, runs: usize| {
        let mut s = spec(&format!("cpu-{tag}"), scratch(&format!("cpu-{tag}")));
        s.cpu_limit = cap;
        let sb = Sandbox::create(s).expect("create");
        let mut best = f64::MAX;
        for _ in 0..runs {
            let t = Instant::now();
            let (code, _, err) = run(&sb, helper_cmd(work));
            assert_eq!(code, Some(0), "{err}");
            best = best.min(t.elapsed().as_secs_f64());
        }
        (
            best,
            sb.cpu_usage_ns().expect("cpu") as f64 / 1e9 / runs as f64,
        )
    };
    // The uncapped time is the best of three. On a loaded machine the uncapped run gets less
    // than a CPU (its wall time exceeds its CPU time) while the capped one still gets its
    // quarter; then the uncapped baseline is its CPU time: its wall time on an idle CPU.
    let (free, free_cpu) = timed(None, "free", 3);
    let (capped, capped_cpu) = timed(Some(0.25), "quarter", 1);
    let loaded = free_cpu / free < 0.9;
    let baseline = if loaded { free_cpu } else { free };
    let ratio = capped / baseline;
    eprintln!(
        "uncapped {free:.3}s (cpu {free_cpu:.3}s{}), capped 0.25: {capped:.3}s (cpu {capped_cpu:.3}s): ratio {ratio:.2}",
        if loaded {
            ", machine loaded: CPU time is the baseline"
        } else {
            ""
        }
    );
    assert!(
        (capped_cpu / free_cpu - 1.0).abs() < 0.25,
        "not the same work: cpu {free_cpu:.3}s vs {capped_cpu:.3}s"
    );
    assert!(
        (3.0..=5.0).contains(&ratio),
        "wall-time ratio {ratio:.2} not ≈4 (uncapped {free:.3}s, cpu {free_cpu:.3}s; capped {capped:.3}s)"
    );
}

#[test]
fn drop_leaves_nothing_behind() {
    if !available() {
        return;
    }
    let sb = Sandbox::create(spec("drop", scratch("drop"))).expect("create");
    let rt = runtime();
    let children: Vec<_> = (0..2)
        .map(|_| {
            rt.block_on(async { sb.spawn(sh("sleep 60 & sleep 60"), |_| {}) })
                .expect("spawn")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let pids = sb.pids();
    assert!(pids.len() >= 4, "{pids:?}");
    let (cgroups, state) = (sb.cgroup_paths(), sb.state_dir().to_path_buf());
    assert!(cgroups.iter().all(|c| c.is_dir()) && state.is_dir());
    std::mem::forget(children); // the sandbox, not kill_on_drop, must kill them
    drop(sb);
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "pid {pid} survived: {stat}"
        );
    }
    for c in cgroups {
        assert!(!c.exists(), "{} remains", c.display());
    }
    assert!(!state.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(state.to_string_lossy().as_ref()) && !mounts.contains("/var/task"));
}

#[test]
fn v2_backend_freezer_accounting_and_kill_on_the_unified_mount() {
    if !available() {
        return;
    }
    let unified = Path::new("/sys/fs/cgroup/unified");
    let root = if lxprof_emulator::sandbox::cgroup::is_cgroup2(Path::new("/sys/fs/cgroup")) {
        Path::new("/sys/fs/cgroup")
    } else if lxprof_emulator::sandbox::cgroup::is_cgroup2(unified) {
        unified
    } else {
        eprintln!("skipping: no cgroup2 mount");
        return;
    };
    let _t = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let s = spec("v2core", scratch("v2core"));
    let cg =
        lxprof_emulator::sandbox::cgroup::Cgroup::create_v2_core(root, &s.name).expect("v2 group");
    let sb = Sandbox::create_with_cgroup(s, cg).expect("create");
    let paths = sb.cgroup_paths();
    freeze_checks(&sb);
    drop(sb);
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn cleanup_stale_removes_dead_runs_only() {
    if !available() {
        return;
    }
    let live = Sandbox::create(spec("live", scratch("live"))).expect("create");
    let name = format!("test-stale-{}", std::process::id());
    let state = Path::new(lxprof_emulator::sandbox::mounts::STATE_ROOT).join(&name);
    std::fs::create_dir_all(&state).expect("state");
    std::fs::write(state.join("owner"), "999999999 1\n").expect("owner");
    let parents = lxprof_emulator::sandbox::lxprof_parents();
    assert!(!parents.is_empty());
    for p in &parents {
        std::fs::create_dir_all(p.join(&name)).expect("stale cgroup");
    }
    let report = lxprof_emulator::sandbox::cleanup_stale().expect("cleanup");
    assert!(!state.exists());
    for p in &parents {
        assert!(!p.join(&name).exists());
        assert!(report.cgroups_removed.contains(&p.join(&name)));
    }
    assert!(live.cgroup_paths().iter().all(|p| p.is_dir()) && live.state_dir().is_dir());
}

#[test]
fn signal_all_reaches_every_process() {
    if !available() {
        return;
    }
    let t = Instant::now();
    let sb = Sandbox::create(spec("signal", scratch("signal"))).expect("create");
    let created = t.elapsed();
    let rt = runtime();
    let t = Instant::now();
    let (code, _, _) = run(&sb, sh("true"));
    let trivial = t.elapsed();
    assert_eq!(code, Some(0));
    eprintln!("create {created:?}, spawn+exit of `true` {trivial:?}");
    let script = "trap 'exit 3' TERM; while :; do sleep 0.02; done";
    let children: Vec<_> = (0..2)
        .map(|_| {
            rt.block_on(async { sb.spawn(sh(script), |_| {}) })
                .expect("spawn")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    sb.signal_all(lxprof_emulator::sandbox::Signal::SIGTERM);
    for c in children {
        let out = rt.block_on(c.wait_with_output()).expect("wait");
        assert_eq!(out.status.code(), Some(3));
    }
    sb.kill_all().expect("kill_all");
    assert!(sb.pids().is_empty());
}

#[test]
fn concurrent_spawns_with_slow_gates_all_start() {
    if !available() {
        return;
    }
    let boxes: Vec<Sandbox> = (0..2)
        .map(|i| {
            Sandbox::create(spec(&format!("conc{i}"), scratch(&format!("conc{i}"))))
                .expect("create")
        })
        .collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for (i, sb) in boxes.iter().enumerate() {
            for j in 0..3 {
                s.spawn(move || {
                    let rt = runtime();
                    let child = rt
                        .block_on(async {
                            sb.spawn(sh(&format!("echo {i}-{j}")), |_| {
                                std::thread::sleep(Duration::from_millis(200))
                            })
                        })
                        .expect("spawn");
                    let out = rt.block_on(child.wait_with_output()).expect("wait");
                    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{i}-{j}\n"));
                });
            }
        }
    });
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "6 concurrent gated spawns took {took:?}"
    );
}

#[test]
fn emulator_death_kills_its_environments_and_cleanup_stale_removes_the_rest() {
    if !available() {
        return;
    }
    use std::io::BufRead;
    let name = format!("orphan-{}", std::process::id());
    let _ = scratch(&name);
    let mut maker = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["helper", "--exact", "--test-threads=1", "--nocapture"])
        .env("LXPROF_SANDBOX_HELPER", format!("orphan {name}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the orphan maker");
    let stdout = maker.stdout.take().expect("stdout");
    let line = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("pid ").map(|(_, p)| p.trim().to_owned()))
        .expect("pid line");
    let pid: u32 = line.parse().expect("pid");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    maker.kill().expect("SIGKILL the maker");
    maker.wait().expect("wait");
    let deadline = Instant::now() + Duration::from_secs(5);
    let gone = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    };
    while !gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        gone(pid),
        "the sandboxed process {pid} outlived the emulator"
    );
    // Its cgroups and state dir remain (no Drop ran); cleanup_stale removes them.
    let sandbox_name = spec(&name, PathBuf::new())
        .name
        .replace(&std::process::id().to_string(), "");
    let _ = sandbox_name;
    let state_root = Path::new(lxprof_emulator::sandbox::mounts::STATE_ROOT);
    let leftovers: Vec<PathBuf> = std::fs::read_dir(state_root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains(&name))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    let report = lxprof_emulator::sandbox::cleanup_stale().expect("cleanup");
    assert!(report.state_dirs_removed.contains(&leftovers[0]));
    assert!(
        report
            .cgroups_removed
            .iter()
            .any(|p| p.to_string_lossy().contains(&name))
    );
    assert!(!leftovers[0].exists());
}
