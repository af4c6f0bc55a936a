//! Switchboard's VK channel: a community's messages as a customer channel.
//!
//! Events come by the Bots Long Poll API (one process polls at a time, the `ts` stored only after
//! the events before it were stored) or by the Callback API (`POST /v1/vk/callback`, the secret
//! checked in constant time, `ok` only once stored). Customers' messages (text, photos,
//! documents, voice messages, stickers, places) become envelopes with their files in the object
//! store; edits and a customer denying or allowing messages become events; survey buttons become
//! answers. Replies go out with `messages.send`, a `random_id` derived from the message and part
//! (VK drops a repeat), split at 4,096 characters, files uploaded, within 20 calls a second, flood
//! control waited. It never decides routing and never logs message bodies or the token.

mod api;
mod callback;
mod config;
mod handle;
mod poll;
mod send;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use switchboard_adapter::{AdapterError, Channel, Health, HealthStatus, Inbound, SendError, SendReceipt};
use switchboard_bus::BusSlot;
use switchboard_core::OutboundMessage;

pub use api::{Api, ApiError, LongPollServer};
pub use callback::{PATH as CALLBACK_PATH, openapi};
pub use config::{VkConfig, VkConfigError, VkMode};
pub use handle::{DLQ_COMPONENT, Outcome};
pub use poll::ts_key;
pub use send::progress_key;

/// The channel name: subjects `sb.in.vk`, `sb.out.vk`.
pub const CHANNEL: &str = "vk";

/// The API version every call names.
pub const API_VERSION: &str = "5.199";

/// The VK channel: one community.
pub struct VkChannel {
    api: Api,
    handler: handle::Handler,
    group_id: u64,
    wait: u32,
    mode: VkMode,
    callback: Option<(String, String, usize)>,
    max_file_bytes: u64,
    bus: BusSlot,
    kv: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
    /// The runtime's health cell, known once the inbound side starts: a refused token shows there.
    health: Arc<OnceLock<Health>>,
    lost: Arc<AtomicU64>,
}

/// The reason shown on `/readyz` while VK refuses the token.
const TOKEN_REFUSED: &str = "VK refused the community token";

impl VkChannel {
    /// Builds the channel; reads the token (and the callback secret) now, so a bad setting stops
    /// the start with its key.
    pub fn new(cfg: &VkConfig, bus: BusSlot) -> Result<VkChannel, VkConfigError> {
        cfg.validate()?;
        let token = cfg.token()?;
        let api = Api::new(&cfg.api_url, &token, &cfg.api_version, cfg.requests_per_sec, cfg.max_retry_after_secs);
        let callback =
            cfg.secret()?.map(|secret| (cfg.confirmation.clone().unwrap_or_default(), secret, cfg.max_body_bytes));
        let handler = handle::Handler { api: api.clone(), max_file_bytes: cfg.max_file_bytes };
        Ok(VkChannel {
            api,
            handler,
            group_id: cfg.group_id,
            wait: cfg.wait_secs,
            mode: cfg.mode,
            callback,
            max_file_bytes: cfg.max_file_bytes,
            bus,
            kv: Default::default(),
            health: Default::default(),
            lost: Default::default(),
        })
    }

    /// How many times VK said events were lost (long poll `failed` 1 or 3) since the start.
    pub fn lost_event_rounds(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// A counter shared with [`VkChannel::lost_event_rounds`], readable after the channel moved
    /// into its runtime.
    pub fn lost_counter(&self) -> Arc<AtomicU64> {
        self.lost.clone()
    }

    /// Handles one event as both transports do, counting its outcome (for tests and replays).
    pub async fn handle_event(&self, inbound: &Inbound, event: &serde_json::Value) -> Result<Outcome, String> {
        self.handler.handle(inbound, event).await
    }

    async fn kv(&self) -> Result<async_nats::jetstream::kv::Store, SendError> {
        let bus = self.bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
        let kv = self
            .kv
            .get_or_try_init(|| bus.jetstream().get_key_value(switchboard_core::contract::buckets::CHANNELS))
            .await
            .map_err(|e| SendError::retryable(format!("channel state bucket: {e}")))?;
        Ok(kv.clone())
    }

    fn set_health(&self, status: HealthStatus) {
        if let Some(h) = self.health.get() {
            h.set(status);
        }
    }
}

impl Channel for VkChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    /// Long polling runs in one process at a time: two pollers of one community would each take
    /// a share of its events. Callbacks arrive at any process.
    fn exclusive_inbound(&self) -> bool {
        self.mode == VkMode::LongPoll
    }

    async fn run_inbound(&self, inbound: Inbound) -> Result<(), AdapterError> {
        let _ = self.health.set(inbound.health().clone());
        match self.mode {
            VkMode::LongPoll => {
                let poller = poll::Poller {
                    api: self.api.clone(),
                    handler: self.handler.clone(),
                    group_id: self.group_id,
                    wait: self.wait,
                    lost: self.lost.clone(),
                };
                poller.run(inbound).await;
            }
            VkMode::Callback => inbound.shutdown().cancelled().await,
        }
        Ok(())
    }

    fn routes(&self, inbound: Inbound) -> Option<axum::Router> {
        let (confirmation, secret, max_body_bytes) = self.callback.clone()?;
        let settings = callback::CallbackSettings { group_id: self.group_id, confirmation, secret, max_body_bytes };
        Some(callback::router(inbound, self.handler.clone(), settings))
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let bus = self.bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
        let sent = send::send(&self.api, bus, self.kv().await?, self.max_file_bytes, message).await;
        match &sent {
            Err(e) if e.reason.starts_with(TOKEN_REFUSED) => {
                self.set_health(HealthStatus::Degraded(e.reason.clone()));
            }
            Ok(_) => {
                if let Some(h) = self.health.get()
                    && matches!(h.get(), HealthStatus::Degraded(r) if r.starts_with(TOKEN_REFUSED))
                {
                    h.set(HealthStatus::Ready);
                }
            }
            Err(_) => {}
        }
        let first = sent?;
        Ok(SendReceipt { provider_message_id: first.map(|id| format!("{}:{id}", message.to.thread_key)) })
    }
}
