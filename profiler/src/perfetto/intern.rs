//! Interning tables for the profiling part of `InternedData`: function
//! names, mappings (one per module), frames and callstacks. Ids start at 1
//! and follow first use, so output is deterministic.

use std::collections::HashMap;

use super::proto;
use crate::stacks::{Frame, FrameKind};

/// Synthetic address space given to each mapping, so mappings never overlap.
const MAPPING_SPAN: u64 = 1 << 32;

#[derive(Default)]
pub(super) struct Interner {
    names: HashMap<String, u64>,
    paths: HashMap<String, u64>,
    mappings: HashMap<String, u64>,
    frames: HashMap<(u64, u64), u64>,
    callstacks: HashMap<Vec<u64>, u64>,
    /// Entries interned since the last [`Interner::take_new`].
    pub(super) data: proto::InternedData,
}

impl Interner {
    /// The entries interned since the last call, if any.
    pub(super) fn take_new(&mut self) -> Option<proto::InternedData> {
        let d = std::mem::take(&mut self.data);
        let empty = d.function_names.is_empty()
            && d.frames.is_empty()
            && d.callstacks.is_empty()
            && d.mapping_paths.is_empty()
            && d.mappings.is_empty();
        (!empty).then_some(d)
    }

    /// The callstack iid of `frames` (leaf first, as in `ResolvedSample`).
    pub(super) fn callstack(&mut self, frames: &[Frame]) -> u64 {
        let ids: Vec<u64> = if frames.is_empty() {
            vec![self.frame("[no frames]", "[unknown]")]
        } else {
            frames
                .iter()
                .rev()
                .map(|f| self.frame(&f.name, &module_of(f)))
                .collect()
        };
        if let Some(&iid) = self.callstacks.get(&ids) {
            return iid;
        }
        let iid = self.callstacks.len() as u64 + 1;
        self.data.callstacks.push(proto::Callstack {
            iid: Some(iid),
            frame_ids: ids.clone(),
        });
        self.callstacks.insert(ids, iid);
        iid
    }

    fn frame(&mut self, name: &str, module: &str) -> u64 {
        let name_id = self.function_name(name);
        let mapping_id = self.mapping(module);
        if let Some(&iid) = self.frames.get(&(name_id, mapping_id)) {
            return iid;
        }
        let iid = self.frames.len() as u64 + 1;
        // A distinct rel_pc per frame keeps distinct names apart in Perfetto.
        self.data.frames.push(proto::Frame {
            iid: Some(iid),
            function_name_id: Some(name_id),
            mapping_id: Some(mapping_id),
            rel_pc: Some(iid),
        });
        self.frames.insert((name_id, mapping_id), iid);
        iid
    }

    fn function_name(&mut self, name: &str) -> u64 {
        if let Some(&iid) = self.names.get(name) {
            return iid;
        }
        let iid = self.names.len() as u64 + 1;
        self.data.function_names.push(proto::InternedString {
            iid: Some(iid),
            str: Some(name.as_bytes().to_vec()),
        });
        self.names.insert(name.to_string(), iid);
        iid
    }

    fn mapping(&mut self, module: &str) -> u64 {
        if let Some(&iid) = self.mappings.get(module) {
            return iid;
        }
        let path_id = match self.paths.get(module) {
            Some(&id) => id,
            None => {
                let id = self.paths.len() as u64 + 1;
                self.data.mapping_paths.push(proto::InternedString {
                    iid: Some(id),
                    str: Some(module.as_bytes().to_vec()),
                });
                self.paths.insert(module.to_string(), id);
                id
            }
        };
        let iid = self.mappings.len() as u64 + 1;
        self.data.mappings.push(proto::Mapping {
            iid: Some(iid),
            start: Some(iid * MAPPING_SPAN),
            end: Some((iid + 1) * MAPPING_SPAN),
            path_string_ids: vec![path_id],
            ..Default::default()
        });
        self.mappings.insert(module.to_string(), iid);
        iid
    }
}

fn module_of(f: &Frame) -> String {
    match (&f.module, f.kind) {
        (Some(m), _) if !m.is_empty() => m.clone(),
        (_, FrameKind::Kernel) => "[kernel]".to_string(),
        (_, FrameKind::Jit) => "[jit]".to_string(),
        _ => "[unknown]".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, module: Option<&str>) -> Frame {
        Frame {
            name: name.into(),
            module: module.map(Into::into),
            kind: FrameKind::Native,
        }
    }

    #[test]
    fn callstacks_are_root_first_and_deduplicated() {
        let mut i = Interner::default();
        let a = i.callstack(&[frame("leaf", Some("a.so")), frame("main", Some("exe"))]);
        let b = i.callstack(&[frame("leaf", Some("a.so")), frame("main", Some("exe"))]);
        let c = i.callstack(&[frame("main", Some("exe"))]);
        assert_eq!((a, b, c), (1, 1, 2));
        let root = i.data.callstacks[0].frame_ids[0];
        let name_id = i.data.frames[root as usize - 1].function_name_id.unwrap();
        assert_eq!(
            i.data.function_names[name_id as usize - 1].str.as_deref(),
            Some(&b"main"[..])
        );
        assert_eq!(i.data.mappings.len(), 2);
        assert_eq!(i.callstack(&[]), 3);
        assert!(i.take_new().is_some());
        assert_eq!(i.callstack(&[frame("main", Some("exe"))]), 2);
        assert!(i.take_new().is_none(), "nothing new to intern");
    }
}
