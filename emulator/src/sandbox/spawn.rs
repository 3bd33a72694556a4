//! Starting a process inside an environment: the child joins the cgroups, enters a private
//! mount namespace with the environment's view, drops privileges, changes directory, reports
//! ready, then blocks until the parent's gate has run, and only then execs.
//!
//! `std::process` waits for the child's exec before `spawn` returns, so the fork runs on a
//! long-lived spawner thread (a small pool that never exits) while the calling thread waits
//! for the child's ready message, runs the gate and releases the child. Children get
//! `PR_SET_PDEATHSIG(SIGKILL)`, which fires when the forking thread dies: with long-lived
//! spawner threads that means when the emulator process dies, so a crash or SIGKILL of the
//! emulator does not leave environments running. Each child starts its own session (`setsid`),
//! so a terminal's Ctrl-C reaches only the emulator, which shuts environments down in order.
//!
//! The code run in the child uses only prepared C strings and async-signal-safe calls (setsid,
//! open, write, read, close, unshare, mount, setgroups, setgid, setuid, prctl, getppid, chdir,
//! getpid).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::mounts::MountOp;
use super::{SandboxCommand, SandboxError};

/// Everything a child needs, prepared before fork and shared by all spawns of an environment.
#[derive(Debug)]
pub struct EnvPlan {
    /// `cgroup.procs` files to write `0` into.
    pub procs: Vec<CString>,
    /// Mounts applied after `unshare(CLONE_NEWNS)`.
    pub mounts: Vec<MountOp>,
    /// Credentials to drop to.
    pub uid: u32,
    /// Group to drop to.
    pub gid: u32,
}

const STEP_READY: u32 = 0;
const STEP_CGROUP: u32 = 1; // + index
const STEP_UNSHARE: u32 = 100;
const STEP_MOUNT: u32 = 200; // + index
const STEP_CREDS: u32 = 300;
const STEP_CHDIR: u32 = 301;
const STEP_SETSID: u32 = 302;
const STEP_PDEATHSIG: u32 = 303;

type Job = Box<dyn FnOnce() + Send>;

/// Idle spawner threads; a busy one puts itself back when its job is done.
static IDLE_SPAWNERS: Mutex<Vec<mpsc::Sender<Job>>> = Mutex::new(Vec::new());

/// Runs `job` on an idle long-lived spawner thread, starting one if none is idle.
fn run_on_spawner(job: Job) -> io::Result<()> {
    let idle = IDLE_SPAWNERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop();
    let tx = match idle {
        Some(tx) => tx,
        None => {
            let (tx, rx) = mpsc::channel::<Job>();
            let me = tx.clone();
            std::thread::Builder::new()
                .name("lxprof-spawner".into())
                .spawn(move || {
                    // Holding `me` keeps the channel open: the thread lives as long as the
                    // process, which is what PR_SET_PDEATHSIG of its children relies on.
                    while let Ok(job) = rx.recv() {
                        job();
                        IDLE_SPAWNERS
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(me.clone());
                    }
                })?;
            tx
        }
    };
    tx.send(job)
        .map_err(|_| io::Error::other("lxprof spawner thread is gone"))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two-element array on success; we take ownership of both fds.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// Child side. Only async-signal-safe calls; no allocation.
///
/// # Safety
/// Must run in the forked child before exec (a `pre_exec` hook).
unsafe fn child_setup(
    plan: &EnvPlan,
    cwd: &CString,
    ready_w: RawFd,
    release_r: RawFd,
    close: [RawFd; 2],
    parent: libc::pid_t,
) -> io::Result<()> {
    // SAFETY (whole body): plain syscalls on prepared, NUL-terminated strings and owned fds.
    unsafe {
        let report = |step: u32, value: u32| {
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&step.to_ne_bytes());
            msg[4..].copy_from_slice(&value.to_ne_bytes());
            libc::write(ready_w, msg.as_ptr().cast(), 8);
        };
        let fail = |step: u32| {
            let e = io::Error::last_os_error();
            report(step, e.raw_os_error().unwrap_or(0) as u32);
            Err(e)
        };
        for fd in close {
            libc::close(fd);
        }
        if libc::setsid() < 0 {
            return fail(STEP_SETSID);
        }
        for (i, p) in plan.procs.iter().enumerate() {
            let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return fail(STEP_CGROUP + i as u32);
            }
            libc::close(fd);
        }
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return fail(STEP_UNSHARE);
        }
        for (i, m) in plan.mounts.iter().enumerate() {
            let opt = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
            let data: *const libc::c_void = opt(&m.data).cast();
            if libc::mount(
                opt(&m.source),
                m.target.as_ptr(),
                opt(&m.fstype),
                m.flags,
                data,
            ) != 0
            {
                return fail(STEP_MOUNT + i as u32);
            }
        }
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(plan.gid) != 0
            || libc::setuid(plan.uid) != 0
        {
            return fail(STEP_CREDS);
        }
        // After the credential change, which would clear it.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return fail(STEP_PDEATHSIG);
        }
        if libc::getppid() != parent {
            // The emulator died before the death signal was armed.
            return Err(io::Error::from_raw_os_error(libc::ECANCELED));
        }
        if libc::chdir(cwd.as_ptr()) != 0 {
            return fail(STEP_CHDIR);
        }
        report(STEP_READY, libc::getpid() as u32);
        libc::close(ready_w);
        let mut b = 0u8;
        loop {
            let n = libc::read(release_r, (&mut b as *mut u8).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The parent went away without releasing: do not exec.
            return Err(io::Error::from_raw_os_error(libc::ECANCELED));
        }
        libc::close(release_r);
        Ok(())
    }
}

