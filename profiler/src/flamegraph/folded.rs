//! Folded stacks (`root;caller;leaf WEIGHT` lines) from symbolized samples,
//! with each frame's category carried in its name.
//!
//! # How a frame gets its category
//! Categories belong to samples ([`ResolvedSample::category`]), colours to the
//! boxes of a flamegraph, i.e. to the nodes of the call tree (a path from the
//! root). A node takes the category of the samples beneath it when they all
//! share one; a node above samples of several categories (e.g. `main` above
//! both app and GC work) is `app`. Kernel frames ([`FrameKind::Kernel`]) are
//! always `kernel`. The category is written as a suffix of the frame name,
//! ` [jit]`, ` [gc]`, ` [runtime]` or ` [kernel]` (`app` frames carry none), so
//! a `.folded` file alone is enough to colour an SVG, the suffix is visible
//! when hovering a frame, and searching `[gc]` in the SVG shows the GC share.
//! Because the suffix is a function of the node, it never splits a box.

use std::collections::BTreeMap;

use crate::stacks::{Category, FrameKind, ResolvedSample};

/// Options of [`folded_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldOptions {
    /// Put the thread name as the root frame of every stack (threads of the
    /// same name merge). Default: `true`.
    pub thread_names: bool,
    /// Suffix frames with their category (see the module docs). Default: `true`.
    pub categories: bool,
}

impl Default for FoldOptions {
    fn default() -> Self {
        FoldOptions {
            thread_names: true,
            categories: true,
        }
    }
}

/// Folded stacks with the default [`FoldOptions`]: thread-name roots and
/// category suffixes. Lines are sorted, weights summed; output ends with `\n`
/// unless empty.
pub fn folded(samples: &[ResolvedSample]) -> String {
    folded_with(samples, &FoldOptions::default())
}

/// Folded stacks: one line per distinct root→leaf stack, frames joined by
/// `;`, the summed [`ResolvedSample::weight`] after a space. Deterministic:
/// lines sorted by stack. `;` and line breaks inside names are replaced.
pub fn folded_with(samples: &[ResolvedSample], opts: &FoldOptions) -> String {
    // Each sample's root→leaf path of (name, is_kernel).
    let paths: Vec<(Vec<(String, bool)>, &ResolvedSample)> = samples
        .iter()
        .filter(|s| s.weight > 0)
        .map(|s| {
            let mut path = Vec::with_capacity(s.frames.len() + 1);
            if opts.thread_names {
                path.push((sanitize(&s.thread_name), false));
            }
            path.extend(
                s.frames
                    .iter()
                    .rev()
                    .map(|f| (sanitize(&f.name), f.kind == FrameKind::Kernel)),
            );
            (path, s)
        })
        .collect();

    // Category of every node (path prefix): the common category, or App.
    let mut node_cat: BTreeMap<Vec<&str>, Category> = BTreeMap::new();
    if opts.categories {
        for (path, s) in &paths {
            let mut key = Vec::with_capacity(path.len());
            for (name, _) in path {
                key.push(name.as_str());
                node_cat
                    .entry(key.clone())
                    .and_modify(|c| {
                        if *c != s.category {
                            *c = Category::App;
                        }
                    })
                    .or_insert(s.category);
            }
        }
    }

    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for (path, s) in &paths {
        let mut stack = String::new();
        let mut key = Vec::with_capacity(path.len());
        for (i, (name, kernel)) in path.iter().enumerate() {
            key.push(name.as_str());
            if i > 0 {
                stack.push(';');
            }
            stack.push_str(name);
            if opts.categories {
                let cat = if *kernel {
                    Category::Kernel
                } else {
                    node_cat.get(&key).copied().unwrap_or(Category::App)
                };
                stack.push_str(suffix(cat));
            }
        }
        if stack.is_empty() {
            stack.push_str("[no frames]");
        }
        *lines.entry(stack).or_insert(0) += s.weight;
    }

    let mut out = String::new();
    for (stack, weight) in lines {
        out.push_str(&stack);
        out.push(' ');
        out.push_str(&weight.to_string());
        out.push('\n');
    }
    out
}

