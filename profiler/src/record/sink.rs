//! Where kernel records go while recording: the raw log (`events.bin`),
//! plus what must be read while the processes are alive (their command
//! lines, executables, mappings for symbolizing samples). The model is built
//! from the log once recording stops: while recording, user space only
//! drains and stores, so it takes as little CPU as possible from what it
//! measures.

use std::collections::HashMap;

use crate::events::{Event, Sample, StackCopy};
use crate::launch;
use crate::probes::{AllocMode, EventReader, Probes};
use crate::rawlog::{Meta, RawLogError, RawLogWriter, encode_event};
use crate::symbolize::Symbolizer;
use crate::unwind::StackUnwinder;

/// The raw log and the live snapshots; the model is built from the log
/// (`rawlog::replay`) when recording stops.
pub(crate) struct Sink {
    pub raw: RawLogWriter<Vec<u8>>,
    pub raw_error: Option<RawLogError>,
    /// With sampling: snapshots of the sampled processes (taken at exec or
    /// first sample, while they are alive) and the stacks unwound so far.
    pub stacks: Option<StackCapture>,
    /// Records of this thread are dropped: the recorder's own thread when
    /// lxprof traces its own process (`record --lambda`'s emulator).
    pub skip_tid: Option<u32>,
    /// Allocation probes attached (see [`Sink::set_alloc`]).
    alloc: AllocMode,
    /// With `--alloc full`: exec'd processes whose libc is not known to be
    /// probed yet, with when to give up on them.
    libc_pending: Vec<(u32, std::time::Instant)>,
}

/// How long after an exec (or a seed) [`Sink::watch_libcs`] looks for the
/// process's libc before giving up (a static binary).
const LIBC_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What symbolizing the samples needs, captured during the recording.
pub(crate) struct StackCapture {
    pub symbolizer: Symbolizer,
    /// Pids observed (snapshotted) so far.
    pub observed: std::collections::HashSet<u32>,
    pub unwinder: StackUnwinder,
    /// Distinct stacks logged so far → their id: (kernel?, addresses, end).
    ids: HashMap<(bool, Vec<u64>, Option<String>), u32>,
    pub stats: UnwindStats,
}

/// What the unwinding of the samples came to, for the recorder's log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UnwindStats {
    pub samples: u64,
    /// Samples whose user stack stopped short of its root (an end frame).
    pub ended_short: u64,
    /// User stack bytes copied by the kernel, summed.
    pub stack_bytes: u64,
    /// Bytes of the kernel's records, summed.
    pub record_bytes: u64,
}

impl StackCapture {
    pub fn observe(&mut self, pid: u32) {
        if let Err(e) = self.symbolizer.observe_process(pid) {
            tracing::debug!("symbols of pid {pid}: {e}");
        }
        self.observed.insert(pid);
    }

    /// New libraries and perf-map entries of the sampled processes still alive.
    pub fn refresh(&mut self) {
        for &pid in &self.observed {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = self.symbolizer.refresh(pid);
            }
        }
    }
}

impl Sink {
    /// A sink keeping the raw log in memory (`raw_path`: the `events.bin` it
    /// becomes, for errors; its first record: the start time); `sampling`
    /// keeps what symbolizing the samples needs.
    pub fn new(start_ns: u64, raw_path: &std::path::Path, sampling: bool) -> Sink {
        let mut sink = Sink {
            raw: RawLogWriter::in_memory(raw_path),
            raw_error: None,
            stacks: sampling.then(|| StackCapture {
                symbolizer: Symbolizer::new(),
                observed: Default::default(),
                unwinder: StackUnwinder::new(),
                ids: HashMap::new(),
                stats: UnwindStats::default(),
            }),
            skip_tid: None,
            alloc: AllocMode::Off,
            libc_pending: Vec::new(),
        };
        if let Err(e) = sink.raw.write_meta(&Meta::Start { start_ns }) {
            sink.raw_error.get_or_insert(e);
        }
        sink
    }

    /// The allocation probes attached (call once, before the first drain):
    /// unless Off, the model gives every process `alloc`; with Full, exec'd
    /// processes are queued for [`Sink::watch_libcs`].
    pub fn set_alloc(&mut self, mode: AllocMode) {
        self.alloc = mode;
        if mode != AllocMode::Off {
            self.meta(Meta::AllocRecorded);
        }
    }

