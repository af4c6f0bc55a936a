//! What goes into the engine (inputs) and what comes out (decisions).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentStatus, Priority, SupervisorOp, Tier};
use uuid::Uuid;

/// Time in milliseconds since the Unix epoch; the engine has no clock of its own.
pub type Ms = i64;

/// A conversation's id (UUIDv7, chosen by the caller so that the engine stays deterministic).
pub type ConversationId = Uuid;

/// What a customer's message says, as far as routing cares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// Channel name, also the capacity kind (`webchat`, `email`, `telegram`, `webhook`).
    pub channel: String,
    /// Message text.
    pub text: String,
    /// Subject, where the channel has one.
    pub subject: Option<String>,
    /// Customer tags from the customer's system.
    pub tags: Vec<String>,
    /// Customer language.
    pub language: Option<String>,
    /// A VIP customer.
    pub vip: bool,
    /// Channel metadata.
    pub metadata: BTreeMap<String, String>,
    /// The knowledge base's answers above the score, one item per article: the team the article
    /// is limited to, `None` for any team. Empty when it has none (or was not asked): the L0
    /// bot then stays silent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kb_answers: Vec<Option<String>>,
}

/// An event the engine reacts to. Every input carries the time it happened; timers that fall due
/// up to that time fire first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A customer wrote. `customer` identifies them across conversations (a linked identity or a
    /// channel-scoped id); `new_id` is used if this opens a new conversation.
    CustomerMessage {
        /// When.
        at: Ms,
        /// Who.
        customer: String,
        /// Id for a new conversation.
        new_id: ConversationId,
        /// What.
        message: MessageInfo,
        /// When the customer wrote it, by the channel (`received_at`): a new or reopened
        /// contact starts then, so its SLA deadline and first response time run on the
        /// customer's clock, not the router's (which is later after an outage or a backlog).
        #[serde(default)]
        written_at: Option<Ms>,
    },
    /// An agent's status changed.
    AgentStatus {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// New status.
        status: AgentStatus,
    },
    /// An agent's capacity changed.
    AgentCapacity {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// Per channel kind.
        capacity: BTreeMap<String, u32>,
        /// In total.
        max_total: u32,
    },
    /// An agent accepted an offer.
    Accept {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// The conversation.
        conversation: ConversationId,
    },
    /// An agent declined an offer.
    Decline {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// The conversation.
        conversation: ConversationId,
    },
    /// An agent replied to the customer (stops the first-response clock).
    AgentReplied {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// The conversation.
        conversation: ConversationId,
    },
    /// An agent hands a conversation to another agent or team.
    Transfer {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// The conversation.
        conversation: ConversationId,
        /// Target agent.
        to_agent: Option<String>,
        /// Target team.
        to_team: Option<String>,
        /// Note for the next agent.
        note: Option<String>,
    },
    /// An agent moves a conversation up a tier.
    Escalate {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// The conversation.
        conversation: ConversationId,
        /// Target tier; the next one up when absent.
        tier: Option<Tier>,
        /// Note.
        note: Option<String>,
    },
    /// An agent (or the system, with `agent` empty) resolved a conversation.
    Resolve {
        /// When.
        at: Ms,
        /// Agent id.
        agent: String,
        /// The conversation.
        conversation: ConversationId,
    },
    /// A supervisor changes a conversation whatever its state (waiting, offered, held, or
    /// with the L0 bot): transfers, escalates, reprioritises or resolves it.
    Supervise {
        /// When.
        at: Ms,
        /// The supervisor's name (need not be an agent).
        supervisor: String,
        /// The conversation.
        conversation: ConversationId,
        /// What to change.
        op: SupervisorOp,
        /// Why, for the next agent.
        note: Option<String>,
    },
    /// An agent is added, or an added one redefined (teams, tiers, skills, capacity), at runtime.
    DefineAgent {
        /// When.
        at: Ms,
        /// The definition.
        agent: Box<crate::config::AgentConfig>,
        /// Keep a known agent's current status instead of the definition's.
        keep_status: bool,
    },
    /// Time advanced: fire due timers.
    Tick {
        /// Now.
        at: Ms,
    },
}

impl Input {
    /// When the input happened.
    pub fn at(&self) -> Ms {
        match self {
            Input::CustomerMessage { at, .. }
            | Input::AgentStatus { at, .. }
            | Input::AgentCapacity { at, .. }
            | Input::Accept { at, .. }
            | Input::Decline { at, .. }
            | Input::AgentReplied { at, .. }
            | Input::Transfer { at, .. }
            | Input::Escalate { at, .. }
            | Input::Resolve { at, .. }
            | Input::Supervise { at, .. }
            | Input::DefineAgent { at, .. }
            | Input::Tick { at } => *at,
        }
    }
}

/// Why an automatic reply was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoReplyReason {
    /// A rule asked for it (L0 / FAQ).
    Rule,
    /// The team is closed; the text names the next opening.
    OutOfHours,
}

/// Why a conversation escalated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EscalationCause {
    /// A time-based step: required skill levels lowered.
    SkillsRelaxed,
    /// A time-based step: the next tier up may take it.
    TierAdded,
    /// A time-based step: moved to another team.
    Overflow,
    /// An agent escalated it, with a note.
    Agent,
    /// The customer asked for a human at L0.
    HumanRequested,
    /// A supervisor escalated it, maybe with a note.
    Supervisor,
}

