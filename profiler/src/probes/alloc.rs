//! Allocation probes (programs in `ebpf/alloc.bpf.h`): mmap/munmap/brk from
//! the raw syscall tracepoints ([`AllocMode::Syscalls`](super::AllocMode)) and,
//! with [`AllocMode::Full`](super::AllocMode), uprobes on
//! malloc/calloc/realloc/free of every libc file the traced processes map.
//!
//! A uprobe belongs to a file (an inode), not to a process: the host's libc
//! is probed at load, and [`LibcWatch::watch`] probes any other libc a traced
//! process maps (a container's, reached through `/proc/PID/root`), once per
//! `(device, inode)`. The kernel programs drop calls of untraced processes.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aya::Ebpf;
use aya::programs::UProbe;
use aya::programs::uprobe::UProbeScope;

use super::ProbeError;

/// The syscall programs (`--alloc syscalls` and `full`), on the raw
/// `sys_enter`/`sys_exit` tracepoints: the enter program keeps the arguments
/// of mmap, munmap and brk that the exit program needs.
pub(super) const SYSCALL_PROGRAMS: &[super::BtfProgram] = &[
    super::BtfProgram {
        program: "alloc_sys_enter",
        tracepoint: "sys_enter",
    },
    super::BtfProgram {
        program: "alloc_sys_exit",
        tracepoint: "sys_exit",
    },
];

/// `(program, libc symbol)` of the uprobes (`--alloc full`).
pub(super) const UPROBES: &[(&str, &str)] = &[
    ("alloc_malloc", "malloc"),
    ("alloc_calloc", "calloc"),
    ("alloc_realloc", "realloc"),
    ("alloc_free", "free"),
];

/// Loads and attaches the syscall programs.
pub(super) fn attach_syscalls(ebpf: &mut Ebpf, btf: &aya::Btf) -> Result<(), ProbeError> {
    for p in SYSCALL_PROGRAMS {
        super::attach_btf(ebpf, p, btf)?;
    }
    Ok(())
}

/// The libc files probed so far, by `(device, inode)`.
#[derive(Debug, Default)]
pub(super) struct LibcWatch {
    probed: HashSet<(u64, u64)>,
    /// Paths attached, in order (for logs and tests).
    pub paths: Vec<PathBuf>,
}

impl LibcWatch {
    /// Loads the uprobe programs and attaches them to the libc lxprof itself
    /// runs with (the host's).
    pub(super) fn load(ebpf: &mut Ebpf) -> Result<LibcWatch, ProbeError> {
        for (program, _) in UPROBES {
            let err = |source| ProbeError::Uprobe {
                program,
                path: PathBuf::new(),
                source,
            };
            let prog: &mut UProbe = super::program(ebpf, program, err)?;
            prog.load().map_err(err)?;
        }
        let mut watch = LibcWatch::default();
        let own = libcs_of("/proc/self/maps", Path::new("/"));
        if own.is_empty() {
            return Err(ProbeError::NoLibc);
        }
        for path in own {
            watch.attach(ebpf, &path)?;
        }
        Ok(watch)
    }

    /// Probes every libc process `pid` maps that is not probed yet. True when
    /// it maps at least one libc (all probed now); false when it maps none
    /// (not loaded yet, a static binary, or the process is gone).
    pub(super) fn watch(&mut self, ebpf: &mut Ebpf, pid: u32) -> Result<bool, ProbeError> {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let libcs = libcs_of(format!("/proc/{pid}/maps"), &root);
        for path in &libcs {
            self.attach(ebpf, path)?;
        }
        Ok(!libcs.is_empty())
    }

