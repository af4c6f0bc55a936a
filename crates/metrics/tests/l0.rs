//! L0 deflection from the bot's events: answered, helped, no reply, handed off, per team and
//! per article, windowed in reports and cumulative in the exposition, with the article map bounded.

mod common;

use common::Stream;
use switchboard_core::EventKind;
use switchboard_metrics::{ARTICLE_CAP, GroupBy, Metrics, OTHER_ARTICLE, Query, Report, exposition};

/// The bot answers conversation `c` of `team` with `articles` at `secs`.
fn answered(s: &mut Stream, secs: i64, c: u128, team: &str, articles: &[&str]) {
    s.opened_with(secs, c, team, "L0", 50);
    let data = serde_json::json!({
        "reason": "kb", "tier": "L0", "team": team, "priority": 50,
        "kb_articles": articles, "kb_scores": articles.iter().map(|_| 3.5).collect::<Vec<_>>(),
    });
    s.push(secs, EventKind::AutoReplied, Some(c), None, data);
}

fn resolved(s: &mut Stream, secs: i64, c: u128, team: &str, l0: &str, article: &str) {
    let data =
        serde_json::json!({ "l0": l0, "kb_article": article, "kb_articles": [article], "tier": "L0", "team": team });
    s.push(secs, EventKind::Resolved, Some(c), None, data);
}

fn handed_off(s: &mut Stream, secs: i64, c: u128, team: &str, article: &str) {
    let data = serde_json::json!({
        "cause": "HumanRequested", "l0": "handed_off", "kb_article": article, "kb_articles": [article],
        "tier": "L1", "team": team,
    });
    s.push(secs, EventKind::Escalated, Some(c), None, data);
}

/// Billing: 4 answered, 2 helped, 1 no reply, 1 handed off. Delivery: 2 answered, 1 handed off,
/// 1 still pending. A rule's plain auto-reply and an ordinary resolution are not L0 answers.
fn stream() -> Stream {
    let mut s = Stream::new();
    answered(&mut s, 10, 1, "billing", &["refund", "invoice"]);
    resolved(&mut s, 20, 1, "billing", "helped", "refund");
    answered(&mut s, 30, 3, "billing", &["refund"]);
    resolved(&mut s, 40, 3, "billing", "helped", "refund");
    answered(&mut s, 50, 5, "billing", &["invoice"]);
    resolved(&mut s, 3650, 5, "billing", "no_reply", "invoice");
    answered(&mut s, 70, 7, "billing", &["invoice", "refund"]);
    handed_off(&mut s, 80, 7, "billing", "invoice");
    answered(&mut s, 90, 9, "delivery", &["tracking"]);
    handed_off(&mut s, 95, 9, "delivery", "tracking");
    answered(&mut s, 100, 11, "delivery", &["tracking"]);
    s.opened(110, 13);
    s.push(111, EventKind::AutoReplied, Some(13), None, serde_json::json!({ "reason": "rule", "tier": "L1" }));
    s.resolved(120, 13, None);
    s
}

#[test]
fn deflection_confirmed_share_and_hand_off_rate_per_team_and_overall() {
    let s = stream();
    let r = Report::from_events(&s.events, &Query { by: GroupBy::Team, ..Query::default() });
    let t = &r.total;
    assert_eq!((t.l0_answered, t.l0_helped, t.l0_no_reply, t.l0_handed_off), (6, 2, 1, 2));
    assert_eq!(t.l0_deflection, Some(3.0 / 6.0), "helped + no reply over answered");
    assert_eq!(t.l0_confirmed, Some(2.0 / 6.0));
    assert_eq!(t.l0_handoff_rate, Some(2.0 / 6.0));
    let billing = &r.groups["billing"];
    assert_eq!((billing.l0_answered, billing.l0_deflection, billing.l0_handoff_rate), (4, Some(0.75), Some(0.25)));
    let delivery = &r.groups["delivery"];
    assert_eq!((delivery.l0_answered, delivery.l0_deflection, delivery.l0_handoff_rate), (2, Some(0.0), Some(0.5)));
    assert_eq!(r.groups["support"].l0_answered, 0, "a rule's auto-reply is not the bot's answer");
    assert_eq!(r.groups["support"].l0_deflection, None);

    // Windowed: the no-reply resolution an hour later falls outside the first 10 minutes.
    let early = Report::from_events(&s.events, &Query { to: Some(600_000), ..Query::default() });
    assert_eq!((early.total.l0_answered, early.total.l0_no_reply), (6, 0));
}