fn step_name(plan: &EnvPlan, step: u32) -> String {
    match step {
        STEP_UNSHARE => "unshare(CLONE_NEWNS) (needs root / CAP_SYS_ADMIN)".into(),
        STEP_CREDS => format!("dropping to uid {} gid {}", plan.uid, plan.gid),
        STEP_CHDIR => "changing to the working directory".into(),
        STEP_SETSID => "starting a new session (setsid)".into(),
        STEP_PDEATHSIG => "arming PR_SET_PDEATHSIG".into(),
        s if s >= STEP_MOUNT => plan
            .mounts
            .get((s - STEP_MOUNT) as usize)
            .map_or_else(|| format!("mount step {s}"), |m| m.what.clone()),
        s => plan.procs.get((s - STEP_CGROUP) as usize).map_or_else(
            || format!("step {s}"),
            |p| format!("joining the cgroup via {}", p.to_string_lossy()),
        ),
    }
}

/// Spawns `cmd` in the environment described by `plan`, running `gate(pid)` before exec.
pub fn spawn(
    plan: &Arc<EnvPlan>,
    cmd: SandboxCommand,
    gate: impl FnOnce(u32),
) -> Result<tokio::process::Child, SandboxError> {
    let program = cmd.program.clone();
    let io_err = |source: io::Error| SandboxError::Spawn {
        program: program.clone(),
        source,
    };
    let handle = tokio::runtime::Handle::try_current().map_err(|_| SandboxError::NoRuntime)?;
    let cwd = CString::new(cmd.cwd.as_os_str().as_encoded_bytes()).map_err(|_| {
        SandboxError::InvalidSpec(format!("cwd {} contains a NUL byte", cmd.cwd.display()))
    })?;
    let (ready_r, ready_w) = pipe().map_err(io_err)?;
    let (release_r, release_w) = pipe().map_err(io_err)?;

    let mut command = tokio::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child_plan = Arc::clone(plan);
    let parent = std::process::id() as libc::pid_t;
    let (rw, rr, close) = (
        ready_w.as_raw_fd(),
        release_r.as_raw_fd(),
        [ready_r.as_raw_fd(), release_w.as_raw_fd()],
    );
    // SAFETY: child_setup only makes async-signal-safe calls on data prepared before fork.
    unsafe {
        command.pre_exec(move || child_setup(&child_plan, &cwd, rw, rr, close, parent));
    }

    let (result_tx, result_rx) = mpsc::sync_channel(1);
    run_on_spawner(Box::new(move || {
        let _rt = handle.enter();
        let r = command.spawn();
        // Our copies of the child's ends: closing them lets the reader see EOF.
        drop(ready_w);
        drop(release_r);
        let _ = result_tx.send(r);
    }))
    .map_err(io_err)?;
    let mut msg = [0u8; 8];
    let got = read_full(&ready_r, &mut msg);
    let step = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let value = u32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let released = if got == 8 && step == STEP_READY {
        gate(value);
        // SAFETY: writing one byte from a local to an fd we own.
        let n = unsafe { libc::write(release_w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        n == 1
    } else {
        false
    };
    drop(release_w);
    let spawned = result_rx
        .recv()
        .map_err(|_| io_err(io::Error::other("the spawner thread panicked")))?;
    match spawned {
        Ok(child) if released => Ok(child),
        Ok(_) => Err(io_err(io::Error::other(
            "the child exec'd without being released",
        ))),
        Err(_) if got == 8 && step != STEP_READY => Err(SandboxError::ChildSetup {
            program: program.clone(),
            step: step_name(plan, step),
            source: io::Error::from_raw_os_error(value as i32),
        }),
        Err(source) => Err(SandboxError::Spawn {
            program: program.clone(),
            source,
        }),
    }
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into the unfilled tail of a buffer we own.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_describe_the_failing_step() {
        let plan = EnvPlan {
            procs: vec![CString::new("/x/cgroup.procs").unwrap_or_default()],
            mounts: vec![],
            uid: 1,
            gid: 2,
        };
        assert!(step_name(&plan, STEP_CGROUP).contains("/x/cgroup.procs"));
        assert!(step_name(&plan, STEP_CREDS).contains("uid 1 gid 2"));
        assert!(step_name(&plan, STEP_UNSHARE).contains("CLONE_NEWNS"));
    }
}
