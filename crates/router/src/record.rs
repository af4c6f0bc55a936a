//! A conversation as the router stores it (KV `sb_conversations`) and shows it to agents: the
//! record is part of the public contract, so it lives in `switchboard_core::record`; the queue
//! view is the router's own.

use serde::{Deserialize, Serialize};
pub use switchboard_core::record::{ConversationRecord, HISTORY_KEEP};
use switchboard_core::{Priority, Tier};
use uuid::Uuid;

/// One waiting conversation in the queue view (`GET /v1/queue`), oldest first within a priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// The conversation.
    pub conversation_id: Uuid,
    /// Its short code (`K4F2`), as agents see it.
    #[serde(default)]
    pub code: String,
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
