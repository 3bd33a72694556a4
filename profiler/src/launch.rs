//! Starting the traced command suspended, and finding an existing process
//! tree in `/proc`.
//!
//! [`spawn_suspended`] forks a child that blocks on a pipe before exec, so
//! its pid can go into the `traced` map and the perf counters can attach
//! first; [`Suspended::release`] lets it exec. For `--pid`, [`process_tree`]
//! walks `/proc` for a process and its descendants, [`seed`] reads their names.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::model::SeedProcess;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("argument {index} of the command contains a NUL byte")]
    NulInArgument { index: usize },
    #[error("cannot create a pipe to start {program}: {source}")]
    Pipe {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fork to start {program}: {source}")]
    Fork {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot execute {program}: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// A forked child waiting, before exec, for [`Suspended::release`]. Dropped
/// unreleased, it is killed and reaped.
#[derive(Debug)]
pub struct Suspended {
    pid: u32,
    program: String,
    release: Option<OwnedFd>,
    exec_status: Option<OwnedFd>,
}

/// The launched command after exec. Not killed on drop: with `--duration`
/// it outlives the recording.
#[derive(Debug)]
pub struct Launched {
    pid: u32,
    status: Option<u32>,
}

fn pipe(program: &str) -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(LaunchError::Pipe {
            program: program.to_string(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 returned two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The environment of lxprof with `additions` merged in
/// ([`crate::runtime_env::merge_env`]: options appended to the user's own),
/// as `K=V` C strings for `execve`.
fn child_env(additions: &[(String, String)]) -> Vec<CString> {
    let mut text = Vec::new();
    let mut raw = Vec::new();
    for (k, v) in std::env::vars_os() {
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => text.push((k, v)),
            (k, v) => {
                let k = k.unwrap_or_else(|k| k.to_string_lossy().into_owned());
                let v = v.map(OsString::from).unwrap_or_else(|v| v);
                let mut kv = k.into_bytes();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                raw.push(kv);
            }
        }
    }
    crate::runtime_env::merge_env(&mut text, additions);
    text.into_iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .chain(raw)
        .filter_map(|kv| CString::new(kv).ok())
        .collect()
}

/// Forks a child that will exec `path` with `argv` (argv[0] as the user
/// typed it) and lxprof's environment plus `env` (e.g. the runtime settings
/// of [`crate::runtime_env::profiling_env`]) once released. `path` must be
/// resolved already ([`crate::preflight::resolve_command`]).
pub fn spawn_suspended(
    path: &Path,
    argv: &[OsString],
    env: &[(String, String)],
) -> Result<Suspended, LaunchError> {
    let program = path.display().to_string();
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| LaunchError::NulInArgument { index: 0 })?;
    let c_args = argv
        .iter()
        .enumerate()
        .map(|(index, a)| {
            CString::new(a.as_bytes()).map_err(|_| LaunchError::NulInArgument { index })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut c_argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    c_argv.push(std::ptr::null());
    let c_env = child_env(env);
    let mut c_envp: Vec<*const libc::c_char> = c_env.iter().map(|e| e.as_ptr()).collect();
    c_envp.push(std::ptr::null());
    let (release_r, release_w) = pipe(&program)?;
    let (status_r, status_w) = pipe(&program)?;

    // SAFETY: the child only calls async-signal-safe functions (close, read,
    // execve, write, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(LaunchError::Fork {
            program,
            source: std::io::Error::last_os_error(),
        });
    }
    if pid == 0 {
        // SAFETY: see above; this branch never returns.
        unsafe {
            libc::close(release_w.as_raw_fd());
            libc::close(status_r.as_raw_fd());
            let mut b = 0u8;
            loop {
                let n = libc::read(release_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                if n == 1 {
                    break;
                }
                if n == 0 || *libc::__errno_location() != libc::EINTR {
                    libc::_exit(126); // lxprof went away without releasing us
                }
            }
            libc::execve(c_path.as_ptr(), c_argv.as_ptr(), c_envp.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(status_w.as_raw_fd(), (&errno as *const i32).cast(), 4);
            libc::_exit(127);
        }
    }
    drop(release_r);
    drop(status_w);
    Ok(Suspended {
        pid: pid as u32,
        program,
        release: Some(release_w),
        exec_status: Some(status_r),
    })
}

impl Suspended {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the child exec; returns once exec succeeded, or why it failed.
    pub fn release(mut self) -> Result<Launched, LaunchError> {
        let pid = self.pid;
        let (Some(release), Some(status)) = (self.release.take(), self.exec_status.take()) else {
            unreachable!("release fds are taken only here");
        };
        let b = 1u8;
        // SAFETY: writing one byte from a valid buffer to our pipe end.
        unsafe { libc::write(release.as_raw_fd(), (&b as *const u8).cast(), 1) };
        drop(release);
        let mut errno = 0i32;
        let n = loop {
            // SAFETY: reading at most 4 bytes into errno.
            let n = unsafe { libc::read(status.as_raw_fd(), (&mut errno as *mut i32).cast(), 4) };
            if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break n;
            }
        };
        let program = std::mem::take(&mut self.program);
        // Released: the child is no longer ours to kill on drop.
        std::mem::forget(self);
        let mut launched = Launched { pid, status: None };
        if n == 4 {
            launched.wait();
            return Err(LaunchError::Exec {
                program,
                source: std::io::Error::from_raw_os_error(errno),
            });
        }
        Ok(launched)
    }
}

impl Drop for Suspended {
    fn drop(&mut self) {
        // SAFETY: our own child; reaping it avoids a zombie.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGKILL);
            libc::waitpid(self.pid as i32, std::ptr::null_mut(), 0);
        }
        tracing::debug!("killed unreleased child {} ({})", self.pid, self.program);
    }
}

impl Launched {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A pidfd of the child (readable once it exits), if the kernel has them.
    pub fn pidfd(&self) -> Option<OwnedFd> {
        // SAFETY: pidfd_open takes a pid and flags; the result is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid as libc::pid_t, 0) };
        // SAFETY: a fresh descriptor owned by nobody else.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// The wait status if the child has exited (reaps it once).
    pub fn try_wait(&mut self) -> Option<u32> {
        self.wait_with(libc::WNOHANG)
    }

    /// Blocks until the child exits; its wait status.
    pub fn wait(&mut self) -> Option<u32> {
        self.wait_with(0)
    }

    fn wait_with(&mut self, flags: i32) -> Option<u32> {
        if self.status.is_none() {
            let mut st = 0i32;
            // SAFETY: our own child, valid out pointer.
            let rc = unsafe { libc::waitpid(self.pid as i32, &mut st, flags) };
            if rc == self.pid as i32 {
                self.status = Some(st as u32);
            }
        }
        self.status
    }

    /// Sends `signal` to the child unless it has been reaped.
    pub fn signal(&self, signal: i32) {
        if self.status.is_none() {
            // SAFETY: kill has no memory preconditions; the pid is our unreaped child.
            unsafe { libc::kill(self.pid as i32, signal) };
        }
    }
}

/// `(pid, ppid)` of every process in `/proc`.
fn all_parents() -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(ppid) = read_ppid(pid) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// The fields of a `/proc/…/stat` file after the command name (which may
/// hold spaces and parentheses): the state letter first.
fn stat_after_comm(path: &str) -> Option<String> {
    let stat = std::fs::read_to_string(path).ok()?;
    Some(stat.rsplit_once(')')?.1.to_string())
}

fn read_ppid(pid: u32) -> Option<u32> {
    let rest = stat_after_comm(&format!("/proc/{pid}/stat"))?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The scheduler state letter of thread `tid` (`R` running or runnable,
/// `S` sleeping, …) from `/proc/TID/stat`, which exists for every thread.
pub fn thread_state(tid: u32) -> Option<char> {
    stat_after_comm(&format!("/proc/{tid}/stat"))?
        .trim_start()
        .chars()
        .next()
}

/// Lifetime CPU time of thread `tid` of process `pid` now, in ns: the
/// scheduler's se.sum_exec_runtime (first field of `schedstat`), the counter
/// the ON_CPU records carry. None when the thread is gone.
pub fn thread_cpu_ns(pid: u32, tid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Page faults of thread `tid` of process `pid` so far, `(minor, major)`:
/// the task counters (fields 10 and 12 of `stat`) the kernel side reads at
/// each switch-out. None when the thread is gone.
pub fn thread_faults(pid: u32, tid: u32) -> Option<(u64, u64)> {
    let rest = stat_after_comm(&format!("/proc/{pid}/task/{tid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(7)?.parse().ok()?, fields.get(9)?.parse().ok()?))
}

/// `pid` and all its current descendants, parents before children.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let parents = all_parents();
    let mut out = vec![pid];
    let mut queue = VecDeque::from([pid]);
    while let Some(p) = queue.pop_front() {
        for (&child, &parent) in &parents {
            if parent == p && child != p && !out.contains(&child) {
                out.push(child);
                queue.push_back(child);
            }
        }
    }
    out
}

/// `/proc/PID/cmdline` as arguments (empty for kernel threads or when gone).
pub fn read_cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `/proc/PID/exe`'s target, if readable.
pub fn read_exe(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn read_comm(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// What `/proc` says about a live process and its threads.
pub fn seed(pid: u32) -> Option<SeedProcess> {
    let comm = read_comm(&format!("/proc/{pid}/comm"))?;
    let ppid = read_ppid(pid).unwrap_or(0);
    let mut threads: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let tid: u32 = e.file_name().to_str()?.parse().ok()?;
                    let name = read_comm(&format!("/proc/{pid}/task/{tid}/comm"))?;
                    Some((tid, name))
                })
                .collect()
        })
        .unwrap_or_default();
    threads.sort();
    Some(SeedProcess {
        pid,
        ppid,
        comm,
        exe: read_exe(pid),
        cmdline: read_cmdline(pid),
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspended_child_runs_only_when_released() {
        let sh = Path::new("/bin/sh");
        let argv: Vec<OsString> = ["sh", "-c", "exit 7"].iter().map(OsString::from).collect();
        let s = spawn_suspended(sh, &argv, &[]).expect("fork");
        let pid = s.pid();
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Still our (un-exec'd) copy: its exe is the test binary, not sh.
        assert_ne!(read_exe(pid).as_deref(), Some("/usr/bin/dash"));
        let mut l = s.release().expect("exec");
        let st = l.wait().expect("status");
        assert_eq!(libc::WEXITSTATUS(st as i32), 7);
    }

    #[test]
    fn exec_failure_is_reported() {
        let argv = vec![OsString::from("x")];
        let err = spawn_suspended(Path::new("/proc/self"), &argv, &[])
            .expect("fork")
            .release()
            .unwrap_err();
        assert!(matches!(err, LaunchError::Exec { .. }), "{err}");
    }

    #[test]
    fn finds_descendants_and_seeds_threads() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let tree = process_tree(std::process::id());
        assert!(tree.contains(&child.id()), "{tree:?}");
        // This thread is running now; sleep is not.
        let me_tid = unsafe { libc::gettid() } as u32;
        assert_eq!(thread_state(me_tid), Some('R'));
        // Just spawned, sleep may still be exec'ing (R): it sleeps soon after.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while thread_state(child.id()) != Some('S') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(thread_state(child.id()), Some('S'));
        let me = seed(std::process::id()).expect("seed");
        assert!(!me.threads.is_empty());
        assert!(me.exe.is_some());
        let _ = child.kill();
        let _ = child.wait();
    }
}
