//! The open offers view (`GET /v1/agent/offers`): what each agent is offered now and until when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::{Customer, Priority, Tier};
use uuid::Uuid;

use crate::router::Router;

/// One conversation on offer to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenOffer {
    /// The conversation offered.
    pub conversation_id: Uuid,
    /// The agent it is offered to.
    pub agent_id: String,
    /// The customer's channel.
    pub channel: String,
    /// The customer.
    pub customer: Customer,
    /// Subject, where the conversation has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Team it is routed to.
    pub team: String,
    /// Tier it is routed at.
    pub tier: Tier,
    /// Priority.
    pub priority: Priority,
    /// When the offer was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<DateTime<Utc>>,
    /// The offer lapses at this time and goes to the next agent.
    pub offer_deadline: DateTime<Utc>,
    /// First-response deadline (SLA).
    pub sla_deadline: DateTime<Utc>,
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Router {
    /// The offers open now, soonest deadline first; only `agent`'s when given.
    pub fn open_offers(&self, agent: Option<&str>) -> Vec<OpenOffer> {
        self.engine()
            .offers(agent)
            .into_iter()
            .filter_map(|(conversation, agent, deadline)| {
                let r = self.record(conversation)?;
                Some(OpenOffer {
                    conversation_id: conversation,
                    agent_id: agent.to_string(),
                    channel: r.channel.clone(),
                    customer: r.customer.clone(),
                    subject: r.subject.clone(),
                    team: r.team.clone(),
                    tier: r.tier,
                    priority: r.priority,
                    offered_at: r.offered_at.map(time),
                    offer_deadline: time(deadline),
                    sla_deadline: time(r.sla_deadline),
                })
            })
            .collect()
    }
}
