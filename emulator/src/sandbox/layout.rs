//! Where the cgroup hierarchies are mounted: `/sys/fs/cgroup` as a cgroup2 mount (v2), else the
//! v1 `memory`, `cpu`, `cpuacct` and `freezer` hierarchies found in `/proc/self/mountinfo`,
//! else a cgroup2 mount that has the memory controller. A hybrid machine's controller-less
//! `unified` mount is not used for limits.

use std::fs;
use std::path::{Path, PathBuf};

use super::SandboxError;
use super::cgroup::{PARENT, err};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Where each hierarchy is mounted on this machine.
#[derive(Debug, Clone)]
pub enum Layout {
    /// v1 mount points of the controllers this module needs.
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        cpuacct: PathBuf,
        freezer: PathBuf,
    },
    /// The cgroup2 mount point.
    V2 { root: PathBuf },
}

impl Layout {
    /// Detects the machine's layout (see the module doc).
    pub fn detect() -> Result<Layout, SandboxError> {
        let root = Path::new("/sys/fs/cgroup");
        if is_cgroup2(root) {
            return Ok(Layout::V2 {
                root: root.to_path_buf(),
            });
        }
        let info = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| err(Path::new("/proc/self/mountinfo"), "read", e))?;
        let find = |ctrl: &str| -> Result<PathBuf, SandboxError> {
            info.lines()
                .filter_map(|l| {
                    let (left, right) = l.split_once(" - ")?;
                    let mut r = right.split_whitespace();
                    if r.next()? != "cgroup" {
                        return None;
                    }
                    let opts = r.nth(1)?;
                    opts.split(',')
                        .any(|o| o == ctrl)
                        .then(|| left.split_whitespace().nth(4))?
                })
                .next()
                .map(PathBuf::from)
                .ok_or_else(|| SandboxError::NoController {
                    controller: ctrl.to_string(),
                })
        };
        let v1 = (|| {
            Ok(Layout::V1 {
                memory: find("memory")?,
                cpu: find("cpu")?,
                cpuacct: find("cpuacct")?,
                freezer: find("freezer")?,
            })
        })();
        if v1.is_err() {
            // A hybrid machine whose memory controller lives on its cgroup2 mount.
            let v2 = info.lines().find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                (right.split_whitespace().next()? == "cgroup2").then_some(())?;
                let m = Path::new(left.split_whitespace().nth(4)?);
                let ctl = fs::read_to_string(m.join("cgroup.controllers")).ok()?;
                ctl.split_whitespace()
                    .any(|c| c == "memory")
                    .then(|| m.to_path_buf())
            });
            if let Some(root) = v2 {
                return Ok(Layout::V2 { root });
            }
        }
        v1
    }

    /// Every `lxprof` parent directory of this layout (deduplicated).
    pub fn parents(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match self {
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
                freezer,
            } => [memory, cpu, cpuacct, freezer]
                .iter()
                .map(|p| p.join(PARENT))
                .collect(),
            Layout::V2 { root } => vec![root.join(PARENT)],
        };
        v.sort();
        v.dedup();
        v
    }
}

/// Whether `path` is the root of a cgroup2 mount.
pub fn is_cgroup2(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into a zeroed struct we own; the path is a valid C string.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
    }
}
