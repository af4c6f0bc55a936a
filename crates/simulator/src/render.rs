//! A run (or several side by side) as text: the KPI table with targets, load and staffing, and
//! the backlog over time; or as JSON.

use switchboard_metrics::{
    Query, Report, STAFFING_SHARE, Staffing, TOP_ARTICLES, Targets, article_cells, render_grid, render_table,
};

use crate::sim::Outcome;

/// The report of a run's arrival period alone (for rates: arrivals, load, occupancy).
fn arrival_period_report(outcome: &Outcome, targets: &Targets) -> Report {
    let (from, to) = outcome.arrival_period;
    let query =
        Query { from: Some(from), to: Some(to), now: Some(to), frt_target_secs: targets.frt_secs, ..Query::default() };
    Report::compute(&outcome.metrics, &query)
}

/// The report of a run over the whole simulated period, with the default targets.
pub fn report(outcome: &Outcome) -> Report {
    report_with(outcome, &Targets::default())
}

/// The report of a run over the whole simulated period, "FRT within target" against `targets`.
pub fn report_with(outcome: &Outcome, targets: &Targets) -> Report {
    let (from, to) = outcome.window;
    let query =
        Query { from: Some(from), to: Some(to), now: Some(to), frt_target_secs: targets.frt_secs, ..Query::default() };
    Report::compute(&outcome.metrics, &query)
}

fn hhmm(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.format("%d %H:%M").to_string())
}

/// Runs side by side: KPIs against the targets, then load, then the backlog over time.
pub fn render(runs: &[(String, &Outcome)], targets: &Targets) -> String {
    let reports: Vec<Report> = runs.iter().map(|(_, o)| report_with(o, targets)).collect();
    let columns: Vec<(String, &switchboard_metrics::Kpis)> =
        runs.iter().zip(&reports).map(|((name, _), r)| (name.clone(), &r.total)).collect();
    let mut out = render_table(&columns, targets);
    out.push('\n');
    for ((name, _), r) in runs.iter().zip(&reports) {
        if !r.kb_articles.0.is_empty() {
            out.push_str(&format!("L0 bot's articles, {name} (top {TOP_ARTICLES} by shown)\n"));
            out.push_str(&render_grid(&article_cells(&r.kb_articles, TOP_ARTICLES)));
            out.push('\n');
        }
    }
    let mut load = vec![std::iter::once("Load".to_string()).chain(runs.iter().map(|(n, _)| n.clone())).collect()];
    let row = |name: &str, f: &dyn Fn(&Report, &Outcome) -> String| -> Vec<String> {
        std::iter::once(name.to_string()).chain(reports.iter().zip(runs).map(|(r, (_, o))| f(r, o))).collect()
    };
    // Rates over the arrival period: the drain after it has no arrivals and idle agents, and
    // counting it would show the load (and so the staffing it asks for) too low.
    let during: Vec<Report> = runs.iter().map(|(_, o)| arrival_period_report(o, targets)).collect();
    let rate_row = |name: &str, f: &dyn Fn(&Report) -> String| -> Vec<String> {
        std::iter::once(name.to_string()).chain(during.iter().map(f)).collect()
    };
    load.push(rate_row("Arrivals per hour", &|r| format!("{:.1}", r.forecast.arrivals_per_hour)));
    load.push(rate_row("Offered load (Erlangs)", &|r| {
        r.forecast.offered_load_erlangs.map_or("-".into(), |e| format!("{e:.1}"))
    }));
    load.push(rate_row("Mean agent occupancy", &|r| {
        let occ: Vec<f64> = r.agents.values().filter_map(|a| a.occupancy).collect();
        if occ.is_empty() { "-".into() } else { format!("{:.1}%", 100.0 * occ.iter().sum::<f64>() / occ.len() as f64) }
    }));
    load.push(rate_row(&staffing_title(targets), &|r| {
        r.forecast.staffing.as_ref().map_or("-".into(), |s| s.peak_agents.to_string())
    }));
    load.push(row("Peak waiting", &|_, o| o.timeline.iter().map(|p| p.waiting).max().unwrap_or(0).to_string()));
    load.push(row("Waiting at the end", &|r, _| r.backlog.waiting.to_string()));
    load.push(row("Commands refused", &|_, o| o.stats.rejected.to_string()));
    load.push(row("Wait estimate: told and assigned", &|_, o| o.wait_estimate.conversations.to_string()));
    load.push(row("Wait estimate: mean abs. error", &|_, o| {
        o.wait_estimate.mean_absolute_error_secs.map_or("-".into(), |e| format!("{e:.0}s"))
    }));
    load.push(row("Wait estimate: within ±50%", &|_, o| {
        o.wait_estimate.within_half.map_or("-".into(), |w| format!("{:.1}%", 100.0 * w))
    }));
    load.push(row("Wait: mean told / mean actual", &|_, o| {
        let w = &o.wait_estimate;
        match (w.mean_predicted_secs, w.mean_actual_secs) {
            (Some(p), Some(a)) => format!("{p:.0}s / {a:.0}s"),
            _ => "-".into(),
        }
    }));
    out.push_str(&render_grid(&load));
    out.push('\n');
    if let Some(grid) = staffing_grid(runs, &during) {
        out.push_str(&grid);
        out.push('\n');
    }
    let mut timeline = vec![
        std::iter::once("Time (UTC)".to_string())
            .chain(runs.iter().flat_map(|(n, _)| [format!("waiting {n}"), format!("unanswered {n}")]))
            .collect::<Vec<_>>(),
    ];
    let points = runs.first().map_or(0, |(_, o)| o.timeline.len());
    for i in 0..points {
        let at = runs[0].1.timeline[i].at;
        let mut cells = vec![hhmm(at)];
        for (_, o) in runs {
            let p = o.timeline.get(i);
            cells.push(p.map_or("-".into(), |p| p.waiting.to_string()));
            cells.push(p.map_or("-".into(), |p| p.unanswered.to_string()));
        }
        timeline.push(cells);
    }
    out.push_str(&render_grid(&timeline));
    out
}

