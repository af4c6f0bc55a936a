//! What goes to agents (`offer/1`, `message/1`, `update/1`) and what comes back (`command/1`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{AgentStatus, Priority, SkillRequirement, Tier};
use crate::envelope::{AttachmentRef, Customer, MAX_TEXT_BYTES};
use crate::validate::{max_len, non_empty, token, whole};
use crate::{Contract, ValidationError};

/// Any delivery to an agent endpoint on `sb.agent.out.<endpoint-kind>`; the variant's schema id
/// is the `Sb-Schema` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentDelivery {
    /// `offer/1`: a conversation offered to the agent, to accept or decline before a deadline.
    Offer(Box<Offer>),
    /// `message/1`: a new customer message in a conversation the agent holds.
    Message(AgentMessage),
    /// `update/1`: a change to a conversation the agent holds or was offered.
    Update(ConversationUpdate),
}

/// A conversation offered to one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// Id of this delivery.
    pub id: Uuid,
    /// The agent the offer is for.
    pub agent_id: String,
    /// The conversation offered.
    pub conversation_id: Uuid,
    /// The customer's channel.
    pub channel: String,
    /// The customer.
    pub customer: Customer,
    /// Subject, where the conversation has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Routing priority.
    pub priority: Priority,
    /// Tier the conversation is routed at.
    pub tier: Tier,
    /// Skills the conversation requires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<SkillRequirement>,
    /// First-response deadline (SLA).
    pub sla_deadline: DateTime<Utc>,
    /// The offer lapses at this time and goes to the next agent.
    pub offer_deadline: DateTime<Utc>,
    /// History so far, oldest first, so nobody asks twice.
    pub history: Vec<HistoryEntry>,
    /// Commands the agent may answer with, e.g. `accept`, `decline`.
    pub actions: Vec<String>,
    /// The conversation's short code (e.g. `K4F2`, shown as `#K4F2`): distinct among the router
    /// group's live conversations, so an agent can tell conversations apart at a glance.
    #[serde(default)]
    pub code: String,
    /// Set when the conversation was resolved and the customer wrote again (reopened).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reopened: bool,
    /// Names of saved replies (`kind: reply` in the knowledge base) that match the customer's
    /// question, best first, for the agent to send with `template`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggested_replies: Vec<String>,
}

/// A new customer message in a conversation the agent holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentMessage {
    /// Id of this delivery.
    pub id: Uuid,
    /// The agent holding the conversation.
    pub agent_id: String,
    /// The conversation.
    pub conversation_id: Uuid,
    /// The conversation's short code (see [`Offer::code`]).
    #[serde(default)]
    pub code: String,
    /// The customer's display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The customer's channel.
    #[serde(default)]
    pub channel: String,
    /// The new entry.
    pub entry: HistoryEntry,
}

/// A change to a conversation an agent holds or was offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationUpdate {
    /// Id of this delivery.
    pub id: Uuid,
    /// The agent told.
    pub agent_id: String,
    /// The conversation.
    pub conversation_id: Uuid,
    /// The conversation's short code (see [`Offer::code`]).
    #[serde(default)]
    pub code: String,
    /// The customer's display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The customer's channel.
    #[serde(default)]
    pub channel: String,
    /// What changed, e.g. `assigned`, `offer_withdrawn`, `declined`, `transferred`, `resolved`,
    /// `delivery_failed` (a reply did not reach the customer: the reason is the `note`, the
    /// reply the one entry of `history`; the conversation stays assigned) or `message_edited`
    /// (the customer edited a message: the new text is the one entry of `history`).
    pub change: String,
    /// A note that came with the change (e.g. a transfer note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the customer wrote since the offer was made, oldest first (with `assigned` after
    /// an offer), so the agent who accepts has it with the acceptance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// One entry of a conversation's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Who wrote it.
    pub from: Author,
    /// Agent id or customer display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The text.
    pub text: String,
    /// The `outbound/1` id of the message that carried this entry to the customer (agent
    /// replies and auto-replies), by which a `delivery_failed` event finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_id: Option<Uuid>,
    /// Set when the entry could not be delivered to the customer (the channel gave up, or the
    /// mail bounced): why. Absent while delivered or still on its way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undelivered: Option<String>,
    /// Files that came with the entry (in the `sb_attachments` object store).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
}

