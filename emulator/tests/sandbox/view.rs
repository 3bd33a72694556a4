//! What a process sees: files, user, hosts, /tmp; the gate; spawn errors.

use super::*;

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
    let (func_dir, l1_dir, l2_dir) = (func.clone(), l1.clone(), l2.clone());
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

    // Host paths behind in-sandbox paths, for symbolizing after the processes are gone.
    let host = |p: &str| sb.host_path(Path::new(p));
    assert_eq!(
        host("/var/task/bootstrap"),
        Some(func_dir.join("bootstrap"))
    );
    assert_eq!(host("/opt/which"), Some(l2_dir.join("which")));
    assert_eq!(host("/opt/extensions/x"), Some(l1_dir.join("extensions/x")));
    let y = host("/opt/extensions/y").expect("y");
    assert_eq!(
        std::fs::read(&y).ok(),
        std::fs::read(dir.join("extra/y")).ok()
    );
    assert_eq!(
        host(&format!("/tmp/{marker}")),
        Some(sb.tmp_dir().join(&marker))
    );
    assert_eq!(host("/usr/bin/env"), Some(PathBuf::from("/usr/bin/env")));
    assert_eq!(host("/opt/nothing-here"), None);
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
