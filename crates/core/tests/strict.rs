//! Strict contract: an unknown field anywhere in a contract value (top level, nested object, or
//! next to the tag of a field-less action) is refused, and the error names that field, as the
//! schemas' `additionalProperties: false` say.

use serde_json::{Value, json};
use switchboard_core::{AgentCommand, AgentDelivery, Contract, Envelope, Event, EventBatch, OutboundMessage};

const ID: &str = "0190b2f0-0000-7000-8000-000000000001";
const CONVERSATION: &str = "0190b2f0-0000-7000-8000-000000000002";
const AT: &str = "2026-01-02T03:04:05Z";
/// Objects whose keys are data, not fields (free maps): no field can be unknown there.
const MAPS: [&str; 3] = ["metadata", "data", "capacity"];

fn envelope() -> Value {
    json!({
        "id": ID, "channel": "webhook", "provider_message_id": "shop:m-1", "received_at": AT,
        "customer": { "id": "c-42", "name": "Ada" }, "thread_key": "shop:c-42", "text": "Hello",
        "attachments": [{ "object": "o1", "filename": "a.txt", "content_type": "text/plain", "size": 1 }],
        "metadata": { "plan": "pro" }
    })
}

fn outbound() -> Value {
    json!({
        "id": ID, "conversation_id": CONVERSATION, "channel": "webhook",
        "to": { "customer_id": "c-42", "thread_key": "shop:c-42" }, "text": "Fixed",
        "attachments": [{ "object": "o1", "filename": "a.txt", "content_type": "text/plain", "size": 1 }],
        "kind": "agent_reply", "agent_id": "alice", "created_at": AT
    })
}

fn command(action: Value) -> Value {
    json!({ "id": ID, "agent_id": "alice", "conversation_id": CONVERSATION, "issued_at": AT, "action": action })
}

/// One command per action, every optional field set.
fn commands() -> Vec<Value> {
    [
        json!({ "type": "accept" }),
        json!({ "type": "decline", "reason": "busy" }),
        json!({ "type": "reply", "text": "hi" }),
        json!({ "type": "note", "text": "hi" }),
        json!({ "type": "transfer", "to_agent": "bob", "to_team": "billing", "note": "n" }),
        json!({ "type": "escalate", "tier": "L2", "note": "n" }),
        json!({ "type": "resolve" }),
        json!({ "type": "set_status", "status": "away" }),
        json!({ "type": "set_capacity", "capacity": { "email": 2 }, "max_total": 3 }),
        json!({ "type": "define_agent", "name": "Alice", "teams": ["support"], "tiers": ["L1"],
                "skills": ["billing:3"], "capacity": { "email": 2 }, "default_capacity": 3, "max_total": 5,
                "status": "online", "endpoints": ["webhook"] }),
    ]
    .into_iter()
    .map(command)
    .collect()
}

fn history() -> Value {
    json!([{ "at": AT, "from": "customer", "author": "Ada", "text": "Hello" }])
}

fn deliveries() -> Vec<Value> {
    vec![
        json!({ "type": "offer", "id": ID, "agent_id": "alice", "conversation_id": CONVERSATION,
                "channel": "webhook", "customer": { "id": "c-42" }, "subject": "s", "priority": 50, "tier": "L1",
                "skills": [{ "skill": "billing", "min_level": 2 }], "sla_deadline": AT, "offer_deadline": AT,
                "history": history(), "actions": ["accept", "decline"] }),
        json!({ "type": "message", "id": ID, "agent_id": "alice", "conversation_id": CONVERSATION,
                "entry": { "at": AT, "from": "customer", "text": "more" } }),
        json!({ "type": "update", "id": ID, "agent_id": "alice", "conversation_id": CONVERSATION,
                "change": "assigned", "note": "n", "history": history() }),
    ]
}

fn event() -> Value {
    json!({ "id": ID, "at": AT, "kind": "resolved", "conversation_id": CONVERSATION, "agent_id": "alice",
            "channel": "webhook", "data": { "reason": "done" } })
}

/// Paths (as JSON pointers) of every object in `value` that holds fields, free maps excluded.
fn objects(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            out.push(at.clone());
            for (key, inner) in fields {
                if !MAPS.contains(&key.as_str()) {
                    objects(inner, format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                objects(inner, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The sample parses; with `x-unknown` added to any of its objects it is refused, naming it.
fn check<T: Contract>(sample: Value) -> usize {
    T::from_json(sample.to_string().as_bytes()).unwrap_or_else(|e| panic!("{} sample refused: {e}", T::SCHEMA));
    let mut paths = Vec::new();
    objects(&sample, String::new(), &mut paths);
    for path in &paths {
        let mut bad = sample.clone();
        bad.pointer_mut(path).and_then(Value::as_object_mut).unwrap().insert("x-unknown".into(), json!(42));
        match T::from_json(bad.to_string().as_bytes()) {
            Ok(_) => panic!("{}: an unknown field at `{path}` was accepted: {bad}", T::SCHEMA),
            Err(e) => assert_eq!(e.field, "x-unknown", "{}: at `{path}`: {e}", T::SCHEMA),
        }
    }
    paths.len()
}

#[test]
fn unknown_fields_are_refused_everywhere_naming_the_field() {
    let mut checked = check::<Envelope>(envelope()) + check::<OutboundMessage>(outbound()) + check::<Event>(event());
    checked += check::<EventBatch>(json!({ "events": [event(), event()] }));
    for sample in commands() {
        checked += check::<AgentCommand>(sample);
    }
    for sample in deliveries() {
        checked += check::<AgentDelivery>(sample);
    }
    assert!(checked >= 35, "too few objects checked: {checked}");
}

#[test]
fn fieldless_actions_refuse_fields_and_keep_their_wire_format() {
    let resolve = command(json!({ "type": "resolve", "reason": "spam" }));
    let err = AgentCommand::from_json(resolve.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "reason", "{err}");
    let accept = AgentCommand::from_json(command(json!({ "type": "accept" })).to_string().as_bytes()).unwrap();
    let wire = serde_json::to_value(&accept).unwrap();
    assert_eq!(wire["action"], json!({ "type": "accept" }));
}
