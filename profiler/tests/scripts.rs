//! The Quick start's scripts run as root directly, and from another user
//! through sudo when it is installed (a fresh Debian machine used as root has
//! none): `scripts/as-root.sh`, which `demo.sh` and `test.sh` source.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

mod support;

use support::{repo, scratch, skip_or_fail};

/// Writes an executable file.
fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn quick_start_scripts_run_as_root_or_through_sudo() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip_or_fail("not root: the test switches to nobody");
        return;
    }
    for script in ["scripts/demo.sh", "scripts/test.sh"] {
        let text = std::fs::read_to_string(repo().join(script)).expect("script");
        assert!(
            text.contains("as-root.sh"),
            "{script} does not source as-root.sh"
        );
        assert!(
            !text.contains("included: `sudo"),
            "{script} still says sudo first"
        );
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    assert!(
        !readme.contains("    sudo scripts/demo.sh"),
        "README: sudo in the Quick start"
    );

    // A script like demo.sh, in a directory nobody can read.
    let dir = scratch("as-root");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::copy(repo().join("scripts/as-root.sh"), dir.join("as-root.sh")).expect("copy");
    let script = dir.join("job.sh");
    executable(
        &script,
        "#!/usr/bin/env bash\nset -euo pipefail\nsource \"$(dirname \"$0\")/as-root.sh\"\necho \"ran as $(id -u) with $*\"\n",
    );
    // As root: it just runs.
    let out = Command::new(&script)
        .arg("x")
        .output()
        .expect("run as root");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran as 0 with x\n");

    // As nobody without sudo: a clear word.
    let bare = dir.join("bin-without-sudo");
    std::fs::create_dir_all(&bare).expect("dir");
    let nobody = |path: &str| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&script)
            .arg("x")
            .env("PATH", path)
            .output()
            .expect("setpriv")
    };
    let out = nobody(&format!("{}:/usr/bin:/bin", bare.display()));
    if Command::new("sh")
        .args(["-c", "command -v sudo"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!(
            "sudo is installed: the no-sudo case is covered by the fake PATH only when /usr/bin has none"
        );
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("run it as root"), "{stderr}");
    }

    // As nobody with sudo: it re-runs itself through sudo with its arguments.
    let with_sudo = dir.join("bin-with-sudo");
    std::fs::create_dir_all(&with_sudo).expect("dir");
    executable(&with_sudo.join("sudo"), "#!/bin/sh\necho \"sudo $*\"\n");
    let out = nobody(&format!("{}:/usr/bin:/bin", with_sudo.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("sudo env PATH=")
            && stdout
                .trim_end()
                .ends_with(&format!("{} x", script.display())),
        "{stdout}"
    );
}
