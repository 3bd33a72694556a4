//! The environment's file view: the host-side state directory (writable `/tmp`, `/etc/hosts`,
//! extra extensions, the owner record) and the mount plan a child applies in its own mount
//! namespace (`/var/task`, `/opt` overlay, `/tmp`, `/etc/hosts`).
//!
//! Every mount happens inside the child's private mount namespace, except the size-limited
//! `/tmp` file system at the state directory's `tmp` (see `ephemeral`): a crash leaves
//! directories and that mount behind, which `cleanup_stale` removes.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use super::{SandboxError, SandboxSpec, ephemeral};

/// Root of every environment's state directory.
pub const STATE_ROOT: &str = "/run/lxprof/sandbox";

/// Contents of the environment's `/etc/hosts`.
pub const HOSTS: &str =
    "127.0.0.1\tlocalhost sandbox.localdomain sandbox\n::1\tlocalhost ip6-localhost\n";

fn io_err(path: &Path, what: &str, e: io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_path_buf(),
        what: what.to_string(),
        source: e,
    }
}

/// One `mount(2)` call, prepared before fork.
#[derive(Debug)]
pub struct MountOp {
    /// Source (or `None`).
    pub source: Option<CString>,
    /// Mount point inside the namespace.
    pub target: CString,
    /// File system type (or `None`).
    pub fstype: Option<CString>,
    /// `MS_*` flags.
    pub flags: libc::c_ulong,
    /// File-system data (overlay options).
    pub data: Option<CString>,
    /// Human description for errors.
    pub what: String,
}

fn cstr(p: &Path) -> Result<CString, SandboxError> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| SandboxError::InvalidSpec(format!("path {} contains a NUL byte", p.display())))
}

/// The host-side state of one environment.
#[derive(Debug)]
pub struct StateDir {
    /// `STATE_ROOT/<name>`.
    pub root: PathBuf,
}

