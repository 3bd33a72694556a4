//! Folded stacks and SVG flamegraphs (inferno), frames coloured by category,
//! and differential flamegraphs.

mod files;
mod folded;
mod svg;

pub use files::{RoleFiles, role_file_stem, write_role};
pub use folded::{
    FoldOptions, folded, folded_with, parse_lines, split_category, strip_categories, suffix,
};
pub use svg::{FlameError, FlameOptions, category_color, differential, svg};
