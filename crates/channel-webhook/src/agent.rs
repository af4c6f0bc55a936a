//! Agent endpoints: offers, messages and updates for an agent POSTed to their helpdesk or chat
//! tool, signed like outbound messages, from `sb.agent.out.webhook`.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_adapter::SendError;
use switchboard_bus::{Bus, BusError, ConsumerSpec, Delivery, HandlerError};
use switchboard_core::AgentDelivery;
use switchboard_core::contract::{streams, subjects};
use tokio_util::sync::CancellationToken;

use crate::outbound::post_signed;

/// The endpoint kind this crate serves: subject `sb.agent.out.webhook`.
pub const ENDPOINT_KIND: &str = "webhook";

/// One agent's endpoint with its secret resolved.
#[derive(Clone)]
pub struct AgentEndpoint {
    /// Where deliveries are POSTed.
    pub url: String,
    /// HMAC key.
    pub key: Arc<[u8]>,
}

/// Delivers to agents' webhook endpoints.
#[derive(Clone)]
pub struct AgentEndpoints {
    endpoints: Arc<BTreeMap<String, AgentEndpoint>>,
    http: reqwest::Client,
}

impl AgentEndpoints {
    /// Endpoints by agent id, with the HTTP timeout of one POST.
    pub fn new(endpoints: BTreeMap<String, AgentEndpoint>, timeout: std::time::Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Self { endpoints: Arc::new(endpoints), http })
    }

    /// POSTs one delivery to its agent's endpoint.
    pub async fn deliver(&self, delivery: &AgentDelivery) -> Result<(), SendError> {
        let (id, agent) = match delivery {
            AgentDelivery::Offer(o) => (o.id, o.agent_id.as_str()),
            AgentDelivery::Message(m) => (m.id, m.agent_id.as_str()),
            AgentDelivery::Update(u) => (u.id, u.agent_id.as_str()),
        };
        let endpoint = self
            .endpoints
            .get(agent)
            .ok_or_else(|| SendError::permanent(format!("agent {agent} has no webhook endpoint")))?;
        let body = serde_json::to_vec(delivery).map_err(|e| SendError::permanent(format!("cannot encode: {e}")))?;
        post_signed(&self.http, &endpoint.url, &endpoint.key, &id.to_string(), body, &format!("agent {agent}")).await
    }

    /// Consumes `sb.agent.out.webhook` until `shutdown`: acked after a `2xx`, retried on
    /// 5xx/408/429/timeouts, dead-lettered to `sb.dlq.agent-webhook` otherwise.
    pub async fn run(self, bus: Bus, shutdown: CancellationToken) -> Result<(), BusError> {
        let spec =
            ConsumerSpec::new("agent-webhook", streams::AGENT, "agent-webhook", &subjects::agent_out(ENDPOINT_KIND));
        bus.run_consumer(spec, shutdown, move |d: Delivery| {
            let this = self.clone();
            async move {
                let delivery: AgentDelivery = d.decode()?;
                this.deliver(&delivery).await.map_err(|e| match e.retryable {
                    true => HandlerError::Retry(e.reason),
                    false => HandlerError::Reject(e.reason),
                })
            }
        })
        .await
    }
}
