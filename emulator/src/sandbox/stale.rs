//! Removing leftovers of crashed runs: environments whose creating process is gone (its pid
//! and start time are recorded in the state directory's `owner` file). `lxprof run --lambda`,
//! `record --lambda` and `suite` call [`cleanup_stale`] when they start; `lxprof clean` calls it
//! on demand.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{SandboxError, cgroup, mounts};

/// What [`cleanup_stale`] removed.
#[derive(Debug, Default, Clone)]
pub struct CleanupReport {
    /// Processes SIGKILLed (found in groups whose owner is dead).
    pub processes_killed: usize,
    /// cgroup directories removed.
    pub cgroups_removed: Vec<PathBuf>,
    /// State directories removed.
    pub state_dirs_removed: Vec<PathBuf>,
}

/// Removes leftovers of crashed runs: environments under every `lxprof` cgroup parent and
/// under [`mounts::STATE_ROOT`] whose creating process (recorded in the state dir) is gone.
/// Their processes are killed, their cgroups and state dirs removed. Live runs are untouched.
pub fn cleanup_stale() -> Result<CleanupReport, SandboxError> {
    let mut report = CleanupReport::default();
    let state_root = Path::new(mounts::STATE_ROOT);
    let live = |name: &std::ffi::OsStr, entry: &Path| {
        let state = state_root.join(name);
        mounts::owner_alive(&state) || (!state.join("owner").exists() && being_created(entry))
    };
    let parents = lxprof_parents();
    let mut stale = Vec::new();
    for parent in &parents {
        let Ok(rd) = fs::read_dir(parent) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) && !live(&e.file_name(), &e.path()) {
                stale.push(e.path());
            }
        }
    }
    // Kill and thaw in every hierarchy before removing any group: a process frozen by the
    // v1 freezer (a run killed between invocations) dies of SIGKILL only once thawed, and
    // the freezer is a hierarchy of its own.
    let mut killed = std::collections::BTreeSet::new();
    for dir in &stale {
        for pid in cgroup::pids_in(dir) {
            if killed.insert(pid) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
        let _ = fs::write(dir.join("cgroup.kill"), "1");
    }
    report.processes_killed = killed.len();
    for dir in stale {
        cgroup::rmdir_retry(&dir)?;
        report.cgroups_removed.push(dir);
    }
    for parent in &parents {
        // Gone only if no environment is left in it (creators retry if it vanishes).
        let _ = fs::remove_dir(parent);
    }
    if let Ok(rd) = fs::read_dir(state_root) {
        for e in rd.flatten() {
            if live(&e.file_name(), &e.path()) {
                continue;
            }
            super::ephemeral::unmount(&e.path());
            fs::remove_dir_all(e.path()).map_err(|err| SandboxError::Io {
                path: e.path(),
                what: "remove the stale state directory".into(),
                source: err,
            })?;
            report.state_dirs_removed.push(e.path());
        }
        let _ = fs::remove_dir(state_root);
    }
    Ok(report)
}

/// A directory without an owner record yet is being created by a live run (the record is the
/// first thing written, the cgroups come after it) unless it is older than this.
const CREATION_GRACE: Duration = Duration::from_secs(30);

/// Whether `dir` was made less than [`CREATION_GRACE`] ago.
fn being_created(dir: &Path) -> bool {
    fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < CREATION_GRACE)
}

/// Every `lxprof` parent cgroup on this machine (any v1 hierarchy or cgroup2 mount).
pub fn lxprof_parents() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| left.split_whitespace().nth(4))?
        })
        .map(|m| Path::new(m).join(cgroup::PARENT))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v.dedup();
    v
}