/// The name suffix that marks a frame's category (empty for `app`).
pub fn suffix(cat: Category) -> &'static str {
    match cat {
        Category::App => "",
        Category::Jit => " [jit]",
        Category::Gc => " [gc]",
        Category::Runtime => " [runtime]",
        Category::Kernel => " [kernel]",
    }
}

/// A frame name's category from its suffix, and the name without it.
pub fn split_category(frame: &str) -> (&str, Category) {
    for cat in Category::ALL {
        let sfx = suffix(cat);
        if !sfx.is_empty()
            && let Some(name) = frame.strip_suffix(sfx)
        {
            return (name, cat);
        }
    }
    (frame, Category::App)
}

/// `folded` text with the category suffixes removed from every frame (lines
/// that become identical are merged, output sorted).
pub fn strip_categories(folded: &str) -> String {
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for (stack, weight) in parse_lines(folded) {
        let stripped: Vec<&str> = stack.split(';').map(|f| split_category(f).0).collect();
        *lines.entry(stripped.join(";")).or_insert(0) += weight;
    }
    lines
        .into_iter()
        .map(|(s, w)| format!("{s} {w}\n"))
        .collect()
}

/// `(stack, weight)` of every well-formed line of folded text; blank lines,
/// `# ` comments and lines without a numeric weight are skipped.
pub fn parse_lines(folded: &str) -> impl Iterator<Item = (&str, u64)> {
    folded.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with("# ") {
            return None;
        }
        let (stack, weight) = line.rsplit_once(' ')?;
        Some((stack.trim_end(), weight.parse().ok()?))
    })
}

fn sanitize(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        return "[unknown]".to_string();
    }
    name.replace(';', ":").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::Frame;

    fn sample(
        thread: &str,
        leaf_first: &[(&str, FrameKind)],
        cat: Category,
        w: u64,
    ) -> ResolvedSample {
        ResolvedSample {
            pid: 1,
            tid: 1,
            thread_name: thread.to_string(),
            ts_ns: 0,
            weight: w,
            frames: leaf_first
                .iter()
                .map(|(n, k)| Frame {
                    name: n.to_string(),
                    module: None,
                    kind: *k,
                })
                .collect(),
            category: cat,
        }
    }

    #[test]
    fn mixed_nodes_are_app_and_unanimous_nodes_keep_their_category() {
        let n = FrameKind::Native;
        let s = [
            sample("t", &[("work", n), ("main", n)], Category::App, 10),
            sample(
                "t",
                &[("collect", n), ("alloc", n), ("main", n)],
                Category::Gc,
                5,
            ),
            sample(
                "t",
                &[("clear_page", FrameKind::Kernel), ("work", n), ("main", n)],
                Category::Kernel,
                2,
            ),
        ];
        let out = folded_with(
            &s,
            &FoldOptions {
                thread_names: false,
                categories: true,
            },
        );
        assert_eq!(
            out,
            "main;alloc [gc];collect [gc] 5\nmain;work 10\nmain;work;clear_page [kernel] 2\n"
        );
    }

    #[test]
    fn weights_sum_and_names_are_sanitized() {
        let n = FrameKind::Native;
        let s = [
            sample("a;b", &[("f;g", n)], Category::App, 3),
            sample("a;b", &[("f;g", n)], Category::App, 4),
            sample("a;b", &[("f;g", n)], Category::App, 0),
        ];
        assert_eq!(folded(&s), "a:b;f:g 7\n");
        assert_eq!(folded(&[]), "");
    }

    #[test]
    fn strip_and_split_round_trip() {
        assert_eq!(split_category("x [gc]"), ("x", Category::Gc));
        assert_eq!(split_category("x"), ("x", Category::App));
        assert_eq!(strip_categories("a;b [gc] 2\na;b 3\n"), "a;b 5\n");
    }
}
