//! Folded stacks and SVG flamegraphs.