/// What the engine decided; the service turns these into bus messages and events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    /// A new conversation was opened (`repeat`: the customer had one resolved before).
    Opened {
        /// The conversation.
        conversation: ConversationId,
        /// Whether this customer had a previous conversation.
        repeat: bool,
    },
    /// A resolved conversation was reopened by the customer (a repeat contact).
    Reopened {
        /// The conversation.
        conversation: ConversationId,
    },
    /// The conversation waits in a team's queue.
    Queued {
        /// The conversation.
        conversation: ConversationId,
        /// Team.
        team: String,
        /// Tier.
        tier: Tier,
        /// Priority.
        priority: Priority,
        /// First-response deadline.
        sla_deadline: Ms,
    },
    /// Send an automatic reply to the customer.
    AutoReply {
        /// The conversation.
        conversation: ConversationId,
        /// The text.
        text: String,
        /// Why.
        reason: AutoReplyReason,
    },
    /// The L0 bot answers the customer from the knowledge base (the answers that came with the
    /// message, limited to `team`) and waits for a yes or no.
    KbAnswer {
        /// The conversation.
        conversation: ConversationId,
        /// Its team, whose articles may be shown.
        team: String,
    },
    /// Offer the conversation to an agent until `deadline`.
    Offer {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: String,
        /// When the offer lapses.
        deadline: Ms,
    },
    /// An offer lapsed unanswered.
    OfferTimedOut {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: String,
    },
    /// An offer was withdrawn (the agent went offline, the conversation moved).
    OfferWithdrawn {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: String,
    },
    /// The conversation is the agent's.
    Assigned {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: String,
    },
    /// The customer wrote again in a conversation an agent holds or is being offered: deliver
    /// it to them.
    DeliverToAgent {
        /// The conversation.
        conversation: ConversationId,
        /// The agent.
        agent: String,
    },
    /// The first agent reply came (`within_sla` tells whether before the deadline).
    FirstResponse {
        /// The conversation.
        conversation: ConversationId,
        /// Whether before the SLA deadline.
        within_sla: bool,
    },
    /// The conversation moved up (tier, skills relaxed, overflow, agent escalation, hand-off).
    Escalated {
        /// The conversation.
        conversation: ConversationId,
        /// Why.
        cause: EscalationCause,
        /// Tier now.
        tier: Tier,
        /// Team now.
        team: String,
        /// Note, when an agent gave one.
        note: Option<String>,
    },
    /// The conversation was transferred.
    Transferred {
        /// The conversation.
        conversation: ConversationId,
        /// The agent who held it (the one transferring it, or the one a supervisor took it
        /// from); `None` when a supervisor moved a conversation nobody held.
        from_agent: Option<String>,
        /// To which agent, if one.
        to_agent: Option<String>,
        /// To which team now.
        team: String,
        /// Note.
        note: Option<String>,
    },
    /// A supervisor changed the conversation's priority; a waiting one moved to its new place
    /// in the queue (its waiting time kept).
    PriorityChanged {
        /// The conversation.
        conversation: ConversationId,
        /// The priority before.
        from: Priority,
        /// The priority now.
        to: Priority,
    },
    /// The first-response deadline passed without a reply.
    SlaBreached {
        /// The conversation.
        conversation: ConversationId,
    },
    /// The conversation was resolved.
    Resolved {
        /// The conversation.
        conversation: ConversationId,
        /// The agent who held it, if any.
        agent: Option<String>,
    },
    /// An agent's status was changed by the engine (e.g. away after missed offers).
    AgentStatusChanged {
        /// The agent.
        agent: String,
        /// New status.
        status: AgentStatus,
        /// Why.
        reason: String,
    },
    /// An input was refused (e.g. accepting an offer that is not yours); nothing changed.
    Rejected {
        /// The conversation concerned, if any.
        conversation: Option<ConversationId>,
        /// The agent concerned, if any.
        agent: Option<String>,
        /// Why.
        reason: String,
    },
}

impl Decision {
    /// The conversation the decision changes, if any (a rejection changes nothing).
    pub fn conversation(&self) -> Option<ConversationId> {
        match self {
            Decision::Opened { conversation, .. }
            | Decision::Reopened { conversation }
            | Decision::Queued { conversation, .. }
            | Decision::AutoReply { conversation, .. }
            | Decision::KbAnswer { conversation, .. }
            | Decision::Offer { conversation, .. }
            | Decision::OfferTimedOut { conversation, .. }
            | Decision::OfferWithdrawn { conversation, .. }
            | Decision::Assigned { conversation, .. }
            | Decision::DeliverToAgent { conversation, .. }
            | Decision::FirstResponse { conversation, .. }
            | Decision::Escalated { conversation, .. }
            | Decision::Transferred { conversation, .. }
            | Decision::PriorityChanged { conversation, .. }
            | Decision::SlaBreached { conversation }
            | Decision::Resolved { conversation, .. } => Some(*conversation),
            Decision::AgentStatusChanged { .. } | Decision::Rejected { .. } => None,
        }
    }
}
