//! The router's configuration, its errors and its state (what a snapshot holds).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_routing::{Layout, Ms, RoutingConfig, RoutingConfigError, Snapshot};
use uuid::Uuid;

use crate::record::ConversationRecord;

/// What the router needs besides the routing configuration.
#[derive(Debug, Clone, Default)]
pub struct RouterConfig {
    /// Teams, agents, rules.
    pub routing: RoutingConfig,
    /// Endpoint kinds by agent id: an agent's deliveries go to `sb.agent.out.<kind>` for each.
    pub endpoints: BTreeMap<String, Vec<String>>,
    /// How many history entries an offer carries (across the customer's linked conversations).
    pub offer_history: usize,
    /// The routing group this router routes, when the teams are divided into groups: it then
    /// runs that group's part of `routing` and claims only that group's inputs.
    pub group: Option<RoutingGroup>,
    /// The knowledge base the L0 bot answers from, if the daemon loads one (`[kb]`).
    pub kb: Option<crate::kb::KnowledgeBase>,
}

/// A router's routing group and the layout every process agrees on.
#[derive(Debug, Clone)]
pub struct RoutingGroup {
    /// The group's name.
    pub name: String,
    /// Which group owns what.
    pub layout: Arc<Layout>,
}

/// Why a router could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The routing configuration is invalid.
    #[error(transparent)]
    Config(#[from] RoutingConfigError),
    /// The group is not one of `routing.groups`.
    #[error("routing group `{0}` is not configured (routing.groups)")]
    UnknownGroup(String),
}

/// Everything the router knows, serialisable: a snapshot plus the journal sequence it reflects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterState {
    /// The last journal sequence applied.
    pub sequence: u64,
    /// The `SB_AGENT` sequence of the last agent command journaled: the leader reads commands
    /// from the next one on (absent in snapshots from before commands were read that way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands_read: Option<u64>,
    /// The engine's state.
    pub engine: Snapshot,
    /// Conversations the engine still knows, by id.
    pub records: BTreeMap<Uuid, ConversationRecord>,
    /// Conversation ids by person key, newest last (at most [`PERSON_KEEP`]).
    pub persons: BTreeMap<String, VecDeque<Uuid>>,
    /// Resolved conversations in resolution order, to drop their records once forgotten.
    pub resolved: VecDeque<(Ms, Uuid)>,
    /// Endpoint kinds of agents defined at runtime (`define_agent`), by agent id.
    #[serde(default)]
    pub agent_endpoints: BTreeMap<String, Vec<String>>,
    /// Agents defined at runtime for another routing group, with that group: their commands
    /// are that group's.
    #[serde(default)]
    pub elsewhere: BTreeMap<String, String>,
    /// What each waiting customer was last told about their place in line, by conversation.
    #[serde(default)]
    pub queue_notices: BTreeMap<Uuid, Notified>,
    /// When the router next recomputes the waiting conversations' places (none while none waits).
    #[serde(default)]
    pub next_queue_check: Option<Ms>,
    /// The `[routing]` section journaled last (`Entry::Configure`), as JSON: what the group
    /// routes by since then, whatever the file of the process restoring it says. Absent while
    /// the group runs the configuration it started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<serde_json::Value>,
    /// The saved replies suggested for a conversation's question (journaled with the message
    /// that opened or reopened it), shown in its offers, by conversation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suggested: BTreeMap<Uuid, Vec<String>>,
}

/// The routing configuration narrowed to the router's group, if it has one.
pub(crate) fn narrowed(mut cfg: RouterConfig) -> Result<RouterConfig, RouterError> {
    if let Some(g) = &cfg.group {
        cfg.routing =
            g.layout.config_for(&cfg.routing, &g.name).ok_or_else(|| RouterError::UnknownGroup(g.name.clone()))?;
    }
    Ok(cfg)
}

/// What the customer was last told (or would have been, on a channel without notices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notified {
    /// When, ms since the epoch; `None` while nothing was sent.
    pub sent_at: Option<Ms>,
    /// The place told.
    pub position: u32,
    /// The estimate told, seconds.
    pub estimate_secs: Option<u64>,
    /// Agents online then.
    pub agents_online: u32,
}
