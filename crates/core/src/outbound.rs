//! `outbound/1`: one message to a customer, on the channel the customer used.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{AttachmentRef, MAX_TEXT_BYTES};
use crate::validate::{max_len, non_empty, token};
use crate::{Contract, ValidationError};

/// A message to a customer, published on `sb.out.<channel>` and sent by that channel's adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "outbound/1")]
pub struct OutboundMessage {
    /// Id of this outbound message (UUIDv7); also its de-duplication id and the receiver's id.
    pub id: Uuid,
    /// The conversation this message belongs to.
    pub conversation_id: Uuid,
    /// The channel to send on.
    pub channel: String,
    /// Where on that channel: the customer's channel-scoped id and thread.
    pub to: ChannelAddress,
    /// Plain-text body.
    pub text: String,
    /// Subject line, for channels that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Attachments from the object store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    /// The provider message id this one answers, so it threads on the customer's side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Who wrote it: an agent's reply, an automatic reply, or a system notice.
    pub kind: OutboundKind,
    /// Agent id when an agent wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// When the message was created.
    pub created_at: DateTime<Utc>,
    /// Channel-specific extras (e.g. the webhook source to deliver to).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// A customer's address on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAddress {
    /// Channel-scoped customer id, as in the envelope.
    pub customer_id: String,
    /// The thread key the customer wrote in.
    pub thread_key: String,
}

/// Who produced an outbound message; channels mark automatic ones (e.g. `Auto-Submitted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboundKind {
    /// Written by an agent.
    AgentReply,
    /// Produced by a rule (L0, out of hours).
    AutoReply,
    /// A notice from Switchboard itself (e.g. a CSAT question).
    System,
}

impl Contract for OutboundMessage {
    const SCHEMA: &'static str = "outbound/1";

    fn validate(&self) -> Result<(), ValidationError> {
        token("channel", &self.channel)?;
        non_empty("to.customer_id", &self.to.customer_id)?;
        non_empty("to.thread_key", &self.to.thread_key)?;
        max_len("text", &self.text, MAX_TEXT_BYTES)?;
        if self.text.trim().is_empty() && self.attachments.is_empty() {
            return Err(ValidationError::new("text", "must not be empty when there are no attachments"));
        }
        if self.kind == OutboundKind::AgentReply && self.agent_id.is_none() {
            return Err(ValidationError::new("agent_id", "is required for an agent reply"));
        }
        Ok(())
    }
}
