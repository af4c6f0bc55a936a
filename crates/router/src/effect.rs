//! What applying a journal entry asks the service to do, each with a stable id.

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentDelivery, Event, OutboundMessage};
use uuid::Uuid;

use crate::record::ConversationRecord;

/// One effect of a journal entry. Its id ([`effect_id`]) depends only on the entry's sequence
/// and the effect's position, so a replayed entry yields the same ids and JetStream's
/// de-duplication drops what was already published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Publish in the audit log: the events of one journal message go out together as
    /// `events/1` batches on `sb.events.batch` (see `service/effects.rs`).
    Event(Event),
    /// Publish on `sb.out.<channel>`: a message to the customer.
    Outbound(OutboundMessage),
    /// Publish on `sb.agent.out.<kind>.<agent>`: a delivery to one of the agent's endpoints,
    /// which the agent's own stream (`GET /v1/agent/events`) reads too.
    Agent {
        /// The endpoint kind (`webhook`, `telegram`, `email`), or [`AGENT_STREAM`] for an agent
        /// without endpoints.
        kind: String,
        /// The delivery.
        delivery: AgentDelivery,
        /// The copy for a further endpoint kind of the agent, which its own stream skips (it
        /// shows the first kind's).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        copy: bool,
    },
    /// Store the conversation's record (KV `sb_conversations`).
    Store(Box<ConversationRecord>),
    /// Answer the command's issuer.
    CommandResult {
        /// The command.
        command: Uuid,
        /// `None` when it was carried out, else why not.
        rejected: Option<String>,
    },
}

/// The [`Effect::Agent`] kind of a delivery to an agent without endpoints: stored on
/// `sb.agent.out.api.<agent id>` for its own stream (`GET /v1/agent/events`) alone. An agent
/// with endpoints has its stream read from theirs, so each delivery is written once per kind.
pub const AGENT_STREAM: &str = switchboard_core::contract::subjects::AGENT_STREAM_KIND;

/// The id of effect number `index` of the journal entry at `sequence`, timestamped `at_ms`:
/// a UUIDv7 whose "random" bits are the sequence and index, so it is unique and reproducible.
pub fn effect_id(at_ms: i64, sequence: u64, index: u16) -> Uuid {
    let mut bits = [0u8; 10];
    bits[..8].copy_from_slice(&sequence.to_be_bytes());
    bits[8..].copy_from_slice(&index.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(at_ms.max(0) as u64, &bits).into_uuid()
}

/// How many entries one journal message may hold: the position takes the top 16 bits of the
/// sequence that [`effect_id`] is given.
pub const MAX_BATCH: usize = 1 << 15;

/// The sequence that effect ids of entry `position` of the journal message at `sequence` derive
/// from: the sequence itself for the first (so a single entry's ids are what they always were),
/// the position in the top 16 bits for the others (journal sequences stay far below 2^48).
pub fn effect_sequence(sequence: u64, position: usize) -> u64 {
    debug_assert!(position < MAX_BATCH && sequence < 1 << 48);
    sequence | ((position as u64) << 48)
}
