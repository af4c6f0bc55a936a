//! JSON Schemas of the contract types, generated from the Rust types.
//!
//! `docs/schema/*.json` holds the checked-in copies; a test fails when they drift from the types
//! (run `make schema` to regenerate them after a deliberate change).

use schemars::{JsonSchema, schema_for};

use crate::record::ConversationRecord;
use crate::{AgentCommand, AgentDelivery, Contract, Envelope, Event, EventBatch, OutboundMessage};

/// Every contract schema as `(file name, pretty JSON)`, in a stable order.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("envelope.v1.json", render::<Envelope>()),
        ("outbound.v1.json", render::<OutboundMessage>()),
        ("agent-delivery.v1.json", render::<AgentDelivery>()),
        ("command.v1.json", render::<AgentCommand>()),
        ("event.v1.json", render::<Event>()),
        ("events.v1.json", render::<EventBatch>()),
        ("conversation-record.v1.json", render::<ConversationRecord>()),
    ]
}

/// Every contract schema as `(schema id carried in Sb-Schema, file name in docs/schema/)`, in
/// the order of [`all`].
pub fn ids() -> Vec<(&'static str, &'static str)> {
    vec![
        (Envelope::SCHEMA, "envelope.v1.json"),
        (OutboundMessage::SCHEMA, "outbound.v1.json"),
        (AgentDelivery::SCHEMA, "agent-delivery.v1.json"),
        (AgentCommand::SCHEMA, "command.v1.json"),
        (Event::SCHEMA, "event.v1.json"),
        (EventBatch::SCHEMA, "events.v1.json"),
    ]
}

fn render<T: JsonSchema>() -> String {
    let schema = schema_for!(T);
    // Serialising a schema is infallible: it is a plain JSON value.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