impl HistoryEntry {
    /// An entry with no delivery information (what the customer wrote, notes).
    pub fn new(at: DateTime<Utc>, from: Author, author: Option<String>, text: String) -> HistoryEntry {
        HistoryEntry { at, from, author, text, outbound_id: None, undelivered: None, attachments: Vec::new() }
    }

    /// Who wrote it, for people: the author's name, or the kind of author.
    pub fn author_label(&self) -> String {
        match self.from {
            Author::Customer => self.author.clone().unwrap_or_else(|| "Customer".into()),
            Author::Agent => self.author.clone().unwrap_or_else(|| "Agent".into()),
            Author::Note => format!("Note by {}", self.author.as_deref().unwrap_or("system")),
            Author::System => "Switchboard".into(),
        }
    }
}

/// Who wrote a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    /// The customer.
    Customer,
    /// An agent, to the customer.
    Agent,
    /// An agent's internal note, never shown to the customer.
    Note,
    /// Switchboard (auto-replies, notices).
    System,
}

/// `command/1`: what an agent (or an integration acting for one) asks, on `sb.agent.in`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "command/1")]
#[schemars(extend("anyOf" = [
    { "properties": { "action": { "properties": { "type": { "enum": AGENT_ACTIONS } } } } },
    { "required": ["conversation_id"], "properties": { "conversation_id": { "type": "string" } } }
]))]
pub struct AgentCommand {
    /// Client-chosen id; a repeated id is the same command and acts once.
    pub id: Uuid,
    /// The agent issuing the command (not blank).
    #[schemars(regex(pattern = r"\S"))]
    pub agent_id: String,
    /// The conversation it concerns; absent only for `set_status`, `set_capacity` and `define_agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    /// When the agent issued it.
    pub issued_at: DateTime<Utc>,
    /// What to do.
    pub action: CommandAction,
}

