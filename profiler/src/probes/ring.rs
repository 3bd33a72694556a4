//! Reading the `events` ring buffer: wait with an edge-triggered epoll (the
//! kernel side wakes the reader only when a quarter of the ring is filled, so
//! a level-triggered poll would spin on every new record), drain every ready
//! record, decode it with [`Event::from_bytes`]; decode errors are counted,
//! never fatal.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use aya::maps::{MapData, RingBuf};

use crate::events::Event;

/// Counts of what the reader saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub records: u64,
    pub decode_errors: u64,
}

/// The consumer side of the `events` ring buffer.
pub struct EventReader {
    ring: RingBuf<MapData>,
    /// Edge-triggered epoll on the ring; None if epoll is unavailable (then
    /// [`EventReader::wait`] just sleeps).
    epoll: Option<OwnedFd>,
    /// Other descriptors [`EventReader::wait`] wakes on (see [`EventReader::wake_once_on`]).
    extra: Vec<OwnedFd>,
    stats: ReadStats,
}

fn epoll_on(fd: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscalls on descriptors we own; checked results.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        if ep < 0 {
            return None;
        }
        let ep = OwnedFd::from_raw_fd(ep);
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 0,
        };
        if libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) != 0 {
            return None;
        }
        Some(ep)
    }
}

impl EventReader {
    pub(super) fn new(ring: RingBuf<MapData>) -> EventReader {
        let epoll = epoll_on(ring.as_raw_fd());
        EventReader {
            ring,
            epoll,
            extra: Vec::new(),
            stats: ReadStats::default(),
        }
    }

    /// Makes [`EventReader::wait`] return once when `fd` becomes readable
    /// (e.g. a pidfd: the launched command exited), instead of at the end
    /// of its timeout. Ignored when epoll is unavailable.
    pub fn wake_once_on(&mut self, fd: OwnedFd) {
        let Some(ep) = &self.epoll else { return };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            u64: 1,
        };
        // SAFETY: both descriptors are open and owned; checked result.
        let rc = unsafe {
            libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev)
        };
        if rc == 0 {
            self.extra.push(fd);
        }
    }

    /// Waits until the kernel signals a filling ring, `timeout` passes, or a
    /// signal arrives. Returns true when woken by the kernel.
    pub fn wait(&self, timeout: Duration) -> bool {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let Some(ep) = &self.epoll else {
            std::thread::sleep(timeout);
            return false;
        };
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: one valid epoll_event out buffer.
        let rc = unsafe { libc::epoll_wait(ep.as_raw_fd(), &mut ev, 1, ms) };
        rc > 0
    }

    /// Drains every ready record: `f` gets its bytes and its decoded form
    /// (`None`, and counted, when it does not decode). Returns how many.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8], Option<Event>)) -> u64 {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            n += 1;
            match Event::from_bytes(&item) {
                Ok(ev) => f(&item, Some(ev)),
                Err(e) => {
                    self.stats.decode_errors += 1;
                    tracing::debug!("undecodable record: {e}");
                    f(&item, None);
                }
            }
        }
        self.stats.records += n;
        n
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }
}
