//! Each KPI on hand-built event streams, with the edge cases: no reply yet, reopened,
//! transferred, escalated, resolved without a reply, and agents' occupancy in a window.

mod common;

use common::Stream;
use switchboard_metrics::{GroupBy, Metrics, Query, Report};

fn report(s: &Stream, query: Query) -> Report {
    Report::from_events(&s.events, &query)
}

fn total(s: &Stream) -> switchboard_metrics::Kpis {
    report(s, Query::default()).total
}

#[test]
fn first_response_time_and_sla_are_measured_from_the_customers_first_message() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.assigned(10, 1, "alice");
    s.replied(60, 1, "alice", Some(true));
    s.replied(120, 1, "alice", None); // not a first response: no second sample
    s.opened(0, 3);
    s.breached(3600, 3);
    s.assigned(7000, 3, "bob");
    s.replied(3 * 3600, 3, "bob", Some(false)); // late, after the breach: one SLA miss, not two
    let k = total(&s);
    assert_eq!(k.first_responses, 2);
    assert_eq!(k.frt_mean_secs, Some((60.0 + 10800.0) / 2.0));
    let p50 = k.frt_p50_secs.unwrap();
    assert!((59.9..=60.1).contains(&p50), "p50 {p50}");
    let p90 = k.frt_p90_secs.unwrap();
    assert!((10790.0..=10810.0).contains(&p90), "p90 {p90}");
    assert_eq!(k.frt_within_target, Some(0.5), "one of two within 2h");
    assert_eq!((k.sla_met, k.sla_missed, k.sla_compliance), (1, 1, Some(0.5)));
}

#[test]
fn a_conversation_without_a_reply_has_no_frt_but_waits_in_the_backlog_and_counts_as_unanswered() {
    let mut s = Stream::new();
    s.opened_with(0, 1, "billing", "L2", 1);
    s.opened(0, 2);
    s.offered(5, 2, "alice"); // offered is still waiting
    s.opened(0, 3);
    s.assigned(5, 3, "alice"); // assigned is not in the backlog, but still unanswered
    let r = report(&s, Query { now: Some((2 * 3600 + 60) * 1000), ..Query::default() });
    assert_eq!(r.total.first_responses, 0);
    assert_eq!(r.total.frt_mean_secs, None);
    assert_eq!(r.backlog.waiting, 2);
    assert_eq!(r.backlog.by_tier.get("L2"), Some(&1));
    assert_eq!(r.backlog.by_priority.get("P1"), Some(&1));
    assert_eq!(r.backlog.by_team.get("support"), Some(&1));
    assert_eq!(r.backlog.by_channel.get("email"), Some(&1));
    let unanswered: u64 = r.backlog.unanswered.iter().map(|(_, n)| n).sum();
    assert_eq!(unanswered, 3);
    assert_eq!(r.backlog.unanswered.iter().find(|(b, _)| b == "2h-8h").map(|b| b.1), Some(3));
    // The deadline passes with no reply: an SLA miss without a first response.
    s.breached(3600, 1);
    assert_eq!((total(&s).sla_met, total(&s).sla_missed), (0, 1));
}

#[test]
fn a_conversation_resolved_without_a_reply_counts_as_resolved_with_no_frt_or_handle_time() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.resolved(30, 1, None);
    let k = total(&s);
    assert_eq!((k.resolved, k.first_responses, k.aht_mean_secs), (1, 0, None));
    assert_eq!(k.fcr, Some(1.0), "nothing reopened, transferred or escalated");
    assert_eq!(report(&s, Query::default()).backlog.waiting, 0);
}