/// The action of an agent command.
// Deserialised through the `Deserialize` impl below (`remote = "Self"` keeps the derived one as
// an inherent function): serde ignores extra fields next to the tag of a field-less variant
// (`{"type":"resolve","reason":"…"}`) even with `deny_unknown_fields`, which the schema forbids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields, remote = "Self")]
pub enum CommandAction {
    /// Take an offered conversation.
    Accept,
    /// Refuse an offered conversation.
    Decline {
        /// Why, for the record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Answer the customer.
    #[schemars(extend("anyOf" = [
        { "required": ["text"], "properties": { "text": { "pattern": "\\S" } } },
        { "required": ["attachments"], "properties": { "attachments": { "minItems": 1 } } },
        { "required": ["template"] }
    ]))]
    Reply {
        /// The reply text (at most 262,144 bytes of UTF-8; not blank unless files are attached
        /// or `template` names a saved reply; a file's caption when there are).
        #[serde(default)]
        #[schemars(length(max = 262144))]
        text: String,
        /// Files sent with the reply (at most 10), already stored in the `sb_attachments` object
        /// store by the agent's endpoint.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(with = "Vec<ReplyFile>", length(max = 10))]
        attachments: Vec<AttachmentRef>,
        /// A saved reply (`kind: reply` in the knowledge base) to send instead of `text`, by
        /// name: the router fills in its variables (`{customer.name}`, `{agent.name}`,
        /// `{conversation.code}`); an unknown name is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = r"\S"), length(max = 128))]
        template: Option<String>,
    },
    /// Add an internal note.
    Note {
        /// The note text (not blank, at most 262,144 bytes of UTF-8).
        #[schemars(regex(pattern = r"\S"), length(max = 262144))]
        text: String,
    },
    /// Hand over to another agent or team, with a note.
    #[schemars(extend("anyOf" = [
        { "required": ["to_agent"], "properties": { "to_agent": { "type": "string" } } },
        { "required": ["to_team"], "properties": { "to_team": { "type": "string" } } }
    ]))]
    Transfer {
        /// Target agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_agent: Option<String>,
        /// Target team.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_team: Option<String>,
        /// Note for the next agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Move to a higher tier.
    Escalate {
        /// Target tier; the next one up when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<Tier>,
        /// Note for the next tier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Close the conversation.
    Resolve,
    /// Change the agent's own status.
    SetStatus {
        /// The new status.
        status: AgentStatus,
    },
    /// Change how much the agent takes at once (e.g. fewer chats while training).
    SetCapacity {
        /// Concurrent conversations per channel kind, e.g. `{"webchat": 2, "email": 8}`.
        #[serde(default, deserialize_with = "whole::map_u32")]
        #[schemars(extend("propertyNames" = { "pattern": TOKEN_PATTERN }, "additionalProperties" = { "type": "integer", "format": "uint32", "minimum": 0, "maximum": 4294967295_u32 }))]
        capacity: std::collections::BTreeMap<String, u32>,
        /// Concurrent conversations in total (at least 1; set status `away` to take none).
        #[serde(deserialize_with = "whole::u32")]
        #[schemars(range(min = 1, max = 4294967295_u32))]
        max_total: u32,
    },
    /// Add an agent, or change one that was added this way (agents from the configuration
    /// file are changed in the file). Sent by an administrator, not by the agent.
    DefineAgent {
        /// Display name, shown to customers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Teams the agent works for (configured teams; at least one).
        #[schemars(length(min = 1))]
        teams: Vec<String>,
        /// Tiers the agent works at (at least one).
        #[schemars(length(min = 1))]
        tiers: Vec<Tier>,
        /// Skills as `name:level` (level 1-5), e.g. `billing:3`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skills: Vec<String>,
        /// Concurrent conversations per channel kind.
        #[serde(
            default,
            skip_serializing_if = "std::collections::BTreeMap::is_empty",
            deserialize_with = "whole::map_u32"
        )]
        #[schemars(extend("propertyNames" = { "pattern": TOKEN_PATTERN }, "additionalProperties" = { "type": "integer", "format": "uint32", "minimum": 0, "maximum": 4294967295_u32 }))]
        capacity: std::collections::BTreeMap<String, u32>,
        /// Capacity for channel kinds not in `capacity` (3 when absent).
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole::option_u32")]
        #[schemars(range(max = 4294967295_u32))]
        default_capacity: Option<u32>,
        /// Concurrent conversations in total (10 when absent; at least 1).
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole::option_u32")]
        #[schemars(range(min = 1, max = 4294967295_u32))]
        max_total: Option<u32>,
        /// Status to set; a new agent starts `offline` and a known one keeps its status when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<AgentStatus>,
        /// Endpoint kinds the agent's deliveries go to (`webhook`, ...); their addresses and
        /// secrets are registered with the endpoint's channel, never carried here.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(inner(regex(pattern = TOKEN_PATTERN)))]
        endpoints: Vec<String>,
    },
    /// A supervisor's change to a conversation in any state (waiting, offered or held), e.g.
    /// from the console: `agent_id` names the supervisor, who need not be an agent. The API
    /// sends it only for supervisor and admin tokens.
    Supervise {
        /// What to change.
        op: SupervisorOp,
        /// Why, kept in the conversation's history as a note the next agent reads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 262144))]
        note: Option<String>,
    },
}

/// What a supervisor changes about a conversation ([`CommandAction::Supervise`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SupervisorOp {
    /// Move it to another team or agent: a holder lets it go, an offer is withdrawn, and it
    /// waits for (or is reserved to) the target.
    #[schemars(extend("anyOf" = [
        { "required": ["to_agent"], "properties": { "to_agent": { "type": "string" } } },
        { "required": ["to_team"], "properties": { "to_team": { "type": "string" } } }
    ]))]
    Transfer {
        /// Target agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_agent: Option<String>,
        /// Target team.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_team: Option<String>,
    },
    /// Move it to a higher tier (the next one up when `tier` is absent).
    Escalate {
        /// Target tier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<Tier>,
    },
    /// Change its priority (1 most urgent, 100 least); its place in the queue follows.
    SetPriority {
        /// The new priority.
        priority: Priority,
    },
    /// Close it, whoever holds it (a waiting one leaves the queue).
    Resolve {},
}

/// Names used in subjects and ids (channel kinds, endpoint kinds, agent ids), as a pattern.
pub const TOKEN_PATTERN: &str = "^[a-z0-9_-]{1,64}$";

