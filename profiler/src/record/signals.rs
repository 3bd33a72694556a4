//! SIGINT/SIGTERM/SIGHUP while recording or running Lambda environments: caught (not fatal), told apart when the
//! terminal sent them to the whole process group, and restored afterwards.
//! Guards nest (`lxprof suite` holds one around the recordings it runs, each
//! recording its own): a signal caught by an inner guard and not taken stays
//! for the outer one.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// The last signal caught; negative when the kernel sent it (the terminal's
/// Ctrl-C to the foreground group), positive when a process did (`kill`).
static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Guards alive.
static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// After SIGHUP (the terminal was closed), stdout and stderr that were the
/// terminal go to /dev/null: a write to a hung-up terminal fails (EIO) and
/// print macros panic on it, which would lose the shutdown and the outputs.
/// open, fstat, dup2 and close are async-signal-safe.
fn leave_the_terminal() {
    // SAFETY: fd calls on a freshly opened /dev/null; dup2 replaces fds 1 and 2 atomically.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            return;
        }
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            // A terminal is a character device (isatty fails once it hung up); files and
            // pipes keep receiving the output.
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFCHR {
                libc::dup2(null, fd);
            }
        }
        libc::close(null);
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    if sig == libc::SIGHUP {
        leave_the_terminal();
    }
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    LAST_SIGNAL.store(if from_kernel { -sig } else { sig }, Ordering::SeqCst);
}

/// A caught signal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caught {
    pub signal: i32,
    /// Sent by the kernel to the whole process group (the launched child got
    /// it too): not forwarded again.
    pub group: bool,
}

/// Catches SIGINT/SIGTERM/SIGHUP (a closed terminal) while alive; restores the previous handlers on drop.
pub(crate) struct SignalGuard {
    old: Vec<(i32, libc::sigaction)>,
}

impl SignalGuard {
    pub fn install() -> SignalGuard {
        // A signal from before the outermost guard is stale.
        if DEPTH.fetch_add(1, Ordering::SeqCst) == 0 {
            LAST_SIGNAL.store(0, Ordering::SeqCst);
        }
        let mut old = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: zeroed sigaction is valid; the handler only stores an atomic.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        SignalGuard { old }
    }

    pub fn take() -> Option<Caught> {
        match LAST_SIGNAL.swap(0, Ordering::SeqCst) {
            0 => None,
            s => Some(Caught {
                signal: s.abs(),
                group: s < 0,
            }),
        }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        DEPTH.fetch_sub(1, Ordering::SeqCst);
        for (sig, prev) in &self.old {
            // SAFETY: restoring a sigaction the kernel gave us.
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_caught_by_an_inner_guard_stays_for_the_outer_one() {
        let outer = SignalGuard::install();
        {
            let _inner = SignalGuard::install();
            // SAFETY: raising a signal whose handler only stores an atomic.
            unsafe { libc::raise(libc::SIGTERM) };
        }
        let caught = SignalGuard::take().map(|c| c.signal);
        drop(outer);
        assert_eq!(caught, Some(libc::SIGTERM));
        assert!(SignalGuard::take().is_none());
        // SAFETY: reading the current disposition.
        let current = unsafe {
            let mut cur: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut cur);
            cur.sa_sigaction
        };
        assert_ne!(current, on_signal as *const () as usize);
    }
}
