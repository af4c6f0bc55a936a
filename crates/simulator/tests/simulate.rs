//! The simulator drives the real router: the same seed gives the same run, its events give the
//! same KPIs recomputed, and in the shipped example skills routing beats round robin on first
//! response time and SLA. (The queueing against Erlang C is in `erlang.rs`.)

use std::path::Path;

use chrono::{DateTime, Utc};
use switchboard_metrics::{Query, Report};
use switchboard_simulator::{Dist, Options, load_routing, load_traffic, parse_routing, report, simulate, synthetic};

fn start() -> DateTime<Utc> {
    "2026-03-02T00:00:00Z".parse().unwrap()
}

const SUPPORT: &str = r#"
default_team = "support"
reopen_window_secs = 3600
[teams.support]
strategy = "best_skill_match"
first_response_secs = { P1 = 300, P2 = 900, P3 = 1800, P4 = 7200 }
offer_timeout_secs = 30
[[rules]]
name = "billing"
when = 'text.contains("invoice")'
skills = ["billing:3"]
"#;

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let routing = parse_routing(SUPPORT).unwrap();
    let traffic = synthetic(1500, "support", start());
    let run = |seed| simulate(&routing, &traffic, &Options { seed, ..Options::default() }).unwrap();
    let (a, b, c) = (run(5), run(5), run(6));
    assert!(a.stats.conversations > 1300, "{:?}", a.stats);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.timeline, b.timeline);
    assert_eq!(report(&a), report(&b));
    assert_ne!(a.stats, c.stats);
}

#[test]
fn the_routers_events_recomputed_give_the_runs_kpis() {
    let routing = parse_routing(SUPPORT).unwrap();
    let traffic = synthetic(800, "support", start());
    let outcome = simulate(&routing, &traffic, &Options { seed: 3, keep_events: true, ..Options::default() }).unwrap();
    let k = report(&outcome).total;
    assert!(k.resolved > 600 && k.reopened > 0 && k.csat_responses > 100 && k.escalation_rate > Some(0.0), "{k:?}");
    for by in [switchboard_metrics::GroupBy::Channel, switchboard_metrics::GroupBy::Agent] {
        let q = Query { by, from: Some(start().timestamp_millis() + 6 * 3_600_000), ..Query::default() };
        assert_eq!(Report::compute(&outcome.metrics, &q), Report::from_events(&outcome.events, &q));
    }
    // Every conversation event names its channel.
    assert!(outcome.events.iter().filter(|e| e.conversation_id.is_some()).all(|e| e.channel.is_some()));
}

fn example(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/simulate").join(file)
}

#[test]
fn in_the_example_skills_routing_beats_round_robin_on_frt_and_sla() {
    let traffic = load_traffic(&example("traffic.json")).unwrap();
    let options = Options { seed: 7, ..Options::default() };
    let skills = simulate(&load_routing(&example("skills.toml")).unwrap(), &traffic, &options).unwrap();
    let rr = simulate(&load_routing(&example("round_robin.toml")).unwrap(), &traffic, &options).unwrap();
    let (s, r) = (report(&skills).total, report(&rr).total);
    let runs = [("skills".to_string(), &skills), ("round robin".to_string(), &rr)];
    println!("{}", switchboard_simulator::render(&runs, &Default::default()));
    assert!(s.frt_mean_secs < r.frt_mean_secs, "FRT mean {:?} vs {:?}", s.frt_mean_secs, r.frt_mean_secs);
    assert!(s.frt_p90_secs < r.frt_p90_secs, "FRT p90 {:?} vs {:?}", s.frt_p90_secs, r.frt_p90_secs);
    assert!(s.sla_compliance > r.sla_compliance, "SLA {:?} vs {:?}", s.sla_compliance, r.sla_compliance);
    assert!(s.aht_mean_secs < r.aht_mean_secs, "specialists are faster");
}

#[test]
fn the_frt_target_given_applies_to_every_row_that_names_it() {
    let routing = parse_routing(SUPPORT).unwrap();
    let traffic = synthetic(800, "support", start());
    let outcome = simulate(&routing, &traffic, &Options { seed: 3, ..Options::default() }).unwrap();
    let p50 = report(&outcome).total.frt_p50_secs.expect("first responses");
    // A target below the median: fewer than half the first responses are within it.
    let targets = switchboard_metrics::Targets { frt_secs: (p50 / 2.0) as u64, ..Default::default() };
    let within = switchboard_simulator::report_with(&outcome, &targets).total.frt_within_target.unwrap();
    assert!(within < 0.5, "within {within} of a target at half the median {p50}");
    let table = switchboard_simulator::render(&[("run".into(), &outcome)], &targets);
    let row = table.lines().find(|l| l.starts_with("FRT within target")).unwrap();
    let shown: f64 = row.split_whitespace().last().unwrap().trim_end_matches('%').parse().unwrap();
    assert!(shown < 50.0, "the table's row: {row}");
}

#[test]
fn a_customer_who_reopens_is_counted_once_in_csat_as_the_daemon_counts_them() {
    let routing = parse_routing(SUPPORT).unwrap();
    let mut traffic = synthetic(300, "support", start());
    traffic.customer.reopen_probability = 0.9;
    traffic.customer.reopen_after = Dist::Fixed { secs: 60.0 };
    traffic.customer.csat_response_rate = 1.0;
    let outcome = simulate(&routing, &traffic, &Options { seed: 9, ..Options::default() }).unwrap();
    let k = report(&outcome).total;
    assert!(k.reopened > 50, "customers reopen: {k:?}");
    assert!(
        k.csat_responses > 0 && k.csat_responses <= k.opened,
        "{} answers for {} conversations",
        k.csat_responses,
        k.opened
    );
}

#[test]
fn load_is_a_rate_over_the_arrival_period_not_over_the_drain_after_it() {
    let routing = parse_routing(SUPPORT).unwrap();
    let mut traffic = synthetic(2400, "support", start());
    traffic.customer.reopen_probability = 0.0;
    let outcome = simulate(&routing, &traffic, &Options { seed: 4, drain_hours: 12, ..Options::default() }).unwrap();
    let table = switchboard_simulator::render(&[("run".into(), &outcome)], &Default::default());
    let cell = |name: &str| -> f64 {
        let row = table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {table}"));
        row.split_whitespace().last().unwrap().trim_end_matches('%').parse().unwrap()
    };
    let expected = outcome.stats.conversations as f64 / f64::from(traffic.hours);
    let shown = cell("Arrivals per hour");
    assert!(
        (shown - expected).abs() / expected < 0.01,
        "arrivals per hour {shown}, {expected} over the arrival period"
    );
}