impl StateDir {
    /// `STATE_ROOT/<name>`/tmp, bound at `/tmp`.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn hosts(&self) -> PathBuf {
        self.root.join("hosts")
    }
    fn ext_top(&self) -> PathBuf {
        self.root.join("ext")
    }
    fn empty(&self) -> PathBuf {
        self.root.join("empty")
    }

    /// Creates the state directory: `/tmp` owned by `run_as`, the hosts file, copies of the
    /// extra extensions under `ext/extensions/`, an empty bottom layer, and the owner record.
    pub fn create(spec: &SandboxSpec, uid: u32, gid: u32) -> Result<StateDir, SandboxError> {
        let root = Path::new(STATE_ROOT).join(&spec.name);
        // Another environment's drop may remove the empty STATE_ROOT in between: retry.
        let mut tries = 0;
        loop {
            fs::create_dir_all(STATE_ROOT)
                .map_err(|e| io_err(Path::new(STATE_ROOT), "create", e))?;
            match fs::create_dir(&root) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(SandboxError::Exists { path: root });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 5 => tries += 1,
                Err(e) => return Err(io_err(&root, "create the state directory", e)),
            }
        }
        let sd = StateDir { root };
        let r = sd.fill(spec, uid, gid);
        if let Err(e) = r {
            ephemeral::unmount(&sd.root);
            let _ = fs::remove_dir_all(&sd.root);
            return Err(e);
        }
        Ok(sd)
    }

    /// Removes the state directory, and `STATE_ROOT` and its parent if they are left empty.
    pub fn remove(&self) -> io::Result<()> {
        ephemeral::unmount(&self.root);
        let r = fs::remove_dir_all(&self.root);
        let state_root = Path::new(STATE_ROOT);
        if fs::remove_dir(state_root).is_ok()
            && let Some(p) = state_root.parent()
        {
            let _ = fs::remove_dir(p);
        }
        r
    }

    fn fill(&self, spec: &SandboxSpec, uid: u32, gid: u32) -> Result<(), SandboxError> {
        let set_mode = |p: &Path, m: u32| {
            fs::set_permissions(p, fs::Permissions::from_mode(m)).map_err(|e| io_err(p, "chmod", e))
        };
        // The owner record first: cleanup_stale of another process skips live environments.
        let owner = self.root.join("owner");
        let me = std::process::id();
        let start = process_start_time(me).unwrap_or(0);
        fs::write(&owner, format!("{me} {start}\n")).map_err(|e| io_err(&owner, "write", e))?;
        set_mode(&self.root, 0o755)?;
        let tmp = self.tmp();
        fs::create_dir(&tmp).map_err(|e| io_err(&tmp, "create", e))?;
        if let Some(mb) = spec.tmp_mb
            && let Err(e) = ephemeral::mount(&self.root, &tmp, mb)
        {
            // Without mkfs.ext4 or loop devices (a container), /tmp stays a plain directory:
            // said once per process, not fatal.
            ephemeral::unmount(&self.root);
            let _ = fs::remove_file(self.root.join("tmp.img"));
            ephemeral::warn_unlimited(mb, &e);
        }
        chown(&tmp, Some(uid), Some(gid)).map_err(|e| io_err(&tmp, "chown", e))?;
        set_mode(&tmp, 0o1777)?;
        fs::write(self.hosts(), HOSTS).map_err(|e| io_err(&self.hosts(), "write", e))?;
        set_mode(&self.hosts(), 0o644)?;
        fs::create_dir(self.empty()).map_err(|e| io_err(&self.empty(), "create", e))?;
        let exts = self.ext_top().join("extensions");
        fs::create_dir_all(&exts).map_err(|e| io_err(&exts, "create", e))?;
        for src in &spec.extra_extensions {
            let name = src.file_name().ok_or_else(|| {
                SandboxError::InvalidSpec(format!(
                    "extension path {} has no file name",
                    src.display()
                ))
            })?;
            let dst = exts.join(name);
            if dst.exists() {
                return Err(SandboxError::InvalidSpec(format!(
                    "two extra extensions are named {}: rename one",
                    name.to_string_lossy()
                )));
            }
            fs::copy(src, &dst).map_err(|e| io_err(src, "copy the extension executable", e))?;
            // Readable by the environment's user; executable only if the original is (Lambda
            // does not chmod: a non-executable extension fails to launch).
            let executable = fs::metadata(src).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
            set_mode(&dst, if executable { 0o755 } else { 0o644 })?;
        }
        Ok(())
    }

    /// The mount plan applied in each child's namespace.
    pub fn mount_plan(&self, spec: &SandboxSpec) -> Result<Vec<MountOp>, SandboxError> {
        let none = None;
        let mut lower = vec![self.ext_top()];
        lower.extend(spec.layers.iter().rev().cloned());
        lower.push(self.empty());
        let lowerdir = lower
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":");
        let var_task = cstr(Path::new("/var/task"))?;
        let hosts = cstr(Path::new("/etc/hosts"))?;
        let op = |source: Option<CString>,
                  target: &CString,
                  fstype: Option<&str>,
                  flags,
                  data: Option<CString>,
                  what: String| MountOp {
            source,
            target: target.clone(),
            fstype: fstype.map(|s| CString::new(s).unwrap_or_default()),
            flags,
            data,
            what,
        };
        let root = cstr(Path::new("/"))?;
        let opt = cstr(Path::new("/opt"))?;
        let tmp = cstr(Path::new("/tmp"))?;
        let data = CString::new(format!("lowerdir={lowerdir}"))
            .map_err(|_| SandboxError::InvalidSpec("layer path contains a NUL byte".into()))?;
        Ok(vec![
            op(
                none.clone(),
                &root,
                None,
                libc::MS_REC | libc::MS_PRIVATE,
                None,
                "making / private".into(),
            ),
            op(
                Some(cstr(&spec.function_dir)?),
                &var_task,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
                format!("binding {} at /var/task", spec.function_dir.display()),
            ),
            op(
                none.clone(),
                &var_task,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                None,
                "remounting /var/task read-only".into(),
            ),
            op(
                Some(cstr(Path::new("overlay"))?),
                &opt,
                Some("overlay"),
                libc::MS_RDONLY,
                Some(data),
                format!("mounting an overlay (lowerdir={lowerdir}) at /opt"),
            ),
            op(
                Some(cstr(&self.tmp())?),
                &tmp,
                None,
                libc::MS_BIND,
                None,
                format!("binding {} at /tmp", self.tmp().display()),
            ),
            op(
                Some(cstr(&self.hosts())?),
                &hosts,
                None,
                libc::MS_BIND,
                None,
                format!("binding {} at /etc/hosts", self.hosts().display()),
            ),
            op(
                none,
                &hosts,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                None,
                "remounting /etc/hosts read-only".into(),
            ),
        ])
    }

    /// The host path behind an in-sandbox path (as `/proc/PID/maps` shows it), for reading
    /// binaries after their process is gone: `/var/task/…` → the function dir, `/opt/…` → the
    /// topmost layer holding it (the extra extensions' copies first), `/tmp/…` → the state dir,
    /// `/etc/hosts` → the environment's hosts file, anything else → itself (the host file system
    /// is visible as is). `None` for a relative path or `/opt` paths no layer holds.
    pub fn host_path(&self, spec: &SandboxSpec, path: &Path) -> Option<PathBuf> {
        if !path.is_absolute() {
            return None;
        }
        if let Ok(rest) = path.strip_prefix("/var/task") {
            return Some(spec.function_dir.join(rest));
        }
        if let Ok(rest) = path.strip_prefix("/opt") {
            let mut lower = vec![self.ext_top()];
            lower.extend(spec.layers.iter().rev().cloned());
            return lower
                .into_iter()
                .map(|l| l.join(rest))
                .find(|p| p.symlink_metadata().is_ok());
        }
        if let Ok(rest) = path.strip_prefix("/tmp") {
            return Some(self.tmp().join(rest));
        }
        if path == Path::new("/etc/hosts") {
            return Some(self.hosts());
        }
        Some(path.to_path_buf())
    }

    /// Sorted in-sandbox paths of every `/opt/extensions/*` file (layers + extra extensions).
    pub fn extension_paths(&self, spec: &SandboxSpec) -> Vec<PathBuf> {
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        let mut dirs: Vec<PathBuf> = spec.layers.iter().map(|l| l.join("extensions")).collect();
        dirs.push(self.ext_top().join("extensions"));
        for d in dirs {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| !t.is_dir()) {
                    names.push(e.file_name());
                }
            }
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| Path::new("/opt/extensions").join(n))
            .collect()
    }
}

