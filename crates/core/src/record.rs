//! A conversation as the router stores it in KV `sb_conversations` (key: the conversation id)
//! and the agent API shows it (`GET /v1/conversations/{id}`).
//!
//! Part of the public contract (`docs/schema/conversation-record.v1.json`, `docs/contract.md`,
//! "The conversation record"): channels read it to find a conversation's thread and agent. It
//! carries no `Sb-Schema` header (a KV value is not a bus message); readers ignore fields they do
//! not know, and the router is its only writer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::agent::HistoryEntry;
use crate::{Customer, Priority, SurveyKind, Tier};

/// How many history entries a record keeps; older ones stay in the event stream.
pub const HISTORY_KEEP: usize = 200;

/// One conversation: who, where, its routing and its recent history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "conversation record (KV sb_conversations)")]
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
    /// The agent holding it or being offered it; once resolved, the agent who resolved it (the
    /// satisfaction survey's answer names that agent); absent while it waits.
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
    /// How often the customer reopened it after it was resolved.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopens: u32,
    /// When the current offer was made, ms since the epoch (what the customer wrote since then
    /// goes with the `assigned` update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<i64>,
    /// The survey the customer was last asked about this conversation (on its resolve); an
    /// answer to another survey or off this one's scale is refused. Absent when none was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyKind>,
    /// Recent history, oldest first (at most [`HISTORY_KEEP`], 200 entries).
    pub history: Vec<HistoryEntry>,
    /// Its place in line and expected wait while it waits for an agent; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueInfo>,
    /// What the L0 bot answered from the knowledge base and how that ended; absent when it
    /// did not answer (see `docs/kb.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l0: Option<L0Info>,
}

/// The L0 bot's knowledge-base answer in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct L0Info {
    /// The articles shown, best first.
    pub articles: Vec<L0Article>,
    /// How it ended: `pending` (waiting for the customer's yes or no), `helped` (the customer
    /// said yes: resolved at L0), `handed_off` (no, a human asked for, or another question: on
    /// to L1), `no_reply` (the customer said nothing before `routing.l0_timeout_secs`).
    pub outcome: String,
    /// When the answer was sent, ms since the epoch.
    pub at: i64,
}

/// One article the L0 bot showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct L0Article {
    /// The article's `id`.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its search score (BM25) for the customer's question.
    pub score: f32,
}

/// Where a waiting conversation stands, as the router last computed it (see `docs/queue.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueInfo {
    /// Place in line among the conversations the same agents could take, 1 = next.
    pub position: u32,
    /// Expected wait in seconds; absent when no agent who could take it is online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_secs: Option<u64>,
    /// Agents online who could take it (whatever their load).
    pub agents_online: u32,
    /// When the team opens, ms since the epoch, while it is closed (business hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<i64>,
    /// When this was computed, ms since the epoch.
    pub at: i64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
