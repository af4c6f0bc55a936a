//! Runs side by side as the HTML report page: the hourly charts (the queue and the unanswered
//! backlog from the run's own timeline) and the KPI table the terminal shows.

use switchboard_metrics::{Hourly, Kpis, Page, Points, Report, Targets, charts, hourly, kpi_cells, targets_line};

use crate::render::report_with;
use crate::sim::Outcome;

/// A time as the page's facts show it: `2026-03-02 00:00 UTC`.
fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// One run's series: KPIs hour by hour over the simulated period, with the queue and the
/// unanswered backlog as the run sampled them.
pub fn run_hourly(outcome: &Outcome, targets: &Targets) -> Hourly {
    let (from, to) = outcome.window;
    let mut h = hourly(&outcome.metrics, from, to, targets.frt_secs);
    let points = |f: fn(&crate::sim::Point) -> u64| -> Points {
        outcome.timeline.iter().map(|p| (p.at, Some(f(p) as f64))).collect()
    };
    h.waiting = points(|p| p.waiting);
    h.unanswered = points(|p| p.unanswered);
    h
}

/// The page of `runs` (name and outcome each) against `targets`; `facts` (the seed, the traffic)
/// come first under the title.
pub fn render_page(runs: &[(String, &Outcome)], targets: &Targets, facts: Vec<(String, String)>) -> Page {
    let hourly: Vec<Hourly> = runs.iter().map(|(_, o)| run_hourly(o, targets)).collect();
    let named: Vec<(String, &Hourly)> = runs.iter().zip(&hourly).map(|((n, _), h)| (n.clone(), h)).collect();
    let reports: Vec<Report> = runs.iter().map(|(_, o)| report_with(o, targets)).collect();
    let columns: Vec<(String, &Kpis)> = runs.iter().zip(&reports).map(|((n, _), r)| (n.clone(), &r.total)).collect();
    let mut all_facts = facts;
    if let Some((_, o)) = runs.first() {
        let (start, end) = o.arrival_period;
        all_facts.push(("Arrivals".into(), format!("{} to {}", when(start), when(end))));
        all_facts.push(("Simulated until".into(), format!("{} (the drain after the arrivals)", when(o.window.1))));
    }
    all_facts.push(("Targets".into(), targets_line(targets)));
    for (name, o) in runs {
        all_facts.push((
            name.clone(),
            format!(
                "{} conversations, {} events, {} commands refused",
                o.stats.conversations, o.stats.events, o.stats.rejected
            ),
        ));
    }
    Page {
        title: if runs.len() > 1 {
            "Switchboard simulation: configurations compared".into()
        } else {
            "Switchboard simulation".into()
        },
        facts: all_facts,
        configurations: runs.iter().map(|(n, _)| n.clone()).collect(),
        charts: charts(&named, targets),
        table: kpi_cells(&columns, targets),
        notes: vec![
            "Rates, load, FRT and SLA are computed over each hour alone, as the KPI table computes them over the \
             whole period; the table's \"FRT within target\" and the FRT target line use the targets above."
                .into(),
        ],
    }
}
