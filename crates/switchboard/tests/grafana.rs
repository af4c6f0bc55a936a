//! The Grafana dashboard (`deploy/grafana/switchboard.json`) queries only metrics and labels that
//! `switchboard_metrics::exposition` emits, so that renaming one in the code breaks this test
//! instead of silently emptying a panel.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use switchboard_core::{Event, EventKind};
use switchboard_metrics::{Metrics, exposition};

fn dashboard() -> Value {
    let path = format!("{}/../../deploy/grafana/switchboard.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard")).expect("JSON")
}

/// A short day that touches every family: an agent logs in, one conversation is answered,
/// resolved and rated, one escalated, one transferred, one waits, one the L0 bot answers.
fn events() -> Vec<Event> {
    let mut events = Vec::new();
    let mut push = |secs: i64, kind: EventKind, c: Option<u128>, agent: Option<&str>, data: Value| {
        let mut bits = [0u8; 10];
        bits[..8].copy_from_slice(&(events.len() as u64 + 1).to_be_bytes());
        let mut data = match data {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        if c.is_some() {
            data.entry("team").or_insert_with(|| "support".into());
            data.entry("tier").or_insert_with(|| "L1".into());
            data.entry("priority").or_insert_with(|| 50.into());
        }
        events.push(Event {
            id: uuid::Builder::from_unix_timestamp_millis(secs as u64 * 1000, &bits).into_uuid(),
            at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            kind,
            conversation_id: c.map(uuid::Uuid::from_u128),
            agent_id: agent.map(str::to_string),
            channel: c.map(|_| "email".to_string()),
            data,
        });
    };
    push(0, EventKind::AgentStatusChanged, None, Some("alice"), json!({ "status": "online" }));
    for c in 1..=4 {
        push(c as i64, EventKind::ConversationOpened, Some(c), None, json!({ "repeat": false }));
    }
    push(10, EventKind::Assigned, Some(1), Some("alice"), json!({}));
    push(70, EventKind::AgentReplied, Some(1), Some("alice"), json!({ "first_response": true, "within_sla": true }));
    push(400, EventKind::Resolved, Some(1), Some("alice"), json!({}));
    push(500, EventKind::CsatReceived, Some(1), None, json!({ "score": 5 }));
    push(500, EventKind::NpsReceived, Some(2), None, json!({ "score": 9 }));
    push(500, EventKind::CesReceived, Some(3), None, json!({ "score": 6 }));
    push(600, EventKind::ConversationReopened, Some(1), None, json!({}));
    push(20, EventKind::Escalated, Some(2), None, json!({ "cause": "Agent", "tier": "L2" }));
    push(30, EventKind::Assigned, Some(3), Some("alice"), json!({}));
    push(40, EventKind::Transferred, Some(3), Some("alice"), json!({ "to_agent": null, "team": "billing" }));
    push(4000, EventKind::SlaBreached, Some(4), None, json!({}));
    // The L0 bot answers conversation 5 from the knowledge base and the customer says it helped.
    push(5, EventKind::ConversationOpened, Some(5), None, json!({ "repeat": false, "tier": "L0" }));
    push(6, EventKind::AutoReplied, Some(5), None, json!({ "reason": "kb", "tier": "L0", "kb_articles": ["refund"] }));
    push(60, EventKind::Resolved, Some(5), None, json!({ "l0": "helped", "kb_article": "refund", "tier": "L0" }));
    events
}

/// Sample names of the exposition (`x_total`, `x_bucket`, ...) with the label names each carries,
/// and the histogram families.
fn exposed() -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let text = exposition(&Metrics::from_events(&events()), Some(5000 * 1000)).expect("encodes");
    let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut histograms = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some("histogram")) = (parts.next(), parts.next()) {
                histograms.insert(name.to_string());
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = samples.entry(line[..name_end].to_string()).or_default();
        if let Some(inner) = line[name_end..].strip_prefix('{').and_then(|l| l.split_once('}')).map(|(i, _)| i) {
            labels.extend(inner.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.trim().to_string()));
        }
    }
    (samples, histograms)
}

