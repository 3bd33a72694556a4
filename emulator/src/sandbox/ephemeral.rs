//! The environment's `/tmp` of a fixed size, as Lambda's ephemeral storage (512 MB by default,
//! up to 10,240 MB): a sparse ext4 image in the state directory, loop-mounted on the host at
//! the state directory's `tmp` (each process's namespace then binds it at `/tmp`). On disk,
//! like Lambda's: a file written there is not the function's memory. The loop device is
//! released with the mount (autoclear); a crash leaves a mount that `cleanup_stale` unmounts.
//! Where no image can be made or mounted (no mkfs.ext4, no loop device in a container), `/tmp`
//! stays an unlimited directory and a warning says so once.

use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use super::SandboxError;

/// The image's file name in the state directory.
const IMAGE: &str = "tmp.img";

fn io_err(path: &Path, what: &str, e: io::Error) -> SandboxError {
    SandboxError::Io {
        path: path.to_path_buf(),
        what: what.to_string(),
        source: e,
    }
}

/// A system tool by its usual place (root's PATH may lack the sbin directories), else by name.
fn tool(name: &str) -> Command {
    let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    match found {
        Some(p) => Command::new(p),
        None => Command::new(name),
    }
}

/// Runs `cmd`; its stderr becomes the error.
fn run(mut cmd: Command, path: &Path, what: &str) -> Result<(), SandboxError> {
    let out = cmd.output().map_err(|e| {
        let hint = format!(
            "{e} (is {:?} installed? e2fsprogs and mount provide it)",
            cmd.get_program()
        );
        io_err(path, what, io::Error::other(hint))
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(io_err(path, what, io::Error::other(stderr)))
}

/// Makes `state/tmp.img` of `mb` MB and mounts it at `tmp` (an existing empty directory).
pub fn mount(state: &Path, tmp: &Path, mb: u32) -> Result<(), SandboxError> {
    let image = state.join(IMAGE);
    let f = fs::File::create(&image).map_err(|e| io_err(&image, "create", e))?;
    f.set_len(u64::from(mb) << 20)
        .map_err(|e| io_err(&image, "size", e))?;
    drop(f);
    let mut mkfs = tool("mkfs.ext4");
    // No journal, no reserved blocks, lazy init: a 512 MB image in ~20 ms, all of it usable.
    mkfs.args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
        .args(["-E", "lazy_itable_init=1,nodiscard"])
        .arg(&image);
    run(mkfs, &image, "make the /tmp file system (mkfs.ext4)")?;
    let mut mount = tool("mount");
    mount
        .args(["-t", "ext4", "-o", "loop,nosuid,nodev"])
        .arg(&image)
        .arg(tmp);
    run(mount, tmp, "mount the /tmp file system")?;
    let _ = fs::remove_dir(tmp.join("lost+found"));
    Ok(())
}

/// Says once per process that `/tmp` could not be limited to `mb` MB, and why.
pub fn warn_unlimited(mb: u32, why: &SandboxError) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "lxprof: warning: /tmp is not limited to {mb} MB (Lambda's ephemeral storage): {why}"
        );
    }
}

/// Unmounts `state/tmp` if a file system is mounted there (lazily: the loop device goes with
/// the last user); nothing when it is a plain directory.
pub fn unmount(state: &Path) {
    let tmp = state.join("tmp");
    let Ok(c) = std::ffi::CString::new(tmp.as_os_str().as_encoded_bytes()) else {
        return;
    };
    if is_mount_point(&tmp) {
        // SAFETY: umount2 with a valid NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Whether `p` is a mount point (its device differs from its parent's).
fn is_mount_point(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(p), p.parent().map(fs::metadata)) {
        (Ok(m), Some(Ok(parent))) => m.dev() != parent.dev(),
        _ => false,
    }
}