/// The actions about the agent itself, not a conversation: only they go without `conversation_id`.
pub const AGENT_ACTIONS: [&str; 3] = ["set_status", "set_capacity", "define_agent"];

/// The actions that carry no field besides `type`.
const FIELDLESS_ACTIONS: [&str; 2] = ["accept", "resolve"];

impl<'de> Deserialize<'de> for CommandAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if let Some(fields) = value.as_object()
            && let Some(kind) = fields.get("type").and_then(|t| t.as_str())
            && FIELDLESS_ACTIONS.contains(&kind)
            && let Some(extra) = fields.keys().find(|k| *k != "type")
        {
            return Err(D::Error::custom(format!("unknown field `{extra}`: `{kind}` has no fields besides `type`")));
        }
        CommandAction::deserialize(value).map_err(D::Error::custom)
    }
}

impl Serialize for CommandAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        CommandAction::serialize(self, serializer)
    }
}

impl Contract for AgentCommand {
    const SCHEMA: &'static str = "command/1";

    fn validate(&self) -> Result<(), ValidationError> {
        non_empty("agent_id", &self.agent_id)?;
        let needs_conversation = !matches!(
            self.action,
            CommandAction::SetStatus { .. } | CommandAction::SetCapacity { .. } | CommandAction::DefineAgent { .. }
        );
        if needs_conversation && self.conversation_id.is_none() {
            return Err(ValidationError::new("conversation_id", "is required for this action"));
        }
        match &self.action {
            CommandAction::Reply { text, attachments, template } => {
                match template {
                    Some(name) => {
                        non_empty("action.template", name)?;
                        max_len("action.template", name, 128)?;
                    }
                    None if attachments.is_empty() => non_empty("action.text", text)?,
                    None => {}
                }
                max_len("action.text", text, MAX_TEXT_BYTES)?;
                if attachments.len() > MAX_REPLY_ATTACHMENTS {
                    return Err(ValidationError::new("action.attachments", "at most 10 files a reply"));
                }
                for (i, a) in attachments.iter().enumerate() {
                    let field = format!("action.attachments[{i}]");
                    if a.object.is_empty() || a.skipped.is_some() {
                        return Err(ValidationError::new(&field, "names no stored file"));
                    }
                    non_empty("filename", &a.filename).map_err(|e| e.within(&field))?;
                }
            }
            CommandAction::Note { text } => {
                non_empty("action.text", text)?;
                max_len("action.text", text, MAX_TEXT_BYTES)?;
            }
            CommandAction::Transfer { to_agent: None, to_team: None, .. } => {
                return Err(ValidationError::new("action.to_agent", "a transfer needs to_agent or to_team"));
            }
            CommandAction::Supervise { op, note } => {
                if let Some(note) = note {
                    max_len("action.note", note, MAX_TEXT_BYTES)?;
                }
                match op {
                    SupervisorOp::Transfer { to_agent: None, to_team: None } => {
                        return Err(ValidationError::new("action.op.to_agent", "a transfer needs to_agent or to_team"));
                    }
                    SupervisorOp::SetPriority { priority } if !(1..=100).contains(&priority.0) => {
                        return Err(ValidationError::new("action.op.priority", "must be 1 to 100"));
                    }
                    _ => {}
                }
            }
            CommandAction::SetCapacity { capacity, max_total } => {
                if *max_total == 0 {
                    return Err(ValidationError::new(
                        "action.max_total",
                        "must be at least 1 (set status away instead)",
                    ));
                }
                for kind in capacity.keys() {
                    token("action.capacity", kind)?;
                }
            }
            CommandAction::DefineAgent { teams, tiers, endpoints, max_total, capacity, .. } => {
                token("agent_id", &self.agent_id)?;
                if teams.is_empty() {
                    return Err(ValidationError::new("action.teams", "an agent needs at least one team"));
                }
                if tiers.is_empty() {
                    return Err(ValidationError::new("action.tiers", "an agent needs at least one tier"));
                }
                if *max_total == Some(0) {
                    return Err(ValidationError::new("action.max_total", "must be at least 1"));
                }
                for kind in capacity.keys() {
                    token("action.capacity", kind)?;
                }
                for kind in endpoints {
                    token("action.endpoints", kind)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// What the schema promises of a reply's file: a stored object (an [`AttachmentRef`] that was
/// not skipped), so a request the schema allows is one the router takes.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct ReplyFile {
    /// Object name in `sb_attachments`.
    #[schemars(regex(pattern = r"\S"), length(max = 1024))]
    object: String,
    /// File name shown to the customer.
    #[schemars(regex(pattern = r"\S"), length(max = 1024))]
    filename: String,
    /// MIME type.
    content_type: String,
    /// Size in bytes.
    size: u64,
}

/// The most files one reply carries.
pub const MAX_REPLY_ATTACHMENTS: usize = 10;

impl CommandAction {
    /// A text-only reply.
    pub fn reply(text: impl Into<String>) -> CommandAction {
        CommandAction::Reply { text: text.into(), attachments: Vec::new(), template: None }
    }
}

/// Whether an agent id can be one subject token (no `.`, `*`, `>`, whitespace or control
/// characters; at most 128 bytes), and so the agent has its own delivery stream
/// ([`crate::contract::subjects::agent_stream`]). Agents defined through the API always do; one
/// of the configuration file named otherwise has none.
pub fn has_own_stream(agent_id: &str) -> bool {
    !agent_id.is_empty()
        && agent_id.len() <= 128
        && agent_id.chars().all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '.' | '*' | '>'))
}

/// How people tell a conversation apart in an agent's client: its tag, the customer and the
/// channel, shown as `#K4F2 Ann Lee (telegram)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationLabel {
    /// `#K4F2`, or `#` and the id's first 8 hex digits when the router sent no code.
    pub tag: String,
    /// The customer's name (an offer's customer id when it has none), if known.
    pub customer: Option<String>,
    /// The customer's channel; empty when not known.
    pub channel: String,
}

impl ConversationLabel {
    /// What follows the tag: `Ann Lee (telegram)`, or the parts that are known.
    pub fn rest(&self) -> String {
        match (&self.customer, self.channel.is_empty()) {
            (Some(name), false) => format!("{name} ({})", self.channel),
            (Some(name), true) => name.clone(),
            (None, false) => format!("({})", self.channel),
            (None, true) => String::new(),
        }
    }
}

impl std::fmt::Display for ConversationLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rest() {
            rest if rest.is_empty() => f.write_str(&self.tag),
            rest => write!(f, "{} {rest}", self.tag),
        }
    }
}