/// Every PromQL expression of the dashboard: panel targets (rows' nested panels too) and
/// template variable queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for p in list.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.extend(t["expr"].as_str().map(str::to_string));
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        out.extend(v["definition"].as_str().filter(|q| q.contains("switchboard_")).map(str::to_string));
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `(metric, label names in its selector)` for each metric an expression names.
fn metrics_in(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("switchboard_") {
        let preceded = rest[..i].chars().next_back().is_some_and(is_name_char);
        let tail = &rest[i..];
        let end = tail.find(|c: char| !is_name_char(c)).unwrap_or(tail.len());
        if !preceded {
            let selector = tail[end..].strip_prefix('{').and_then(|s| s.split_once('}')).map(|(s, _)| s);
            let labels = selector
                .into_iter()
                .flat_map(|s| s.split(','))
                .filter_map(|m| m.split(['=', '!']).next())
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            out.push((tail[..end].to_string(), labels));
        }
        rest = &tail[end..];
    }
    out
}

/// Label names in `by (...)` and `without (...)` clauses.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for keyword in ["by (", "without ("] {
        for (i, _) in expr.match_indices(keyword) {
            if let Some((inner, _)) = expr[i + keyword.len()..].split_once(')') {
                out.extend(inner.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()));
            }
        }
    }
    out
}

#[test]
fn every_metric_and_label_the_dashboard_queries_is_exposed() {
    let (samples, histograms) = exposed();
    let dashboard = dashboard();
    let exprs = expressions(&dashboard);
    assert!(exprs.len() > 20, "the dashboard's queries were found: {exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let metrics = metrics_in(expr);
        assert!(!metrics.is_empty(), "a query without a Switchboard metric: {expr}");
        let mut expr_labels: BTreeSet<String> = BTreeSet::new();
        for (name, selector) in metrics {
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s));
            if let Some(base) = base.filter(|b| histograms.contains(*b)) {
                used.insert(base.to_string());
            } else {
                used.insert(name.clone());
            }
            let labels = samples.get(&name).unwrap_or_else(|| {
                panic!("`{name}` is not in the exposition (`{expr}`); exposed: {:?}", samples.keys())
            });
            for l in &selector {
                assert!(labels.contains(l), "`{name}` has no label `{l}` ({labels:?}): {expr}");
            }
            expr_labels.extend(labels.iter().cloned());
        }
        for l in grouping_labels(expr) {
            assert!(expr_labels.contains(&l), "grouping by `{l}`, which none of its metrics has: {expr}");
        }
    }
    // What the dashboard is for: each KPI family is on it.
    for family in [
        "switchboard_first_response_seconds",
        "switchboard_conversations_resolved_first_contact_total",
        "switchboard_sla_met_total",
        "switchboard_sla_missed_total",
        "switchboard_backlog_conversations",
        "switchboard_csat_satisfied_total",
        "switchboard_nps_responses_total",
        "switchboard_ces_score_sum_total",
        "switchboard_ces_responses_total",
        "switchboard_conversations_escalated_total",
        "switchboard_conversations_transferred_total",
        "switchboard_agent_busy_seconds_total",
        "switchboard_agent_logged_in_seconds_total",
    ] {
        assert!(used.contains(family), "the dashboard does not show {family}; it uses {used:?}");
    }
}

#[test]
fn the_dashboard_imports_with_a_prometheus_datasource_input() {
    let d = dashboard();
    assert_eq!(d["schemaVersion"], 39);
    assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(d["__inputs"][0]["pluginId"], "prometheus");
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        assert!(ids.insert(p["id"].as_u64().expect("an id")), "duplicate panel id {}", p["id"]);
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {}", p["title"]);
            for t in p["targets"].as_array().expect("targets") {
                assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {}", p["title"]);
            }
        }
    }
    // Every `$variable` a query uses is defined (Grafana's own `$__range` and friends aside).
    let defined: BTreeSet<String> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["name"].as_str().expect("a name").to_string())
        .collect();
    for expr in expressions(&d) {
        for (i, _) in expr.match_indices('$') {
            let name: String = expr[i + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(name.starts_with("__") || defined.contains(&name), "`${name}` is not defined: {expr}");
        }
    }
}
