//! A conversation as the router stores it (KV `sb_conversations`) and shows it to agents.

use serde::{Deserialize, Serialize};
use switchboard_core::agent::HistoryEntry;
use switchboard_core::{Customer, Priority, Tier};
use uuid::Uuid;

/// How many history entries a record keeps; older ones stay in the event stream.
pub const HISTORY_KEEP: usize = 200;

/// One conversation: who, where, its routing and its recent history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// Its id.
    pub id: Uuid,
    /// The customer's channel.
    pub channel: String,
    /// The customer as the channel knows them.
    pub customer: Customer,
    /// The person key linking the customer's identities across channels (e.g. `email:a@b.c`).
    pub person: String,
    /// The channel thread replies go to.
    pub thread_key: String,
    /// Subject of the first message, when the channel has subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Provider id of the customer's latest message, for threading replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_provider_message_id: Option<String>,
    /// `queued`, `offered`, `assigned`, `resolved` or `bot`.
    pub state: String,
    /// The agent holding (or being offered) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Team it is routed to.
    pub team: String,
    /// Tier it is routed at.
    pub tier: Tier,
    /// Priority.
    pub priority: Priority,
    /// First-response deadline, ms since the epoch.
    pub sla_deadline: i64,
    /// When it was opened, ms since the epoch.
    pub opened_at: i64,
    /// Whether it is a repeat contact.
    pub repeat: bool,
    /// When the current offer was made, ms since the epoch (what the customer wrote since then
    /// goes with the `assigned` update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<i64>,
    /// Recent history, oldest first (at most [`HISTORY_KEEP`]).
    pub history: Vec<HistoryEntry>,
}

impl ConversationRecord {
    /// Appends to the history, dropping the oldest beyond [`HISTORY_KEEP`].
    pub fn push(&mut self, entry: HistoryEntry) {
        self.history.push(entry);
        if self.history.len() > HISTORY_KEEP {
            let extra = self.history.len() - HISTORY_KEEP;
            self.history.drain(..extra);
        }
    }
}

/// One waiting conversation in the queue view (`GET /v1/queue`), oldest first within a priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// The conversation.
    pub conversation_id: Uuid,
    /// Its channel.
    pub channel: String,
    /// Team.
    pub team: String,
    /// Tier.
    pub tier: Tier,
    /// Priority.
    pub priority: Priority,
    /// Waiting since, ms since the epoch.
    pub waiting_since: i64,
    /// First-response deadline, ms since the epoch.
    pub sla_deadline: i64,
    /// Seconds left until the deadline (negative: breached).
    pub sla_left_secs: i64,
}
