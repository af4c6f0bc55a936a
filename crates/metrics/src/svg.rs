//! Line charts as inline SVG, drawn when the page is generated: axes with round ticks, one line
//! per configuration told apart by colour and by dash pattern (so a grey print or a colour-blind
//! reader still can), gaps where an hour has no value, and "no data" instead of an empty frame.

use std::fmt::Write;

use crate::dims::Ms;

/// One chart: a title, the unit of its y axis and one series per configuration of the page (in
/// the page's order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    /// Stable id, used as the figure's `data-chart` (e.g. `arrivals`).
    pub id: String,
    /// Title above the chart.
    pub title: String,
    /// What the y axis counts (e.g. `contacts per hour`).
    pub unit: String,
    /// Per configuration, `(time, value)` points in time order; `None` is a gap (no value that
    /// hour, e.g. no first response to take a percentile of).
    pub series: Vec<Vec<(Ms, Option<f64>)>>,
    /// A fixed top of the y axis (100 for percentages); `None`: from the data.
    pub y_max: Option<f64>,
    /// A horizontal target line: value and label.
    pub target: Option<(f64, String)>,
    /// A sentence under the chart saying what it shows.
    pub note: String,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The drawing's size in SVG units; the page scales it to the column's width.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
/// The plot area inside it: room on the left for the y labels, below for the x labels.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 624.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 212.0;

/// Colour and dash pattern of the n-th configuration: the Okabe-Ito colours (distinguishable
/// with the common colour-vision deficiencies), each with its own dash pattern.
pub(crate) const STYLES: [(&str, &str); 6] = [
    ("#0072B2", ""),
    ("#D55E00", "7 4"),
    ("#009E73", "2 3"),
    ("#CC79A7", "10 3 2 3"),
    ("#E69F00", "4 2"),
    ("#56B4E9", "1 5"),
];

/// The style of the n-th configuration (repeating after six).
pub(crate) fn style(n: usize) -> (&'static str, &'static str) {
    STYLES[n % STYLES.len()]
}

/// The SVG attributes that draw a line in the n-th configuration's style.
pub(crate) fn stroke(n: usize) -> String {
    let (colour, dash) = style(n);
    let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
    format!("fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.2\" stroke-linejoin=\"round\"{dash}")
}

/// A short sample of the n-th configuration's line, for the legend.
pub(crate) fn swatch(n: usize) -> String {
    format!(
        "<svg class=\"swatch\" viewBox=\"0 0 36 10\" width=\"36\" height=\"10\" aria-hidden=\"true\">\
         <line x1=\"0\" y1=\"5\" x2=\"36\" y2=\"5\" {}/></svg>",
        stroke(n)
    )
}

/// A round step for about `target` intervals over `span`: 1, 2, 2.5 or 5 times a power of ten.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = (span / target).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude)
}

/// A tick label with as many decimals as the step needs (0.25 needs two).
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (0..3).find(|d| ((step * 10f64.powi(*d)).fract()).abs() < 1e-9).unwrap_or(3) as usize;
    format!("{v:.decimals$}")
}

/// Hours between x ticks so that a span of `hours` gets at most about eight.
fn hour_step(hours: f64) -> i64 {
    [1, 2, 3, 4, 6, 12, 24, 48, 72, 168, 336, 720].into_iter().find(|h| hours / *h as f64 <= 8.0).unwrap_or(1440)
}

/// The time axis's label of an instant: the date at midnight, the hour otherwise (UTC).
fn time_label(ms: Ms) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else { return ms.to_string() };
    if t.format("%H:%M").to_string() == "00:00" { t.format("%b %d").to_string() } else { t.format("%H:%M").to_string() }
}

