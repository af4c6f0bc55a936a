//! The report as one self-contained HTML page: facts (window, seed, targets), line charts drawn
//! as inline SVG with one line per configuration on shared axes, and the KPI table. No script,
//! no external asset, and a content security policy that forbids loading any, so the file can be
//! mailed or archived and opens the same anywhere.
//!
//! Every string from outside (configuration names, teams, labels) goes through
//! [`escape`](crate::escape).

use std::fmt::Write;

use crate::dims::Ms;
use crate::svg::{self, Chart, escape};

/// A whole report page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The page's title and heading.
    pub title: String,
    /// Facts shown under the title: `(label, value)`, e.g. the window, the seed, the targets.
    pub facts: Vec<(String, String)>,
    /// The configurations compared (one line each in every chart), in order.
    pub configurations: Vec<String>,
    /// The charts, top to bottom.
    pub charts: Vec<Chart>,
    /// The KPI table: header row first, row names in the first column (see
    /// [`crate::kpi_cells`]); a cell ending in ` MISS` is marked as a missed target.
    pub table: Vec<Vec<String>>,
    /// Sentences at the end (what was left out, how numbers were reconstructed).
    pub notes: Vec<String>,
}

const CSS: &str = "\
:root{color-scheme:light;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;background:#fff}
body{margin:0 auto;max-width:1400px;padding:16px 24px 40px}
h1{font-size:1.5rem;margin:.2em 0 .4em}
h2{font-size:1.05rem;margin:0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0 0 16px;font-size:.9rem}
dl.facts dt{color:#57606a}dl.facts dd{margin:0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(520px,100%),1fr));gap:16px}
figure.chart{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:10px 12px}
figcaption p{margin:2px 0 4px;font-size:.8rem;color:#57606a}
ul.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px;margin:4px 0;padding:0;font-size:.85rem}
ul.legend li{display:flex;align-items:center;gap:6px}
svg.plot{width:100%;height:auto;display:block}
svg.plot text{font-size:11px;fill:#57606a}
svg.plot .grid{stroke:#eaeef2;stroke-width:1}
svg.plot .axis{stroke:#8c959f;stroke-width:1}
svg.plot .target{stroke:#6e7781;stroke-width:1.2;stroke-dasharray:3 3}
svg.plot .no-data{font-size:16px;fill:#6e7781}
table.kpis{border-collapse:collapse;font-size:.9rem;margin-top:8px}
table.kpis th,table.kpis td{border-bottom:1px solid #d0d7de;padding:4px 10px;text-align:right}
table.kpis th:first-child,table.kpis td:first-child{text-align:left}
table.kpis td.miss{color:#a40e26;font-weight:600}
section{margin-top:24px}
.notes{font-size:.85rem;color:#57606a}
";

impl Page {
    /// The earliest and latest time of any chart's points, so every chart shares one time axis.
    fn time_range(&self) -> Option<(Ms, Ms)> {
        let times = self.charts.iter().flat_map(|c| c.series.iter().flatten().map(|p| p.0));
        let (min, max) = times.fold((Ms::MAX, Ms::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        (min <= max).then_some((min, max))
    }

    /// The legend: each configuration's name beside a sample of its line.
    fn legend(&self) -> String {
        let mut out = String::from("<ul class=\"legend\">");
        for (n, name) in self.configurations.iter().enumerate() {
            let _ = write!(out, "<li data-series=\"{n}\">{}<span>{}</span></li>", svg::swatch(n), escape(name));
        }
        out.push_str("</ul>");
        out
    }

    /// The KPI table; empty when there are no rows.
    fn table_html(&self) -> String {
        let Some((header, rows)) = self.table.split_first() else {
            return "<p class=\"no-data\">no data</p>".into();
        };
        let mut out = String::from("<table class=\"kpis\"><thead><tr>");
        for cell in header {
            let _ = write!(out, "<th scope=\"col\">{}</th>", escape(cell));
        }
        out.push_str("</tr></thead><tbody>");
        for row in rows {
            out.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                if i == 0 {
                    let _ = write!(out, "<th scope=\"row\">{}</th>", escape(cell));
                } else if cell.ends_with(" MISS") {
                    let _ = write!(out, "<td class=\"miss\">{}</td>", escape(cell));
                } else {
                    let _ = write!(out, "<td>{}</td>", escape(cell));
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        out
    }

    /// The page as HTML.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
             <title>{title}</title><style>{CSS}</style></head><body>\n<header><h1>{title}</h1><dl class=\"facts\">",
            title = escape(&self.title)
        );
        for (label, value) in &self.facts {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(value));
        }
        out.push_str("</dl></header>\n<section class=\"charts\" aria-label=\"Charts\">\n");
        let legend = self.legend();
        let range = self.time_range();
        for chart in &self.charts {
            let _ = write!(
                out,
                "<figure class=\"chart\" data-chart=\"{}\"><figcaption><h2>{}</h2><p>{}</p></figcaption>{legend}",
                escape(&chart.id),
                escape(&chart.title),
                escape(&chart.unit),
            );
            match range {
                Some((from, to)) => out.push_str(&svg::chart(chart, from, to)),
                None => out.push_str(&svg::chart(chart, 0, 3_600_000)),
            }
            if !chart.note.is_empty() {
                let _ = write!(out, "<p class=\"notes\">{}</p>", escape(&chart.note));
            }
            out.push_str("</figure>\n");
        }
        out.push_str("</section>\n<section><h2>KPIs</h2>");
        out.push_str(&self.table_html());
        out.push_str("</section>\n");
        if !self.notes.is_empty() {
            out.push_str("<section class=\"notes\"><h2>Notes</h2><ul>");
            for note in &self.notes {
                let _ = write!(out, "<li>{}</li>", escape(note));
            }
            out.push_str("</ul></section>\n");
        }
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Vec<(Ms, Option<f64>)>>) -> Chart {
        Chart { id: "arrivals".into(), title: "Arrivals".into(), unit: "per hour".into(), series, ..Chart::default() }
    }

    fn page(configurations: &[&str], charts: Vec<Chart>) -> Page {
        Page {
            title: "Simulation".into(),
            facts: vec![("Seed".into(), "7".into())],
            configurations: configurations.iter().map(|c| c.to_string()).collect(),
            charts,
            table: vec![
                vec!["KPI".into(), "target".into(), "a".into()],
                vec!["FRT p90".into(), "<= 2h".into(), "3h MISS".into()],
            ],
            notes: Vec::new(),
        }
    }

    #[test]
    fn text_from_files_is_escaped_everywhere() {
        let evil = "<script>alert('x')</script>&\"";
        let mut p = page(&[evil], vec![chart(vec![vec![(0, Some(1.0)), (3_600_000, Some(2.0))]])]);
        p.title = evil.into();
        p.facts.push((evil.into(), evil.into()));
        p.table[0][2] = evil.into();
        p.notes.push(evil.into());
        p.charts[0].title = evil.into();
        let html = p.render();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert('x')"), "quotes escaped too");
        assert_eq!(
            html.matches("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;").count(),
            9,
            "title, heading, fact label and value, table header, note, chart title and its aria-label, legend: {html}"
        );
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }

    #[test]
    fn one_line_per_configuration_in_its_own_style_with_a_legend() {
        let a = vec![(0, Some(1.0)), (3_600_000, Some(4.0)), (7_200_000, Some(2.0))];
        let b = vec![(0, Some(3.0)), (3_600_000, None), (7_200_000, Some(5.0)), (10_800_000, Some(1.0))];
        let html = page(&["skills", "round_robin"], vec![chart(vec![a, b])]).render();
        assert_eq!(html.matches("<g class=\"series\"").count(), 2);
        assert!(html.contains("<li data-series=\"0\">") && html.contains("<span>skills</span>"));
        assert!(html.contains("<span>round_robin</span>"));
        // b has a gap: a dot for its lone first value, then a line; a is one line.
        assert_eq!(html.matches("<polyline").count(), 2, "{html}");
        assert_eq!(html.matches("<circle").count(), 1);
        assert!(html.contains("stroke-dasharray=\"7 4\""), "the second configuration is dashed");
        assert!(html.contains("<td class=\"miss\">3h MISS</td>"));
        assert!(!html.contains("no data"));
        // Every point inside the plot: y from 0 (top) to 240, x from 0 to 640.
        for points in html.split("points=\"").skip(1).map(|s| s.split('"').next().unwrap()) {
            for xy in points.split(' ') {
                let (x, y) = xy.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((56.0..=624.0).contains(&x) && (12.0..=212.0).contains(&y), "{xy}");
            }
        }
    }

    #[test]
    fn empty_data_says_no_data() {
        let html = page(&["skills"], vec![chart(vec![vec![(0, None), (3_600_000, None)]])]).render();
        assert!(html.contains("class=\"no-data\""), "{html}");
        assert!(!html.contains("<polyline") && !html.contains("<circle") && !html.contains("NaN"));
        let html = Page { table: Vec::new(), ..page(&[], vec![chart(Vec::new())]) }.render();
        assert_eq!(html.matches(">no data<").count(), 2, "chart and table: {html}");
        assert!(!html.contains("NaN") && !html.contains("inf"));
    }

    #[test]
    fn the_page_loads_nothing_from_outside() {
        let html = page(&["a"], vec![chart(vec![vec![(0, Some(1.0)), (1, Some(1.0))]])]).render();
        assert!(html.contains("default-src 'none'"));
        for banned in ["<script", "<link", "src=", "url(", "@import"] {
            assert!(!html.contains(banned), "{banned}");
        }
    }
}
