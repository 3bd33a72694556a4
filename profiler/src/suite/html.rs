//! `suite.html`: suite.md rendered with pulldown-cmark into one
//! self-contained page (inline CSS, the charts' SVG inlined in place of
//! their image links, no external resource), so it opens offline in any
//! browser. A small inline script counts the charts that laid out with a
//! non-empty box and any script error (`data-charts`, `data-charts-rendered`,
//! `data-errors` on `<body>`): the browser test reads them.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

use super::why::Chart;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;\
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;\
font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px}th{background:#f3f3f3}\
tr:nth-child(even) td{background:#fafafa}code{background:#f3f3f3;padding:0 3px}\
svg.chart{display:block;max-width:100%;height:auto;margin:1em 0;border:1px solid #eee}\
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}";

const SCRIPT: &str = "(function(){var b=document.body;b.dataset.errors='0';\
window.addEventListener('error',function(){b.dataset.errors=String(+b.dataset.errors+1);});\
function check(){var c=document.querySelectorAll('svg.chart'),n=0;\
for(var i=0;i<c.length;i++){var r=c[i].getBoundingClientRect();\
if(r.width>0&&r.height>0&&c[i].querySelectorAll('rect,polyline,circle').length>1)n++;}\
b.dataset.charts=String(c.length);b.dataset.chartsRendered=String(n);}\
if(document.readyState==='loading'){document.addEventListener('DOMContentLoaded',check);}\
else{check();}})();";

/// The page for `markdown` (suite.md's text) with `charts` inlined.
pub fn render(title: &str, markdown: &str, charts: &[Chart]) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    // An image whose destination is one of the charts becomes the SVG itself
    // (its alt text events are dropped with it).
    let mut in_chart = false;
    let events = parser.filter_map(|ev| match ev {
        Event::Start(Tag::Image { dest_url, .. }) => {
            match charts.iter().find(|c| *dest_url == *c.file) {
                Some(c) => {
                    in_chart = true;
                    Some(Event::Html(CowStr::from(c.svg.clone())))
                }
                None => Some(Event::Start(Tag::Image {
                    link_type: pulldown_cmark::LinkType::Inline,
                    dest_url,
                    title: CowStr::from(""),
                    id: CowStr::from(""),
                })),
            }
        }
        Event::End(TagEnd::Image) if in_chart => {
            in_chart = false;
            None
        }
        _ if in_chart => None,
        ev => Some(ev),
    });
    let mut body = String::new();
    html::push_html(&mut body, events);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n{body}\
         <script>{SCRIPT}</script></body></html>\n",
        super::charts::esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_inlined_and_links_kept() {
        let charts = [Chart {
            file: "charts/128mb-duration.svg".into(),
            alt: "Duration".into(),
            svg: "<svg class=\"chart\" data-chart=\"d\"><rect/></svg>".into(),
        }];
        let md = "# T\n\n| a | b |\n| --- | ---: |\n| x | 1 |\n\n\
                  ![Duration](charts/128mb-duration.svg)\n\n\
                  - [diff](diffs/x.svg)\n\n![other](other.png)\n";
        let page = render("suite <1>", md, &charts);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>suite &lt;1&gt;</title>"));
        assert!(page.contains("<svg class=\"chart\" data-chart=\"d\"><rect/></svg>"));
        assert!(!page.contains("charts/128mb-duration.svg"), "{page}");
        assert!(
            page.contains("<table>") && page.contains("<td style=\"text-align: right\">1</td>"),
            "{page}"
        );
        assert!(page.contains("<a href=\"diffs/x.svg\">diff</a>"));
        assert!(
            page.contains("<img src=\"other.png\" alt=\"other\""),
            "{page}"
        );
        // Nothing fetched from elsewhere.
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
