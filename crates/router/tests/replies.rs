//! Saved replies: the leader renders an agent's `template` with the conversation's values before
//! journaling the command, so replay sends the same text after the folder changed; a name that
//! cannot be rendered is refused and changes nothing; an opening question's matching replies are
//! suggested in the offer.

use std::collections::BTreeMap;
use std::path::Path;

use switchboard_core::{AgentCommand, AgentDelivery, CommandAction, Envelope, EventKind};
use switchboard_kb::{Kb, Limits};
use switchboard_router::{Effect, Entry, KnowledgeBase, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 60
[[agents]]
id = "alice"
name = "Alice Smith"
teams = ["support"]
tiers = ["L1"]
status = "online"
"#;

fn write_replies(dir: &Path, refund_body: &str) {
    let reply = |id: &str, title: &str, body: &str| {
        format!("---\nid: {id}\ntitle: \"{title}\"\nlanguage: en\nkind: reply\n---\n\n{body}\n")
    };
    std::fs::write(dir.join("refund.md"), reply("refund-done", "Refund confirmed", refund_body)).unwrap();
    std::fs::write(
        dir.join("address.md"),
        reply("address-changed", "Delivery address change", "Hello {customer.name}, your delivery address is changed."),
    )
    .unwrap();
}

fn router(dir: &Path) -> Router {
    let kb = Kb::load(dir, Limits::default()).expect("the folder loads");
    let cfg = RouterConfig {
        routing: toml::from_str(ROUTING).expect("routing toml"),
        endpoints: BTreeMap::from([("alice".to_string(), vec!["webhook".to_string()])]),
        offer_history: 10,
        group: None,
        kb: Some(KnowledgeBase::new(kb, 1.0)),
    };
    Router::new(cfg).expect("valid config")
}

fn envelope(text: &str, name: Option<&str>) -> Envelope {
    let mut envelope = switchboard_adapter::testkit::envelope("telegram", "p-1", "c1", text);
    envelope.customer.name = name.map(str::to_string);
    envelope.received_at = chrono::DateTime::from_timestamp(10, 0).unwrap();
    envelope
}

/// What the leader journals for a customer's message (as `Work::stamp` does).
fn inbound(r: &Router, envelope: Envelope) -> Entry {
    let replies = r.reply_lookup(&envelope);
    Entry::Inbound {
        at: 10_000,
        envelope: Box::new(envelope),
        new_conversation: Uuid::from_u128(7),
        kb: Vec::new(),
        replies,
    }
}

/// What the leader journals for an agent's command.
fn command(r: &Router, secs: i64, conversation: Uuid, action: CommandAction) -> Entry {
    let command = AgentCommand {
        id: Uuid::from_u128(1000 + secs as u128),
        agent_id: "alice".into(),
        conversation_id: Some(conversation),
        issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
        action,
    };
    Entry::Command { at: secs * 1000, command: Box::new(r.render_template(command)), stream_sequence: None }
}

fn template(name: &str) -> CommandAction {
    CommandAction::Reply { text: String::new(), attachments: Vec::new(), template: Some(name.into()) }
}

fn outbound_texts(fx: &[Effect]) -> Vec<String> {
    fx.iter().filter_map(|e| if let Effect::Outbound(o) = e { Some(o.text.clone()) } else { None }).collect()
}

fn rejected(fx: &[Effect]) -> Option<String> {
    fx.iter()
        .find_map(|e| if let Effect::CommandResult { rejected, .. } = e { Some(rejected.clone()) } else { None })
        .expect("a command result")
}

/// A router with a conversation from "Anna Petrova" accepted by Alice, its id and the journal.
fn accepted(dir: &Path) -> (Router, Uuid, Vec<Entry>) {
    accepted_from(dir, Some("Anna Petrova"))
}

fn accepted_from(dir: &Path, customer: Option<&str>) -> (Router, Uuid, Vec<Entry>) {
    let mut r = router(dir);
    let first = inbound(&r, envelope("Where is my refund? You said it was approved", customer));
    r.apply(1, &first);
    let conversation = Uuid::from_u128(7);
    let accept = command(&r, 11, conversation, CommandAction::Accept);
    assert_eq!(rejected(&r.apply(2, &accept)), None);
    (r, conversation, vec![first, accept])
}

#[test]
fn a_template_is_rendered_with_the_three_variables_and_counted_in_the_event() {
    let dir = tempfile::tempdir().unwrap();
    write_replies(dir.path(), "Hi {customer.name}, {agent.name} here: your refund is done (ref {conversation.code}).");
    let (mut r, conversation, _) = accepted(dir.path());
    let code = r.engine().code(conversation).expect("a code");
    let entry = command(&r, 12, conversation, template("refund-done"));
    let fx = r.apply(3, &entry);
    assert_eq!(rejected(&fx), None);
    let expected = format!("Hi Anna Petrova, Alice Smith here: your refund is done (ref {code}).");
    assert_eq!(outbound_texts(&fx), std::slice::from_ref(&expected));
    let replied = fx
        .iter()
        .find_map(|e| match e {
            Effect::Event(e) if e.kind == EventKind::AgentReplied => Some(e.clone()),
            _ => None,
        })
        .expect("agent_replied");
    assert_eq!(replied.data.get("template").and_then(|t| t.as_str()), Some("refund-done"));
    assert_eq!(replied.data.get("first_response").and_then(|t| t.as_bool()), Some(true));
    assert_eq!(r.record(conversation).unwrap().history.last().unwrap().text, expected);
}

#[test]
fn an_unknown_or_unrenderable_template_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_replies(dir.path(), "Hi {customer.name}");
    // The customer gave no name, so `{customer.name}` has no value.
    let (mut r, conversation, _) = accepted_from(dir.path(), None);
    let history = r.record(conversation).unwrap().history.len();
    for (seq, (name, reason)) in [
        ("no-such-reply", "no saved reply named `no-such-reply`"),
        ("address-changed", "saved reply `address-changed`: no value for {customer.name}"),
    ]
    .into_iter()
    .enumerate()
    {
        let entry = command(&r, 12 + seq as i64, conversation, template(name));
        let fx = r.apply(3 + seq as u64, &entry);
        assert_eq!(rejected(&fx).as_deref(), Some(reason));
        assert!(outbound_texts(&fx).is_empty(), "{name}: nothing is sent");
        assert!(!fx.iter().any(|e| matches!(e, Effect::Event(_))), "{name}: no event: {fx:?}");
    }
    assert_eq!(r.record(conversation).unwrap().history.len(), history);
    // The first response is still to come: a plain reply now is the first.
    let entry = command(&r, 20, conversation, CommandAction::reply("Looking at it"));
    let fx = r.apply(10, &entry);
    let first = fx.iter().find_map(|e| match e {
        Effect::Event(e) if e.kind == EventKind::AgentReplied => e.data.get("first_response").cloned(),
        _ => None,
    });
    assert_eq!(first, Some(serde_json::json!(true)));
}

