//! `event/1`: the audit log and the only input of metrics, on `sb.events.<kind>`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Contract, ValidationError};

/// Something that happened to a conversation, an agent or a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "event/1")]
pub struct Event {
    /// Event id (UUIDv7); also its de-duplication id.
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened; also the last subject token.
    pub kind: EventKind,
    /// The conversation concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    /// The agent concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The channel concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Kind-specific details.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// The kinds of event; each is published on `sb.events.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A customer message was received and stored.
    MessageReceived,
    /// A delivery to a customer or agent failed for good and was dead-lettered.
    DeliveryFailed,
    /// A conversation was opened.
    ConversationOpened,
    /// A resolved conversation was reopened by the customer (a repeat contact).
    ConversationReopened,
    /// A conversation was offered to an agent.
    Offered,
    /// An agent declined an offer.
    OfferDeclined,
    /// An offer lapsed.
    OfferTimedOut,
    /// A conversation was assigned to an agent.
    Assigned,
    /// An agent replied to the customer.
    AgentReplied,
    /// An automatic reply was sent.
    AutoReplied,
    /// A conversation moved to another agent or team.
    Transferred,
    /// A conversation moved to a higher tier.
    Escalated,
    /// A conversation was resolved.
    Resolved,
    /// The first-response deadline passed.
    SlaBreached,
    /// A customer answered the CSAT survey (`data.score`, 1-5).
    CsatReceived,
    /// A customer answered the NPS survey (`data.score`, 0-10).
    NpsReceived,
    /// A customer answered the CES survey (`data.score`, 1-7).
    CesReceived,
    /// An agent's status changed.
    AgentStatusChanged,
    /// A customer edited a message they had sent (recorded, not a new contact).
    MessageEdited,
    /// A customer blocked (or unblocked) the channel's bot or account; `data.blocked` says which.
    CustomerBlocked,
    /// An inbound item that concerns a conversation was deliberately not routed (an auto-reply,
    /// a bounce, list mail, a message kind the channel cannot carry) or was dead-lettered;
    /// `data.outcome` is `not_routed` or `dead_letter`, `data.reason` says why.
    MessageNotRouted,
    /// An operator erased a person's data (`switchboard customers forget`); `data` holds only
    /// counts, who asked and a reference for the request, never who was erased.
    CustomerForgotten,
    /// A supervisor changed a conversation's priority (`data.from`, `data.to`,
    /// `data.by_supervisor`); a waiting one took its new place in the queue.
    PriorityChanged,
    /// A channel heard what became of a message it sent to a customer: `data.status` is `sent`,
    /// `delivered` or `read` (a failure is `delivery_failed`), `data.provider_message_id` the
    /// provider's id of it and `data.outbound_id` the `outbound/1` it carried, where known.
    MessageStatus,
}

impl EventKind {
    /// The subject token of this kind, e.g. `message_received`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageReceived => "message_received",
            EventKind::DeliveryFailed => "delivery_failed",
            EventKind::ConversationOpened => "conversation_opened",
            EventKind::ConversationReopened => "conversation_reopened",
            EventKind::Offered => "offered",
            EventKind::OfferDeclined => "offer_declined",
            EventKind::OfferTimedOut => "offer_timed_out",
            EventKind::Assigned => "assigned",
            EventKind::AgentReplied => "agent_replied",
            EventKind::AutoReplied => "auto_replied",
            EventKind::Transferred => "transferred",
            EventKind::Escalated => "escalated",
            EventKind::Resolved => "resolved",
            EventKind::SlaBreached => "sla_breached",
            EventKind::CsatReceived => "csat_received",
            EventKind::NpsReceived => "nps_received",
            EventKind::CesReceived => "ces_received",
            EventKind::AgentStatusChanged => "agent_status_changed",
            EventKind::MessageEdited => "message_edited",
            EventKind::CustomerBlocked => "customer_blocked",
            EventKind::MessageNotRouted => "message_not_routed",
            EventKind::CustomerForgotten => "customer_forgotten",
            EventKind::PriorityChanged => "priority_changed",
            EventKind::MessageStatus => "message_status",
        }
    }
}

impl Contract for Event {
    const SCHEMA: &'static str = "event/1";

    fn validate(&self) -> Result<(), ValidationError> {
        if self.id.get_version_num() != 7 {
            return Err(ValidationError::new("id", "must be a UUIDv7"));
        }
        Ok(())
    }
}
