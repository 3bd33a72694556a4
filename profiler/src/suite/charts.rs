//! The suite report's charts as standalone SVG (no script, no external
//! resource): grouped bars, stacked bars and a per-invocation line chart with
//! a log scale. Each `<svg>` has `class="chart"` and a `data-chart` name, so
//! suite.html can inline it and its browser test can find it.

use std::fmt::Write as _;

/// One series of values, one per label.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<f64>,
}

/// A bar chart: its `data-chart` id, title, axis unit, one label per bar
/// (group) and the series.
#[derive(Debug, Clone, Copy)]
pub struct Bars<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub unit: &'a str,
    pub labels: &'a [String],
    pub series: &'a [Series],
}

/// A series of points for [`lines`]: `(x, y, marked)`; marked points get a ring.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64, bool)>,
}

/// Colours of the CPU categories (app, JIT, GC, runtime, kernel).
pub const CATEGORY_COLORS: [&str; 5] = ["#4e79a7", "#e15759", "#f28e2b", "#76b7b2", "#9c755f"];

/// A palette for scenarios and series.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

const W: f64 = 760.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 44.0;

/// XML text escaping.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A readable number for an axis or a label.
fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A round upper bound for a linear axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

fn open(out: &mut String, id: &str, title: &str, h: f64) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-chart=\"{}\" \
         viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" \
         font-family=\"sans-serif\" font-size=\"12\"><title>{}</title>\
         <rect width=\"{W}\" height=\"{h}\" fill=\"#fff\"/>\
         <text x=\"{}\" y=\"20\" font-size=\"14\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>",
        esc(id),
        esc(title),
        W / 2.0,
        esc(title)
    );
}

/// Where each legend entry goes: `(x, row)`, wrapping at the right edge.
fn legend_layout(items: &[(&str, &str)]) -> Vec<(f64, usize)> {
    let (mut x, mut row) = (LEFT, 0);
    items
        .iter()
        .map(|(name, _)| {
            let w = 24.0 + 7.0 * name.chars().count() as f64;
            if x > LEFT && x + w > W - RIGHT {
                x = LEFT;
                row += 1;
            }
            let at = (x, row);
            x += w;
            at
        })
        .collect()
}

/// Extra height the legend's wrapped rows need.
fn legend_extra(items: &[(&str, &str)]) -> f64 {
    legend_layout(items)
        .last()
        .map_or(0.0, |(_, r)| *r as f64 * LEGEND_ROW)
}

const LEGEND_ROW: f64 = 16.0;

/// The legend, its first row's baseline at `y`.
fn legend(out: &mut String, items: &[(&str, &str)], y: f64) {
    for ((name, color), (x, row)) in items.iter().zip(legend_layout(items)) {
        let y = y + row as f64 * LEGEND_ROW;
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            y - 9.0,
            x + 14.0,
            y,
            esc(name)
        );
    }
}

/// Horizontal bars, one group per label, one bar per series (linear axis).
pub fn grouped_bars(c: &Bars) -> String {
    let (labels, series, unit) = (c.labels, c.series, c.unit);
    let bar = 12.0;
    let group = bar * series.len() as f64 + 8.0;
    let plot_h = group * labels.len() as f64;
    let items: Vec<(&str, &str)> = series.iter().map(|s| (s.name.as_str(), s.color)).collect();
    let extra = legend_extra(&items);
    let h = TOP + plot_h + 50.0 + extra;
    let max = nice_max(
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    );
    let pw = W - LEFT - RIGHT;
    let mut out = String::new();
    open(&mut out, c.id, c.title, h);
    axis_x(&mut out, max, unit, TOP, plot_h);
    for (g, label) in labels.iter().enumerate() {
        let y0 = TOP + g as f64 * group;
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y0 + group / 2.0,
            esc(label)
        );
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(g).copied().unwrap_or(0.0).max(0.0);
            let w = (v / max * pw).max(if v > 0.0 { 1.0 } else { 0.0 });
            let y = y0 + 4.0 + k as f64 * bar;
            let _ = write!(
                out,
                "<rect x=\"{LEFT}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\">\
                 <title>{}: {} {}</title></rect>\
                 <text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
                bar - 2.0,
                s.color,
                esc(&s.name),
                num(v),
                esc(unit),
                LEFT + w + 3.0,
                y + bar - 3.0,
                num(v)
            );
        }
    }
    legend(&mut out, &items, h - 10.0 - extra);
    out.push_str("</svg>");
    out
}

