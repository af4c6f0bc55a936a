//! Simulated customers answer the survey their conversation's team asks (CSAT, NPS, CES or
//! none), once per conversation, with scores that depend on whether the SLA was met.

use chrono::{DateTime, Utc};
use switchboard_metrics::Kpis;
use switchboard_simulator::{Options, Traffic, parse_routing, report, simulate, synthetic};

fn start() -> DateTime<Utc> {
    "2026-03-02T00:00:00Z".parse().unwrap()
}

/// One team asking `survey`, with every first-response target `sla_secs`.
fn routing(survey: &str, sla_secs: u64) -> String {
    format!(
        r#"
default_team = "support"
reopen_window_secs = 3600
[teams.support]
survey = "{survey}"
first_response_secs = {{ P1 = {sla_secs}, P2 = {sla_secs}, P3 = {sla_secs}, P4 = {sla_secs} }}
offer_timeout_secs = 30
"#
    )
}

/// Every customer answers whatever survey they are asked; a good score exactly when the SLA was
/// met (promoters, easy), a bad one otherwise (detractors, difficult).
fn traffic() -> Traffic {
    let mut traffic = synthetic(400, "support", start());
    let c = &mut traffic.customer;
    c.reopen_probability = 0.3;
    (c.csat_response_rate, c.nps_response_rate, c.ces_response_rate) = (1.0, 1.0, 1.0);
    (c.nps_promoter_in_sla, c.nps_detractor_in_sla, c.nps_promoter_late, c.nps_detractor_late) = (1.0, 0.0, 0.0, 1.0);
    (c.ces_easy_in_sla, c.ces_easy_late) = (1.0, 0.0);
    traffic
}

fn run(survey: &str, sla_secs: u64) -> (Kpis, String) {
    let routing = parse_routing(&routing(survey, sla_secs)).unwrap();
    let outcome = simulate(&routing, &traffic(), &Options { seed: 11, ..Options::default() }).unwrap();
    let table = switchboard_simulator::render(&[("run".into(), &outcome)], &Default::default());
    (report(&outcome).total, table)
}

#[test]
fn customers_answer_the_survey_their_team_asks_once_per_conversation_scored_by_the_sla() {
    // Every first response in time: all promoters.
    let (k, table) = run("nps", 86_400);
    assert!(k.reopened > 20, "customers reopen: {k:?}");
    assert!(k.nps_responses > 200 && k.nps_responses <= k.opened, "one answer per conversation: {k:?}");
    assert_eq!((k.nps, k.csat_responses, k.ces_responses), (Some(100.0), 0, 0), "{k:?}");
    let row = table.lines().find(|l| l.starts_with("NPS (promoters - detractors)")).expect(&table);
    assert!(row.ends_with("+100.0"), "{row}");
    assert!(!table.contains("CES"), "{table}");
    // None in time: all detractors.
    let (k, _) = run("nps", 1);
    assert_eq!(k.nps, Some(-100.0), "{k:?}");

    let (k, table) = run("ces", 86_400);
    assert!(k.ces_responses > 200 && k.ces_responses <= k.opened, "{k:?}");
    assert!(k.ces_mean.is_some_and(|m| (5.0..=7.0).contains(&m)), "easy when in time: {k:?}");
    assert!(table.lines().any(|l| l.starts_with("CES mean (1-7)")), "{table}");
    assert_eq!((k.nps_responses, k.csat_responses), (0, 0));
    let (k, _) = run("ces", 1);
    assert!(k.ces_mean.is_some_and(|m| (1.0..=4.0).contains(&m)), "difficult when late: {k:?}");

    let (k, _) = run("csat", 86_400);
    assert!(k.csat_responses > 200 && k.nps_responses == 0 && k.ces_responses == 0, "{k:?}");

    let (k, table) = run("none", 86_400);
    assert_eq!((k.csat_responses, k.nps_responses, k.ces_responses), (0, 0, 0), "nobody is asked: {k:?}");
    assert!(!table.contains("NPS") && !table.contains("CES"), "{table}");
}
