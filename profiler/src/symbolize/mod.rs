//! Symbolization of native, JIT and kernel addresses, also after the process exited.
//!
//! [`Symbolizer::observe_process`] snapshots, while the process is alive, what its
//! addresses need: the executable mappings of `/proc/PID/maps`, an open handle on every
//! mapped ELF file (opened through `/proc/PID/map_files/`, else `/proc/PID/root/PATH`, so
//! files of other mount namespaces, overlay/bind mounts and deleted files work), and its
//! perf map `/proc/PID/root/tmp/perf-NSPID.map` (held open: entries appended until exit
//! are read later). [`Symbolizer::symbolize_user`] then needs nothing from the process.
//!
//! ELF/DWARF symbols come from blazesym's `Elf` source pointed at `/proc/self/fd/N` of
//! the held handle with file offsets as input. blazesym's own `Process` source is not used:
//! its `cache` keeps the VMAs and perf map, but opens ELF files lazily through
//! `/proc/PID/map_files` at symbolization time, which fails once the process is gone,
//! and it reads the perf map at the host path `/tmp/perf-PID.map` only.
//!
//! [`Symbolizer::symbolize_user`] takes addresses as given; [`Symbolizer::symbolize_stack`]
//! takes a sampled stack and looks callers up at `return address - 1`.

pub mod kernel;
pub mod perfmap;
pub mod process;

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized};

use crate::stacks::{Frame, FrameKind};
use perfmap::PerfMap;
use process::Mapping;

