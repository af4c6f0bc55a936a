//! The Prometheus exposition parses, follows the naming conventions and keeps labels bounded.

mod common;

use std::collections::BTreeSet;

use common::Stream;
use prometheus_parse::{LineInfo, SampleType, Scrape, Value};
use switchboard_metrics::{Metrics, exposition};

fn stream() -> Stream {
    let mut s = Stream::new();
    s.status(0, "alice", "online");
    for c in 1..=4 {
        s.opened(c as i64, c);
    }
    s.assigned(10, 1, "alice");
    s.replied(70, 1, "alice", Some(true));
    s.resolved(400, 1, Some("alice"));
    s.csat(500, 1, 5);
    s.nps(500, 3, serde_json::json!(10));
    s.nps(500, 4, serde_json::json!(9));
    s.nps(500, 2, serde_json::json!(4));
    s.ces(500, 1, serde_json::json!(6));
    s.ces(500, 3, serde_json::json!(3));
    s.assigned(20, 2, "alice");
    s.transferred(30, 2, "alice", "billing");
    s.breached(4000, 3);
    s
}

fn snake_case(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with('_')
        && !name.contains("__")
}

#[test]
fn the_exposition_parses_and_names_follow_prometheus_conventions() {
    let m = Metrics::from_events(&stream().events);
    let text = exposition(&m, Some(5_000_000)).expect("encodes");
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    assert!(!scrape.samples.is_empty());

    let types: Vec<(String, SampleType)> = text
        .lines()
        .filter_map(|l| match LineInfo::parse(l) {
            LineInfo::Type { metric_name, metric_alias, sample_type } => {
                Some((metric_alias.unwrap_or(metric_name), sample_type))
            }
            _ => None,
        })
        .collect();
    for (family, kind) in &types {
        assert!(snake_case(family) && family.starts_with("switchboard_"), "{family}");
        match kind {
            SampleType::Histogram => assert!(family.ends_with("_seconds"), "histograms are in seconds: {family}"),
            SampleType::Gauge => assert!(!family.ends_with("_total"), "{family}"),
            _ => {}
        }
    }
    let counters: BTreeSet<&str> =
        types.iter().filter(|(_, k)| *k == SampleType::Counter).map(|(f, _)| f.as_str()).collect();
    let allowed_labels: BTreeSet<&str> =
        ["channel", "team", "tier", "priority", "agent", "age", "hour", "class", "outcome", "article"].into();
    for sample in &scrape.samples {
        assert!(snake_case(&sample.metric), "{}", sample.metric);
        if let Some(family) = sample.metric.strip_suffix("_total") {
            assert!(counters.contains(family), "only counters end in _total: {}", sample.metric);
        } else {
            assert!(!counters.contains(sample.metric.as_str()), "a counter without _total: {}", sample.metric);
        }
        for (label, _) in sample.labels.iter() {
            assert!(allowed_labels.contains(label.as_str()), "unbounded label {label} on {}", sample.metric);
        }
    }

    let value = |name: &str, label: (&str, &str)| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(b) => b.iter().map(|b| b.count).fold(0.0, f64::max),
                Value::Summary(_) => f64::NAN,
            })
            .sum()
    };
    assert_eq!(value("switchboard_conversations_opened_total", ("team", "support")), 4.0);
    assert_eq!(value("switchboard_conversations_transferred_total", ("team", "billing")), 1.0);
    assert_eq!(value("switchboard_sla_missed_total", ("tier", "L1")), 1.0);
    assert_eq!(value("switchboard_backlog_conversations", ("channel", "webchat")), 1.0, "3 waits; 1 is resolved");
    assert_eq!(
        value("switchboard_backlog_conversations", ("channel", "email")),
        2.0,
        "4 waits, 2 went back to the queue"
    );
    assert_eq!(value("switchboard_first_response_seconds", ("channel", "webchat")), 1.0, "one observation");
    assert_eq!(value("switchboard_agent_resolved_total", ("agent", "alice")), 1.0);
    assert_eq!(value("switchboard_nps_responses_total", ("class", "promoter")), 2.0);
    assert_eq!(value("switchboard_nps_responses_total", ("class", "detractor")), 1.0);
    assert_eq!(value("switchboard_nps_responses_total", ("class", "passive")), 0.0);
    let classes: BTreeSet<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "switchboard_nps_responses_total")
        .filter_map(|s| s.labels.get("class"))
        .collect();
    assert_eq!(classes, ["detractor", "passive", "promoter"].into(), "three classes, no more");
    assert_eq!(value("switchboard_ces_responses_total", ("team", "support")), 2.0);
    assert_eq!(value("switchboard_ces_score_sum_total", ("team", "support")), 9.0, "6 + 3");
    assert_eq!(value("switchboard_ces_score_sum_total", ("channel", "webchat")), 9.0, "1 and 3 are chats");
    let buckets = scrape
        .samples
        .iter()
        .find(|s| s.metric == "switchboard_first_response_seconds" && s.labels.get("channel") == Some("webchat"))
        .map(|s| match &s.value {
            Value::Histogram(b) => b.iter().map(|b| (b.less_than, b.count)).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .expect("the FRT histogram");
    // 69 seconds: not within a minute, within two.
    assert!(buckets.contains(&(60.0, 0.0)) && buckets.contains(&(120.0, 1.0)), "{buckets:?}");
}

#[test]
fn csi_transfer_speed_and_each_agents_own_handle_time_are_exposed() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.assigned(10, 1, "alice");
    s.transferred(310, 1, "alice", "billing"); // alice held it 300 s
    s.assigned(400, 1, "bob"); // a hand-off of 90 s
    s.resolved(740, 1, Some("bob")); // bob held it 340 s
    s.csat(800, 1, 4);
    s.opened(0, 2);
    s.assigned(5, 2, "bob");
    s.resolved(65, 2, Some("bob"));
    s.csat(70, 2, 1);
    let text = exposition(&Metrics::from_events(&s.events), Some(1_000_000)).expect("encodes");
    let sum = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(sum("switchboard_csat_score_sum_total{"), 5.0, "{text}");
    assert_eq!(sum("switchboard_csat_responses_total{"), 2.0);
    assert_eq!((sum("switchboard_handoff_seconds_sum{"), sum("switchboard_handoff_seconds_count{")), (90.0, 1.0));
    // Per agent: their own holding time, not assignment-to-resolution of what they resolved.
    let agent = |a: &str, part: &str| sum(&format!("switchboard_agent_handle_time_seconds_{part}{{agent=\"{a}\"}}"));
    assert_eq!((agent("alice", "sum"), agent("alice", "count")), (300.0, 1.0), "{text}");
    assert_eq!((agent("bob", "sum"), agent("bob", "count")), (400.0, 2.0), "340 s + 60 s, not 730 s + 60 s");
}

#[test]
fn the_staffing_gauge_names_each_hour_of_the_day_the_fold_covers() {
    let mut s = Stream::new();
    s.status(0, "alice", "online");
    // A day of 4 contacts an hour, each held 15 minutes: 1 Erlang every hour.
    for i in 0..96u128 {
        let at = i as i64 * 900;
        s.opened(at, 100 + i);
        s.assigned(at, 100 + i, "alice");
        s.replied(at + 1, 100 + i, "alice", Some(true));
        s.resolved(at + 900, 100 + i, Some("alice"));
    }
    let m = Metrics::from_events(&s.events);
    let text = switchboard_metrics::exposition_with_target(&m, Some(86_400_000), 60).expect("encodes");
    let hours: Vec<&str> = text.lines().filter(|l| l.starts_with("switchboard_staffing_agents_needed{")).collect();
    assert_eq!(hours.len(), 24, "{text}");
    // 1 Erlang at 900 s AHT, 90% picked up within 60 s − 1 s: 2 agents answer 69%, 3 answer 92%.
    assert!(hours.iter().all(|l| l.ends_with(" 3")), "{hours:?}");
    assert!(hours.contains(&"switchboard_staffing_agents_needed{hour=\"07\"} 3"), "{hours:?}");
}