/// Draws `chart` over the time range `[from, to]` (the same for every chart of a page, so they
/// line up).
pub(crate) fn chart(chart: &Chart, from: Ms, to: Ms) -> String {
    let values = chart.series.iter().flat_map(|s| s.iter().filter_map(|p| p.1)).filter(|v| v.is_finite());
    let data_max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    let has_data = data_max.is_finite();
    let target = chart.target.as_ref().map(|t| t.0);
    let top = chart.y_max.unwrap_or_else(|| data_max.max(target.unwrap_or(0.0)).max(0.0));
    // Counts (every value whole) get whole ticks: "0.25 conversations waiting" means nothing.
    let whole = values.clone().all(|v| v.fract() == 0.0) && target.is_none_or(|t| t.fract() == 0.0);
    let step = nice_step(if top > 0.0 { top } else { 1.0 }, 4.0);
    let step = if whole { step.max(1.0) } else { step };
    let y_max = (top / step).ceil().max(1.0) * step;
    let span = (to - from).max(1) as f64;
    let x = |ms: Ms| LEFT + (ms - from) as f64 / span * (RIGHT - LEFT);
    let y = |v: f64| BOTTOM - v.clamp(0.0, y_max) / y_max * (BOTTOM - TOP);

    let mut svg = format!(
        "<svg class=\"plot\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        escape(&format!("{} ({})", chart.title, chart.unit))
    );
    // Grid and y axis.
    let mut v = 0.0;
    while v <= y_max + step / 2.0 {
        let yy = y(v);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{RIGHT}\" y2=\"{yy:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            yy + 4.0,
            tick_label(v, step)
        );
        v += step;
    }
    // Time axis: ticks on whole hours.
    let hours = span / 3_600_000.0;
    let every = hour_step(hours) * 3_600_000;
    let mut t = from.div_euclid(every) * every;
    if t < from {
        t += every;
    }
    while t <= to {
        let xx = x(t);
        let _ = write!(
            svg,
            "<line class=\"axis\" x1=\"{xx:.1}\" y1=\"{BOTTOM}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            BOTTOM + 4.0,
            BOTTOM + 18.0,
            time_label(t)
        );
        t += every;
    }
    let _ = write!(svg, "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{BOTTOM}\" x2=\"{RIGHT}\" y2=\"{BOTTOM}\"/>");
    if let Some((value, label)) = &chart.target {
        let yy = y(*value);
        let _ = write!(
            svg,
            "<line class=\"target\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{RIGHT}\" y2=\"{yy:.1}\"/>\
             <text class=\"target-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            RIGHT - 2.0,
            yy - 4.0,
            escape(label)
        );
    }
    if !has_data {
        let _ = write!(
            svg,
            "<text class=\"no-data\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data</text>",
            (LEFT + RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
    }
    for (n, series) in chart.series.iter().enumerate() {
        let _ = write!(svg, "<g class=\"series\" data-series=\"{n}\">");
        // One polyline per run of consecutive values; a lone value (no neighbour to join) is a dot.
        for run in series.split(|p| p.1.is_none_or(|v| !v.is_finite())).filter(|r| !r.is_empty()) {
            if let [(at, Some(v))] = run {
                let (colour, _) = style(n);
                let _ = write!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>", x(*at), y(*v));
                continue;
            }
            let points: Vec<String> =
                run.iter().filter_map(|(at, v)| v.map(|v| format!("{:.1},{:.1}", x(*at), y(v)))).collect();
            let _ = write!(svg, "<polyline points=\"{}\" {}/>", points.join(" "), stroke(n));
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_hours_are_round() {
        assert_eq!(nice_step(100.0, 4.0), 25.0);
        assert_eq!(nice_step(448.0, 4.0), 200.0);
        assert_eq!(nice_step(0.9, 4.0), 0.25);
        assert_eq!(hour_step(36.0), 6);
        assert_eq!(hour_step(6.0), 1);
        assert_eq!(time_label(0), "Jan 01");
        assert_eq!(
            (tick_label(0.5, 0.25), tick_label(200.0, 100.0), tick_label(0.2, 0.1)),
            ("0.50".into(), "200".into(), "0.2".into())
        );
        assert_eq!(time_label(9 * 3_600_000), "09:00");
    }
}
