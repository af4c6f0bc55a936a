//! Agents on the API alone (every delivery on the agent's own stream, open offers) and replies
//! that never reached the customer (`delivery_failed` events marking the history entry and
//! telling the agent).

use std::collections::BTreeMap;

use switchboard_core::agent::Author;
use switchboard_core::{AgentCommand, AgentDelivery, CommandAction, Event, EventKind, OutboundKind};
use switchboard_router::{Effect, Entry, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 60
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "online"
"#;

/// Alice has no endpoint at all: she works from the API.
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

fn inbound(seq: u64, secs: i64, text: &str) -> (u64, Entry) {
    let mut envelope = switchboard_adapter::testkit::envelope("webhook", &format!("p-{seq}"), "cust-1", text);
    envelope.thread_key = "t-1".into();
    let entry = Entry::Inbound {
        at: secs * 1000,
        envelope: Box::new(envelope),
        new_conversation: Uuid::from_u128(7),
        kb: Vec::new(),
        replies: Vec::new(),
    };
    (seq, entry)
}

fn command(seq: u64, secs: i64, conversation: Uuid, action: CommandAction) -> (u64, Entry) {
    let command = AgentCommand {
        id: Uuid::from_u128(1000 + u128::from(seq)),
        agent_id: "alice".into(),
        conversation_id: Some(conversation),
        issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
        action,
    };
    (seq, Entry::Command { at: secs * 1000, command: Box::new(command), stream_sequence: None })
}

fn failed(seq: u64, secs: i64, conversation: Uuid, outbound: Uuid, reason: &str) -> (u64, Entry) {
    let mut data = serde_json::Map::new();
    data.insert("outbound_id".into(), outbound.to_string().into());
    data.insert("reason".into(), reason.into());
    let event = Event {
        id: Uuid::from_u128(5000 + u128::from(seq)),
        at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
        kind: EventKind::DeliveryFailed,
        conversation_id: Some(conversation),
        agent_id: Some("alice".into()),
        channel: Some("webhook".into()),
        data,
    };
    (seq, Entry::Undelivered { at: secs * 1000, event: Box::new(event) })
}

fn apply(r: &mut Router, (seq, entry): (u64, Entry)) -> Vec<Effect> {
    r.apply(seq, &entry)
}

/// The deliveries of `fx` as (endpoint kind, delivery).
fn deliveries(fx: &[Effect]) -> Vec<(&str, &AgentDelivery)> {
    fx.iter()
        .filter_map(
            |e| if let Effect::Agent { kind, delivery, .. } = e { Some((kind.as_str(), delivery)) } else { None },
        )
        .collect()
}

#[test]
fn an_agent_without_endpoints_gets_every_delivery_on_its_stream_and_its_open_offers_are_listed() {
    let mut r = router();
    let fx = apply(&mut r, inbound(1, 10, "my order is late"));
    let offers = deliveries(&fx);
    assert!(
        matches!(offers.as_slice(), [("api", AgentDelivery::Offer(o))] if o.agent_id == "alice"),
        "one offer, on the agent's own stream: {offers:?}"
    );
    let c = Uuid::from_u128(7);
    let open = r.open_offers(Some("alice"));
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].conversation_id, c);
    assert_eq!(open[0].offer_deadline.timestamp(), 70, "offered at 10 s with a 60 s timeout");
    assert!(r.open_offers(Some("bob")).is_empty(), "only the agent asked about");
    assert_eq!(r.open_offers(None).len(), 1, "every agent's");

    let fx = apply(&mut r, command(2, 20, c, CommandAction::Accept));
    assert!(
        deliveries(&fx)
            .iter()
            .any(|(k, d)| *k == "api" && matches!(d, AgentDelivery::Update(u) if u.change == "assigned")),
        "the acceptance on the stream"
    );
    assert!(r.open_offers(Some("alice")).is_empty(), "accepted: no longer open");
}

#[test]
fn a_reply_that_was_not_delivered_is_marked_and_its_agent_told_once() {
    let mut r = router();
    apply(&mut r, inbound(1, 10, "hello"));
    let c = Uuid::from_u128(7);
    apply(&mut r, command(2, 20, c, CommandAction::Accept));
    let fx = apply(&mut r, command(3, 30, c, CommandAction::reply("on its way")));
    let outbound = fx
        .iter()
        .find_map(|e| match e {
            Effect::Outbound(o) if o.kind == OutboundKind::AgentReply => Some(o.id),
            _ => None,
        })
        .expect("the reply goes out");
    let entry = r.record(c).unwrap().history.last().unwrap().clone();
    assert_eq!((entry.from, entry.outbound_id, entry.undelivered.as_deref()), (Author::Agent, Some(outbound), None));

    let fx = apply(&mut r, failed(4, 40, c, outbound, "HTTP 410 Gone"));
    let told: Vec<_> = deliveries(&fx)
        .into_iter()
        .filter_map(|(k, d)| match d {
            AgentDelivery::Update(u) if u.change == "delivery_failed" => Some((k, u.note.clone(), u.history.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(told.len(), 1, "on the agent's one endpoint (its stream): {told:?}");
    assert_eq!(told[0].1.as_deref(), Some("HTTP 410 Gone"));
    assert_eq!(told[0].2[0].text, "on its way", "the reply that failed comes with it");
    let record = r.record(c).unwrap();
    assert_eq!(record.history.last().unwrap().undelivered.as_deref(), Some("HTTP 410 Gone"));
    assert_eq!(record.state, "assigned", "the conversation stays with the agent");
    assert!(fx.iter().any(|e| matches!(e, Effect::Store(s) if s.id == c)), "the record is stored again");

    // The same failure reported again (another event for the message) changes nothing.
    assert!(deliveries(&apply(&mut r, failed(5, 41, c, outbound, "HTTP 410 Gone"))).is_empty());
    // A failure of a message the history does not hold (a survey) tells nobody.
    assert!(apply(&mut r, failed(6, 42, c, Uuid::from_u128(99), "gone")).is_empty());
}
