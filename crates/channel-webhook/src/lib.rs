//! Switchboard's generic webhook channel.
//!
//! Inbound, `POST /v1/webhooks/{source}` takes a signed JSON message (Standard Webhooks:
//! `webhook-id`, `webhook-timestamp`, `webhook-signature`) and answers `202` only after JetStream
//! stored the envelope. Outbound, it consumes `sb.out.webhook` and POSTs each message, signed the
//! same way, to the source's configured URL; and it serves agents whose helpdesk takes webhooks,
//! POSTing their offers, messages and updates from `sb.agent.out.webhook` to the agent's endpoint.
//! It is the only crate that knows this wire format;
//! it never decides routing and never logs message bodies or secrets.

mod agent;
mod config;
pub mod guard;
mod inbound;
mod outbound;
pub mod signature;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use agent::{AgentEndpoint, AgentEndpoints, ENDPOINT_KIND, RegisteredEndpoint, registry_key};
pub use config::{AgentEndpointConfig, SecretLookup, SourceConfig, WebhookConfig, WebhookConfigError, decode_secret};
pub use inbound::{
    WebhookAccepted, WebhookCsat, WebhookCsatAnswer, WebhookCustomer, WebhookMessage, openapi, to_envelope,
};
pub use outbound::WebhookDelivery;
use switchboard_adapter::{Channel, Inbound, SendError, SendReceipt};
use switchboard_core::OutboundMessage;

/// The channel name: subjects `sb.in.webhook` and `sb.out.webhook`.
pub const CHANNEL: &str = "webhook";

/// Metadata key naming the source an envelope came from and an outbound message goes to.
pub const SOURCE_KEY: &str = "webhook_source";

/// One configured source with its secret resolved.
#[derive(Clone)]
pub struct Source {
    /// Source name, the `{source}` path segment.
    pub name: String,
    /// HMAC key (the decoded `whsec_` secret).
    pub key: Arc<[u8]>,
    /// The previous key while the secret is being rotated: inbound requests signed with it are
    /// still accepted, and outbound messages carry a signature with each key.
    pub previous_key: Option<Arc<[u8]>>,
    /// Where outbound messages for this source are POSTed.
    pub outbound_url: Option<String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("outbound_url", &self.outbound_url)
            .field("rotating", &self.previous_key.is_some())
            .finish_non_exhaustive()
    }
}

impl Source {
    /// The keys a signature may be made with: the current one first, then the previous one.
    pub fn keys(&self) -> Vec<&[u8]> {
        std::iter::once(&*self.key).chain(self.previous_key.as_deref()).collect()
    }
}

/// The webhook channel: its enabled sources and HTTP settings.
#[derive(Clone, Debug)]
pub struct WebhookChannel {
    sources: Arc<BTreeMap<String, Source>>,
    settings: Arc<WebhookConfig>,
    http: reqwest::Client,
}

impl WebhookChannel {
    /// Builds the channel from resolved sources.
    pub fn new(settings: WebhookConfig, sources: Vec<Source>) -> Result<Self, WebhookConfigError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(settings.request_timeout_ms))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            // A signed request is never re-sent to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebhookConfigError::new("request_timeout_ms", format!("cannot build HTTP client: {e}")))?;
        let sources = sources.into_iter().map(|s| (s.name.clone(), s)).collect();
        Ok(Self { sources: Arc::new(sources), settings: Arc::new(settings), http })
    }

    /// The enabled sources.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    fn routes(&self, inbound: Inbound) -> Option<axum::Router> {
        Some(inbound::router(self.clone(), inbound))
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        outbound::send(self, message).await
    }
}