/// The staffing row's title: `Agents needed at peak (90% FRT <= 2h 00m, Erlang C)`.
fn staffing_title(targets: &Targets) -> String {
    format!("Agents needed at peak ({:.0}% FRT <= {}, Erlang C)", STAFFING_SHARE * 100.0, short(targets.frt_secs))
}

fn short(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Hour by hour (UTC): arrivals and the agents Erlang C asks for, per run; `None` when no run
/// has a staffing line.
fn staffing_grid(runs: &[(String, &Outcome)], during: &[Report]) -> Option<String> {
    let lines: Vec<Option<&Staffing>> = during.iter().map(|r| r.forecast.staffing.as_ref()).collect();
    let first = lines.iter().flatten().next()?;
    let mut grid = vec![
        std::iter::once("Staffing by hour (UTC)".to_string())
            .chain(runs.iter().flat_map(|(n, _)| [format!("arrivals/h {n}"), format!("agents {n}")]))
            .collect::<Vec<_>>(),
    ];
    for (i, hour) in first.hours.iter().enumerate() {
        let mut cells = vec![format!("{:02}:00", hour.hour)];
        for line in &lines {
            let h = line.and_then(|s| s.hours.get(i));
            cells.push(h.map_or("-".into(), |h| format!("{:.1}", h.arrivals_per_hour)));
            cells.push(h.map_or("-".into(), |h| h.agents.to_string()));
        }
        grid.push(cells);
    }
    let basis: Vec<String> = runs
        .iter()
        .zip(&lines)
        .filter_map(|((n, _), s)| {
            s.map(|s| {
                format!(
                    "{n}: AHT {:.0}s, first reply {:.0}s after pickup, {:.1} conversations at once",
                    s.aht_secs, s.reply_after_pickup_secs, s.concurrency
                )
            })
        })
        .collect();
    Some(format!("{}Erlang C from the arrival period's {}\n", render_grid(&grid), basis.join("; ")))
}

/// Runs as JSON: per run its report, backlog over time and counts.
pub fn render_json(runs: &[(String, &Outcome)], targets: &Targets) -> serde_json::Value {
    let runs: serde_json::Map<String, serde_json::Value> = runs
        .iter()
        .map(|(name, o)| {
            let value =
                serde_json::json!({ "report": report_with(o, targets), "timeline": o.timeline, "stats": o.stats, "wait_estimate": o.wait_estimate });
            (name.clone(), value)
        })
        .collect();
    serde_json::json!({ "targets": targets, "runs": runs })
}
