//! The output directory of a recording, and atomic file writes into it
//! (temporary file in the same directory, fsync, rename), so a reader never
//! sees a half-written `trace.json` even if lxprof is killed mid-write.
//! Temporary names are unique to the process and the write, so two runs
//! sharing `-o DIR` never write the same temporary file; [`Unwritten`] keeps
//! the outputs that failed so that the others are still written.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Distinguishes the temporary files of one process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Why the output directory or a file in it could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "cannot create output directory {path}: {source}; pass -o DIR with a writable directory"
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists and is not a directory; pass -o DIR with a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot write {path}: {source}; check free space and permissions")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid output file name {name:?}: must be a plain file name")]
    BadName { name: String },
}

/// A directory that receives the outputs of one recording.
#[derive(Debug, Clone)]
pub struct OutputDir {
    path: PathBuf,
}

impl OutputDir {
    /// Creates `dir` (with parents; it may already exist), or by default
    /// `./lxprof-out/<UTC timestamp>/` (e.g. `20261126T203815Z`, with `-2`,
    /// `-3`… appended if that exists already).
    pub fn create(dir: Option<PathBuf>) -> Result<OutputDir, OutputError> {
        match dir {
            Some(path) => {
                if path.exists() && !path.is_dir() {
                    return Err(OutputError::NotADirectory { path });
                }
                fs::create_dir_all(&path).map_err(|source| OutputError::CreateDir {
                    path: path.clone(),
                    source,
                })?;
                Ok(OutputDir { path })
            }
            None => Self::create_fresh(Path::new("lxprof-out"), &utc_timestamp(SystemTime::now())),
        }
    }

    /// Creates a new directory `parent/stamp` (or `stamp-2`, …) that did not exist.
    fn create_fresh(parent: &Path, stamp: &str) -> Result<OutputDir, OutputError> {
        fs::create_dir_all(parent).map_err(|source| OutputError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
        for n in 1.. {
            let name = if n == 1 {
                stamp.to_string()
            } else {
                format!("{stamp}-{n}")
            };
            let path = parent.join(name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(OutputDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
                Err(source) => return Err(OutputError::CreateDir { path, source }),
            }
        }
        unreachable!("the loop returns")
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A temporary file name for `name` in the directory that no other
    /// process (and no other write of this one) uses: `.<name>.tmp-<pid>-<n>`.
    pub fn temp_path(&self, name: &str) -> PathBuf {
        let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.path
            .join(format!(".{name}.tmp-{}-{n}", std::process::id()))
    }

    /// Writes `bytes` to `name` in the directory atomically: a temporary file
    /// in the same directory, fsync, rename over `name`, fsync of the
    /// directory. Returns the final path.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        self.write_atomic_with(name, |f| f.write_all(bytes))
    }

    /// [`OutputDir::write_atomic`] of what `write` writes into the temporary
    /// file (a large output streamed, never held whole in memory).
    pub fn write_atomic_with(
        &self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<PathBuf, OutputError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(OutputError::BadName {
                name: name.to_string(),
            });
        }
        let target = self.path.join(name);
        let tmp = self.temp_path(name);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            write(&mut f)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &target)?;
            // Make the rename itself durable.
            File::open(&self.path)?.sync_all()
        })();
        result.map_err(|source| {
            let _ = fs::remove_file(&tmp);
            OutputError::Write {
                path: target.clone(),
                source,
            }
        })?;
        Ok(target)
    }
}

/// Outputs that could not be written (`(path, why)`), collected so that a
/// failing file does not lose the others nor the terminal summary.
#[derive(Debug, Default, Clone)]
pub struct Unwritten(pub Vec<(PathBuf, String)>);

impl Unwritten {
    /// Notes a failed write; returns the path when it succeeded.
    pub fn keep(&mut self, written: Result<PathBuf, OutputError>) -> Option<PathBuf> {
        match written {
            Ok(p) => Some(p),
            Err(e) => {
                self.note(e);
                None
            }
        }
    }

    /// Notes a failed write.
    pub fn note(&mut self, e: OutputError) {
        match e {
            OutputError::Write { path, source } => self.0.push((path, source.to_string())),
            other => self.0.push((PathBuf::new(), other.to_string())),
        }
    }

    /// Nothing failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line for the user: the files not written, grouped by cause
    /// (`cannot write trace.json, report.json in DIR: No space left on device
    /// (os error 28); check free space and permissions`); `None` when every
    /// output was written.
    pub fn line(&self) -> Option<String> {
        let mut causes: Vec<(&str, Vec<String>)> = Vec::new();
        for (path, why) in &self.0 {
            let shown = path.display().to_string();
            match causes.iter_mut().find(|(w, _)| *w == why.as_str()) {
                Some((_, paths)) => paths.push(shown),
                None => causes.push((why.as_str(), vec![shown])),
            }
        }
        let parts: Vec<String> = causes
            .into_iter()
            .map(|(why, paths)| {
                let paths: Vec<&str> = paths
                    .iter()
                    .map(String::as_str)
                    .filter(|p| !p.is_empty())
                    .collect();
                if paths.is_empty() {
                    why.to_string()
                } else {
                    format!("cannot write {}: {why}", paths.join(", "))
                }
            })
            .collect();
        (!parts.is_empty()).then(|| {
            format!(
                "{}; check free space and permissions (the outputs listed above were written)",
                parts.join("; ")
            )
        })
    }
}

/// `YYYYMMDDTHHMMSSZ` for a time (UTC, proleptic Gregorian).
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lxprof-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101T000000Z");
        // 2024-02-29 12:34:56 UTC (a leap day).
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(utc_timestamp(t), "20240229T123456Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(utc_timestamp(t), "20261231T235959Z");
    }

    #[test]
    fn writes_atomically_and_replaces() {
        let dir = scratch("atomic");
        let out = OutputDir::create(Some(dir.join("a/b"))).unwrap();
        let p = out.write_atomic("x.json", b"one").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        out.write_atomic("x.json", b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["x.json"], "no temporary file left behind");
        assert!(matches!(
            out.write_atomic("../x", b""),
            Err(OutputError::BadName { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_are_unique() {
        let out = OutputDir {
            path: PathBuf::from("/x"),
        };
        assert_ne!(out.temp_path("events.bin"), out.temp_path("events.bin"));
    }

    #[test]
    fn unwritten_outputs_are_one_line_per_cause() {
        let mut u = Unwritten::default();
        assert_eq!(u.line(), None);
        let enospc = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        for name in ["trace.json", "report.json"] {
            u.note(OutputError::Write {
                path: PathBuf::from("/o").join(name),
                source: enospc(),
            });
        }
        let line = u.line().unwrap();
        assert_eq!(line.matches("No space left").count(), 1, "{line}");
        assert!(line.contains("/o/trace.json, /o/report.json"), "{line}");
    }

    #[test]
    fn fresh_dirs_never_reuse_an_existing_one() {
        let dir = scratch("fresh");
        let a = OutputDir::create_fresh(&dir, "stamp").unwrap();
        let b = OutputDir::create_fresh(&dir, "stamp").unwrap();
        assert_eq!(a.path(), dir.join("stamp"));
        assert_eq!(b.path(), dir.join("stamp-2"));
        fs::write(dir.join("file"), b"").unwrap();
        assert!(matches!(
            OutputDir::create(Some(dir.join("file"))),
            Err(OutputError::NotADirectory { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