impl AgentDelivery {
    /// How the agent tells this delivery's conversation apart (see [`ConversationLabel`]).
    pub fn label(&self) -> ConversationLabel {
        let (code, conversation, customer, channel) = match self {
            AgentDelivery::Offer(o) => {
                let name = o.customer.name.clone().unwrap_or_else(|| o.customer.id.clone());
                (&o.code, o.conversation_id, Some(name), &o.channel)
            }
            AgentDelivery::Message(m) => {
                let author = (m.entry.from == Author::Customer).then(|| m.entry.author.clone()).flatten();
                (&m.code, m.conversation_id, m.customer.clone().or(author), &m.channel)
            }
            AgentDelivery::Update(u) => (&u.code, u.conversation_id, u.customer.clone(), &u.channel),
        };
        let tag = match code.trim() {
            "" => format!("#{}", &conversation.simple().to_string()[..8]),
            code => format!("#{code}"),
        };
        let customer = customer.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        ConversationLabel { tag, customer, channel: channel.clone() }
    }

    /// The schema id of this delivery's variant.
    pub fn schema(&self) -> &'static str {
        match self {
            AgentDelivery::Offer(_) => "offer/1",
            AgentDelivery::Message(_) => "message/1",
            AgentDelivery::Update(_) => "update/1",
        }
    }
}

impl Contract for AgentDelivery {
    const SCHEMA: &'static str = "agent-delivery/1";

    fn validate(&self) -> Result<(), ValidationError> {
        let (agent_id, field) = match self {
            AgentDelivery::Offer(o) => {
                token("channel", &o.channel)?;
                o.priority.validate("priority")?;
                (&o.agent_id, "agent_id")
            }
            AgentDelivery::Message(m) => (&m.agent_id, "agent_id"),
            AgentDelivery::Update(u) => {
                non_empty("change", &u.change)?;
                (&u.agent_id, "agent_id")
            }
        };
        non_empty(field, agent_id)
    }
}
