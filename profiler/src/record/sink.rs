//! Where kernel records go while recording: the model builder and the raw
//! log together, plus what symbolizing the samples needs, captured while the
//! processes are alive.

use crate::events::Event;
use crate::launch;
use crate::model::ModelBuilder;
use crate::probes::EventReader;
use crate::rawlog::{Meta, RawLogError, RawLogWriter};
use crate::symbolize::Symbolizer;

/// The model builder and the raw log, fed together so a replay of
/// `events.bin` sees exactly what the builder saw.
pub(crate) struct Sink {
    pub builder: ModelBuilder,
    pub raw: RawLogWriter,
    pub raw_error: Option<RawLogError>,
    /// With sampling: snapshots of the sampled processes (taken at exec or
    /// first sample, while they are alive) and the stack ids seen.
    pub stacks: Option<StackCapture>,
    /// Records of this thread are dropped: the recorder's own thread when
    /// lxprof traces its own process (`record --lambda`'s emulator).
    pub skip_tid: Option<u32>,
}

/// What symbolizing the samples needs, captured during the recording.
pub(crate) struct StackCapture {
    pub symbolizer: Symbolizer,
    /// Pids observed (snapshotted) so far.
    pub observed: std::collections::HashSet<u32>,
    /// Stack ids of the `stacks` map seen in SAMPLE records.
    pub ids: std::collections::BTreeSet<u32>,
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
    /// A sink writing the raw log to `raw_path` (its first record: the start
    /// time); `sampling` keeps what symbolizing the samples needs.
    pub fn new(
        start_ns: u64,
        raw_path: &std::path::Path,
        sampling: bool,
    ) -> Result<Sink, RawLogError> {
        let mut sink = Sink {
            builder: ModelBuilder::new(start_ns),
            raw: RawLogWriter::create(raw_path)?,
            raw_error: None,
            stacks: sampling.then(|| StackCapture {
                symbolizer: Symbolizer::new(),
                observed: Default::default(),
                ids: Default::default(),
            }),
            skip_tid: None,
        };
        if let Err(e) = sink.raw.write_meta(&Meta::Start { start_ns }) {
            sink.raw_error.get_or_insert(e);
        }
        Ok(sink)
    }

    pub fn meta(&mut self, meta: Meta) {
        if let Err(e) = self.raw.write_meta(&meta) {
            self.raw_error.get_or_insert(e);
        }
        meta.apply(&mut self.builder);
    }

    pub fn record(&mut self, bytes: &[u8], event: Option<Event>) {
        if let (Some(skip), Some(ev)) = (self.skip_tid, event.as_ref())
            && ev.header().tid == skip
            && !matches!(ev, Event::Fork(_) | Event::Exec(_) | Event::Exit(_))
        {
            return;
        }
        if let Err(e) = self.raw.write_record(bytes) {
            self.raw_error.get_or_insert(e);
        }
        let Some(ev) = event else { return };
        self.builder.push(&ev);
        if let (Some(cap), Event::Sample(s)) = (self.stacks.as_mut(), &ev) {
            cap.ids.extend(s.user_stack_id);
            cap.ids.extend(s.kernel_stack_id);
            if !cap.observed.contains(&s.header.pid) {
                cap.observe(s.header.pid);
            }
        }
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
        }
    }

    pub fn drain(&mut self, reader: &mut EventReader) {
        reader.drain(|bytes, ev| self.record(bytes, ev));
    }
}
