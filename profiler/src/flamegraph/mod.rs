//! Folded stacks and SVG flamegraphs (inferno), frames coloured by category,
//! and differential flamegraphs.

mod folded;
mod svg;

pub use folded::{
    FoldOptions, folded, folded_with, parse_lines, split_category, strip_categories, suffix,
};
pub use svg::{FlameError, FlameOptions, category_color, differential, svg};