#[test]
fn replay_sends_the_journaled_text_after_the_folder_changed() {
    let dir = tempfile::tempdir().unwrap();
    write_replies(dir.path(), "Hi {customer.name}, your refund is done.");
    let (mut r, conversation, mut journal) = accepted(dir.path());
    let reply = command(&r, 12, conversation, template("refund-done"));
    let sent = outbound_texts(&r.apply(3, &reply));
    assert_eq!(sent, ["Hi Anna Petrova, your refund is done."]);
    journal.push(reply);
    // The ops team rewrites the reply; a new router (a standby taking over) replays the journal.
    write_replies(dir.path(), "Dear {customer.name}, the money is on its way.");
    let mut replayed = router(dir.path());
    let mut texts = Vec::new();
    for (i, entry) in journal.iter().enumerate() {
        texts.extend(outbound_texts(&replayed.apply(i as u64 + 1, entry)));
    }
    assert_eq!(texts, sent);
}

#[test]
fn an_opening_question_gets_matching_saved_replies_in_the_offer() {
    let dir = tempfile::tempdir().unwrap();
    write_replies(dir.path(), "Hi {customer.name}, your refund is done.");
    let mut r = router(dir.path());
    let entry = inbound(&r, envelope("Where is my refund?", None));
    let Entry::Inbound { replies, .. } = &entry else { unreachable!() };
    assert_eq!(replies, &["refund-done".to_string()]);
    let fx = r.apply(1, &entry);
    let offered: Vec<Vec<String>> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Agent { delivery: AgentDelivery::Offer(o), .. } => Some(o.suggested_replies.clone()),
            _ => None,
        })
        .collect();
    assert!(!offered.is_empty(), "an offer: {fx:?}");
    assert!(offered.iter().all(|s| s == &["refund-done".to_string()]), "{offered:?}");
    // A message continuing the open conversation is not looked up again.
    let mut more = envelope("refund refund", None);
    more.provider_message_id = "p-2".into();
    let Entry::Inbound { replies, .. } = inbound(&r, more) else { unreachable!() };
    assert!(replies.is_empty(), "{replies:?}");
}