/// The in-sandbox mounts that cover host paths: a host file under one of them is not what a
/// process inside the environment sees there.
pub const HIDDEN: [&str; 4] = ["/tmp", "/var/task", "/opt", "/etc/hosts"];

/// The mount of the environment's file view that hides host path `p` (`/tmp`, `/var/task`,
/// `/opt`, `/etc/hosts`), if any. `p` is taken as it is (resolve symlinks first).
pub fn hidden_inside(p: &Path) -> Option<&'static str> {
    HIDDEN.into_iter().find(|m| p.starts_with(m))
}

/// A symlink `link` whose target the environment cannot see (it lies under a mount that hides
/// it): the error says which and what to do. Regular files and visible targets pass.
pub fn check_link_visible(link: &Path) -> Result<(), SandboxError> {
    if !link
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Ok(());
    }
    let Ok(target) = fs::canonicalize(link) else {
        return Ok(());
    };
    match hidden_inside(&target) {
        Some(m) => Err(SandboxError::InvalidSpec(format!(
            "{} is a symlink to {}, which the environment cannot see (its own {m} hides the host's): copy the file instead",
            link.display(),
            target.display()
        ))),
        None => Ok(()),
    }
}

/// Makes sure the host has the mount points the plan needs (`/var/task`, `/opt`, `/etc/hosts`).
pub fn ensure_mount_points() -> Result<(), SandboxError> {
    for d in ["/var/task", "/opt", "/tmp"] {
        fs::create_dir_all(d).map_err(|e| io_err(Path::new(d), "create the mount point", e))?;
    }
    let hosts = Path::new("/etc/hosts");
    if !hosts.is_file() {
        return Err(io_err(
            hosts,
            "find the mount point",
            io::Error::other("create an /etc/hosts file on the host"),
        ));
    }
    Ok(())
}

/// Field 22 of `/proc/PID/stat` (start time in clock ticks after boot), to tell a live owner
/// from a reused pid.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process recorded in `state/owner` is still alive.
pub fn owner_alive(state: &Path) -> bool {
    let Ok(s) = fs::read_to_string(state.join("owner")) else {
        return false;
    };
    let mut it = s.split_whitespace();
    let (Some(pid), Some(start)) = (
        it.next().and_then(|p| p.parse::<u32>().ok()),
        it.next().and_then(|p| p.parse::<u64>().ok()),
    ) else {
        return false;
    };
    process_start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable_and_owner_alive_matches() {
        let me = std::process::id();
        assert!(process_start_time(me).is_some());
        let dir = std::env::temp_dir().join(format!("lxprof-owner-test-{me}"));
        let _ = fs::create_dir_all(&dir);
        fs::write(
            dir.join("owner"),
            format!("{me} {}\n", process_start_time(me).unwrap_or(0)),
        )
        .ok();
        assert!(owner_alive(&dir));
        fs::write(dir.join("owner"), format!("{me} 1\n")).ok();
        assert!(!owner_alive(&dir));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn paths_under_the_environments_mounts_are_hidden() {
        assert_eq!(hidden_inside(Path::new("/tmp/x/target/f")), Some("/tmp"));
        assert_eq!(hidden_inside(Path::new("/opt/ext")), Some("/opt"));
        assert_eq!(hidden_inside(Path::new("/tmpfoo")), None);
        assert_eq!(hidden_inside(Path::new("/var/tmp/x")), None);
        let dir = std::env::temp_dir().join(format!("lxprof-link-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("ok")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.join("hidden")).unwrap();
        assert!(check_link_visible(&dir.join("ok")).is_ok());
        let e = check_link_visible(&dir.join("hidden"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("its own /tmp"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hosts_maps_sandbox_localdomain_to_loopback() {
        assert!(
            HOSTS
                .lines()
                .any(|l| l.starts_with("127.0.0.1") && l.contains("sandbox.localdomain"))
        );
    }
}
