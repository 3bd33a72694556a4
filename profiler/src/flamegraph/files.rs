//! The on-disk layout of an output directory's flamegraphs:
//! `DIR/flamegraphs/<role>.folded` and `DIR/flamegraphs/<role>.svg`.

use std::path::{Path, PathBuf};

use super::{FlameError, FlameOptions, folded, svg};
use crate::stacks::ResolvedSample;

/// The paths [`write_role`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFiles {
    pub folded: PathBuf,
    /// `None` when the role has no samples (an SVG of nothing is not drawn).
    pub svg: Option<PathBuf>,
}

/// A role name as a file stem: ASCII letters, digits, `-`, `_` and `.`
/// kept, anything else `_`.
pub fn role_file_stem(role: &str) -> String {
    let stem: String = role
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() || stem.starts_with('.') {
        format!("_{stem}")
    } else {
        stem
    }
}

/// Writes `dir/flamegraphs/<role>.folded` ([`folded`]: thread roots,
/// category suffixes) and its category-coloured `.svg`. `opts.title` is
/// replaced by `"<role>"` when left at its default.
pub fn write_role(
    dir: &Path,
    role: &str,
    samples: &[ResolvedSample],
    opts: &FlameOptions,
) -> Result<RoleFiles, FlameError> {
    let fdir = dir.join("flamegraphs");
    std::fs::create_dir_all(&fdir).map_err(|source| FlameError::Write {
        path: fdir.clone(),
        source,
    })?;
    let stem = role_file_stem(role);
    let text = folded(samples);
    let folded_path = fdir.join(format!("{stem}.folded"));
    std::fs::write(&folded_path, &text).map_err(|source| FlameError::Write {
        path: folded_path.clone(),
        source,
    })?;
    if text.is_empty() {
        return Ok(RoleFiles {
            folded: folded_path,
            svg: None,
        });
    }
    let mut opts = opts.clone();
    if opts.title == FlameOptions::default().title {
        opts.title = role.to_string();
    }
    let bytes = svg(&text, &opts)?;
    let svg_path = fdir.join(format!("{stem}.svg"));
    std::fs::write(&svg_path, bytes).map_err(|source| FlameError::Write {
        path: svg_path.clone(),
        source,
    })?;
    Ok(RoleFiles {
        folded: folded_path,
        svg: Some(svg_path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_file_safe() {
        assert_eq!(
            role_file_stem("csharp-event-collector"),
            "csharp-event-collector"
        );
        assert_eq!(role_file_stem("ext/a b"), "ext_a_b");
        assert_eq!(role_file_stem(".."), "_..");
        assert_eq!(role_file_stem(""), "_");
    }
}
