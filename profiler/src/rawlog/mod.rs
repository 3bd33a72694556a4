//! The raw event log (`events.bin`): every ring-buffer record of a recording
//! as the kernel wrote it, plus the facts the recorder gave the model builder
//! (start time, seeded processes, `/proc` reads, roles, end and info), so a
//! recording can be converted again later, without root ([`replay`]).
//!
//! Format (little endian): the 8-byte magic `LXPROFEV`, a `u32` version
//! ([`VERSION`]), then records: a `u8` tag (0 = kernel record, 1 = [`Meta`]
//! as JSON), a `u32` payload length, the payload.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::model::{ModelBuilder, Recording, RecordingInfo, SeedProcess};

mod encode;
pub use encode::encode_event;

/// First bytes of every raw log.
pub const MAGIC: &[u8; 8] = b"LXPROFEV";
/// Format version written; readers also accept [`OLDEST_VERSION`] on.
/// 2: ON_CPU carries the scheduler's CPU time; FAULTS replaced PAGE_FAULT.
/// 3: FAULTS from the task counters (count and major, no access kinds).
pub const VERSION: u32 = 3;
/// The oldest version read: a version 2 FAULTS record (count, then write,
/// exec and present counts) is read as version 3's with no major faults.
pub const OLDEST_VERSION: u32 = 2;
/// Longest payload accepted (kernel records are a few hundred bytes).
pub const MAX_RECORD_LEN: u32 = 16 << 20;

const TAG_KERNEL: u8 = 0;
const TAG_META: u8 = 1;

/// Why a raw log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RawLogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not an lxprof event log (bad magic); expected an events.bin written by lxprof record"
    )]
    BadMagic { path: PathBuf },
    #[error(
        "{path}: event log version {version}, this lxprof reads versions {OLDEST_VERSION} to {VERSION}; use the lxprof that recorded it"
    )]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("{path}: truncated at byte {offset} (the recording was cut short?)")]
    Truncated { path: PathBuf, offset: u64 },
    #[error("{path}: unknown record tag {tag} at byte {offset}")]
    BadTag { path: PathBuf, offset: u64, tag: u8 },
    #[error(
        "{path}: record at byte {offset} claims {len} bytes (max {MAX_RECORD_LEN}); the file is corrupt"
    )]
    TooLong {
        path: PathBuf,
        offset: u64,
        len: u32,
    },
    #[error("{path}: bad metadata record at byte {offset}: {source}")]
    BadMeta {
        path: PathBuf,
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: no Start record before the events; cannot place them in time")]
    MissingStart { path: PathBuf },
}

/// A fact the recorder gave the model builder, logged beside the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Meta {
    /// [`ModelBuilder::new`].
    Start { start_ns: u64 },
    /// [`ModelBuilder::seed_process`].
    Seed(SeedProcess),
    /// [`ModelBuilder::set_cmdline`].
    Cmdline { pid: u32, cmdline: Vec<String> },
    /// [`ModelBuilder::set_exe`].
    Exe { pid: u32, exe: String },
    /// [`ModelBuilder::set_role`].
    Role { pid: u32, role: String },
    /// [`ModelBuilder::set_stack`]: a sampled stack, unwound by the recorder.
    Stack { id: u32, addrs: Vec<u64> },
    /// [`ModelBuilder::set_stack_end`]: why user stack `id` stopped short.
    StackEnd { id: u32, end: String },
    /// [`ModelBuilder::set_alloc_recorded`].
    AllocRecorded,
    /// [`ModelBuilder::finish`].
    Finish { end_ns: u64, info: RecordingInfo },
}

impl Meta {
    /// Gives the builder this fact (`Start` and `Finish` are not builder
    /// calls: [`replay`] handles them).
    pub fn apply(self, builder: &mut ModelBuilder) {
        match self {
            Meta::Seed(s) => builder.seed_process(s),
            Meta::Cmdline { pid, cmdline } => builder.set_cmdline(pid, cmdline),
            Meta::Exe { pid, exe } => builder.set_exe(pid, exe),
            Meta::Role { pid, role } => builder.set_role(pid, role),
            Meta::Stack { id, addrs } => builder.set_stack(id, addrs),
            Meta::StackEnd { id, end } => builder.set_stack_end(id, end),
            Meta::AllocRecorded => builder.set_alloc_recorded(),
            Meta::Start { .. } | Meta::Finish { .. } => {}
        }
    }
}

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A ring-buffer record, bytes as the kernel wrote them.
    Kernel(Vec<u8>),
    Meta(Meta),
}

/// Writes a raw log: to a file ([`RawLogWriter::create`]; call
/// [`RawLogWriter::finish`] to flush and fsync) or to memory
/// ([`RawLogWriter::in_memory`], what the recorder keeps while recording).
#[derive(Debug)]
pub struct RawLogWriter<W: Write = BufWriter<File>> {
    path: PathBuf,
    out: W,
}

