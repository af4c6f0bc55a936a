//! The engine's state: agents, conversations, queues, timers. Serialisable as a whole, so the
//! service can persist a snapshot and restore it exactly.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentStatus, Priority, Tier};

use crate::model::{ConversationId, Ms};

/// Index of an agent in [`State::agents`].
pub type AgentIx = u32;
/// Index of a conversation slot in [`State::convs`].
pub type ConvIx = u32;

/// One agent's live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Team indices.
    pub teams: Vec<u16>,
    /// Tier bitmask: bit `n` set means tier `Ln`.
    pub tiers: u8,
    /// Skill level by skill index (0 = does not have it).
    pub skills: Vec<u8>,
    /// Capacity by channel-kind index (`None` = use `default_capacity`).
    pub capacity: Vec<Option<u32>>,
    /// Capacity for kinds without an entry.
    pub default_capacity: u32,
    /// Total cap.
    pub max_total: u32,
    /// Availability.
    pub status: AgentStatus,
    /// Open conversations (offered or assigned) by channel-kind index.
    pub load: Vec<u32>,
    /// Open conversations in total.
    pub total: u32,
    /// When the agent last got a conversation (longest idle = smallest).
    pub last_assigned: Ms,
    /// Round-robin turn: the global sequence number of the agent's last conversation.
    pub rr_seq: u64,
    /// Offers timed out in a row.
    pub missed: u32,
}

impl Agent {
    /// Capacity for a channel kind.
    pub fn capacity_for(&self, kind: u16) -> u32 {
        self.capacity.get(kind as usize).copied().flatten().unwrap_or(self.default_capacity)
    }

    /// Open conversations of a channel kind.
    pub fn load_for(&self, kind: u16) -> u32 {
        self.load.get(kind as usize).copied().unwrap_or(0)
    }

    /// Whether the agent takes new work at all (online and under the total cap).
    pub fn available(&self) -> bool {
        self.status == AgentStatus::Online && self.total < self.max_total
    }

    /// Whether the agent works at `tier`.
    pub fn has_tier(&self, tiers: u8) -> bool {
        self.tiers & tiers != 0
    }
}

/// Where a conversation is: exactly one of these at any time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConvState {
    /// Answered by the L0 bot; not in a human queue.
    Bot,
    /// Waiting in its team's queue.
    Queued,
    /// Offered to an agent until `deadline`.
    Offered {
        /// The agent.
        agent: AgentIx,
        /// When the offer lapses.
        deadline: Ms,
        /// Which offer, so a stale timeout is ignored.
        offer: u64,
    },
    /// Held by an agent.
    Assigned {
        /// The agent.
        agent: AgentIx,
    },
    /// Closed at `at`.
    Resolved {
        /// When.
        at: Ms,
    },
}

/// One conversation's live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    /// Its id.
    pub id: ConversationId,
    /// Customer key.
    pub customer: String,
    /// Channel-kind index.
    pub kind: u16,
    /// Team index.
    pub team: u16,
    /// Tier it is routed at.
    pub tier: Tier,
    /// Tiers that may take it (grows with "add next tier" escalation).
    pub tiers: u8,
    /// Priority.
    pub priority: Priority,
    /// Required skills: (skill index, minimum level).
    pub skills: Vec<(u16, u8)>,
    /// Where it is.
    pub state: ConvState,
    /// When it was opened (or reopened).
    pub opened_at: Ms,
    /// Since when it waits for a human: drives aging, the queue order and escalation steps.
    pub waiting_since: Ms,
    /// Its key in the team queue (see [`queue_key`]).
    pub queue_key: i64,
    /// Tie-breaker in queues, from a global sequence.
    pub seq: u64,
    /// Incremented on every (re)queueing, so stale escalation and sticky timers are ignored.
    pub epoch: u32,
    /// First-response deadline.
    pub sla_deadline: Ms,
    /// When an agent first replied.
    pub first_response: Option<Ms>,
    /// Whether the SLA breach was already reported.
    pub sla_breached: bool,
    /// The agent who last held it (sticky routing, `conversation.previous_agent`).
    pub previous_agent: Option<AgentIx>,
    /// Only this agent may take it until the time given.
    pub sticky: Option<(AgentIx, Ms)>,
    /// Agents who declined it or let the offer lapse; not offered again.
    pub declined: Vec<AgentIx>,
    /// Time-based escalation steps taken.
    pub steps_taken: u8,
    /// Whether it is a repeat contact.
    pub repeat: bool,
    /// Rules that matched when it was routed (indices), for explanations.
    pub matched_rules: Vec<u16>,
}

impl Conv {
    /// The agent holding or being offered it.
    pub fn holder(&self) -> Option<AgentIx> {
        match self.state {
            ConvState::Offered { agent, .. } | ConvState::Assigned { agent } => Some(agent),
            _ => None,
        }
    }
}

/// A customer's memory across conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerRec {
    /// The latest conversation, while it can still be reopened.
    pub last_conv: Option<ConvIx>,
    /// The agent who last held one of the customer's conversations.
    pub last_agent: Option<AgentIx>,
}

/// A timer, due at a time; ordered so that equal times fire in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// An offer lapses.
    OfferTimeout {
        /// The conversation.
        conv: ConvIx,
        /// Which offer.
        offer: u64,
    },
    /// The first-response deadline.
    Sla {
        /// The conversation.
        conv: ConvIx,
    },
    /// The next time-based escalation step.
    Escalation {
        /// The conversation.
        conv: ConvIx,
        /// Which queueing.
        epoch: u32,
    },
    /// The sticky wait ends.
    StickyEnd {
        /// The conversation.
        conv: ConvIx,
        /// Which queueing.
        epoch: u32,
    },
    /// The reopen window closed: the conversation can be forgotten.
    Forget {
        /// The conversation.
        conv: ConvIx,
        /// Resolution time, so a reopened-and-resolved-again conversation is not forgotten early.
        resolved_at: Ms,
    },
}

/// The whole mutable state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Latest time seen.
    pub now: Ms,
    /// Global sequence for tie-breaking and round robin.
    pub seq: u64,
    /// Channel kinds seen, by index.
    pub kinds: Vec<String>,
    /// Agents by index.
    pub agents: Vec<Agent>,
    /// Conversation slots; `None` is a free slot.
    pub convs: Vec<Option<Conv>>,
    /// Free slots.
    pub free: Vec<ConvIx>,
    /// Customers by key.
    pub customers: HashMap<String, CustomerRec>,
    /// Queues by team index: (queue key, seq, conversation).
    pub queues: Vec<BTreeSet<(i64, u64, ConvIx)>>,
    /// Available agents by team index, ordered by the team strategy's key.
    pub available: Vec<BTreeSet<(i64, i64, AgentIx)>>,
    /// Pending timers.
    pub timers: BTreeSet<(Ms, u64, Timer)>,
    /// Conversation index by id.
    pub conv_ix: HashMap<ConversationId, ConvIx>,
}

/// The queue key: priority points converted to waiting time, so that ordering by key is
/// "priority, then age" with linear aging, and the order never changes while both wait.
pub fn queue_key(priority: Priority, waiting_since: Ms, aging_ms: i64) -> i64 {
    i64::from(priority.0) * aging_ms + waiting_since
}
