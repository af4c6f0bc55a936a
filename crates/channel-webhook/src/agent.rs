//! Agent endpoints: offers, messages and updates for an agent POSTed to their helpdesk or chat
//! tool, signed like outbound messages, from `sb.agent.out.webhook`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_nats::jetstream::kv::Store;
use serde::{Deserialize, Serialize};
use switchboard_adapter::{RuntimeConfig, SendError};
use switchboard_bus::{Bus, BusError, Delivery, HandlerError};
use switchboard_core::AgentDelivery;
use switchboard_core::contract::{buckets, streams, subjects};
use tokio_util::sync::CancellationToken;

use crate::config::decode_secret;
use crate::guard::AddressGuard;
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

/// An endpoint registered at runtime (agent API `PUT /v1/agents/{id}`), as stored in the
/// `sb_agents` bucket under [`registry_key`]. Anyone who can read that bucket can read the secret:
/// restrict it with NATS permissions like any other secret store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredEndpoint {
    /// Where deliveries are POSTed.
    pub url: String,
    /// The signing secret, `whsec_<base64>`.
    pub secret: String,
}

impl RegisteredEndpoint {
    /// Checks the URL and the secret; the error names the field.
    pub fn validate(&self) -> Result<AgentEndpoint, (&'static str, String)> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| ("url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(("url", "must be http or https".into()));
        }
        let key = decode_secret(&self.secret).map_err(|e| ("secret", e))?;
        Ok(AgentEndpoint { url: self.url.clone(), key: Arc::from(key) })
    }
}

/// The `sb_agents` key of an agent's runtime webhook endpoint.
pub fn registry_key(agent: &str) -> String {
    format!("endpoint.{ENDPOINT_KIND}.{agent}")
}

/// Delivers to agents' webhook endpoints: those of the configuration file, then those
/// registered at runtime.
#[derive(Clone)]
pub struct AgentEndpoints {
    endpoints: Arc<BTreeMap<String, AgentEndpoint>>,
    http: reqwest::Client,
    /// For endpoints registered at runtime: inward addresses refused, see [`AddressGuard`].
    guarded: reqwest::Client,
    guard: AddressGuard,
    runtime: RuntimeConfig,
}

impl AgentEndpoints {
    /// Endpoints by agent id, with the HTTP timeout of one POST, the retry settings
    /// (`[channels.webhook.runtime]`, shared with deliveries to customers) and the address
    /// policy for endpoints registered at runtime.
    pub fn new(
        endpoints: BTreeMap<String, AgentEndpoint>,
        timeout: std::time::Duration,
        runtime: RuntimeConfig,
        guard: AddressGuard,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        let guarded = guard.client(timeout)?;
        Ok(Self { endpoints: Arc::new(endpoints), http, guarded, guard, runtime })
    }

    /// POSTs one delivery to its agent's endpoint; `registry` is where runtime endpoints are.
    pub async fn deliver(&self, delivery: &AgentDelivery, registry: Option<&Store>) -> Result<(), SendError> {
        let (id, agent) = match delivery {
            AgentDelivery::Offer(o) => (o.id, o.agent_id.as_str()),
            AgentDelivery::Message(m) => (m.id, m.agent_id.as_str()),
            AgentDelivery::Update(u) => (u.id, u.agent_id.as_str()),
        };
        let (endpoint, http) = match self.endpoints.get(agent) {
            Some(e) => (e.clone(), &self.http),
            None => {
                let endpoint = Self::registered(agent, registry).await?;
                let url = reqwest::Url::parse(&endpoint.url)
                    .map_err(|e| SendError::permanent(format!("agent {agent}: endpoint url: {e}")))?;
                self.guard.check_url(&url).map_err(|e| SendError::permanent(format!("agent {agent}: refused: {e}")))?;
                (endpoint, &self.guarded)
            }
        };
        let body = serde_json::to_vec(delivery).map_err(|e| SendError::permanent(format!("cannot encode: {e}")))?;
        post_signed(http, &endpoint.url, &[&endpoint.key], &id.to_string(), body, &format!("agent {agent}")).await
    }

    /// Looked up on every delivery, so a changed URL or a rotated secret applies at once.
    async fn registered(agent: &str, registry: Option<&Store>) -> Result<AgentEndpoint, SendError> {
        // An agent defined through the API gets its endpoint stored just after the router accepted
        // the definition, so an offer can arrive first: missing is retried (within the retry window).
        let missing = || SendError::retryable(format!("agent {agent} has no webhook endpoint (yet)"));
        let registry =
            registry.ok_or_else(|| SendError::permanent(format!("agent {agent} has no webhook endpoint")))?;
        let value = registry
            .get(registry_key(agent))
            .await
            .map_err(|e| SendError::retryable(format!("cannot read the endpoint registry: {e}")))?
            .ok_or_else(missing)?;
        let registered: RegisteredEndpoint = serde_json::from_slice(&value)
            .map_err(|e| SendError::permanent(format!("agent {agent}: registered endpoint unreadable: {e}")))?;
        registered.validate().map_err(|(field, reason)| {
            SendError::permanent(format!("agent {agent}: registered endpoint {field}: {reason}"))
        })
    }

    /// Consumes `sb.agent.out.webhook` until `shutdown`: acked after a `2xx`; a `Retry-After`
    /// waited for; 5xx/408/429/timeouts retried (for `runtime.retry_for_secs` and at least
    /// `runtime.max_attempts` times); dead-lettered to `sb.dlq.agent-webhook` otherwise.
    pub async fn run(self, bus: Bus, shutdown: CancellationToken) -> Result<(), BusError> {
        let spec = self
            .runtime
            .consumer_spec("agent-webhook", streams::AGENT, "agent-webhook", &subjects::agent_out(ENDPOINT_KIND))
            .also(&subjects::agent_out_filter(ENDPOINT_KIND));
        let registry = bus.jetstream().get_key_value(buckets::AGENTS).await.ok();
        bus.run_consumer(spec, shutdown, move |d: Delivery| {
            let this = self.clone();
            let registry = registry.clone();
            async move {
                let delivery: AgentDelivery = d.decode()?;
                this.deliver(&delivery, registry.as_ref()).await.map_err(HandlerError::from)
            }
        })
        .await
    }
}