/// Errors of snapshotting a process.
#[derive(Debug, thiserror::Error)]
pub enum SymbolizeError {
    #[error(
        "cannot read /proc/{pid}/maps (process gone, or lxprof lacks CAP_SYS_PTRACE: run as root): {source}"
    )]
    ReadMaps {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read perf map {path} of pid {pid}: {source}")]
    PerfMap {
        pid: u32,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What is kept of one process.
#[derive(Debug)]
struct ProcessState {
    mappings: Vec<Mapping>,
    /// Changes whenever `mappings` does (see [`Symbolizer::mappings`]).
    generation: u64,
    perf_map: PerfMap,
    /// Its parent when first observed (`PPid`), for [`Symbolizer::inherit_parent_mappings`].
    parent: Option<u32>,
    /// Whether the parent's mappings were added already.
    inherited: bool,
}

/// An ELF file held open: `(dev, inode)` of the mapping → handle.
type FileKey = (String, u64);

/// Symbolizes user addresses of observed processes and kernel addresses.
pub struct Symbolizer {
    blaze: blazesym::symbolize::Symbolizer,
    files: HashMap<FileKey, File>,
    processes: HashMap<u32, ProcessState>,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        let blaze = blazesym::symbolize::Symbolizer::builder()
            .enable_code_info(false)
            .enable_inlined_fns(false)
            .enable_demangling(true)
            .build();
        Symbolizer {
            blaze,
            files: HashMap::new(),
            processes: HashMap::new(),
        }
    }

    /// Snapshots what symbolizing `pid` needs (see the module doc); on an already observed
    /// pid the same as [`Symbolizer::refresh`]. Call it at exec or at the first sample,
    /// then `refresh` now and then (new libraries, perf map growth) while it runs.
    /// Fails when `/proc/PID/maps` cannot be read (process gone, or not root), or the
    /// perf map exists but cannot be read.
    pub fn observe_process(&mut self, pid: u32) -> Result<(), SymbolizeError> {
        if self.processes.contains_key(&pid) {
            return self.refresh(pid);
        }
        let perf_map = perf_map_of(pid).unwrap_or_else(|| PerfMap::new("/nonexistent"));
        let parent = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| process::parent_pid(&status));
        self.processes.insert(
            pid,
            ProcessState {
                mappings: Vec::new(),
                generation: 0,
                perf_map,
                parent,
                inherited: false,
            },
        );
        self.refresh(pid)
    }

    /// Adds to `pid`'s mappings those of its parent that overlap none of its own: the
    /// image a child runs between fork and exec is its parent's, and a sample taken
    /// there is unwound after the exec (the mappings read then are the new program's).
    /// The parent's are those kept of it if observed, else read now. Once per pid (the
    /// first sample whose instruction is in none of its mappings); true when mappings
    /// were added. Not for a parent that is init (pid 1): an orphan's, not its own.
    pub fn inherit_parent_mappings(&mut self, pid: u32) -> bool {
        let Some(state) = self.processes.get_mut(&pid) else {
            return false;
        };
        if std::mem::replace(&mut state.inherited, true) {
            return false;
        }
        let Some(ppid) = state.parent.filter(|&p| p > 1 && p != pid) else {
            return false;
        };
        let from_parent = match self.processes.get(&ppid) {
            Some(p) => p.mappings.clone(),
            None => {
                let Ok(text) = std::fs::read_to_string(format!("/proc/{ppid}/maps")) else {
                    return false;
                };
                let maps = process::parse_maps(&text);
                for m in maps.iter().filter(|m| m.is_file()) {
                    let key = (m.dev.clone(), m.inode);
                    if !self.files.contains_key(&key)
                        && let Some(file) = open_mapped_file(ppid, m)
                    {
                        self.files.insert(key, file);
                    }
                }
                maps
            }
        };
        let Some(state) = self.processes.get_mut(&pid) else {
            return false;
        };
        let merged = process::merge_mappings(from_parent, state.mappings.clone());
        if merged == state.mappings {
            return false;
        }
        tracing::trace!("pid {pid}: mappings of parent {ppid} added");
        state.mappings = merged;
        state.generation += 1;
        true
    }

    /// Re-reads the mappings (new libraries, keeping unloaded ones) and what was appended
    /// to the perf map, opening files not seen before. Costs one read of
    /// `/proc/PID/maps` and a `stat` of the perf map.
    pub fn refresh(&mut self, pid: u32) -> Result<(), SymbolizeError> {
        let Some(state) = self.processes.get_mut(&pid) else {
            return self.observe_process(pid);
        };
        // Until the map exists, follow the live process's /tmp: observed right after fork,
        // it may since have entered a new mount namespace with a private /tmp. Only for
        // a directory that could be opened: a process exiting (its leader past exit_fs,
        // other threads still running) still has /proc/PID/status but no
        // /proc/PID/root, and replacing the held directory then would lose a map
        // written at exit (a JVM's) just before it.
        if !state.perf_map.is_open()
            && let Some(fresh) = perf_map_of(pid)
        {
            state.perf_map = fresh;
        }
        // The perf map first: its handle outlives the process.
        let map_result = state.perf_map.refresh();
        let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map_err(|source| SymbolizeError::ReadMaps { pid, source })?;
        let fresh = process::parse_maps(&text);
        for m in fresh.iter().filter(|m| m.is_file()) {
            let key = (m.dev.clone(), m.inode);
            if self.files.contains_key(&key) {
                continue;
            }
            if let Some(file) = open_mapped_file(pid, m) {
                self.files.insert(key, file);
            }
        }
        let old = std::mem::take(&mut state.mappings);
        let merged = process::merge_mappings(old.clone(), fresh);
        if merged != old {
            state.generation += 1;
        }
        state.mappings = merged;
        map_result.map_err(|source| SymbolizeError::PerfMap {
            pid,
            path: state.perf_map.path().to_path_buf(),
            source,
        })
    }

    /// Drops what is kept of `pid` (the ELF handles stay: other processes share them).
    /// Call it when the pid is reused by a new process (a fork after its exit).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// The executable mappings kept of `pid`, sorted by start, and a number that
    /// changes whenever they do; None for a pid never observed.
    pub fn mappings(&self, pid: u32) -> Option<(&[Mapping], u64)> {
        self.processes
            .get(&pid)
            .map(|s| (s.mappings.as_slice(), s.generation))
    }

    /// Whether `addr` of `pid` can hold code: inside an executable mapping, or named
    /// by the process's perf map (JIT code, also in pages a JIT keeps writable
    /// between writes, which `/proc/PID/maps` showed without `x`).
    pub fn is_code(&self, pid: u32, addr: u64) -> bool {
        self.processes.get(&pid).is_some_and(|s| {
            process::find(&s.mappings, addr).is_some() || s.perf_map.lookup(addr).is_some()
        })
    }

    /// The held handle of the file behind mapping `m` (None: anonymous, or not opened).
    pub fn mapped_file(&self, m: &Mapping) -> Option<&File> {
        self.files.get(&(m.dev.clone(), m.inode))
    }

    /// Number of perf map entries known for `pid` (0 when none was found).
    pub fn perf_map_len(&self, pid: u32) -> usize {
        self.processes.get(&pid).map_or(0, |s| s.perf_map.len())
    }

    /// One frame per address of `pid` (the thread group id), from its snapshot: works after
    /// the process exited. A pid never observed is observed now (it must still be alive).
    /// ELF code → `Native` (module: file name); code named by the perf map → `Jit`
    /// (module `[jit]`); else `Unknown` (`[unknown]`, module of the mapping if any).
    pub fn symbolize_user(&mut self, pid: u32, addrs: &[u64]) -> Vec<Frame> {
        if !self.processes.contains_key(&pid) {
            let _ = self.observe_process(pid);
        }
        let Some(state) = self.processes.get_mut(&pid) else {
            return addrs.iter().map(|_| unknown(None)).collect();
        };
        // Entries appended since the last refresh, also after exit (the handle is held).
        let refreshed = state.perf_map.refresh();
        tracing::debug!(
            "pid {pid}: perf map {} open {} entries {} ({refreshed:?})",
            state.perf_map.path().display(),
            state.perf_map.is_open(),
            state.perf_map.len()
        );
        let mut frames: Vec<Option<Frame>> = vec![None; addrs.len()];
        // ELF lookups grouped per file: one blazesym call each.
        let mut groups: HashMap<FileKey, (String, Vec<usize>, Vec<u64>)> = HashMap::new();
        for (i, &addr) in addrs.iter().enumerate() {
            let Some(m) = process::find(&state.mappings, addr) else {
                continue;
            };
            if m.is_file() {
                let key = (m.dev.clone(), m.inode);
                if self.files.contains_key(&key) {
                    let g = groups
                        .entry(key)
                        .or_insert_with(|| (m.module_name(), Vec::new(), Vec::new()));
                    g.1.push(i);
                    g.2.push(addr - m.start + m.offset);
                }
            }
        }
        for (key, (module, idxs, offsets)) in groups {
            let Some(file) = self.files.get(&key) else {
                continue;
            };
            let src = Source::Elf(Elf::new(format!("/proc/self/fd/{}", file.as_raw_fd())));
            let Ok(results) = self.blaze.symbolize(&src, Input::FileOffset(&offsets)) else {
                continue;
            };
            for (i, res) in idxs.into_iter().zip(results) {
                if let Symbolized::Sym(sym) = res {
                    frames[i] = Some(Frame {
                        name: sym.name.into_owned(),
                        module: Some(module.clone()),
                        kind: FrameKind::Native,
                    });
                }
            }
        }
        addrs
            .iter()
            .zip(frames)
            .map(|(&addr, frame)| {
                frame.unwrap_or_else(|| {
                    let m = process::find(&state.mappings, addr);
                    match state.perf_map.lookup(addr) {
                        // A perf map names code only outside ELF symbols: anonymous or
                        // memfd memory, or an ELF range without a symbol (V8 builtins).
                        Some(name) => Frame {
                            name: name.to_string(),
                            module: Some("[jit]".to_string()),
                            kind: FrameKind::Jit,
                        },
                        None => unknown(m.filter(|m| !m.is_anonymous())),
                    }
                })
            })
            .collect()
    }

    /// One sampled stack → frames leaf first, kernel frames before user frames (the order
    /// of [`crate::stacks::ResolvedSample::frames`]). Each stack's first address is the
    /// interrupted instruction; the others are return addresses, looked up at `addr - 1`
    /// so a call ending a function is named after the caller, not the next function.
    pub fn symbolize_stack(&mut self, pid: u32, kernel: &[u64], user: &[u64]) -> Vec<Frame> {
        let callers = |ips: &[u64]| -> Vec<u64> {
            ips.iter()
                .enumerate()
                .map(|(i, &a)| if i == 0 { a } else { a.saturating_sub(1) })
                .collect()
        };
        let mut frames = if kernel.is_empty() {
            Vec::new()
        } else {
            self.symbolize_kernel(&callers(kernel))
        };
        if !user.is_empty() {
            frames.extend(self.symbolize_user(pid, &callers(user)));
        }
        frames
    }

    /// Kernel addresses → frames from `/proc/kallsyms`.
    pub fn symbolize_kernel(&mut self, addrs: &[u64]) -> Vec<Frame> {
        let results = self
            .blaze
            .symbolize(&kernel::source(), Input::AbsAddr(addrs))
            .unwrap_or_default();
        addrs
            .iter()
            .enumerate()
            .map(|(i, _)| match results.get(i) {
                Some(Symbolized::Sym(sym)) => Frame {
                    name: sym.name.to_string(),
                    module: Some("[kernel]".to_string()),
                    kind: FrameKind::Kernel,
                },
                _ => Frame {
                    name: "[unknown]".to_string(),
                    module: Some("[kernel]".to_string()),
                    kind: FrameKind::Unknown,
                },
            })
            .collect()
    }
}