impl RawLogWriter {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: impl AsRef<Path>) -> Result<RawLogWriter, RawLogError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|source| RawLogError::Io {
            path: path.clone(),
            source,
        })?;
        let mut w = RawLogWriter {
            path,
            out: BufWriter::with_capacity(1 << 16, file),
        };
        w.write_header()?;
        Ok(w)
    }

    /// Flushes and fsyncs the file.
    pub fn finish(mut self) -> Result<(), RawLogError> {
        let r = self
            .out
            .flush()
            .and_then(|()| self.out.get_ref().sync_all());
        r.map_err(|source| RawLogError::Io {
            path: self.path,
            source,
        })
    }
}

impl RawLogWriter<Vec<u8>> {
    /// A log in memory (`path`: the file it is meant for, in errors).
    pub fn in_memory(path: impl AsRef<Path>) -> RawLogWriter<Vec<u8>> {
        let mut w = RawLogWriter {
            path: path.as_ref().to_path_buf(),
            out: Vec::with_capacity(1 << 20),
        };
        // Writing to a Vec cannot fail.
        let _ = w.write_header();
        w
    }

    /// The log's bytes (a complete `events.bin`).
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

impl<W: Write> RawLogWriter<W> {
    fn write_header(&mut self) -> Result<(), RawLogError> {
        self.write_all(MAGIC)?;
        self.write_all(&VERSION.to_le_bytes())
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), RawLogError> {
        self.out.write_all(bytes).map_err(|source| RawLogError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn write_tagged(&mut self, tag: u8, payload: &[u8]) -> Result<(), RawLogError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l <= MAX_RECORD_LEN)
            .ok_or_else(|| RawLogError::TooLong {
                path: self.path.clone(),
                offset: 0,
                len: u32::MAX,
            })?;
        self.write_all(&[tag])?;
        self.write_all(&len.to_le_bytes())?;
        self.write_all(payload)
    }

    /// One ring-buffer record, as read from the kernel.
    pub fn write_record(&mut self, bytes: &[u8]) -> Result<(), RawLogError> {
        self.write_tagged(TAG_KERNEL, bytes)
    }

    /// One builder fact.
    pub fn write_meta(&mut self, meta: &Meta) -> Result<(), RawLogError> {
        let json = serde_json::to_vec(meta).map_err(|source| RawLogError::BadMeta {
            path: self.path.clone(),
            offset: 0,
            source,
        })?;
        self.write_tagged(TAG_META, &json)
    }
}

/// Reads a raw log record by record; stops after the first error.
#[derive(Debug)]
pub struct RawLogReader<R = BufReader<File>> {
    path: PathBuf,
    input: R,
    offset: u64,
    done: bool,
    version: u32,
}

impl RawLogReader {
    /// Opens `path` and checks its header.
    pub fn open(path: impl AsRef<Path>) -> Result<RawLogReader, RawLogError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| RawLogError::Io {
            path: path.clone(),
            source,
        })?;
        RawLogReader::new(path, BufReader::with_capacity(1 << 16, file))
    }
}

/// A version 2 kernel record in version 3's layout: FAULTS lost its three
/// access-kind counts (48 bytes) for a major count (40 bytes), taken as 0.
fn upgrade_v2(payload: &mut Vec<u8>) {
    const FAULTS: u32 = crate::events::raw::lxprof_event_kind::LXPROF_EVENT_FAULTS as u32;
    let kind = payload
        .get(..4)
        .map(|k| u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
    if kind == Some(FAULTS) && payload.len() == 48 {
        payload.truncate(40);
        payload[36..40].fill(0);
    }
}

impl<R: Read> RawLogReader<R> {
    /// Reads from any byte source; `path` names it in errors.
    pub fn new(path: PathBuf, input: R) -> Result<RawLogReader<R>, RawLogError> {
        let mut r = RawLogReader {
            path,
            input,
            offset: 0,
            done: false,
            version: VERSION,
        };
        let mut magic = [0u8; 8];
        if !r.read_exact(&mut magic)? || &magic != MAGIC {
            return Err(RawLogError::BadMagic { path: r.path });
        }
        let mut v = [0u8; 4];
        if !r.read_exact(&mut v)? {
            return Err(r.truncated());
        }
        let version = u32::from_le_bytes(v);
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(RawLogError::UnsupportedVersion {
                path: r.path,
                version,
            });
        }
        r.version = version;
        Ok(r)
    }

    fn truncated(&self) -> RawLogError {
        RawLogError::Truncated {
            path: self.path.clone(),
            offset: self.offset,
        }
    }

    /// Fills `buf`; Ok(false) at end of input before the first byte, an error
    /// when the input ends in the middle.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<bool, RawLogError> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    self.offset += got as u64;
                    return Err(self.truncated());
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(RawLogError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        self.offset += got as u64;
        Ok(true)
    }

    fn next_record(&mut self) -> Result<Option<Record>, RawLogError> {
        let start = self.offset;
        let mut head = [0u8; 5];
        if !self.read_exact(&mut head)? {
            return Ok(None);
        }
        let tag = head[0];
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if tag != TAG_KERNEL && tag != TAG_META {
            return Err(RawLogError::BadTag {
                path: self.path.clone(),
                offset: start,
                tag,
            });
        }
        if len > MAX_RECORD_LEN {
            return Err(RawLogError::TooLong {
                path: self.path.clone(),
                offset: start,
                len,
            });
        }
        let mut payload = vec![0u8; len as usize];
        if !self.read_exact(&mut payload)? && len > 0 {
            return Err(self.truncated());
        }
        if tag == TAG_KERNEL {
            if self.version == 2 {
                upgrade_v2(&mut payload);
            }
            return Ok(Some(Record::Kernel(payload)));
        }
        serde_json::from_slice(&payload)
            .map(|m| Some(Record::Meta(m)))
            .map_err(|source| RawLogError::BadMeta {
                path: self.path.clone(),
                offset: start,
                source,
            })
    }
}

