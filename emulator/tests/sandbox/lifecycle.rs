//! Lifetime: drop, v2 backend, stale cleanup, signals, concurrency, emulator death.

use super::*;

/// Serializes the tests that call `cleanup_stale` (each would remove the other's fixture).
static STALE: Mutex<()> = Mutex::new(());

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
    super::resources::freeze_checks(&sb);
    drop(sb);
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn cleanup_stale_removes_dead_runs_only() {
    if !available() {
        return;
    }
    let _s = STALE.lock().unwrap_or_else(|e| e.into_inner());
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
    // Another process's cleanup_stale may have been first: what matters is that it is gone.
    for p in &parents {
        assert!(!p.join(&name).exists());
    }
    assert!(report.cgroups_removed.iter().all(|p| !p.exists()));
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
    let stale_cgroups: Vec<PathBuf> = lxprof_emulator::sandbox::lxprof_parents()
        .iter()
        .flat_map(|p| std::fs::read_dir(p).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(&name))
        .collect();
    assert!(!stale_cgroups.is_empty());
    let _s = STALE.lock().unwrap_or_else(|e| e.into_inner());
    let report = lxprof_emulator::sandbox::cleanup_stale().expect("cleanup");
    // Another process's cleanup_stale may have been first: what matters is that it is gone.
    assert!(report.state_dirs_removed.iter().all(|p| !p.exists()));
    assert!(
        stale_cgroups.iter().all(|p| !p.exists()),
        "{stale_cgroups:?} remain"
    );
    assert!(!leftovers[0].exists());
}

#[test]
fn spawn_async_from_a_runtime() {
    if !available() {
        return;
    }
    let sb = std::sync::Arc::new(Sandbox::create(spec("async", scratch("async"))).expect("create"));
    let rt = runtime();
    let out = rt
        .block_on(async {
            let (tx, rx) = std::sync::mpsc::channel();
            let child = sb
                .spawn_async(sh("echo async"), move |pid| {
                    let _ = tx.send(pid);
                })
                .await?;
            let pid = rx.recv().ok();
            assert_eq!(child.id(), pid);
            Ok::<_, lxprof_emulator::sandbox::SandboxError>(child.wait_with_output().await)
        })
        .expect("spawn_async")
        .expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "async\n");
}
