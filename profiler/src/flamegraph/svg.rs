//! SVG flamegraphs from folded stacks with inferno: one colour family per
//! category (read from the frame-name suffixes of [`super::folded`]) through
//! an inferno palette map, and differential flamegraphs.

use inferno::flamegraph::{self, Options, color::Color, color::PaletteMap};

use super::folded::{parse_lines, split_category, strip_categories};
use crate::stacks::Category;

/// Options of [`svg`] and [`differential`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlameOptions {
    /// Title at the top. Default: `"Flame Graph"`.
    pub title: String,
    /// Line under the title. Default: none.
    pub subtitle: Option<String>,
    /// What the weights count, shown on hover (`"ns"`, `"faults"`, `"bytes"`).
    /// Default: `"ns"`.
    pub count_name: String,
    /// Frames narrower than this many pixels are omitted. Default: `0.1`.
    pub min_width: f64,
    /// Fixed width in pixels; `None` (the default) makes the SVG fluid.
    pub image_width: Option<usize>,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            title: "Flame Graph".to_string(),
            subtitle: None,
            count_name: "ns".to_string(),
            min_width: 0.1,
            image_width: None,
        }
    }
}

/// Errors of the SVG renderers.
#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    /// The folded input holds no line with a weight: nothing to draw.
    #[error("no stacks to draw in {what} (is the folded file empty or not `stack weight` lines?)")]
    Empty { what: &'static str },
    /// A flamegraph file could not be written.
    #[error("cannot write {path}: check that the output directory is writable")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// inferno failed to write the SVG.
    #[error("inferno could not render the {what} flamegraph")]
    Render {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// An SVG flamegraph of `folded` (see [`super::folded`]); each frame is
/// coloured from its category's family: app yellow/amber, jit green, gc blue,
/// runtime purple, kernel orange-red. The colour within a family is a hash of
/// the name, so output is deterministic.
pub fn svg(folded: &str, opts: &FlameOptions) -> Result<Vec<u8>, FlameError> {
    let mut lines: Vec<String> = parse_lines(folded)
        .map(|(stack, w)| format!("{stack} {w}"))
        .collect();
    if lines.is_empty() {
        return Err(FlameError::Empty {
            what: "flamegraph input",
        });
    }
    lines.sort();
    let mut palette = PaletteMap::default();
    for line in &lines {
        if let Some((stack, _)) = line.rsplit_once(' ') {
            for frame in stack.split(';') {
                let (_, cat) = split_category(frame);
                palette.insert(frame, category_color(cat, frame));
            }
        }
    }
    let mut o = options(opts);
    o.palette_map = Some(&mut palette);
    let mut out = Vec::new();
    flamegraph::from_lines(&mut o, lines.iter().map(String::as_str), &mut out).map_err(
        |source| FlameError::Render {
            what: "category",
            source,
        },
    )?;
    Ok(out)
}

/// A differential flamegraph (inferno's `difffolded` + `flamegraph`): the
/// shape is `after`, red frames grew from `before` to `after`, blue shrank.
/// Category suffixes are removed first so a frame matches across recordings
/// even if its category changed. Counts are normalized (`after` scaled to
/// the total of `before`) so recordings of different lengths compare.
pub fn differential(before: &str, after: &str, opts: &FlameOptions) -> Result<Vec<u8>, FlameError> {
    let before = strip_categories(before);
    let after = strip_categories(after);
    if before.is_empty() && after.is_empty() {
        return Err(FlameError::Empty {
            what: "both differential inputs",
        });
    }
    let mut diff = Vec::new();
    let dopts = inferno::differential::Options {
        normalize: true,
        strip_hex: false,
    };
    inferno::differential::from_readers(dopts, before.as_bytes(), after.as_bytes(), &mut diff)
        .map_err(|source| FlameError::Render {
            what: "differential",
            source,
        })?;
    let diff = String::from_utf8_lossy(&diff);
    let mut lines: Vec<&str> = diff.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(FlameError::Empty {
            what: "differential output",
        });
    }
    lines.sort_unstable();
    let mut o = options(opts);
    let mut out = Vec::new();
    flamegraph::from_lines(&mut o, lines, &mut out).map_err(|source| FlameError::Render {
        what: "differential",
        source,
    })?;
    Ok(out)
}

fn options(opts: &FlameOptions) -> Options<'static> {
    let mut o = Options::default();
    o.title = opts.title.clone();
    o.subtitle = opts.subtitle.clone();
    o.count_name = opts.count_name.clone();
    o.min_width = opts.min_width;
    o.image_width = opts.image_width;
    o.deterministic = true;
    o
}

/// The colour of a frame of category `cat`: a shade of the category's family
/// picked by a hash of `name`.
pub fn category_color(cat: Category, name: &str) -> Color {
    // (base r, g, b) and the span each channel may move by.
    let (base, span): ([u8; 3], [u8; 3]) = match cat {
        Category::App => ([225, 175, 30], [30, 55, 40]),
        Category::Jit => ([60, 175, 60], [50, 55, 50]),
        Category::Gc => ([80, 120, 215], [40, 45, 40]),
        Category::Runtime => ([160, 100, 200], [45, 40, 45]),
        Category::Kernel => ([220, 80, 40], [35, 40, 30]),
    };
    let h = fnv1a(name);
    let ch = |i: usize| base[i].saturating_add(((h >> (i * 16)) % (u64::from(span[i]) + 1)) as u8);
    Color {
        r: ch(0),
        g: ch(1),
        b: ch(2),
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_stay_in_their_family() {
        for name in ["a", "sgen_collect", "mono_method_to_ir", "x"] {
            let gc = category_color(Category::Gc, name);
            assert!(gc.b > gc.r && gc.b > gc.g);
            let jit = category_color(Category::Jit, name);
            assert!(jit.g > jit.r && jit.g > jit.b);
            assert_eq!(
                category_color(Category::App, name),
                category_color(Category::App, name)
            );
        }
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(
            svg("", &FlameOptions::default()),
            Err(FlameError::Empty { .. })
        ));
        assert!(matches!(
            differential("", "\n", &FlameOptions::default()),
            Err(FlameError::Empty { .. })
        ));
    }

    #[test]
    fn svg_uses_category_colours() {
        let out = svg(
            "main;collect [gc] 5\nmain;work 10\n",
            &FlameOptions::default(),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let c = category_color(Category::Gc, "collect [gc]");
        assert!(
            text.contains(&format!("rgb({},{},{})", c.r, c.g, c.b)),
            "gc colour missing"
        );
        assert!(text.contains("collect [gc]"));
    }
}