/// Horizontal stacked bars: one bar per label, one segment per series.
pub fn stacked_bars(c: &Bars) -> String {
    let (labels, series, unit) = (c.labels, c.series, c.unit);
    let bar = 20.0;
    let plot_h = (bar + 8.0) * labels.len() as f64;
    let items: Vec<(&str, &str)> = series.iter().map(|s| (s.name.as_str(), s.color)).collect();
    let extra = legend_extra(&items);
    let h = TOP + plot_h + 50.0 + extra;
    let totals: Vec<f64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0).max(0.0))
                .sum()
        })
        .collect();
    let max = nice_max(totals.iter().copied().fold(0.0, f64::max));
    let pw = W - LEFT - RIGHT;
    let mut out = String::new();
    open(&mut out, c.id, c.title, h);
    axis_x(&mut out, max, unit, TOP, plot_h);
    for (i, label) in labels.iter().enumerate() {
        let y = TOP + 4.0 + i as f64 * (bar + 8.0);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + bar / 2.0 + 4.0,
            esc(label)
        );
        let mut x = LEFT;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0).max(0.0);
            let w = v / max * pw;
            if w > 0.0 {
                let _ = write!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{}\">\
                     <title>{}: {}: {} {}</title></rect>",
                    s.color,
                    esc(label),
                    esc(&s.name),
                    num(v),
                    esc(unit)
                );
            }
            x += w;
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
            x + 3.0,
            y + bar / 2.0 + 4.0,
            num(totals[i])
        );
    }
    legend(&mut out, &items, h - 10.0 - extra);
    out.push_str("</svg>");
    out
}

/// The x axis of the bar charts: 5 ticks from 0 to `max`.
fn axis_x(out: &mut String, max: f64, unit: &str, top: f64, plot_h: f64) {
    let pw = W - LEFT - RIGHT;
    for t in 0..=4 {
        let v = max * f64::from(t) / 4.0;
        let x = LEFT + pw * f64::from(t) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
            top + plot_h,
            top + plot_h + 14.0,
            num(v)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
        LEFT + pw / 2.0,
        top + plot_h + 28.0,
        esc(unit)
    );
}

