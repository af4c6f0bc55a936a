//! Switchboard's web chat: an embeddable widget and its WebSocket server.
//!
//! One `<script src=".../chat/widget.js">` tag puts a chat on the company's site. The widget
//! talks to `/chat/ws` on the daemon's listener (the wire protocol is in
//! `docs/webchat-protocol.md`). A visitor's message is stored on `sb.in.webchat` like any
//! channel's (de-duplicated by the widget's client id, so a resend after a reconnect counts once)
//! and then appended to the session's transcript in `SB_WEBCHAT`; agents' replies, assignments
//! and resolutions are appended there too. The transcript is what the widget shows, in stream
//! order, and what it replays after a reload or a reconnect, on whichever replica the socket
//! lands. Sessions are signed tokens; the host site can vouch for a signed-in user with an HMAC of
//! the user id. Origins are allow-listed; sockets and messages are limited per IP and per visitor.
//! Message text is never interpreted as HTML, here or in the widget.

mod config;
mod error;
mod events;
mod frames;
mod http;
mod hub;
mod quota;
mod replay;
mod server;
pub mod session;
mod socket;
pub mod transcript;
mod upload;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchboard_adapter::{AdapterError, Channel, Inbound, SendError, SendReceipt};
use switchboard_bus::BusSlot;
use switchboard_core::contract::metadata;
use switchboard_core::{OutboundKind, OutboundMessage};
use tracing::{info, warn};

pub use config::{
    FRAME_OVERHEAD_BYTES, JSON_ESCAPE_FACTOR, TopicConfig, WebchatConfig, WebchatConfigError, smallest_frame,
};
pub use error::WebchatError;
pub use events::EVENTS_CONSUMER;
pub use http::{SOCKET_BUFFER_BYTES, WIDGET_JS, openapi};
pub use hub::Hub;
pub use session::{Sessions, sign_identity};

use crate::server::Shared;
use crate::transcript::{Entry, EntryKind};

/// The channel name: subjects `sb.in.webchat`, `sb.out.webchat`.
pub const CHANNEL: &str = "webchat";

/// A session's pre-chat answers, kept in KV `sb_channels` under `webchat.profile.<session>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// The name the visitor gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The email the visitor gave (not verified: it goes into metadata, never the identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The topic chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// The web-chat channel.
pub struct WebchatChannel {
    cfg: WebchatConfig,
    sessions: Sessions,
    hub: Hub,
    group: String,
    bus: BusSlot,
    shared: OnceLock<Arc<Shared>>,
}

impl WebchatChannel {
    /// Builds the channel; reads its keys now, so a bad setting stops the start with its key.
    /// `group` is the routing group whose router answers availability questions.
    pub fn new(cfg: &WebchatConfig, group: &str, bus: BusSlot) -> Result<WebchatChannel, WebchatConfigError> {
        cfg.validate()?;
        let sessions = Sessions::new(cfg.session_secret()?, cfg.identity_secret()?);
        if cfg.allowed_origins.is_empty() {
            warn!("channels.webchat.allowed_origins is empty: no page can open the chat");
        }
        Ok(WebchatChannel {
            cfg: cfg.clone(),
            sessions,
            hub: Hub::default(),
            group: group.into(),
            bus,
            shared: OnceLock::new(),
        })
    }

    /// Sockets open on this process.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    fn shared(&self, inbound: &Inbound) -> Arc<Shared> {
        self.shared
            .get_or_init(|| {
                Arc::new(Shared::new(
                    self.cfg.clone(),
                    self.sessions.clone(),
                    self.hub.clone(),
                    inbound.clone(),
                    self.group.clone(),
                ))
            })
            .clone()
    }
}

impl Channel for WebchatChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    fn routes(&self, inbound: Inbound) -> Option<axum::Router> {
        Some(http::routes(self.shared(&inbound)))
    }

    async fn run_inbound(&self, inbound: Inbound) -> Result<(), AdapterError> {
        switchboard_bus::outcomes::register(CHANNEL);
        let shared = self.shared(&inbound);
        let bus = inbound.bus()?.clone();
        let stop = inbound.shutdown().clone();
        let feed = {
            let (hub, bus, stop) = (self.hub.clone(), bus.clone(), stop.clone());
            tokio::spawn(async move { hub.run_feed(bus, stop).await })
        };
        let typing = tokio::spawn(events::run_typing(shared.clone(), bus.clone(), stop.clone()));
        let replays = tokio::spawn(replay::run_event_replays(shared.clone(), bus.clone(), stop.clone()));
        let housekeeping = {
            let (shared, stop) = (shared.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                while tokio::select! { _ = stop.cancelled() => false, _ = tick.tick() => true } {
                    shared.forget_idle_ips();
                }
            })
        };
        let sweep = {
            let (shared, stop) = (shared.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(shared.cfg.upload_sweep_secs));
                while tokio::select! { _ = stop.cancelled() => false, _ = tick.tick() => true } {
                    if let Err(e) = quota::sweep(&shared).await {
                        warn!(error = %e, "sweep of unattached uploads failed; trying again at the next");
                    }
                }
            })
        };
        info!(origins = self.cfg.allowed_origins.len(), "web chat running");
        let events = events::run_events(shared, bus, stop).await;
        let _ = tokio::join!(feed, typing, housekeeping, replays, sweep);
        events.map_err(AdapterError::from)
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let bus = self.bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
        let session = &message.to.thread_key;
        if !session::is_session_id(session) {
            return Err(SendError::permanent(format!("`{session}` is not a web-chat session id")));
        }
        let queue = transcript::queue_figures(&message.metadata);
        let kind = match message.kind {
            OutboundKind::AgentReply => EntryKind::Agent,
            OutboundKind::AutoReply => EntryKind::Auto,
            OutboundKind::System if queue.is_some() => EntryKind::Queue,
            OutboundKind::System => EntryKind::System,
        };
        let attachments = message
            .attachments
            .iter()
            .map(|a| match self.shared.get() {
                Some(shared) => upload::entry_attachment(shared, a),
                None => transcript::Attachment {
                    name: a.filename.clone(),
                    size: a.size,
                    content_type: a.content_type.clone(),
                    url: String::new(),
                },
            })
            .collect();
        let entry = Entry {
            id: message.id.to_string(),
            kind,
            at: message.created_at,
            text: message.text.clone(),
            client_id: None,
            agent_name: message.metadata.get(metadata::AGENT_NAME).cloned(),
            conversation_id: Some(message.conversation_id.to_string()),
            attachments,
            score: None,
            survey: None,
            queue,
            choices: l0_choices(message),
        };
        let stored = transcript::append(bus, session, &entry, &format!("o:{}", message.id))
            .await
            .map_err(|e| SendError::retryable(e.to_string()))?;
        Ok(SendReceipt { provider_message_id: Some(stored.seq.to_string()) })
    }
}

/// The L0 bot's yes and no labels, when the message asks whether its answer helped.
fn l0_choices(message: &OutboundMessage) -> Vec<String> {
    if message.metadata.get(metadata::L0_QUESTION).map(String::as_str) != Some(metadata::L0_HELPFUL) {
        return Vec::new();
    }
    [metadata::L0_YES, metadata::L0_NO].iter().filter_map(|k| message.metadata.get(*k).cloned()).collect()
}
