//! `contract_json`: bytes as every contract type's JSON (`envelope/1`, `outbound/1`,
//! `command/1`, `event/1`, `events/1`, agent deliveries).

use std::fmt::Debug;

use switchboard_core::agent::AgentDelivery;
use switchboard_core::{AgentCommand, Contract, Envelope, Event, EventBatch, OutboundMessage};

/// Parses `data` as each contract type: a value or a `ValidationError`, and a value survives a
/// round trip through its own JSON unchanged and still valid.
pub fn run(data: &[u8]) {
    round_trip::<Envelope>(data);
    round_trip::<OutboundMessage>(data);
    round_trip::<AgentCommand>(data);
    round_trip::<Event>(data);
    round_trip::<EventBatch>(data);
    round_trip::<AgentDelivery>(data);
}

fn round_trip<T: Contract + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = T::from_json(data) else { return };
    let json =
        serde_json::to_vec(&value).unwrap_or_else(|e| panic!("{}: a parsed value does not serialise: {e}", T::SCHEMA));
    match T::from_json(&json) {
        Ok(again) => assert_eq!(again, value, "{}: the round trip changed the value", T::SCHEMA),
        Err(e) => panic!("{}: our own JSON is refused: {e}", T::SCHEMA),
    }
}
