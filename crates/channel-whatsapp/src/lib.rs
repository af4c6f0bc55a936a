//! Switchboard's WhatsApp channel: the WhatsApp Business Platform's Cloud API as a customer
//! channel.
//!
//! In: Meta POSTs notifications to `/v1/whatsapp/webhook` (verified once with `GET` and the
//! verify token). Each is checked against `X-Hub-Signature-256` before it is parsed; every message
//! type becomes an envelope (media fetched into `sb_attachments` within a size limit), a kind it
//! cannot carry is counted and answered, statuses become events on their conversation, and the
//! answer is `200` only once all of it is stored. The `wamid` is the de-duplication id, so a
//! notification delivered again stores nothing twice.
//!
//! Out: `POST /{phone-number-id}/messages`, text split at 4,096 characters (a retry resumes at the
//! first unsent part), files uploaded, replies threaded with `context.message_id`, paced with
//! `governor`, rate limits waited and never dead-lettered for. The 24-hour customer service window
//! is kept from the customer's last message (KV `sb_channels`); outside it a re-engagement template
//! goes instead, or the agent is told why nothing went. It never decides routing and never logs
//! message bodies, the token or the app secret.
//!
//! Setup at Meta: `docs/whatsapp.md`.

mod config;
mod graph;
mod http;
mod inbound;
mod outbound;
pub mod payload;
pub mod signature;
mod state;

use switchboard_adapter::{AdapterError, Channel, HealthStatus, Inbound, SendError, SendReceipt};
use switchboard_bus::BusSlot;
use switchboard_core::OutboundMessage;

pub use config::{Secrets, TemplateConfig, WhatsAppConfig, WhatsAppConfigError};
pub use graph::{Class, GraphError, classify};
pub use http::{PATH, openapi};
pub use inbound::{DLQ_COMPONENT, ItemOutcome, callback_ids};
pub use outbound::{MAX_TEXT_CHARS, split};
pub use state::{progress_key, template_key, window_key};

/// The channel name: subjects `sb.in.whatsapp`, `sb.out.whatsapp`.
pub const CHANNEL: &str = "whatsapp";

/// The WhatsApp channel: one business phone number.
pub struct WhatsAppChannel {
    graph: graph::Graph,
    secrets: Secrets,
    max_body_bytes: usize,
    max_media_bytes: u64,
    window_secs: u64,
    template: Option<TemplateConfig>,
    bus: BusSlot,
    /// The `sb_channels` bucket, looked up once.
    kv: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
}

impl WhatsAppChannel {
    /// Builds the channel; reads the secrets now, so a bad setting stops the start with its key.
    pub fn new(cfg: &WhatsAppConfig, bus: BusSlot) -> Result<WhatsAppChannel, WhatsAppConfigError> {
        cfg.validate()?;
        let secrets = cfg.secrets()?;
        Ok(WhatsAppChannel {
            graph: graph::Graph::new(cfg, &secrets.access_token),
            secrets,
            max_body_bytes: cfg.max_body_bytes,
            max_media_bytes: cfg.max_media_bytes,
            window_secs: cfg.window_secs,
            template: cfg.reengage_template.clone(),
            bus,
            kv: Default::default(),
        })
    }

    /// The `sb_channels` bucket.
    async fn kv(&self) -> Result<async_nats::jetstream::kv::Store, SendError> {
        let bus = self.bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
        let kv = self
            .kv
            .get_or_try_init(|| bus.jetstream().get_key_value(switchboard_core::contract::buckets::CHANNELS))
            .await
            .map_err(|e| SendError::retryable(format!("channel state bucket: {e}")))?;
        Ok(kv.clone())
    }
}

impl Channel for WhatsAppChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    /// Notifications come by webhook; this only checks the token once, so a refused one shows on
    /// `/readyz` at once rather than at the first reply.
    async fn run_inbound(&self, inbound: Inbound) -> Result<(), AdapterError> {
        // The runtime marks the channel ready right after starting this: not over a refusal.
        for _ in 0..100 {
            if inbound.health().get() != HealthStatus::Starting {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        match self.graph.check_number().await {
            Ok(number) => tracing::info!(%number, "whatsapp number reachable with the access token"),
            Err(e) if e.class == Class::Permanent => {
                tracing::warn!(error = %e, "the WhatsApp access token is refused");
                inbound.health().set(HealthStatus::Degraded(format!("WhatsApp: {}", e.reason)));
            }
            Err(e) => tracing::warn!(error = %e, "cannot check the WhatsApp number now"),
        }
        inbound.shutdown().cancelled().await;
        Ok(())
    }

    fn routes(&self, inbound: Inbound) -> Option<axum::Router> {
        let rx = inbound::Receiver { graph: self.graph.clone(), max_media_bytes: self.max_media_bytes };
        Some(http::router(inbound, rx, &self.secrets.app_secret, &self.secrets.verify_token, self.max_body_bytes))
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        self.send_reply(message).await
    }
}
