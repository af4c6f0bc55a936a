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
use std::sync::{Arc, RwLock};

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
    /// What a configuration reload may change while requests are being served.
    live: Arc<RwLock<Live>>,
    settings: Arc<WebhookConfig>,
    http: reqwest::Client,
}

/// The part of the channel a reload replaces at once: each request reads one consistent copy.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    /// Enabled sources by name.
    pub(crate) sources: Arc<BTreeMap<String, Source>>,
    /// Largest accepted request body, in bytes.
    pub(crate) max_body_bytes: usize,
    /// How far `webhook-timestamp` may be from now, in seconds.
    pub(crate) timestamp_tolerance_secs: u64,
}

impl Live {
    fn new(settings: &WebhookConfig, sources: Vec<Source>) -> Live {
        Live {
            sources: Arc::new(sources.into_iter().map(|s| (s.name.clone(), s)).collect()),
            max_body_bytes: settings.max_body_bytes,
            timestamp_tolerance_secs: settings.timestamp_tolerance_secs,
        }
    }
}

impl Source {
    /// Whether `other` verifies and delivers exactly as this one does.
    fn same_as(&self, other: &Source) -> bool {
        self.key == other.key && self.previous_key == other.previous_key && self.outbound_url == other.outbound_url
    }
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
        let live = Live::new(&settings, sources);
        Ok(Self { live: Arc::new(RwLock::new(live)), settings: Arc::new(settings), http })
    }

    /// The enabled sources.
    pub fn sources(&self) -> Vec<Source> {
        self.live().sources.values().cloned().collect()
    }

    /// One consistent copy of what a reload may change.
    pub(crate) fn live(&self) -> Live {
        self.live.read().expect("webhook settings lock").clone()
    }

    /// Applies a reloaded `[channels.webhook]` with its sources' secrets read again: sources
    /// (added, removed, secrets rotated, outbound URLs), `max_body_bytes` and
    /// `timestamp_tolerance_secs` take effect for the next request. Returns what it changed
    /// (`sources.<name>`, a limit's key) and, apart, the changed keys that apply only after a
    /// restart (the HTTP client, the consumers and the agent endpoints were built from them).
    pub fn reconfigure(&self, settings: &WebhookConfig, sources: Vec<Source>) -> (Vec<String>, Vec<String>) {
        let next = Live::new(settings, sources);
        let mut applied = Vec::new();
        let mut live = self.live.write().expect("webhook settings lock");
        let names: std::collections::BTreeSet<&String> = live.sources.keys().chain(next.sources.keys()).collect();
        for name in names {
            let same = match (live.sources.get(name), next.sources.get(name)) {
                (Some(a), Some(b)) => a.same_as(b),
                _ => false,
            };
            if !same {
                applied.push(format!("sources.{name}"));
            }
        }
        if live.max_body_bytes != next.max_body_bytes {
            applied.push("max_body_bytes".into());
        }
        if live.timestamp_tolerance_secs != next.timestamp_tolerance_secs {
            applied.push("timestamp_tolerance_secs".into());
        }
        *live = next;
        drop(live);
        let old = &self.settings;
        // The settings types have no `PartialEq`; their `Debug` forms name every field.
        let differ = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        let mut restart = Vec::new();
        for (key, changed) in [
            ("enabled", old.enabled != settings.enabled),
            ("request_timeout_ms", old.request_timeout_ms != settings.request_timeout_ms),
            ("runtime", differ(&old.runtime, &settings.runtime)),
            ("agents", differ(&old.agents, &settings.agents)),
            ("allowed_networks", old.allowed_networks != settings.allowed_networks),
        ] {
            if changed {
                restart.push(key.to_string());
            }
        }
        (applied, restart)
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
