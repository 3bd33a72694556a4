//! Reading the `events` ring buffer: wait with poll(2), drain every ready
//! record, decode it with [`Event::from_bytes`]; decode errors are counted,
//! never fatal.

use std::os::fd::AsRawFd;
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
    stats: ReadStats,
}

impl EventReader {
    pub(super) fn new(ring: RingBuf<MapData>) -> EventReader {
        EventReader {
            ring,
            stats: ReadStats::default(),
        }
    }

    /// Waits until records are ready or `timeout` passes (or a signal
    /// arrives). Returns true when records may be ready.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut fd = libc::pollfd {
            fd: self.ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut fd, 1, ms) };
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
