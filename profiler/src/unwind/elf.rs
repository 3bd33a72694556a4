//! The unwind tables of one ELF file — `.eh_frame`, `.eh_frame_hdr`, `.debug_frame`,
//! and `.text` for framehop's prologue/epilogue analysis — memory-mapped from a held
//! handle (so they stay readable after the process and its mounts are gone) and shared
//! by every process that maps the file.

use std::fs::File;
use std::ops::{Deref, Range};
use std::sync::Arc;

use framehop::{ExplicitModuleSectionInfo, Module};
use object::{Object, ObjectSection, ObjectSegment, SegmentFlags};

/// Bytes of one section of a mapped file: what framehop reads unwind data from.
#[derive(Clone)]
pub struct Section {
    map: Arc<memmap2::Mmap>,
    range: Range<usize>,
}

impl Deref for Section {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// A section's addresses as stated in the file, and where its bytes are in the file.
#[derive(Debug, Clone)]
struct Placed {
    svma: Range<u64>,
    file: Range<usize>,
}

/// A PT_LOAD segment: file offset, stated address, whether executable.
#[derive(Debug, Clone, Copy)]
struct Load {
    offset: u64,
    vaddr: u64,
    filesz: u64,
    exec: bool,
}

/// Why a file's unwind tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("cannot map the file: {0}")]
    Map(#[source] std::io::Error),
    #[error("not an ELF file lxprof can read: {0}")]
    Parse(#[source] object::Error),
}

/// What unwinding through one ELF file needs.
pub struct ElfUnwindInfo {
    map: Arc<memmap2::Mmap>,
    text: Option<Placed>,
    eh_frame: Option<Placed>,
    eh_frame_hdr: Option<Placed>,
    debug_frame: Option<Placed>,
    got: Option<Placed>,
    loads: Vec<Load>,
    /// The entry point (`e_entry`), as stated.
    entry: u64,
    /// Functions framehop cannot unwind (see [`super::realign`]), as stated.
    realigned: Vec<Range<u64>>,
    /// What `.eh_frame`'s FDEs cover, as stated (empty: not known).
    covered: Vec<Range<u64>>,
}

impl ElfUnwindInfo {
    /// Maps `file` and finds its sections and segments.
    pub fn read(file: &File) -> Result<ElfUnwindInfo, ElfError> {
        // SAFETY: the mapping is read-only and private; a file truncated while mapped
        // would fault on access, which executables and libraries in use are not (the
        // kernel refuses writes to a running executable; libraries are replaced by
        // rename, leaving this inode intact). blazesym maps the same files the same way.
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(ElfError::Map)?;
        let map = Arc::new(map);
        let elf = object::File::parse(&map[..]).map_err(ElfError::Parse)?;
        let placed = |name: &str| {
            let s = elf.section_by_name(name)?;
            let (off, size) = s.file_range()?;
            // Compressed sections (.debug_frame with SHF_COMPRESSED) cannot be used as is.
            if s.compressed_file_range().ok()?.format != object::CompressionFormat::None {
                return None;
            }
            // An empty section is no section: framehop takes a present `.eh_frame` over
            // `.debug_frame`, and Mono's AOT images (`*.dll.so`) have an empty
            // `.eh_frame` beside the `.debug_frame` that describes all their code.
            if size == 0 {
                return None;
            }
            let start = usize::try_from(off).ok()?;
            let end = start.checked_add(usize::try_from(size).ok()?)?;
            (end <= map.len()).then(|| Placed {
                svma: s.address()..s.address() + s.size(),
                file: start..end,
            })
        };
        let loads = elf
            .segments()
            .map(|seg| {
                let (offset, filesz) = seg.file_range();
                let exec = match seg.flags() {
                    SegmentFlags::Elf { p_flags } => p_flags & object::elf::PF_X != 0,
                    _ => false,
                };
                Load {
                    offset,
                    vaddr: seg.address(),
                    filesz,
                    exec,
                }
            })
            .collect();
        let eh_frame = placed(".eh_frame");
        let text = placed(".text");
        let found = match (&eh_frame, &text) {
            (Some(eh), Some(text)) => super::realign::find(
                &map[eh.file.clone()],
                super::realign::Tables {
                    eh_frame_svma: eh.svma.start,
                    text_svma: text.svma.start,
                },
            ),
            _ => Default::default(),
        };
        Ok(ElfUnwindInfo {
            text,
            eh_frame,
            realigned: found.realigned,
            covered: found.covered,
            eh_frame_hdr: placed(".eh_frame_hdr"),
            debug_frame: placed(".debug_frame"),
            got: placed(".got"),
            loads,
            entry: elf.entry(),
            map,
        })
    }

    /// Whether the file has call frame information at all.
    pub fn has_cfi(&self) -> bool {
        self.eh_frame.is_some() || self.debug_frame.is_some()
    }

    /// The address where the file's address 0 lands, for a mapping of it at `start`
    /// from file offset `offset` (None: no loadable segment covers that offset).
    pub fn base_avma(&self, start: u64, offset: u64) -> Option<u64> {
        const PAGE: u64 = 4096;
        let load = self
            .loads
            .iter()
            .filter(|l| l.offset & !(PAGE - 1) <= offset && offset < l.offset + l.filesz.max(1))
            .max_by_key(|l| (l.exec, l.offset))?;
        let svma = (load.vaddr.wrapping_sub(load.offset)).wrapping_add(offset);
        Some(start.wrapping_sub(svma))
    }

    /// Whether stated address `svma` is in the file's entry code (`_start`, and in
    /// ld.so `_dl_start_user` right after it): the root of a main thread's stack,
    /// which has no return address above it.
    pub fn is_entry_code(&self, svma: u64) -> bool {
        /// glibc's `_start` and ld.so's `RTLD_START` are well under this.
        const ENTRY_CODE_BYTES: u64 = 128;
        self.entry != 0 && (self.entry..self.entry + ENTRY_CODE_BYTES).contains(&svma)
    }

    /// Whether stated address `svma` is code `.eh_frame` says nothing about (between
    /// its functions: hand-written stubs, V8's embedded builtins). False when the
    /// file's coverage is not known (no `.eh_frame`).
    pub fn is_uncovered(&self, svma: u64) -> bool {
        !self.covered.is_empty() && !super::realign::contains(&self.covered, svma)
    }

    /// For a frame at stated address `svma` in a function that realigns its stack:
    /// unwinds it (see [`super::realign`]), returning `Some(return address)`, or
    /// `Some(None)` when that failed. `None`: not such a function, framehop's job.
    pub fn realigned_step(
        &self,
        svma: u64,
        regs: &mut framehop::x86_64::UnwindRegsX86_64,
        read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
    ) -> Option<Option<u64>> {
        if !super::realign::contains(&self.realigned, svma) {
            return None;
        }
        let (eh, text) = (self.eh_frame.as_ref()?, self.text.as_ref()?);
        let tables = super::realign::Tables {
            eh_frame_svma: eh.svma.start,
            text_svma: text.svma.start,
        };
        Some(super::realign::step(
            &self.map[eh.file.clone()],
            tables,
            svma,
            regs,
            read_stack,
        ))
    }

    /// A framehop module for a mapping of this file.
    pub fn module(&self, name: String, avma: Range<u64>, base_avma: u64) -> Module<Section> {
        let data = |p: &Option<Placed>| {
            p.as_ref().map(|p| Section {
                map: self.map.clone(),
                range: p.file.clone(),
            })
        };
        let svma = |p: &Option<Placed>| p.as_ref().map(|p| p.svma.clone());
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: svma(&self.text),
            text: data(&self.text),
            got_svma: svma(&self.got),
            eh_frame_svma: svma(&self.eh_frame),
            eh_frame: data(&self.eh_frame),
            eh_frame_hdr_svma: svma(&self.eh_frame_hdr),
            eh_frame_hdr: data(&self.eh_frame_hdr),
            debug_frame: data(&self.debug_frame),
            stubs_svma: None,
            stub_helper_svma: None,
            unwind_info: None,
            text_segment_svma: None,
            text_segment: None,
        };
        Module::new(name, avma, base_avma, info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_executable_has_cfi_and_a_base() {
        let exe = File::open("/proc/self/exe").unwrap();
        let info = ElfUnwindInfo::read(&exe).unwrap();
        assert!(info.has_cfi());
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let own = std::fs::read_link("/proc/self/exe").unwrap();
        let m = crate::symbolize::process::parse_maps(&maps)
            .into_iter()
            .find(|m| std::path::Path::new(&m.path) == own)
            .expect("own text mapping");
        let base = info.base_avma(m.start, m.offset).expect("a load segment");
        // This very function's address minus the base is inside .text as stated.
        let f = own_executable_has_cfi_and_a_base as *const () as u64;
        let text = info.text.as_ref().unwrap().svma.clone();
        assert!(
            text.contains(&(f - base)),
            "{:x} not in {text:x?}",
            f - base
        );
    }

    /// A minimal ELF file with the given sections (name, bytes).
    fn elf_with_sections(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut name_at = Vec::new();
        for n in std::iter::once(".shstrtab").chain(sections.iter().map(|s| s.0)) {
            name_at.push(names.len() as u32);
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
        let mut data = vec![0u8; 64];
        let mut placed = vec![(64u64, names.len() as u64)];
        data.extend_from_slice(&names);
        for (_, bytes) in sections {
            placed.push((data.len() as u64, bytes.len() as u64));
            data.extend_from_slice(bytes);
        }
        while !data.len().is_multiple_of(8) {
            data.push(0);
        }
        let shoff = data.len() as u64;
        data.extend_from_slice(&[0u8; 64]);
        for (i, (off, size)) in placed.iter().enumerate() {
            let typ: u32 = if i == 0 { 3 } else { 1 };
            data.extend_from_slice(&name_at[i].to_le_bytes());
            data.extend_from_slice(&typ.to_le_bytes());
            for v in [0u64, 0, *off, *size] {
                data.extend_from_slice(&v.to_le_bytes());
            }
            data.extend_from_slice(&[0u8; 8]);
            data.extend_from_slice(&1u64.to_le_bytes());
            data.extend_from_slice(&0u64.to_le_bytes());
        }
        let shnum = placed.len() as u16 + 1;
        let h = &mut data[..64];
        h[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        h[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        h[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[40..48].copy_from_slice(&shoff.to_le_bytes());
        h[52..54].copy_from_slice(&64u16.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h[58..60].copy_from_slice(&64u16.to_le_bytes());
        h[60..62].copy_from_slice(&shnum.to_le_bytes());
        h[62..64].copy_from_slice(&1u16.to_le_bytes());
        data
    }

    /// Mono's AOT images: an empty `.eh_frame` beside the `.debug_frame` holding all
    /// their unwind information. The empty section must not hide the other one.
    #[test]
    fn an_empty_eh_frame_does_not_hide_debug_frame() {
        let path = std::env::temp_dir().join(format!("lxprof-elf-{}.so", std::process::id()));
        let elf = elf_with_sections(&[(".eh_frame", &[]), (".debug_frame", &[0u8; 16])]);
        std::fs::write(&path, elf).unwrap();
        let info = ElfUnwindInfo::read(&File::open(&path).unwrap());
        let _ = std::fs::remove_file(&path);
        let info = info.unwrap();
        assert!(info.eh_frame.is_none());
        assert!(info.debug_frame.is_some());
        assert!(info.has_cfi());
    }

    #[test]
    fn a_text_file_is_an_error_not_a_panic() {
        let f = File::open("/proc/self/cmdline").ok();
        if let Some(f) = f {
            assert!(ElfUnwindInfo::read(&f).is_err());
        }
    }
}
