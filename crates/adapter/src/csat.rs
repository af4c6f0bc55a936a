//! Satisfaction answers: one `csat_received` event per conversation, whichever channel it came on.

use chrono::Utc;
use serde::Deserialize;
use switchboard_bus::{Bus, BusError, Published};
use switchboard_core::contract::{buckets, subjects};
use switchboard_core::{Event, EventKind};
use uuid::Uuid;

/// The scores a customer can give.
pub const CSAT_SCORES: std::ops::RangeInclusive<u8> = 1..=5;

/// The `csat_received` event for a customer's answer: `data.score` is the score.
pub fn csat_event(conversation: Uuid, agent: Option<String>, channel: &str, score: u8) -> Event {
    let mut data = serde_json::Map::new();
    data.insert("score".into(), score.into());
    Event {
        id: Uuid::now_v7(),
        at: Utc::now(),
        kind: EventKind::CsatReceived,
        conversation_id: Some(conversation),
        agent_id: agent,
        channel: Some(channel.into()),
        data,
    }
}

/// The de-duplication id of a conversation's answer: `csat:<conversation>`, so only the first
/// answer counts and a second (another button, another reply) is dropped by JetStream.
pub fn csat_msg_id(conversation: Uuid) -> String {
    format!("csat:{conversation}")
}

/// Publishes an answer built by [`csat_event`] on `sb.events.csat_received` and waits for the
/// store; a duplicate (the conversation was rated already) comes back with `duplicate` set.
pub async fn publish_csat(bus: &Bus, event: &Event) -> Result<Published, BusError> {
    let conversation = event.conversation_id.unwrap_or_default();
    bus.publish(&subjects::event(EventKind::CsatReceived.as_str()), event, &csat_msg_id(conversation)).await
}

/// What a channel checks before counting an answer: where the conversation is (so a forged
/// answer from another chat or source is refused) and who resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConversationRef {
    /// The customer's channel.
    pub channel: String,
    /// The thread the conversation is in on that channel.
    pub thread_key: String,
    /// The agent holding it; after a resolve, the agent who resolved it.
    #[serde(default)]
    pub agent: Option<String>,
}

/// A conversation as the router last stored it (KV `sb_conversations`); `None` when unknown.
pub async fn conversation_ref(bus: &Bus, conversation: Uuid) -> Result<Option<ConversationRef>, BusError> {
    let store = bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.map_err(|e| kv_error(&e))?;
    conversation_ref_in(&store, conversation).await
}

/// [`conversation_ref`] in a bucket handle the caller keeps, for callers that look up often.
pub async fn conversation_ref_in(
    store: &async_nats::jetstream::kv::Store,
    conversation: Uuid,
) -> Result<Option<ConversationRef>, BusError> {
    let value = store.get(conversation.to_string()).await.map_err(|e| kv_error(&e))?;
    // A record the router wrote but we cannot read counts as unknown rather than as an error
    // worth retrying: retrying will not make it readable.
    Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
}

fn kv_error(e: &dyn std::fmt::Display) -> BusError {
    BusError::Kv { bucket: buckets::CONVERSATIONS.into(), source: e.to_string().into() }
}
