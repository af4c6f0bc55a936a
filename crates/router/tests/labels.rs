//! What lets an agent tell conversations apart and keep up with them: a short code distinct
//! among live conversations, the customer's name and channel on every delivery, "reopened" on
//! a reopened conversation's offer, a record that follows a decline, customer edits told to the
//! agent, and files both ways on the history.

use std::collections::BTreeMap;

use switchboard_core::agent::Author;
use switchboard_core::{AgentCommand, AgentDelivery, AttachmentRef, CommandAction, Event, EventKind};
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
max_total = 10
default_capacity = 5
"#;

fn router() -> Router {
    let cfg = RouterConfig {
        routing: toml::from_str(ROUTING).expect("routing toml"),
        endpoints: BTreeMap::from([("alice".to_string(), vec!["telegram".to_string()])]),
        offer_history: 10,
        group: None,
        kb: None,
    };
    Router::new(cfg).expect("valid config")
}

fn inbound(seq: u64, secs: i64, customer: &str, name: &str, text: &str) -> (u64, Entry) {
    let mut envelope = switchboard_adapter::testkit::envelope("webchat", &format!("p-{seq}"), customer, text);
    envelope.thread_key = format!("t-{customer}");
    envelope.customer.name = Some(name.into());
    let new_conversation = Uuid::from_u128(u128::from(seq));
    (
        seq,
        Entry::Inbound {
            at: secs * 1000,
            envelope: Box::new(envelope),
            new_conversation,
            kb: Vec::new(),
            replies: Vec::new(),
        },
    )
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

fn apply(r: &mut Router, (seq, entry): (u64, Entry)) -> Vec<Effect> {
    r.apply(seq, &entry)
}

fn deliveries(fx: &[Effect]) -> Vec<&AgentDelivery> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Agent { kind, delivery, .. } if kind == "telegram" => Some(delivery),
            _ => None,
        })
        .collect()
}

fn offer(fx: &[Effect]) -> &switchboard_core::agent::Offer {
    deliveries(fx)
        .into_iter()
        .find_map(|d| if let AgentDelivery::Offer(o) = d { Some(o.as_ref()) } else { None })
        .expect("an offer")
}

#[test]
fn every_delivery_names_the_customer_the_channel_and_a_code_no_other_live_conversation_has() {
    let mut r = router();
    let mut codes = std::collections::HashSet::new();
    for (i, (customer, name)) in [("c1", "Ann Lee"), ("c2", "Boris"), ("c3", "Chen")].iter().enumerate() {
        let seq = 10 * i as u64 + 1;
        let fx = apply(&mut r, inbound(seq, 10 + seq as i64, customer, name, "hello"));
        let o = offer(&fx);
        assert_eq!(o.code.len(), 4, "{}", o.code);
        assert!(o.code.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()), "{}", o.code);
        assert!(codes.insert(o.code.clone()), "{} repeats a live conversation's code", o.code);
        assert_eq!(o.history.last().unwrap().author.as_deref(), Some(*name), "the entry names the customer");
        apply(&mut r, command(seq + 1, 20 + seq as i64, o.conversation_id, CommandAction::Accept));
    }
    // A follow-up and an update carry the same label.
    let fx = apply(&mut r, inbound(40, 60, "c1", "Ann Lee", "any news?"));
    let AgentDelivery::Message(m) = deliveries(&fx)[0] else { panic!("a message: {fx:?}") };
    assert_eq!((m.customer.as_deref(), m.channel.as_str()), (Some("Ann Lee"), "webchat"));
    assert!(codes.contains(&m.code));
    assert_eq!(m.entry.author_label(), "Ann Lee", "not \"Customer\"");
    let c1 = m.conversation_id;
    let fx = apply(&mut r, command(41, 61, c1, CommandAction::Resolve));
    let AgentDelivery::Update(u) = deliveries(&fx).into_iter().find(|d| matches!(d, AgentDelivery::Update(_))).unwrap()
    else {
        unreachable!()
    };
    assert_eq!((u.code.as_str(), u.customer.as_deref()), (m.code.as_str(), Some("Ann Lee")));
}

