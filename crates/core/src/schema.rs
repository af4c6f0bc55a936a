//! JSON Schemas of the contract types, generated from the Rust types.
//!
//! `docs/schema/*.json` holds the checked-in copies; a test fails when they drift from the types
//! (run `make schema` to regenerate them after a deliberate change).

use schemars::{JsonSchema, schema_for};

use crate::{AgentCommand, AgentDelivery, Envelope, Event, OutboundMessage};

/// Every contract schema as `(file name, pretty JSON)`, in a stable order.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("envelope.v1.json", render::<Envelope>()),
        ("outbound.v1.json", render::<OutboundMessage>()),
        ("agent-delivery.v1.json", render::<AgentDelivery>()),
        ("command.v1.json", render::<AgentCommand>()),
        ("event.v1.json", render::<Event>()),
    ]
}

fn render<T: JsonSchema>() -> String {
    let schema = schema_for!(T);
    // Serialising a schema is infallible: it is a plain JSON value.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