#[test]
fn per_article_shown_helped_and_handed_off() {
    let s = stream();
    let r = Report::from_events(&s.events, &Query::default());
    let a = |id: &str| {
        let c = &r.kb_articles.0[id];
        (c.shown, c.helped, c.handed_off)
    };
    assert_eq!(a("refund"), (3, 2, 0));
    assert_eq!(a("invoice"), (3, 0, 1));
    assert_eq!(a("tracking"), (2, 0, 1));
    let top: Vec<&str> = r.kb_articles.top(2).into_iter().map(|(id, _)| id).collect();
    assert_eq!(top, ["invoice", "refund"], "most shown first, ties by id");
    assert_eq!(r.kb_articles.0["refund"].helpful(), Some(2.0 / 3.0));

    // The cumulative totals agree, and a re-delivered event counts once.
    let mut m = Metrics::from_events(&s.events);
    assert!(!m.apply(&s.events[1]));
    assert_eq!(m.totals.l0.articles, r.kb_articles);
    assert_eq!(m.totals.l0.by_team["billing"].answered, 4);
}

#[test]
fn the_article_map_is_capped_and_the_rest_counted_as_other() {
    let mut s = Stream::new();
    let n = ARTICLE_CAP as u128 + 5;
    for c in 1..=n {
        answered(&mut s, c as i64, c, "billing", &[&format!("a{c}")]);
    }
    // An article counted before the cap keeps counting under its own id.
    answered(&mut s, n as i64 + 1, n + 1, "billing", &["a1"]);
    let m = Metrics::from_events(&s.events);
    let articles = &m.totals.l0.articles.0;
    assert_eq!(articles.len(), ARTICLE_CAP + 1, "the cap plus `other`");
    assert_eq!(articles[OTHER_ARTICLE].shown, 5);
    assert_eq!(articles["a1"].shown, 2);
    let text = exposition(&m, None).expect("encodes");
    let series = text.lines().filter(|l| l.starts_with("switchboard_kb_article_shown_total{")).count();
    assert_eq!(series, ARTICLE_CAP + 1);
}

#[test]
fn the_exposition_has_answers_outcomes_and_articles() {
    let m = Metrics::from_events(&stream().events);
    let text = exposition(&m, None).expect("encodes");
    for line in [
        "switchboard_l0_answered_total{team=\"billing\"} 4",
        "switchboard_l0_answered_total{team=\"delivery\"} 2",
        "switchboard_l0_outcome_total{team=\"billing\",outcome=\"helped\"} 2",
        "switchboard_l0_outcome_total{team=\"billing\",outcome=\"no_reply\"} 1",
        "switchboard_l0_outcome_total{team=\"delivery\",outcome=\"handed_off\"} 1",
        "switchboard_kb_article_shown_total{article=\"refund\"} 3",
        "switchboard_kb_article_helped_total{article=\"refund\"} 2",
        "switchboard_kb_article_helped_total{article=\"tracking\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
}

#[test]
fn a_snapshot_from_before_l0_still_loads() {
    let m = Metrics::from_events(&stream().events);
    let mut json = serde_json::to_value(&m).expect("serialises");
    json.as_object_mut().unwrap().remove("l0");
    json["totals"].as_object_mut().unwrap().remove("l0");
    let old: Metrics = serde_json::from_value(json).expect("an old snapshot loads");
    assert!(old.l0.is_empty() && old.totals.l0.by_team.is_empty());
}

#[test]
fn the_kpi_table_shows_l0_rows_only_when_the_bot_answered() {
    use switchboard_metrics::{Targets, article_cells, render_table};
    let r = Report::from_events(&stream().events, &Query::default());
    let table = render_table(&[("all".to_string(), &r.total)], &Targets::default());
    for row in ["L0 answered", "L0 deflection", "L0 confirmed helpful", "L0 hand-off rate"] {
        assert!(table.lines().any(|l| l.starts_with(row)), "{row} in\n{table}");
    }
    assert!(table.lines().any(|l| l.starts_with("L0 deflection") && l.ends_with("50.0%")), "{table}");
    let mut plain = Stream::new();
    plain.opened(0, 1);
    let r = Report::from_events(&plain.events, &Query::default());
    let table = render_table(&[("all".to_string(), &r.total)], &Targets::default());
    assert!(!table.contains("L0 "), "{table}");

    let r = Report::from_events(&stream().events, &Query::default());
    let cells = article_cells(&r.kb_articles, 10);
    assert_eq!(cells[0], ["article", "shown", "helped", "handed off", "helpful"]);
    assert_eq!(cells[2], ["refund", "3", "2", "0", "66.7%"]);
}