#[test]
fn a_reopened_conversation_is_offered_as_reopened_with_the_same_code() {
    let mut r = router();
    let fx = apply(&mut r, inbound(1, 10, "c1", "Ann", "hello"));
    let first = offer(&fx).clone();
    assert!(!first.reopened);
    let c = first.conversation_id;
    apply(&mut r, command(2, 20, c, CommandAction::Accept));
    apply(&mut r, command(3, 30, c, CommandAction::Resolve));
    let fx = apply(&mut r, inbound(4, 60, "c1", "Ann", "it broke again"));
    let again = offer(&fx);
    assert_eq!(again.conversation_id, c, "reopened, not a new conversation");
    assert!(again.reopened, "the offer says so");
    assert_eq!(again.code, first.code);
    assert_eq!(r.record(c).unwrap().reopens, 1);
}

#[test]
fn a_declined_conversation_reads_as_waiting_in_its_record() {
    let mut r = router();
    let fx = apply(&mut r, inbound(1, 10, "c1", "Ann", "hello"));
    let c = offer(&fx).conversation_id;
    assert_eq!(
        (r.record(c).unwrap().state.as_str(), r.record(c).unwrap().agent.as_deref()),
        ("offered", Some("alice"))
    );
    let fx = apply(&mut r, command(2, 20, c, CommandAction::Decline { reason: None }));
    let record = r.record(c).unwrap();
    assert_eq!((record.state.as_str(), record.agent.as_deref()), ("queued", None), "nobody else to offer it to");
    assert!(fx.iter().any(|e| matches!(e, Effect::Store(s) if s.id == c && s.state == "queued")), "and stored so");
}

#[test]
fn a_customer_edit_is_told_to_the_agent_holding_the_conversation() {
    let mut r = router();
    let fx = apply(&mut r, inbound(1, 10, "c1", "Ann", "my order 1234"));
    let c = offer(&fx).conversation_id;
    apply(&mut r, command(2, 20, c, CommandAction::Accept));
    let mut data = serde_json::Map::new();
    data.insert("thread_key".into(), "t-c1".into());
    data.insert("text".into(), "my order 1243".into());
    let event = Event {
        id: Uuid::from_u128(9000),
        at: chrono::DateTime::from_timestamp(30, 0).unwrap(),
        kind: EventKind::MessageEdited,
        conversation_id: None,
        agent_id: None,
        channel: Some("webchat".into()),
        data,
    };
    let fx = apply(&mut r, (3, Entry::Undelivered { at: 30_000, event: Box::new(event.clone()) }));
    let told: Vec<_> = deliveries(&fx)
        .into_iter()
        .filter_map(|d| match d {
            AgentDelivery::Update(u) if u.change == "message_edited" => Some(u.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(told.len(), 1, "{fx:?}");
    assert_eq!(told[0].history[0].text, "my order 1243");
    assert_eq!(told[0].history[0].from, Author::Customer);
    // An edit in a thread nobody holds changes nothing.
    let mut other = event;
    other.data.insert("thread_key".into(), "t-nobody".into());
    assert!(deliveries(&apply(&mut r, (4, Entry::Undelivered { at: 31_000, event: Box::new(other) }))).is_empty());
}

#[test]
fn files_travel_both_ways_on_the_history() {
    let mut r = router();
    let file = |object: &str| AttachmentRef {
        object: object.into(),
        filename: format!("{object}.jpg"),
        content_type: "image/jpeg".into(),
        size: 1000,
        skipped: None,
    };
    let (seq, mut entry) = inbound(1, 10, "c1", "Ann", "see the photo");
    if let Entry::Inbound { envelope, .. } = &mut entry {
        envelope.attachments = vec![file("from-customer")];
    }
    let fx = apply(&mut r, (seq, entry));
    let o = offer(&fx);
    assert_eq!(o.history.last().unwrap().attachments, vec![file("from-customer")], "the agent gets the file");
    let c = o.conversation_id;
    apply(&mut r, command(2, 20, c, CommandAction::Accept));
    let reply = CommandAction::Reply { text: String::new(), attachments: vec![file("from-agent")], template: None };
    let fx = apply(&mut r, command(3, 30, c, reply));
    let out = fx.iter().find_map(|e| if let Effect::Outbound(o) = e { Some(o) } else { None }).expect("sent");
    assert_eq!(out.attachments, vec![file("from-agent")]);
    assert_eq!(r.record(c).unwrap().history.last().unwrap().attachments, vec![file("from-agent")]);
}
