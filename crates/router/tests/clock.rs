//! The customer's clock: a contact starts when the customer wrote (the envelope's
//! `received_at`), not when the router took the message, so an outage or a backlog before the
//! router shows in the first response time and the SLA instead of being hidden.

use std::collections::BTreeMap;

use switchboard_core::{AgentCommand, CommandAction, Event, EventKind};
use switchboard_metrics::{Query, Report};
use switchboard_router::{Effect, Entry, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
customer_clock_max_lag_secs = 3600
[teams.support]
first_response_secs = { P3 = 60 }
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "online"
"#;

fn router() -> Router {
    let cfg = RouterConfig {
        routing: toml::from_str(ROUTING).expect("routing toml"),
        endpoints: BTreeMap::new(),
        offer_history: 10,
        group: None,
        kb: None,
    };
    Router::new(cfg).expect("valid config")
}

/// A customer message the router takes at `taken` seconds, written at `written` seconds.
fn inbound(seq: u64, written: i64, taken: i64) -> (u64, Entry) {
    let mut envelope = switchboard_adapter::testkit::envelope("webchat", &format!("p-{seq}"), "cust-1", "hello?");
    envelope.thread_key = "t-1".into();
    envelope.received_at = chrono::DateTime::from_timestamp(written, 0).unwrap();
    (
        seq,
        Entry::Inbound {
            at: taken * 1000,
            envelope: Box::new(envelope),
            new_conversation: Uuid::from_u128(7),
            kb: Vec::new(),
            replies: Vec::new(),
        },
    )
}

fn command(seq: u64, secs: i64, action: CommandAction) -> (u64, Entry) {
    let command = AgentCommand {
        id: Uuid::from_u128(1000 + u128::from(seq)),
        agent_id: "alice".into(),
        conversation_id: Some(Uuid::from_u128(7)),
        issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
        action,
    };
    (seq, Entry::Command { at: secs * 1000, command: Box::new(command), stream_sequence: None })
}

fn events(fx: &[Effect]) -> Vec<Event> {
    fx.iter().filter_map(|e| if let Effect::Event(e) = e { Some(e.clone()) } else { None }).collect()
}

#[test]
fn a_customer_who_wrote_while_the_router_was_down_is_measured_from_when_they_wrote() {
    let mut r = router();
    let mut all = Vec::new();
    // Written at 1,000 s; the router was stopped and took it 20 s later.
    let (seq, entry) = inbound(1, 1000, 1020);
    all.extend(events(&r.apply(seq, &entry)));
    let record = r.record(Uuid::from_u128(7)).unwrap();
    assert_eq!(record.opened_at, 1_000_000, "the contact starts when the customer wrote");
    assert_eq!(record.sla_deadline, 1_060_000, "the 60 s SLA runs from then");
    let opened = all.iter().find(|e| e.kind == EventKind::ConversationOpened).unwrap();
    assert_eq!(opened.data["contact_start"], 1_000_000);
    // Accepted and answered 2.3 s after the router took it: 22.3 s after the customer wrote.
    let (seq, entry) = command(2, 1021, CommandAction::Accept);
    all.extend(events(&r.apply(seq, &entry)));
    let (seq, entry) = command(3, 1022, CommandAction::reply("sorry for the wait"));
    all.extend(events(&r.apply(seq, &entry)));
    let replied = all.iter().find(|e| e.kind == EventKind::AgentReplied).unwrap();
    assert_eq!(replied.data["within_sla"], true);
    let k = Report::from_events(&all, &Query::default()).total;
    assert_eq!(k.frt_mean_secs, Some(22.0), "not the 2 s the router saw");
}

#[test]
fn a_reply_late_on_the_customers_clock_misses_the_sla_the_router_would_have_met() {
    let mut r = router();
    // Written 50 s before the router took it; answered 15 s after: 65 s on the customer's clock.
    let (seq, entry) = inbound(1, 1000, 1050);
    r.apply(seq, &entry);
    r.apply(2, &command(2, 1055, CommandAction::Accept).1);
    let fx = r.apply(3, &command(3, 1065, CommandAction::reply("here")).1);
    let replied = events(&fx).into_iter().find(|e| e.kind == EventKind::AgentReplied).unwrap();
    assert_eq!(replied.data["within_sla"], false, "65 s against a 60 s target");
}

#[test]
fn a_channels_clock_is_trusted_only_within_bounds() {
    // Two hours early (a wrong clock): taken as the configured hour before.
    let mut r = router();
    let (seq, entry) = inbound(1, 10_000 - 7200, 10_000);
    r.apply(seq, &entry);
    assert_eq!(r.record(Uuid::from_u128(7)).unwrap().opened_at, (10_000 - 3600) * 1000);
    // In the future: taken as the router's time.
    let mut r = router();
    let (seq, entry) = inbound(1, 10_500, 10_000);
    r.apply(seq, &entry);
    assert_eq!(r.record(Uuid::from_u128(7)).unwrap().opened_at, 10_000 * 1000);
}