/// The perf map of a live process: `/proc/PID/root/tmp/perf-NSPID.map`, NSPID being its
/// pid in its own pid namespace, with its directory held open. `None` when the process
/// is gone or exiting (its `/proc/PID/root` is unreadable from its `exit_fs` on).
fn perf_map_of(pid: u32) -> Option<PerfMap> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ns_pid = process::namespace_pid(&status, pid);
    let map = PerfMap::new(format!("/proc/{pid}/root/tmp/perf-{ns_pid}.map"));
    map.has_dir().then_some(map)
}

/// `[unknown]`, in the mapping's module if any.
fn unknown(mapping: Option<&Mapping>) -> Frame {
    Frame {
        name: "[unknown]".to_string(),
        module: mapping.map(Mapping::module_name),
        kind: FrameKind::Unknown,
    }
}

/// Opens the file behind an executable mapping: `/proc/PID/map_files/START-END` gives
/// the very file mapped (any namespace, even deleted); else the path inside the process's
/// root. The handle keeps the file readable after the process and its mounts are gone.
fn open_mapped_file(pid: u32, m: &Mapping) -> Option<File> {
    File::open(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end))
        .or_else(|_| File::open(format!("/proc/{pid}/root{}", m.path)))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_to_find() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn own_function_resolves_to_its_name() {
        let addr = a_function_to_find as *const () as u64;
        let mut s = Symbolizer::new();
        s.observe_process(std::process::id()).expect("own maps");
        let f = &s.symbolize_user(std::process::id(), &[addr + 1])[0];
        assert_eq!(f.kind, FrameKind::Native, "{f:?}");
        assert!(f.name.ends_with("a_function_to_find"), "{f:?}");
        assert!(f.module.as_deref().is_some_and(|m| m.starts_with("lxprof")));
    }

    #[test]
    fn stack_callers_are_looked_up_before_their_return_address() {
        let start = a_function_to_find as *const () as u64;
        let pid = std::process::id();
        let mut s = Symbolizer::new();
        s.observe_process(pid).expect("own maps");
        let frames = s.symbolize_stack(pid, &[], &[start, start]);
        assert_eq!(frames.len(), 2);
        assert!(frames[0].name.ends_with("a_function_to_find"), "{frames:?}");
        assert!(
            !frames[1].name.ends_with("a_function_to_find"),
            "{frames:?}"
        );
    }

    /// A map written just before exit (as a JVM writes it) is still read when the
    /// process was refreshed while exiting (a zombie: /proc/PID/status is there,
    /// /proc/PID/root is not) and symbolized after it was reaped.
    #[test]
    fn perf_map_written_at_exit_survives_a_refresh_of_the_exiting_process() {
        let mut child = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                "read _ ; echo '7e5700001000 100 written_at_exit' > /tmp/perf-$$.map",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let pid = child.id();
        let mut s = Symbolizer::new();
        s.observe_process(pid).expect("child maps");
        drop(child.stdin.take());
        // A zombie: exited, not reaped.
        let zombie = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                st.rsplit_once(") ")
                    .is_some_and(|(_, r)| r.starts_with('Z'))
            })
        });
        assert!(zombie, "child never became a zombie");
        let _ = s.refresh(pid);
        child.wait().expect("reap");
        let f = &s.symbolize_user(pid, &[0x7e57_0000_1010])[0];
        let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
        assert_eq!(
            (f.kind, f.name.as_str()),
            (FrameKind::Jit, "written_at_exit"),
            "{f:?}"
        );
    }

    /// A child's address in the image it had from its parent (before its exec)
    /// resolves once the parent's mappings are inherited; only once.
    #[test]
    fn a_child_inherits_its_parents_mappings_once() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let own = a_function_to_find as *const () as u64;
        let mut s = Symbolizer::new();
        s.observe_process(pid).expect("child maps");
        let before = s.symbolize_user(pid, &[own])[0].kind;
        let inherited = s.inherit_parent_mappings(pid);
        let again = s.inherit_parent_mappings(pid);
        let after = s.symbolize_user(pid, &[own + 1])[0].clone();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(before, FrameKind::Unknown);
        assert!(inherited && !again);
        assert!(after.name.ends_with("a_function_to_find"), "{after:?}");
    }

    #[test]
    fn unmapped_address_is_unknown() {
        let mut s = Symbolizer::new();
        s.observe_process(std::process::id()).expect("own maps");
        let f = &s.symbolize_user(std::process::id(), &[8])[0];
        assert_eq!(
            (f.kind, f.name.as_str(), &f.module),
            (FrameKind::Unknown, "[unknown]", &None)
        );
    }
}
