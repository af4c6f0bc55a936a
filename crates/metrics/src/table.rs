//! The KPI table as text: one column per report (or per group), targets checked and misses
//! flagged, so a comparison of two configurations reads side by side.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::l0::Articles;
use crate::report::Kpis;

/// The targets a KPI table checks; the defaults are the figures support teams aim for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// First response within this many seconds (checked on the 90th percentile).
    pub frt_secs: u64,
    /// Minimum first-contact resolution share.
    pub fcr: f64,
    /// Minimum CSAT share.
    pub csat: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets { frt_secs: 2 * 3600, fcr: 0.85, csat: 0.90 }
    }
}

/// A duration in seconds, short: `45s`, `12m 05s`, `2h 03m`.
fn duration(secs: Option<f64>) -> String {
    let Some(secs) = secs else { return "-".into() };
    let s = secs.round() as i64;
    match s {
        ..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.1}%", s * 100.0))
}

/// NPS points with their sign: `+42.5`, `-10.0`, `0.0`.
fn signed(points: Option<f64>) -> String {
    match points {
        Some(p) if p > 0.0 => format!("+{p:.1}"),
        Some(p) => format!("{p:.1}"),
        None => "-".into(),
    }
}

/// `value`, with ` MISS` appended when the check fails (and nothing when there is no value).
fn checked(value: String, ok: Option<bool>) -> String {
    match ok {
        Some(false) => format!("{value} MISS"),
        _ => value,
    }
}

/// How one row's cell is rendered from a column's KPIs.
type Cell<'a> = Box<dyn Fn(&Kpis) -> String + 'a>;

/// Renders KPI columns (a title and the KPIs each) as an aligned text table with the targets
/// in the second column.
pub fn render_table(columns: &[(String, &Kpis)], targets: &Targets) -> String {
    render_grid(&kpi_cells(columns, targets))
}

/// The KPI table's cells, header row first (`KPI`, `target`, one title per column): what
/// [`render_table`] aligns as text and the HTML report shows as a table, so both have the same
/// rows. A failed check ends its cell with ` MISS`.
pub fn kpi_cells(columns: &[(String, &Kpis)], targets: &Targets) -> Vec<Vec<String>> {
    let frt_ok = |k: &Kpis| k.frt_p90_secs.map(|p| p <= targets.frt_secs as f64);
    let rows: Vec<(&str, String, Cell)> = vec![
        ("Conversations opened", String::new(), Box::new(|k| k.opened.to_string())),
        ("Resolved", String::new(), Box::new(|k| k.resolved.to_string())),
        ("First responses", String::new(), Box::new(|k| k.first_responses.to_string())),
        ("FRT mean", String::new(), Box::new(|k| duration(k.frt_mean_secs))),
        ("FRT p50", String::new(), Box::new(|k| duration(k.frt_p50_secs))),
        (
            "FRT p90",
            format!("<= {}", duration(Some(targets.frt_secs as f64))),
            Box::new(move |k| checked(duration(k.frt_p90_secs), frt_ok(k))),
        ),
        (
            "FRT within target",
            format!("<= {}", duration(Some(targets.frt_secs as f64))),
            Box::new(|k| percent(k.frt_within_target)),
        ),
        ("SLA compliance", String::new(), Box::new(|k| percent(k.sla_compliance))),
        ("AHT mean", String::new(), Box::new(|k| duration(k.aht_mean_secs))),
        (
            "FCR",
            format!(">= {}", percent(Some(targets.fcr))),
            Box::new(|k| checked(percent(k.fcr), k.fcr.map(|f| f >= targets.fcr))),
        ),
        ("Repeat contact rate", String::new(), Box::new(|k| percent(k.repeat_contact_rate))),
        ("Escalation rate", String::new(), Box::new(|k| percent(k.escalation_rate))),
        ("Transfer rate", String::new(), Box::new(|k| percent(k.transfer_rate))),
        ("Transfer speed (mean)", String::new(), Box::new(|k| duration(k.transfer_speed_secs))),
        (
            "CSAT",
            format!(">= {}", percent(Some(targets.csat))),
            Box::new(|k| checked(percent(k.csat), k.csat.map(|c| c >= targets.csat))),
        ),
        ("CSAT mean score (CSI)", String::new(), Box::new(|k| k.csat_mean.map_or("-".into(), |m| format!("{m:.2}")))),
        ("CSAT answers", String::new(), Box::new(|k| k.csat_responses.to_string())),
    ];
    // NPS and CES only where a team asks them: a CSAT-only table stays as it was.
    let mut rows = rows;
    if columns.iter().any(|(_, k)| k.nps_responses > 0) {
        rows.push(("NPS (promoters - detractors)", String::new(), Box::new(|k| signed(k.nps))));
        rows.push(("NPS answers", String::new(), Box::new(|k| k.nps_responses.to_string())));
    }
    if columns.iter().any(|(_, k)| k.ces_responses > 0) {
        rows.push((
            "CES mean (1-7)",
            String::new(),
            Box::new(|k| k.ces_mean.map_or("-".into(), |m| format!("{m:.2}"))),
        ));
        rows.push(("CES answers", String::new(), Box::new(|k| k.ces_responses.to_string())));
    }
    // L0 rows only where the knowledge-base bot answered: tables without it stay as they were.
    if columns.iter().any(|(_, k)| k.l0_answered > 0) {
        rows.push(("L0 answered", String::new(), Box::new(|k| k.l0_answered.to_string())));
        rows.push(("L0 deflection", String::new(), Box::new(|k| percent(k.l0_deflection))));
        rows.push(("L0 confirmed helpful", String::new(), Box::new(|k| percent(k.l0_confirmed))));
        rows.push(("L0 hand-off rate", String::new(), Box::new(|k| percent(k.l0_handoff_rate))));
    }
    let mut cells: Vec<Vec<String>> = vec![
        std::iter::once("KPI".to_string())
            .chain(std::iter::once("target".to_string()))
            .chain(columns.iter().map(|(t, _)| t.clone()))
            .collect(),
    ];
    for (name, target, value) in &rows {
        let mut row = vec![name.to_string(), target.clone()];
        row.extend(columns.iter().map(|(_, k)| value(k)));
        cells.push(row);
    }
    cells
}

/// How many of the L0 bot's articles reports list (the most shown).
pub const TOP_ARTICLES: usize = 10;

/// The per-article table of the L0 bot: the `n` articles shown most, with how often each was
/// shown, helped and handed off, and the helpful share; header row first.
pub fn article_cells(articles: &Articles, n: usize) -> Vec<Vec<String>> {
    let header = ["article", "shown", "helped", "handed off", "helpful"].map(String::from).to_vec();
    std::iter::once(header)
        .chain(articles.top(n).into_iter().map(|(id, a)| {
            vec![
                id.to_string(),
                a.shown.to_string(),
                a.helped.to_string(),
                a.handed_off.to_string(),
                percent(a.helpful()),
            ]
        }))
        .collect()
}

/// Aligns rows of cells: the first column left, the others right.
pub fn render_grid(cells: &[Vec<String>]) -> String {
    let n = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..n).map(|i| cells.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{c:<w$}", w = widths[i]);
            } else {
                let _ = write!(line, "  {c:>w$}", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
