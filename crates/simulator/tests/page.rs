//! The report page of a simulation: hourly series that agree with the run's own numbers (the
//! queue and backlog reconstructed from the fold against the run's sampled timeline, hourly
//! arrivals against the total), one line per configuration, and progress reported to the end.

use std::path::Path;

use switchboard_metrics::{Targets, hourly};
use switchboard_simulator::{
    Options, Outcome, load_routing, load_traffic, render_page, run_hourly, simulate, simulate_with_progress,
};

fn example(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/simulate").join(file)
}

fn run(config: &str) -> Outcome {
    let traffic = load_traffic(&example("traffic.json")).unwrap();
    simulate(&load_routing(&example(config)).unwrap(), &traffic, &Options { seed: 7, ..Options::default() }).unwrap()
}

#[test]
fn the_backlog_reconstructed_from_the_fold_is_the_backlog_the_run_sampled() {
    for config in ["skills.toml", "round_robin.toml"] {
        let o = run(config);
        let h = hourly(&o.metrics, o.window.0, o.window.1, 7200);
        let sampled: Vec<(i64, Option<f64>)> = o.timeline.iter().map(|p| (p.at, Some(p.unanswered as f64))).collect();
        assert_eq!(h.unanswered, sampled, "{config}: unanswered at each hour's start");
        let waiting: Vec<(i64, Option<f64>)> = o.timeline.iter().map(|p| (p.at, Some(p.waiting as f64))).collect();
        assert_eq!(h.waiting, waiting, "{config}: waiting at each hour's start");
        assert!(o.timeline.iter().any(|p| p.waiting > 0), "{config}: something waited");
    }
}

#[test]
fn hourly_arrivals_add_up_to_the_runs_contacts_and_the_page_has_a_line_per_configuration() {
    let (skills, rr) = (run("skills.toml"), run("round_robin.toml"));
    let targets = Targets { frt_secs: 600, ..Targets::default() };
    let h = run_hourly(&skills, &targets);
    assert_eq!(h.arrivals.len(), 36, "24 hours of arrivals and 12 of drain");
    let contacts: usize = skills.metrics.conversations.values().map(|c| c.contacts.len()).sum();
    let hourly_sum: f64 = h.arrivals.iter().filter_map(|p| p.1).sum();
    assert_eq!(hourly_sum.round() as usize, contacts);
    assert!(h.arrivals[30].1 == Some(0.0), "no arrivals in the drain");
    assert!(h.frt_p90.iter().any(|p| p.1.is_none()), "hours without a first response are gaps");
    let runs = [("skills".to_string(), &skills), ("round <robin>".to_string(), &rr)];
    let page = render_page(&runs, &targets, vec![("Seed".into(), "7".into())]);
    assert_eq!(page.configurations, ["skills", "round <robin>"]);
    assert!(page.charts.len() >= 8 && page.charts.iter().all(|c| c.series.len() == 2));
    let p90 = page.charts.iter().find(|c| c.id == "frt-p90").unwrap();
    assert_eq!(p90.target.as_ref().map(|t| t.0), Some(10.0), "the target from the flags, in minutes");
    let html = page.render();
    assert!(html.contains("round &lt;robin&gt;") && !html.contains("round <robin>"));
    assert!(html.contains("FRT p90 &lt;= 10m, FCR &gt;= 85%"), "the targets are shown");
    assert!(html.contains("<th scope=\"row\">FRT within target</th>"), "the terminal's KPI rows");
}

#[test]
fn progress_is_reported_up_to_every_arrival() {
    let traffic = load_traffic(&example("traffic.json")).unwrap();
    let routing = load_routing(&example("skills.toml")).unwrap();
    let mut seen = Vec::new();
    let o = simulate_with_progress(&routing, &traffic, &Options { seed: 7, ..Options::default() }, &mut |n, of| {
        seen.push((n, of))
    })
    .unwrap();
    assert!(seen.len() > 2, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1), "{seen:?}");
    let (done, total) = *seen.last().unwrap();
    assert_eq!(done, total);
    assert!(total >= o.stats.conversations && total > 1000, "{total}");
}