#[test]
fn a_reopened_conversation_is_a_repeat_contact_not_first_contact_resolved_with_a_second_frt() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.assigned(0, 1, "alice");
    s.replied(100, 1, "alice", Some(true));
    s.resolved(600, 1, Some("alice"));
    let k = total(&s);
    assert_eq!((k.fcr, k.aht_mean_secs), (Some(1.0), Some(600.0)));
    s.reopened(1000, 1);
    s.assigned(1100, 1, "alice");
    s.replied(1300, 1, "alice", Some(true));
    s.resolved(1500, 1, Some("alice"));
    let k = total(&s);
    assert_eq!(k.resolved, 1, "one conversation");
    assert_eq!(k.fcr, Some(0.0));
    assert_eq!(k.reopened, 1);
    assert_eq!(k.repeat_contact_rate, Some(0.5), "one reopening per two resolutions");
    assert_eq!(k.first_responses, 2);
    assert_eq!(k.frt_mean_secs, Some((100.0 + 300.0) / 2.0), "the second FRT runs from the reopening");
    assert_eq!(k.aht_mean_secs, Some((600.0 + 400.0) / 2.0));
}

#[test]
fn transfers_and_escalations_count_per_conversation_and_break_first_contact_resolution() {
    let mut s = Stream::new();
    for c in 1..=4 {
        s.opened(0, c);
        s.assigned(10, c, "alice");
    }
    s.transferred(100, 1, "alice", "billing");
    s.transferred(150, 1, "bob", "support"); // a second transfer of the same conversation
    s.assigned(200, 1, "bob");
    s.resolved(400, 1, Some("bob"));
    s.escalated(100, 2, "Agent", "L2");
    s.resolved(300, 2, None);
    s.escalated(100, 3, "SkillsRelaxed", "L1"); // a routing step, not an escalation
    s.resolved(300, 3, Some("alice"));
    s.resolved(300, 4, Some("alice"));
    let k = total(&s);
    assert_eq!(k.transfer_rate, Some(0.25));
    assert_eq!(k.escalation_rate, Some(0.25));
    assert_eq!(k.fcr, Some(0.5), "3 and 4 only");
    assert_eq!(k.aht_mean_secs, Some((390.0 + 290.0 + 290.0 + 290.0) / 4.0), "from the first assignment");
    let by_team = report(&s, Query { by: GroupBy::Team, ..Query::default() }).groups;
    assert_eq!(by_team["support"].transfer_rate, Some(0.25), "opened in support");
    assert_eq!(by_team["support"].resolved, 4, "1 was transferred back to support");
    let by_tier = report(&s, Query { by: GroupBy::Tier, ..Query::default() }).groups;
    assert_eq!(by_tier["L2"].resolved, 1, "resolved at the tier it was escalated to");
}

#[test]
fn csat_is_the_share_of_four_and_five_and_ignores_answers_outside_one_to_five() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.opened(0, 2);
    for (c, score) in [(1, 5), (1, 4), (2, 3), (2, 1), (2, 0), (2, 9)] {
        s.csat(100, c, score);
    }
    let k = total(&s);
    assert_eq!((k.csat_responses, k.csat), (4, Some(0.5)));
    assert_eq!(k.csat_mean, Some((5.0 + 4.0 + 3.0 + 1.0) / 4.0), "the mean score beside the share");
    let by_channel = report(&s, Query { by: GroupBy::Channel, ..Query::default() }).groups;
    assert_eq!((by_channel["webchat"].csat, by_channel["email"].csat), (Some(1.0), Some(0.0)));
}

