//! The dimensions every KPI is cut by: channel, team, tier, priority class and agent. Nothing
//! per conversation or per customer, so label cardinality stays bounded.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, as the router stamps its events.
pub type Ms = i64;

/// The label value for a dimension an event did not name.
pub const UNKNOWN: &str = "unknown";

/// Team, tier and priority class of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Routing {
    /// Team name.
    pub team: String,
    /// `L0`..`L4`.
    pub tier: String,
    /// `P1`..`P4`.
    pub priority: String,
}

impl Default for Routing {
    fn default() -> Self {
        Routing { team: UNKNOWN.into(), tier: UNKNOWN.into(), priority: UNKNOWN.into() }
    }
}

/// The P1..P4 class of a priority value (1-100), as the routing engine classes SLA targets.
pub fn priority_class(p: u64) -> &'static str {
    match p {
        0..=24 => "P1",
        25..=49 => "P2",
        50..=74 => "P3",
        _ => "P4",
    }
}

impl Routing {
    /// The routing an event's data names (`team`, `tier`, `priority`), if it names any.
    pub fn from_data(data: &serde_json::Map<String, serde_json::Value>) -> Option<Routing> {
        let team = data.get("team").and_then(|v| v.as_str());
        let tier = data.get("tier").and_then(|v| v.as_str());
        let priority = data.get("priority").and_then(|v| v.as_u64());
        if team.is_none() && tier.is_none() && priority.is_none() {
            return None;
        }
        Some(Routing {
            team: team.unwrap_or(UNKNOWN).to_string(),
            tier: tier.unwrap_or(UNKNOWN).to_string(),
            priority: priority.map_or(UNKNOWN, priority_class).to_string(),
        })
    }
}

/// Channel, routing and (where one is concerned) agent of one measurement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dims {
    /// Channel.
    pub channel: String,
    /// Team, tier, priority class.
    #[serde(flatten)]
    pub routing: Routing,
    /// The agent concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

impl Dims {
    /// Dimensions from parts.
    pub fn new(channel: &str, routing: &Routing, agent: Option<&str>) -> Dims {
        Dims { channel: channel.to_string(), routing: routing.clone(), agent: agent.map(str::to_string) }
    }

    /// The value of one dimension (`None` for no grouping).
    pub fn get(&self, by: GroupBy) -> Option<&str> {
        match by {
            GroupBy::None => None,
            GroupBy::Channel => Some(&self.channel),
            GroupBy::Team => Some(&self.routing.team),
            GroupBy::Tier => Some(&self.routing.tier),
            GroupBy::Priority => Some(&self.routing.priority),
            GroupBy::Agent => Some(self.agent.as_deref().unwrap_or("-")),
        }
    }
}

/// The dimension a report is broken down by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Totals only.
    #[default]
    None,
    /// By channel.
    Channel,
    /// By team.
    Team,
    /// By tier.
    Tier,
    /// By priority class.
    Priority,
    /// By agent (conversation-level rates by the agent who held it last).
    Agent,
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<GroupBy, String> {
        match s {
            "none" => Ok(GroupBy::None),
            "channel" => Ok(GroupBy::Channel),
            "team" => Ok(GroupBy::Team),
            "tier" => Ok(GroupBy::Tier),
            "priority" => Ok(GroupBy::Priority),
            "agent" => Ok(GroupBy::Agent),
            other => Err(format!("unknown dimension `{other}`: channel, team, tier, priority, agent or none")),
        }
    }
}