    /// With `--alloc full`, after each drain: probes the libc of the
    /// processes exec'd since (a libc other than the host's, e.g. a
    /// container's, gets its uprobes here). A process whose loader has not
    /// mapped libc yet is tried again at the next call, for [`LIBC_WAIT`].
    pub fn watch_libcs(&mut self, probes: &mut Probes) {
        let now = std::time::Instant::now();
        for (pid, until) in std::mem::take(&mut self.libc_pending) {
            match probes.watch_libc(pid) {
                Ok(true) => {}
                Ok(false)
                    if now < until && std::path::Path::new(&format!("/proc/{pid}")).exists() =>
                {
                    self.libc_pending.push((pid, until));
                }
                Ok(false) => tracing::debug!("pid {pid}: no libc mapped, malloc not probed"),
                Err(e) => tracing::warn!("pid {pid}: {e}"),
            }
        }
    }

    pub fn meta(&mut self, meta: Meta) {
        if let (AllocMode::Full, Meta::Seed(seed)) = (self.alloc, &meta) {
            let until = std::time::Instant::now() + LIBC_WAIT;
            self.libc_pending.push((seed.pid, until));
        }
        if let Err(e) = self.raw.write_meta(&meta) {
            self.raw_error.get_or_insert(e);
        }
    }

    pub fn record(&mut self, bytes: &[u8], event: Option<Event>) {
        if let (Some(skip), Some(ev)) = (self.skip_tid, event.as_ref())
            && ev.header().tid == skip
            && !matches!(ev, Event::Fork(_) | Event::Exec(_) | Event::Exit(_))
        {
            return;
        }
        if let Some(Event::StackCopy(copy)) = &event {
            // Unwound now, while the process and its files are there; the log and
            // the model get a Sample with ids of stacks logged beside it.
            if let Some(sample) = self.unwind(bytes.len(), copy) {
                let bytes = encode_event(&sample);
                self.record(&bytes, Some(sample));
            }
            return;
        }
        if let Err(e) = self.raw.write_record(bytes) {
            self.raw_error.get_or_insert(e);
        }
        let Some(ev) = event else { return };
        if let Event::Exec(e) = &ev {
            // Snapshot now: the process may be gone soon.
            let pid = e.header.pid;
            let cmdline = launch::read_cmdline(pid);
            if !cmdline.is_empty() {
                self.meta(Meta::Cmdline { pid, cmdline });
            }
            if let Some(exe) = launch::read_exe(pid) {
                self.meta(Meta::Exe { pid, exe });
            }
            if let Some(cap) = self.stacks.as_mut() {
                cap.observe(pid);
            }
            if self.alloc == AllocMode::Full {
                self.libc_pending.retain(|&(p, _)| p != pid);
                let until = std::time::Instant::now() + LIBC_WAIT;
                self.libc_pending.push((pid, until));
            }
        }
    }

    /// A STACK_COPY record → a Sample whose user and kernel stacks are logged
    /// (once per distinct stack) as [`Meta::Stack`] / [`Meta::StackEnd`].
    /// None when sampling is off.
    fn unwind(&mut self, record_len: usize, copy: &StackCopy) -> Option<Event> {
        let cap = self.stacks.as_mut()?;
        let pid = copy.header.pid;
        if !cap.observed.contains(&pid) {
            cap.observe(pid);
        }
        let user = cap.unwinder.unwind(&mut cap.symbolizer, pid, copy);
        cap.stats.samples += 1;
        cap.stats.ended_short += u64::from(user.end.is_some());
        cap.stats.stack_bytes += copy.stack.len() as u64;
        cap.stats.record_bytes += record_len as u64;
        let mut metas = Vec::new();
        let mut intern = |key: (bool, Vec<u64>, Option<String>)| {
            if key.1.is_empty() && key.2.is_none() {
                return None;
            }
            let next = cap.ids.len() as u32;
            let id = *cap.ids.entry(key.clone()).or_insert_with(|| {
                let (_, addrs, end) = key;
                metas.push(Meta::Stack { id: next, addrs });
                if let Some(end) = end {
                    metas.push(Meta::StackEnd { id: next, end });
                }
                next
            });
            Some(id)
        };
        let user_stack_id = intern((false, user.addrs, user.end));
        let kernel_stack_id = intern((true, copy.kernel.clone(), None));
        for m in metas {
            self.meta(m);
        }
        Some(Event::Sample(Sample {
            header: copy.header,
            user_stack_id,
            kernel_stack_id,
        }))
    }

    pub fn drain(&mut self, reader: &mut EventReader) {
        reader.drain(|bytes, ev| self.record(bytes, ev));
    }
}
