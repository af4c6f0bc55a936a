//! The incremental fold (event by event, re-deliveries, persisted and restored on the way) and
//! the recomputation from a slice of events give identical reports; forgetting old facts keeps
//! the totals and the numbers of later windows.

mod common;

use common::Stream;
use switchboard_metrics::{GroupBy, Metrics, Query, Report};

/// A small deterministic generator, so the stream is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Adds one event to the stream.
type Push = Box<dyn Fn(&mut Stream)>;

/// A day of conversations with every kind of outcome, in time order.
fn day() -> Stream {
    let mut rng = Lcg(7);
    let agents = ["alice", "bob", "carol"];
    let mut timeline: Vec<(i64, u8, u128, usize)> = Vec::new();
    for c in 1..=300u128 {
        let t = rng.next(86_000) as i64;
        let agent = rng.next(3) as usize;
        let outcome = rng.next(6) as u8;
        timeline.push((t, outcome, c, agent));
    }
    timeline.sort();
    let mut s = Stream::new();
    for a in agents {
        s.status(0, a, "online");
    }
    // Each conversation's events at offsets from its opening; the stream is sorted by time.
    let mut events: Vec<(i64, u128, Push)> = Vec::new();
    for (t, outcome, c, a) in timeline {
        let agent = agents[a];
        let other = agents[(a + 1) % 3];
        let wait = rng.next(5000) as i64;
        let team = ["support", "billing"][(c % 2) as usize];
        let tier = ["L1", "L2"][(c % 3 == 0) as usize];
        events.push((t, c, Box::new(move |s| s.opened_with(t, c, team, tier, [1, 25, 50, 75][(c % 4) as usize]))));
        if outcome == 5 {
            continue; // never answered
        }
        events.push((t + wait, c, Box::new(move |s| s.assigned(t + wait, c, agent))));
        if wait > 3600 {
            events.push((t + 3600, c, Box::new(move |s| s.breached(t + 3600, c))));
        }
        if outcome != 4 {
            let w = wait <= 3600;
            events.push((t + wait + 30, c, Box::new(move |s| s.replied(t + wait + 30, c, agent, Some(w)))));
        }
        let mut end = t + wait + 600;
        let mut holder = agent;
        match outcome {
            1 => {
                events.push((end, c, Box::new(move |s| s.transferred(end, c, agent, "billing"))));
                events.push((end + 10, c, Box::new(move |s| s.assigned(end + 10, c, other))));
                holder = other;
                end += 300;
            }
            2 => {
                events.push((end, c, Box::new(move |s| s.escalated(end, c, "Agent", "L2"))));
                events.push((end + 10, c, Box::new(move |s| s.assigned(end + 10, c, other))));
                holder = other;
                end += 300;
            }
            _ => {}
        }
        events.push((end, c, Box::new(move |s| s.resolved(end, c, Some(holder)))));
        events.push((end + 60, c, Box::new(move |s| s.csat(end + 60, c, (c % 5) as u8 + 1))));
        if outcome == 3 {
            events.push((end + 900, c, Box::new(move |s| s.reopened(end + 900, c))));
            events.push((end + 950, c, Box::new(move |s| s.assigned(end + 950, c, holder))));
            events.push((end + 1000, c, Box::new(move |s| s.replied(end + 1000, c, holder, Some(true)))));
            events.push((end + 1200, c, Box::new(move |s| s.resolved(end + 1200, c, Some(holder)))));
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    for (_, _, push) in events {
        push(&mut s);
    }
    for a in agents {
        s.status(90_000, a, "offline");
    }
    s
}

fn queries() -> Vec<Query> {
    let hour = 3_600_000;
    let mut qs = Vec::new();
    for by in [GroupBy::None, GroupBy::Channel, GroupBy::Team, GroupBy::Tier, GroupBy::Priority, GroupBy::Agent] {
        qs.push(Query { by, ..Query::default() });
        qs.push(Query { by, from: Some(6 * hour), to: Some(18 * hour), ..Query::default() });
    }
    qs.push(Query { from: Some(23 * hour), now: Some(30 * hour), frt_target_secs: 600, ..Query::default() });
    qs
}

#[test]
fn incremental_with_redeliveries_and_restores_equals_recomputation_from_the_slice() {
    let s = day();
    assert!(s.events.len() > 1500, "a busy enough day: {}", s.events.len());
    let mut rng = Lcg(11);
    let mut m = Metrics::new();
    for (i, e) in s.events.iter().enumerate() {
        m.apply(e);
        if rng.next(10) == 0 {
            // A re-delivery of an earlier event.
            let j = rng.next(i as u64 + 1) as usize;
            assert!(!m.apply(&s.events[j]));
        }
        if i % 400 == 0 {
            let json = serde_json::to_string(&m).expect("serialise");
            m = serde_json::from_str(&json).expect("restore");
        }
    }
    for q in queries() {
        let incremental = Report::compute(&m, &q);
        let recomputed = Report::from_events(&s.events, &q);
        assert_eq!(incremental, recomputed, "query {q:?}");
    }
    // Not vacuous: the day has every KPI.
    let k = Report::from_events(&s.events, &Query::default()).total;
    assert!(k.first_responses > 100 && k.resolved > 100 && k.csat_responses > 100);
    for share in [k.fcr, k.escalation_rate, k.transfer_rate, k.repeat_contact_rate, k.sla_compliance, k.csat] {
        let share = share.expect("defined");
        assert!(share > 0.0 && share < 1.0, "{k:?}");
    }
}

#[test]
fn forgetting_old_facts_keeps_totals_and_the_numbers_of_later_windows() {
    let s = day();
    let mut m = Metrics::from_events(&s.events);
    let cut = 12 * 3_600_000;
    let later = Query { from: Some(cut + 2 * 3_600_000), by: GroupBy::Team, ..Query::default() };
    let before = Report::compute(&m, &later);
    let totals = m.totals.clone();
    let conversations = m.conversations.len();
    m.forget_before(cut);
    assert!(m.conversations.len() < conversations, "something was forgotten");
    assert_eq!(m.totals, totals);
    let after = Report::compute(&m, &later);
    assert_eq!(after.groups, before.groups);
    assert_eq!(after.agents, before.agents);
}