impl<R: Read> RawLogReader<R> {
    /// Only the kernel records, as the ring buffer delivered them.
    pub fn kernel_records(self) -> impl Iterator<Item = Result<Vec<u8>, RawLogError>> {
        self.filter_map(|r| match r {
            Ok(Record::Kernel(bytes)) => Some(Ok(bytes)),
            Ok(Record::Meta(_)) => None,
            Err(e) => Some(Err(e)),
        })
    }
}

impl<R: Read> Iterator for RawLogReader<R> {
    type Item = Result<Record, RawLogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_record().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

/// What [`replay_into`] fed the builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub kernel_records: u64,
    /// Kernel records that did not decode (skipped).
    pub decode_errors: u64,
    pub start_ns: Option<u64>,
    /// The `Finish` record, if the recording ended cleanly.
    pub finish: Option<(u64, RecordingInfo)>,
    /// Latest event timestamp seen.
    pub last_ts_ns: u64,
}

/// Feeds every record of the log at `path` to `builder` (kernel records
/// decoded and pushed; builder facts applied). `Start`/`Finish` are returned.
pub fn replay_into(path: &Path, builder: &mut ModelBuilder) -> Result<ReplayStats, RawLogError> {
    feed(RawLogReader::open(path)?, builder)
}

fn feed<R: Read>(
    reader: RawLogReader<R>,
    builder: &mut ModelBuilder,
) -> Result<ReplayStats, RawLogError> {
    let mut stats = ReplayStats::default();
    for record in reader {
        match record? {
            Record::Kernel(bytes) => {
                stats.kernel_records += 1;
                match Event::from_bytes(&bytes) {
                    Ok(ev) => {
                        stats.last_ts_ns = stats.last_ts_ns.max(ev.header().ts_ns);
                        builder.push(ev);
                    }
                    Err(_) => stats.decode_errors += 1,
                }
            }
            Record::Meta(Meta::Start { start_ns }) => stats.start_ns = Some(start_ns),
            Record::Meta(Meta::Finish { end_ns, info }) => stats.finish = Some((end_ns, info)),
            Record::Meta(m) => m.apply(builder),
        }
    }
    Ok(stats)
}

/// Rebuilds the [`Recording`] of a saved `events.bin`. The log must start
/// with a `Start` record. Without a `Finish` record (recording cut short) the
/// recording ends at the last event and its info only counts decode errors.
pub fn replay(path: &Path) -> Result<Recording, RawLogError> {
    replay_with(|| RawLogReader::open(path), path)
}

/// [`replay`] of a log in memory (`path` names it in errors).
pub fn replay_bytes(bytes: &[u8], path: &Path) -> Result<Recording, RawLogError> {
    replay_with(|| RawLogReader::new(path.to_path_buf(), bytes), path)
}

fn replay_with<R: Read>(
    open: impl Fn() -> Result<RawLogReader<R>, RawLogError>,
    path: &Path,
) -> Result<Recording, RawLogError> {
    let start_ns = match open()?.next() {
        Some(Ok(Record::Meta(Meta::Start { start_ns }))) => start_ns,
        Some(Err(e)) => return Err(e),
        _ => {
            return Err(RawLogError::MissingStart {
                path: path.to_path_buf(),
            });
        }
    };
    let mut builder = ModelBuilder::new(start_ns);
    let stats = feed(open()?, &mut builder)?;
    let (end_ns, mut info) = stats
        .finish
        .unwrap_or((stats.last_ts_ns.max(start_ns), RecordingInfo::default()));
    info.decode_errors = info.decode_errors.max(stats.decode_errors);
    Ok(builder.finish(end_ns, info))
}

#[cfg(test)]
mod tests;