/// Lines over x (e.g. the invocation number) with a log10 y axis (values
/// ≤ 0 sit on the axis floor); marked points (cold starts) get a ring.
pub fn lines(id: &str, title: &str, x_label: &str, y_label: &str, series: &[Line]) -> String {
    let plot_h = 260.0;
    let left = 60.0;
    let items: Vec<(&str, &str)> = series.iter().map(|s| (s.name.as_str(), s.color)).collect();
    let extra = legend_extra(&items);
    let h = TOP + plot_h + 70.0 + extra;
    let pw = W - left - RIGHT;
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x_min = all().map(|p| p.0).fold(f64::MAX, f64::min).min(1.0);
    let x_max = all().map(|p| p.0).fold(x_min + 1.0, f64::max);
    let y_pos = || all().map(|p| p.1).filter(|&y| y > 0.0);
    let y_hi = y_pos().fold(f64::MIN, f64::max);
    let y_lo = y_pos().fold(f64::MAX, f64::min);
    let (d_lo, d_hi) = if y_hi == f64::MIN {
        (-1.0, 1.0)
    } else {
        let lo = y_lo.log10().floor();
        let hi = y_hi.log10().ceil();
        (lo, if hi > lo { hi } else { lo + 1.0 })
    };
    let yy = |y: f64| {
        let l = if y > 0.0 {
            y.log10().clamp(d_lo, d_hi)
        } else {
            d_lo
        };
        TOP + plot_h - (l - d_lo) / (d_hi - d_lo) * plot_h
    };
    let xx = |x: f64| left + (x - x_min) / (x_max - x_min) * pw;
    let mut out = String::new();
    open(&mut out, id, title, h);
    let mut d = d_lo;
    while d <= d_hi + 1e-9 {
        let y = yy(10f64.powf(d));
        let _ = write!(
            out,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{}</text>",
            left + pw,
            left - 4.0,
            y + 3.0,
            num(10f64.powf(d))
        );
        d += 1.0;
    }
    for t in 0..=4 {
        let x = x_min + (x_max - x_min) * f64::from(t) / 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{:.0}</text>",
            xx(x),
            TOP + plot_h + 14.0,
            x
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\
         <text x=\"14\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" \
         transform=\"rotate(-90 14 {})\">{}</text>",
        left + pw / 2.0,
        TOP + plot_h + 28.0,
        esc(x_label),
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        esc(y_label)
    );
    for s in series {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", xx(p.0), yy(p.1)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\">\
             <title>{}</title></polyline>",
            s.color,
            pts.join(" "),
            esc(&s.name)
        );
        for p in s.points.iter().filter(|p| p.2) {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"none\" stroke=\"{}\">\
                 <title>{} #{:.0}: {} (cold start)</title></circle>",
                xx(p.0),
                yy(p.1),
                s.color,
                esc(&s.name),
                p.0,
                num(p.1)
            );
        }
    }
    legend(&mut out, &items, h - 26.0 - extra);
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{}\" font-size=\"10\">rings: cold starts</text></svg>",
        h - 8.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"))
    }

    #[test]
    fn charts_are_well_formed_svg_with_one_shape_per_value() {
        let labels = vec!["a <1>".to_string(), "b".to_string()];
        let s = vec![
            Series {
                name: "avg".into(),
                color: PALETTE[0],
                values: vec![500.0, 1480.0],
            },
            Series {
                name: "max".into(),
                color: PALETTE[1],
                values: vec![0.0, 9620.0],
            },
        ];
        let bars = |id| Bars {
            id,
            title: "Duration & co",
            unit: "ms",
            labels: &labels,
            series: &s,
        };
        let svg = grouped_bars(&bars("d"));
        let doc = parse(&svg);
        let root = doc.root_element();
        assert_eq!(root.attribute("class"), Some("chart"));
        assert_eq!(root.attribute("data-chart"), Some("d"));
        // Background, 4 bars, 2 legend squares.
        assert_eq!(
            doc.descendants().filter(|n| n.has_tag_name("rect")).count(),
            7
        );
        assert!(svg.contains("a &lt;1&gt;"));
        let st = stacked_bars(&bars("s"));
        // Background, 3 non-zero segments, 2 legend squares.
        assert_eq!(
            parse(&st)
                .descendants()
                .filter(|n| n.has_tag_name("rect"))
                .count(),
            6
        );
        let l = lines(
            "l",
            "per invocation",
            "invocation",
            "ms",
            &[Line {
                name: "x".into(),
                color: PALETTE[2],
                points: vec![(1.0, 65.0, true), (2.0, 8.0, false), (3.0, 0.0, false)],
            }],
        );
        let doc = parse(&l);
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("polyline"))
                .count(),
            1
        );
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("circle"))
                .count(),
            1
        );
    }

    #[test]
    fn long_legends_wrap_inside_the_chart() {
        let names = ["csharp-aot-event-collector"; 7];
        let items: Vec<(&str, &str)> = names.iter().map(|n| (*n, PALETTE[0])).collect();
        let layout = legend_layout(&items);
        assert!(
            layout.iter().all(|(x, _)| *x + 14.0 + 7.0 * 26.0 <= W),
            "{layout:?}"
        );
        assert!(
            layout.last().is_some_and(|(_, row)| *row >= 2),
            "{layout:?}"
        );
        assert!(legend_extra(&items) >= 2.0 * LEGEND_ROW);
    }

    #[test]
    fn axes_round_up() {
        assert_eq!(nice_max(9620.0), 10000.0);
        assert_eq!(nice_max(584.0), 1000.0);
        assert_eq!(nice_max(0.9), 1.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(2.1), 2.5);
    }
}