#[test]
fn nps_is_promoters_minus_detractors_in_points_and_ces_the_mean_effort_per_team_and_channel() {
    let mut s = Stream::new();
    // Team sales asks NPS: 5 promoters (9-10), 2 passives (7-8), 3 detractors (0-6).
    let nps = [10, 9, 9, 10, 9, 8, 7, 6, 0, 3];
    for (i, score) in nps.iter().enumerate() {
        let c = i as u128 + 1;
        s.opened_with(0, c, "sales", "L1", 50);
        s.nps(100, c, serde_json::json!(score));
    }
    // Off the scale or not a number: not counted.
    s.opened_with(0, 11, "sales", "L1", 50);
    for bad in [serde_json::json!(11), serde_json::json!(-1), serde_json::json!("9"), serde_json::json!(9.5)] {
        s.nps(100, 11, bad);
    }
    // Team care asks CES: 7, 6, 2, 5 (mean 5); 0 and 8 are off the 1-7 scale.
    for (c, score) in [(21, 7), (22, 6), (23, 2), (24, 5), (25, 0), (26, 8)] {
        s.opened_with(0, c, "care", "L1", 50);
        s.ces(100, c, serde_json::json!(score));
    }
    let k = total(&s);
    assert_eq!(k.nps_responses, 10);
    assert_eq!(k.nps, Some(100.0 * (5.0 - 3.0) / 10.0), "+20 points");
    assert_eq!((k.ces_responses, k.ces_mean), (4, Some(5.0)));
    assert_eq!((k.csat_responses, k.csat), (0, None), "NPS and CES are not CSAT");

    let by_team = report(&s, Query { by: GroupBy::Team, ..Query::default() }).groups;
    assert_eq!((by_team["sales"].nps, by_team["sales"].ces_mean), (Some(20.0), None));
    assert_eq!((by_team["care"].nps, by_team["care"].ces_mean), (None, Some(5.0)));
    // Odd conversations are web chats: 10, 9, 9, 7, 0 (3 promoters, 1 detractor of 5); even
    // ones emails: 9, 10, 8, 6, 3 (2 and 2).
    let by_channel = report(&s, Query { by: GroupBy::Channel, ..Query::default() }).groups;
    assert_eq!((by_channel["webchat"].nps, by_channel["email"].nps), (Some(40.0), Some(0.0)));
    // All detractors is -100.
    let mut d = Stream::new();
    d.opened(0, 1);
    d.nps(10, 1, serde_json::json!(0));
    assert_eq!(total(&d).nps, Some(-100.0));

    // The table shows the NPS and CES rows only when there are answers.
    let targets = switchboard_metrics::Targets::default();
    let table = switchboard_metrics::render_table(&[("all".into(), &k)], &targets);
    assert!(table.lines().any(|l| l.starts_with("NPS (promoters - detractors)") && l.ends_with("+20.0")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("CES mean (1-7)") && l.ends_with("5.00")), "{table}");
    let plain = switchboard_metrics::render_table(&[("all".into(), &switchboard_metrics::Kpis::default())], &targets);
    assert!(!plain.contains("NPS") && !plain.contains("CES"), "{plain}");
    // And the JSON (`stats --format json`) names them.
    let json = serde_json::to_value(&k).unwrap();
    assert_eq!((json["nps"].as_f64(), json["ces_mean"].as_f64()), (Some(20.0), Some(5.0)));
}

#[test]
fn occupancy_is_busy_time_over_logged_in_time_within_the_window() {
    let mut s = Stream::new();
    s.status(0, "alice", "online");
    s.opened(100, 1);
    s.assigned(100, 1, "alice");
    s.opened(150, 3);
    s.assigned(150, 3, "alice"); // overlapping: busy is not double counted
    s.resolved(300, 1, Some("alice"));
    s.status(350, "alice", "away"); // away is still logged in
    s.resolved(400, 3, Some("alice"));
    s.status(1000, "alice", "offline");
    s.status(2000, "alice", "online");
    let r = report(&s, Query { now: Some(2_500_000), ..Query::default() });
    let a = &r.agents["alice"];
    assert_eq!((a.logged_in_secs, a.busy_secs), (1500.0, 300.0));
    assert_eq!(a.occupancy, Some(0.2));
    assert_eq!((a.resolved, a.aht_mean_secs), (2, Some(225.0)));
    let r = report(&s, Query { from: Some(200_000), to: Some(600_000), ..Query::default() });
    let a = &r.agents["alice"];
    assert_eq!((a.logged_in_secs, a.busy_secs), (400.0, 200.0));
}

#[test]
fn windows_count_what_happened_inside_them_and_group_by_agent_uses_who_replied() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.assigned(0, 1, "alice");
    s.replied(60, 1, "alice", Some(true));
    s.opened(3600, 3);
    s.assigned(3600, 3, "bob");
    s.replied(3720, 3, "bob", Some(true));
    let first_hour = report(&s, Query { from: Some(0), to: Some(3_600_000), ..Query::default() }).total;
    assert_eq!((first_hour.opened, first_hour.first_responses, first_hour.frt_mean_secs), (1, 1, Some(60.0)));
    let by_agent = report(&s, Query { by: GroupBy::Agent, ..Query::default() }).groups;
    assert_eq!(by_agent["bob"].frt_mean_secs, Some(120.0));
    assert_eq!(by_agent["alice"].frt_mean_secs, Some(60.0));
}

