//! Checks before recording, each failing with a one-line error that says what
//! to do: root, BTF, tracefs, the command to launch, the pid to follow.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the kernel's BTF must be for CO-RE programs.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Where lxprof expects (and mounts) tracefs.
pub const TRACEFS: &str = "/sys/kernel/tracing";

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("lxprof record needs root (euid is {euid}): run it with sudo")]
    NotRoot { euid: u32 },
    #[error("no kernel BTF at {VMLINUX_BTF}: use a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error(
        "tracefs is not mounted and could not be mounted at {TRACEFS} ({source}): run `mount -t tracefs tracefs {TRACEFS}`"
    )]
    Tracefs {
        #[source]
        source: std::io::Error,
    },
    #[error("command not found: {name:?} (not an executable file, nor in PATH)")]
    CommandNotFound { name: OsString },
    #[error("no command given: put it after `--`, e.g. `lxprof record -- ./my-program`")]
    EmptyCommand,
    #[error("no process with pid {pid}: check it with `ps -p {pid}`")]
    NoSuchPid { pid: u32 },
}

/// Fails unless the effective user is root.
pub fn check_root() -> Result<(), PreflightError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        Ok(())
    } else {
        Err(PreflightError::NotRoot { euid })
    }
}

/// Fails unless the kernel exposes its BTF.
pub fn check_btf() -> Result<(), PreflightError> {
    if Path::new(VMLINUX_BTF).exists() {
        Ok(())
    } else {
        Err(PreflightError::NoBtf)
    }
}

fn tracefs_mounted() -> bool {
    Path::new(TRACEFS).join("events").is_dir()
}

/// Mounts tracefs at [`TRACEFS`] when it is not mounted yet.
pub fn ensure_tracefs() -> Result<(), PreflightError> {
    if tracefs_mounted() {
        return Ok(());
    }
    let cstr = |s: &str| CString::new(s).map_err(|e| std::io::Error::other(e.to_string()));
    let (src, target) = match (cstr("tracefs"), cstr(TRACEFS)) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(source), _) | (_, Err(source)) => return Err(PreflightError::Tracefs { source }),
    };
    // SAFETY: valid NUL-terminated strings; a null data pointer is allowed.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(PreflightError::Tracefs {
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: valid NUL-terminated path.
    path.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

/// Resolves the program as execvp would: a name containing `/` is a path,
/// anything else is searched in `PATH`.
pub fn resolve_command(name: &OsStr) -> Result<PathBuf, PreflightError> {
    if name.is_empty() {
        return Err(PreflightError::EmptyCommand);
    }
    let not_found = || PreflightError::CommandNotFound {
        name: name.to_os_string(),
    };
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(not_found())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(not_found)
}

/// Fails unless process `pid` exists (and is not a zombie).
pub fn check_pid(pid: u32) -> Result<(), PreflightError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|_| PreflightError::NoSuchPid { pid })?;
    // State is the first field after the parenthesised comm.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if pid == 0 || state == Some('Z') || state == Some('X') {
        return Err(PreflightError::NoSuchPid { pid });
    }
    Ok(())
}

/// Root, BTF and tracefs: what every recording needs.
pub fn check_system() -> Result<(), PreflightError> {
    check_root()?;
    check_btf()?;
    ensure_tracefs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_commands_like_execvp() {
        assert!(resolve_command(OsStr::new("sh")).is_ok());
        assert!(resolve_command(OsStr::new("/bin/sh")).is_ok());
        let err = resolve_command(OsStr::new("lxprof-no-such-command")).unwrap_err();
        assert!(matches!(err, PreflightError::CommandNotFound { .. }));
        assert!(err.to_string().contains("lxprof-no-such-command"));
        assert!(matches!(
            resolve_command(OsStr::new("")),
            Err(PreflightError::EmptyCommand)
        ));
        // A directory is not a command.
        assert!(resolve_command(OsStr::new("/tmp/")).is_err());
    }

    #[test]
    fn checks_pids() {
        assert!(check_pid(std::process::id()).is_ok());
        let err = check_pid(0x7fff_fff0).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no process with pid {}: check it with `ps -p {}`",
                0x7fff_fff0, 0x7fff_fff0
            )
        );
    }
}
