//! Snapshots of what symbolizing one process needs, taken while it is alive:
//! its executable mappings (from `/proc/PID/maps`) and the pid it sees in its own pid
//! namespace (which names its perf map).

use std::path::Path;

/// One executable mapping of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// `dev` (`MAJ:MIN`, hex) and inode of the mapped file; inode 0 for anonymous memory.
    pub dev: String,
    pub inode: u64,
    /// Path as the process sees it (inside its mount namespace), `[vdso]`, `[anon:…]`,
    /// `/memfd:… (deleted)`, or empty for anonymous memory.
    pub path: String,
}

impl Mapping {
    /// Backed by a regular file that can hold ELF symbols (not memfd, not anonymous).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.starts_with('/') && !self.path.starts_with("/memfd:")
    }

    /// Memory a JIT may have written code into: anonymous, named anonymous or memfd
    /// (.NET's double-mapped code heap).
    pub fn is_anonymous(&self) -> bool {
        self.path.is_empty() || self.path.starts_with("[anon") || self.path.starts_with("/memfd:")
    }

    /// File name of the module, e.g. `libc.so.6`, `[vdso]`.
    pub fn module_name(&self) -> String {
        module_name(&self.path)
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// File name of a mapped path (`/usr/lib/libc.so.6 (deleted)` → `libc.so.6`).
pub fn module_name(path: &str) -> String {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// Parses the executable mappings of a `/proc/PID/maps` text, sorted by address.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = text.lines().filter_map(parse_maps_line).collect();
    out.sort_by_key(|m| m.start);
    out
}

fn parse_maps_line(line: &str) -> Option<Mapping> {
    // START-END PERMS OFFSET DEV INODE [PATH]; PATH may contain spaces.
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let dev = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    if !perms.contains('x') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev: dev.to_string(),
        inode: inode.parse().ok()?,
        path: path.to_string(),
    })
}

/// The pid a process sees for itself in its innermost pid namespace (`NSpid` in
/// `/proc/PID/status`): runtimes name their perf map after it. Falls back to `pid`.
pub fn namespace_pid(status: &str, pid: u32) -> u32 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(pid)
}

/// The parent pid (`PPid` in `/proc/PID/status`); None when absent or 0.
pub fn parent_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|&p| p != 0)
}

/// Merges a fresh mapping list into an older one: fresh mappings win, older mappings
/// that overlap none of them are kept (a library unloaded after samples were taken in it).
pub fn merge_mappings(old: Vec<Mapping>, fresh: Vec<Mapping>) -> Vec<Mapping> {
    let mut out = fresh;
    let kept: Vec<Mapping> = old
        .into_iter()
        .filter(|o| !out.iter().any(|n| n.start < o.end && o.start < n.end))
        .collect();
    out.extend(kept);
    out.sort_by_key(|m| m.start);
    out
}

/// The mapping holding `addr` in a list sorted by start.
pub fn find(mappings: &[Mapping], addr: u64) -> Option<&Mapping> {
    let idx = mappings.partition_point(|m| m.start <= addr);
    let m = mappings.get(idx.checked_sub(1)?)?;
    m.contains(addr).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1234                       /usr/bin/sleep
55d0c0a02000-55d0c0a06000 r-xp 00002000 fd:01 1234                       /usr/bin/sleep
7f0000000000-7f0000010000 rwxp 00000000 00:00 0 
7f0000100000-7f0000200000 r-xp 00000000 00:01 77                         /memfd:doublemapper (deleted)
7f1000028000-7f100019d000 r-xp 00028000 fd:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
7f2000000000-7f2000001000 r-xp 00000000 08:10 5                          /var/task/my ext
7ffd1e5f0000-7ffd1e5f2000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn keeps_executable_mappings_with_their_kind() {
        let m = parse_maps(MAPS);
        assert_eq!(m.len(), 6);
        assert_eq!(m[0].offset, 0x2000);
        assert!(m[0].is_file() && !m[0].is_anonymous());
        assert!(m[1].is_anonymous() && !m[1].is_file());
        assert!(
            m[2].is_anonymous() && !m[2].is_file(),
            "memfd holds JIT code"
        );
        assert_eq!(m[3].module_name(), "libc.so.6");
        assert_eq!(m[4].path, "/var/task/my ext");
        assert_eq!(m[5].module_name(), "[vdso]");
        assert!(!m[5].is_file());
        assert_eq!(find(&m, 0x55d0c0a02010).map(|m| m.inode), Some(1234));
        assert_eq!(find(&m, 0x55d0c0a00010), None, "not executable");
        assert_eq!(find(&m, 0x1), None);
    }

    #[test]
    fn namespace_pid_is_the_innermost() {
        assert_eq!(namespace_pid("Name:\tx\nNSpid:\t4242\t7\n", 4242), 7);
        assert_eq!(namespace_pid("Name:\tx\nNSpid:\t4242\n", 4242), 4242);
        assert_eq!(namespace_pid("", 9), 9);
        assert_eq!(parent_pid("Name:\tx\nPPid:\t17\n"), Some(17));
        assert_eq!(parent_pid("Name:\tx\nPPid:\t0\n"), None);
        assert_eq!(parent_pid(""), None);
    }

    #[test]
    fn merge_keeps_unloaded_libraries() {
        let old = parse_maps(MAPS);
        let fresh = parse_maps(
            "55d0c0a02000-55d0c0a06000 r-xp 00002000 fd:01 1234 /usr/bin/sleep\n\
             7f1000000000-7f1000030000 r-xp 00000000 fd:01 55 /usr/lib/libnew.so\n",
        );
        let m = merge_mappings(old, fresh);
        assert_eq!(find(&m, 0x7f1000010000).map(|m| m.inode), Some(55));
        assert_eq!(
            find(&m, 0x7f1000100000).map(|m| m.inode),
            None,
            "overlapped libc dropped"
        );
        assert_eq!(find(&m, 0x7f2000000010).map(|m| m.inode), Some(5));
    }
}