#[test]
fn the_same_event_applied_twice_counts_once() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.assigned(0, 1, "alice");
    s.resolved(60, 1, Some("alice"));
    let mut m = Metrics::new();
    for e in &s.events {
        assert!(m.apply(e));
        assert!(!m.apply(e), "a re-delivery changes nothing");
    }
    let k = Report::compute(&m, &Query::default()).total;
    assert_eq!((k.opened, k.resolved, k.aht_mean_secs), (1, 1, Some(60.0)));
}

#[test]
fn an_agents_handle_time_is_the_time_they_held_the_conversation() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.assigned(10, 1, "alice");
    s.transferred(310, 1, "alice", "billing"); // alice held it 300 s
    s.assigned(400, 1, "bob"); // 90 s in the queue between
    s.resolved(740, 1, Some("bob")); // bob held it 340 s
    let r = report(&s, Query::default());
    assert_eq!(r.agents["bob"].aht_mean_secs, Some(340.0), "not 730 s from alice's start");
    assert_eq!(r.agents["alice"].aht_mean_secs, Some(300.0), "alice's own work counts as hers");
    assert_eq!((r.agents["bob"].resolved, r.agents["alice"].resolved), (1, 0), "resolved by bob");
    assert_eq!(r.total.aht_mean_secs, Some(730.0), "the conversation's handle time stays first assignment to resolve");
}

#[test]
fn transfer_speed_is_the_time_from_a_hand_off_to_the_next_agent_taking_it() {
    let mut s = Stream::new();
    s.opened(0, 1);
    s.assigned(10, 1, "alice");
    s.transferred(100, 1, "alice", "billing");
    s.assigned(160, 1, "bob"); // 60 s to the next specialist
    s.opened(0, 2);
    s.assigned(10, 2, "alice");
    s.escalated(200, 2, "Agent", "L2");
    s.assigned(320, 2, "carol"); // 120 s
    s.opened(0, 3);
    s.escalated(50, 3, "SkillsRelaxed", "L1"); // a routing step while waiting: no hand-off
    s.assigned(90, 3, "bob");
    let k = total(&s);
    assert_eq!((k.handoffs, k.transfer_speed_secs), (2, Some(90.0)));
}

#[test]
fn a_supervisors_changes_count_like_an_agents_once_each() {
    use switchboard_core::EventKind;
    let mut s = Stream::new();
    for c in 1..=3 {
        s.opened(0, c);
    }
    s.assigned(10, 1, "alice");
    // A supervisor escalates alice's conversation: an escalation and a hand-off, as by alice.
    let data = serde_json::json!({ "cause": "Supervisor", "tier": "L2", "team": "support", "by_supervisor": "lead" });
    s.push(100, EventKind::Escalated, Some(1), None, data);
    s.assigned(160, 1, "dave");
    s.resolved(400, 1, Some("dave"));
    // A waiting conversation moved to another team (nobody held it) is a transfer, no hand-off.
    let data = serde_json::json!({ "to_agent": null, "team": "billing", "by_supervisor": "lead" });
    s.push(100, EventKind::Transferred, Some(2), None, data);
    // A new priority is not an error and changes no count.
    let data = serde_json::json!({ "from": 50, "to": 1, "by_supervisor": "lead", "priority": 1 });
    s.push(110, EventKind::PriorityChanged, Some(3), None, data);
    s.resolved(300, 2, None);
    s.resolved(300, 3, None);
    let k = total(&s);
    assert_eq!((k.escalation_rate, k.transfer_rate), (Some(1.0 / 3.0), Some(1.0 / 3.0)));
    assert_eq!(k.fcr, Some(1.0 / 3.0), "only 3 was resolved at first contact");
    assert_eq!((k.handoffs, k.transfer_speed_secs), (1, Some(60.0)), "alice's hand-off to dave, timed");
    assert_eq!(k.resolved, 3);
}
