//! Incremental reader of a JIT's perf map (`/tmp/perf-PID.map`: `START SIZE name` per line).
//!
//! Hand-written rather than blazesym's: blazesym reads only the host path
//! `/tmp/perf-<pid>.map` of a live process, while lxprof must read the file through
//! `/proc/PID/root` (private `/tmp` of a Lambda environment), under the pid the process
//! sees in its own pid namespace, keep the file open so entries appended just before exit
//! are still read afterwards, and re-read only what was appended. The format is trivial.
//!
//! The directory (`/proc/PID/root/tmp`) is held open as well: a map written late (a JVM
//! writes it only at exit) is still found through it after the process and its mount
//! namespace are gone, since the handle keeps a private `/tmp` tmpfs alive.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A parsed perf map, kept open so it can be re-read after the process exited.
#[derive(Debug)]
pub struct PerfMap {
    path: PathBuf,
    /// The directory holding the map (`O_PATH`), and the map's file name in it.
    dir: Option<(File, String)>,
    file: Option<File>,
    /// Bytes of the file consumed so far (complete lines only).
    consumed: u64,
    /// Non-overlapping ranges: start → (end, name). Later lines win over earlier ones.
    entries: BTreeMap<u64, (u64, String)>,
}

impl PerfMap {
    /// A reader for `path`. Its directory is opened now (call it while the process is
    /// alive); the file on the first [`PerfMap::refresh`] that finds it.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path: PathBuf = path.into();
        let dir = path.parent().zip(path.file_name()).and_then(|(d, n)| {
            let handle = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(d)
                .ok()?;
            Some((handle, n.to_string_lossy().into_owned()))
        });
        PerfMap {
            path,
            dir,
            file: None,
            consumed: 0,
            entries: BTreeMap::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory holding the map is held open (so the map can still be
    /// found after the process and its mount namespace are gone).
    pub fn has_dir(&self) -> bool {
        self.dir.is_some()
    }

    /// Whether the file was found and is held open.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Opens the file if not yet open and parses what was appended since the last call.
    /// A file that shrank was rewritten: it is parsed again from the start.
    /// A missing file is not an error (the runtime may not have written it yet).
    pub fn refresh(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            // Through the held directory first: works after the process is gone.
            let through_dir = self
                .dir
                .as_ref()
                .map(|(d, name)| PathBuf::from(format!("/proc/self/fd/{}/{name}", d.as_raw_fd())));
            let opened = match through_dir.map(File::open) {
                Some(Ok(f)) => Ok(f),
                _ => File::open(&self.path),
            };
            match opened {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let len = file.metadata()?.len();
        if len < self.consumed {
            self.consumed = 0;
            self.entries.clear();
        }
        if len == self.consumed {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.consumed))?;
        let mut buf = Vec::with_capacity((len - self.consumed) as usize);
        file.read_to_end(&mut buf)?;
        // Only complete lines: a line being written stays for the next refresh.
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&buf[..=last_nl]);
        for line in text.lines() {
            if let Some((start, size, name)) = parse_line(line) {
                self.insert(start, size, name);
            }
        }
        self.consumed += last_nl as u64 + 1;
        Ok(())
    }

    /// Adds one entry, removing the parts of older entries it overlaps (code moved or
    /// freed and reused: the newest name wins).
    pub fn insert(&mut self, start: u64, size: u64, name: &str) {
        let end = start.saturating_add(size.max(1));
        // An older entry starting before `start` and reaching into it is cut short.
        if let Some((&s, (e, n))) = self.entries.range(..start).next_back()
            && *e > start
        {
            let (old_end, old_name) = (*e, n.clone());
            self.entries.insert(s, (start, old_name.clone()));
            if old_end > end {
                self.entries.insert(end, (old_end, old_name));
            }
        }
        let inside: Vec<u64> = self.entries.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            if let Some((e, n)) = self.entries.remove(&s)
                && e > end
            {
                self.entries.insert(end, (e, n));
            }
        }
        self.entries.insert(start, (end, name.to_string()));
    }

    /// Name of the code at `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let (_, (end, name)) = self.entries.range(..=addr).next_back()?;
        (addr < *end).then_some(name.as_str())
    }
}

/// `START SIZE name` with hexadecimal START and SIZE, with or without `0x` (HotSpot's
/// `jcmd Compiler.perfmap` writes it). The name is the rest of the line (may hold spaces).
fn parse_line(line: &str) -> Option<(u64, u64, &str)> {
    let line = line.trim_end_matches('\r');
    let (start, rest) = line.split_once(' ')?;
    let (size, name) = rest.split_once(' ')?;
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((hex(start)?, hex(size)?, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_both_address_styles_and_names_with_spaces() {
        assert_eq!(
            parse_line("7f00aa 1c JS:*fib /tmp/a.js:1:1"),
            Some((0x7f00aa, 0x1c, "JS:*fib /tmp/a.js:1:1"))
        );
        assert_eq!(
            parse_line("0x7f10 0x20 Interpreter"),
            Some((0x7f10, 0x20, "Interpreter"))
        );
        assert_eq!(parse_line("zz 10 x"), None);
        assert_eq!(parse_line("10 10"), None);
    }

    #[test]
    fn newer_entries_win_over_overlapped_ones() {
        let mut m = PerfMap::new("/nonexistent");
        m.insert(0x1000, 0x100, "old");
        m.insert(0x1040, 0x20, "new");
        assert_eq!(m.lookup(0x1000), Some("old"));
        assert_eq!(m.lookup(0x1045), Some("new"));
        assert_eq!(m.lookup(0x1070), Some("old"));
        assert_eq!(m.lookup(0x1100), None);
        m.insert(0x0f00, 0x300, "all");
        assert_eq!(m.lookup(0x1045), Some("all"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn refresh_reads_appended_complete_lines_and_rereads_rewritten_files() {
        let dir = std::env::temp_dir().join(format!("lxprof-perfmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("perf-1.map");
        let _ = std::fs::remove_file(&path);
        let mut m = PerfMap::new(&path);
        m.refresh().expect("missing file is fine");
        assert!(!m.is_open());
        let mut f = File::create(&path).expect("create");
        write!(f, "100 10 a\n200 10 b\n300 10 par").expect("write");
        m.refresh().expect("refresh");
        assert_eq!((m.lookup(0x105), m.lookup(0x205)), (Some("a"), Some("b")));
        assert_eq!(m.lookup(0x305), None, "partial line is not parsed yet");
        writeln!(f, "tial").expect("write");
        m.refresh().expect("refresh");
        assert_eq!(m.lookup(0x305), Some("partial"));
        drop(f);
        std::fs::write(&path, "400 10 c\n").expect("rewrite");
        // Rewritten through a new inode: the open handle still sees the old file,
        // so reopen to follow the rewrite.
        let mut m2 = PerfMap::new(&path);
        m2.refresh().expect("refresh");
        assert_eq!((m2.lookup(0x405), m2.lookup(0x105)), (Some("c"), None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