    /// Attaches every uprobe to `path` unless its file is probed already.
    fn attach(&mut self, ebpf: &mut Ebpf, path: &Path) -> Result<(), ProbeError> {
        let Ok(meta) = std::fs::metadata(path) else {
            // Gone (the process exited): nothing to probe.
            return Ok(());
        };
        if !self.probed.insert((meta.dev(), meta.ino())) {
            return Ok(());
        }
        for (program, symbol) in UPROBES {
            let err = |source| ProbeError::Uprobe {
                program,
                path: path.to_path_buf(),
                source,
            };
            let prog: &mut UProbe = super::program(ebpf, program, err)?;
            prog.attach(*symbol, path, UProbeScope::AllProcesses)
                .map_err(err)?;
        }
        tracing::debug!("malloc probes on {}", path.display());
        self.paths.push(path.to_path_buf());
        Ok(())
    }
}

/// True for the file name of a C library that holds malloc: glibc's
/// `libc.so.6` (or old `libc-2.31.so`), musl's `libc.musl-*.so.1` or its
/// loader `ld-musl-*.so.1`.
pub(crate) fn is_libc(name: &str) -> bool {
    name.starts_with("libc.so")
        || name.starts_with("libc.musl")
        || name.starts_with("ld-musl")
        || (name.starts_with("libc-") && name.ends_with(".so"))
}

/// The libc files mapped according to `maps` (a `/proc/PID/maps`), as paths
/// under `root` (the process's `/proc/PID/root`), without repeats.
fn libcs_of(maps: impl AsRef<Path>, root: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(maps) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for path in parse_maps_paths(&text) {
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_libc(&name) {
            continue;
        }
        let full = root.join(path.trim_start_matches('/'));
        if !out.contains(&full) {
            out.push(full);
        }
    }
    out
}

/// The absolute file paths of a `/proc/PID/maps` text (pseudo entries such
/// as `[heap]` and deleted files left out).
fn parse_maps_paths(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        // address perms offset dev inode path (the path may hold spaces).
        let mut rest = line;
        for _ in 0..5 {
            rest = rest.trim_start();
            let end = rest.find(' ')?;
            rest = &rest[end..];
        }
        let path = rest.trim();
        (path.starts_with('/') && !path.ends_with(" (deleted)")).then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_libc_file_names() {
        for yes in [
            "libc.so.6",
            "libc-2.31.so",
            "libc.musl-x86_64.so.1",
            "ld-musl-x86_64.so.1",
        ] {
            assert!(is_libc(yes), "{yes}");
        }
        for no in [
            "libcrypto.so.3",
            "libcap.so.2",
            "ld-linux-x86-64.so.2",
            "libc++.so.1",
        ] {
            assert!(!is_libc(no), "{no}");
        }
    }

    #[test]
    fn parses_maps_paths() {
        let maps = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 1234   /usr/bin/my prog
7f0000000000-7f0000020000 r-xp 00028000 fd:01 5678   /lib/x86_64-linux-gnu/libc.so.6
7f0000100000-7f0000120000 rw-p 00000000 00:00 0      [heap]
7f0000200000-7f0000201000 r--p 00000000 00:00 0
7f0000300000-7f0000301000 r--p 00000000 fd:01 99     /tmp/x.so (deleted)
";
        let paths: Vec<&str> = parse_maps_paths(maps).collect();
        assert_eq!(
            paths,
            vec!["/usr/bin/my prog", "/lib/x86_64-linux-gnu/libc.so.6"]
        );
    }

    #[test]
    fn finds_this_process_libc_through_its_root() {
        // The test binary links glibc dynamically: its libc is mapped.
        let libcs = libcs_of("/proc/self/maps", Path::new("/proc/self/root"));
        assert_eq!(libcs.len(), 1, "{libcs:?}");
        let path = &libcs[0];
        assert!(path.starts_with("/proc/self/root/"), "{}", path.display());
        assert!(path.exists(), "{}", path.display());
        let real = std::fs::canonicalize(path).unwrap();
        assert!(is_libc(&real.file_name().unwrap().to_string_lossy()));
        assert!(libcs_of("/proc/0/no-such-maps", Path::new("/")).is_empty());
    }
}
