//! `switchboard stats --report`: the window's KPIs as the HTML report page, one line (the
//! events read) in every chart, the queue and the backlog reconstructed from the fold.

use switchboard_core::contract::streams;
use switchboard_metrics::{GroupBy, Kpis, Metrics, Page, Report, Targets, charts, hourly, kpi_cells, targets_line};

/// The name of the page's one line.
pub const LINE: &str = "events";

/// A time as the page's facts show it.
fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// What `stats` read, for the page's facts.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadSummary {
    /// Events folded.
    pub events: u64,
    /// Messages that were not events.
    pub skipped: u64,
    /// Stream sequences of the first and the last message read.
    pub sequences: (u64, u64),
    /// Retention had cut the stream's history before the read start.
    pub truncated: bool,
}

/// The page of `report` (over its query's window) from the fold `metrics` of what was read.
pub fn page(metrics: &Metrics, read: ReadSummary, report: &Report, targets: &Targets) -> Page {
    let q = &report.query;
    let (from, to) = (q.from.unwrap_or(metrics.last_at), q.to.unwrap_or(metrics.last_at));
    let series = hourly(metrics, from, to, targets.frt_secs);
    let mut columns: Vec<(String, &Kpis)> = vec![("total".to_string(), &report.total)];
    columns.extend(report.groups.iter().map(|(name, k)| (name.clone(), k)));
    let mut facts = vec![
        ("Window".to_string(), format!("{} to {}", when(q.from), when(q.to))),
        (
            "Events read".into(),
            format!(
                "{} from {} (sequences {}..{}), {} skipped",
                read.events,
                streams::EVENTS,
                read.sequences.0,
                read.sequences.1,
                read.skipped
            ),
        ),
        ("Targets".into(), targets_line(targets)),
    ];
    if q.by != GroupBy::None {
        let by = serde_json::to_value(q.by).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        facts.push(("Table by".into(), by));
    }
    let mut notes = vec![
        "The charts show every event read as one line; the table's first column is the same window's total.".into(),
        "Waiting and backlog are reconstructed from the events at each hour's start; conversations still with \
         the bot (L0) are not counted."
            .into(),
    ];
    let articles = report.kb_articles.top(switchboard_metrics::TOP_ARTICLES);
    if !articles.is_empty() {
        let list: Vec<String> =
            articles.iter().map(|(id, a)| format!("{id} (shown {}, helped {})", a.shown, a.helped)).collect();
        notes.push(format!("The L0 bot's most shown articles: {}.", list.join(", ")));
    }
    if read.truncated {
        notes.push(format!(
            "{} holds nothing before its oldest message: replies to conversations opened before it are not counted.",
            streams::EVENTS
        ));
    }
    Page {
        title: "Switchboard KPIs".into(),
        facts,
        configurations: vec![LINE.to_string()],
        charts: charts(&[(LINE.to_string(), &series)], targets),
        table: kpi_cells(&columns, targets),
        notes,
    }
}
