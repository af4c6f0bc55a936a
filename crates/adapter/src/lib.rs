//! The Switchboard adapter SDK: what a channel implements, and the runtime around it.
//!
//! A channel is a stateless translator between one provider and the bus contract. It implements
//! [`Channel`]: inbound, it turns provider messages into [`Envelope`]s and hands them to
//! [`Inbound::publish`] (which rate-limits per sender, validates, and waits for JetStream to store
//! them, de-duplicated by the provider's id); outbound, [`Channel::send`] sends one
//! [`OutboundMessage`] and says whether a failure is worth retrying. The [`ChannelRuntime`] does
//! the rest: it consumes `sb.out.<channel>`, retries with back-off, acks only after the provider
//! accepted, dead-letters what keeps failing and reports health. A channel never decides routing.
//!
//! The step-by-step guide (the test kit, registering a channel in the daemon, the contract rules)
//! is `docs/adapters.md`; `examples/rust-adapter` is a complete channel tested with this SDK.
//!
//! # Example: a complete adapter
//!
//! A channel that takes lines from a TCP socket (`<customer> <text>`) and "sends" replies by
//! appending them to a file. Outside authors start from the same shape.
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard_adapter::{Channel, ChannelRuntime, Inbound, RuntimeConfig, SendError, SendReceipt};
//! use switchboard_core::{Customer, Envelope, OutboundMessage};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
//!
//! struct LineChannel {
//!     listen: String,
//!     outbox: std::path::PathBuf,
//! }
//!
//! impl Channel for LineChannel {
//!     fn name(&self) -> &str {
//!         "lines"
//!     }
//!
//!     async fn run_inbound(&self, inbound: Inbound) -> Result<(), switchboard_adapter::AdapterError> {
//!         let listener = tokio::net::TcpListener::bind(&self.listen).await?;
//!         loop {
//!             let (socket, peer) = tokio::select! {
//!                 _ = inbound.shutdown().cancelled() => return Ok(()),
//!                 accepted = listener.accept() => accepted?,
//!             };
//!             let inbound = inbound.clone();
//!             tokio::spawn(async move {
//!                 let mut lines = tokio::io::BufReader::new(socket).lines();
//!                 let mut n = 0;
//!                 while let Ok(Some(line)) = lines.next_line().await {
//!                     let Some((customer, text)) = line.split_once(' ') else { continue };
//!                     n += 1;
//!                     let envelope = Envelope {
//!                         id: uuid::Uuid::now_v7(),
//!                         channel: "lines".into(),
//!                         // The provider's own id: the runtime de-duplicates on it.
//!                         provider_message_id: format!("{peer}:{n}"),
//!                         received_at: chrono::Utc::now(),
//!                         customer: Customer { id: customer.into(), name: None, email: None, phone: None, language: None },
//!                         thread_key: customer.into(),
//!                         text: text.into(),
//!                         subject: None,
//!                         html: None,
//!                         attachments: vec![],
//!                         metadata: Default::default(),
//!                         raw_ref: None,
//!                     };
//!                     // Returns once JetStream stored it; only then may a provider be acknowledged.
//!                     if let Err(e) = inbound.publish(envelope).await {
//!                         tracing::warn!(error = %e, "message refused");
//!                     }
//!                 }
//!             });
//!         }
//!     }
//!
//!     async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
//!         let mut file = tokio::fs::OpenOptions::new().append(true).create(true).open(&self.outbox).await
//!             // A full disk may clear up: retry. A bad path never will, but we cannot tell here.
//!             .map_err(|e| SendError::retryable(format!("open outbox: {e}")))?;
//!         let line = format!("{} {}\n", message.to.customer_id, message.text);
//!         file.write_all(line.as_bytes()).await.map_err(|e| SendError::retryable(e.to_string()))?;
//!         Ok(SendReceipt { provider_message_id: None })
//!     }
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let bus = switchboard_bus::Bus::connect(&switchboard_bus::BusConfig::default(), &shutdown).await?;
//! bus.ensure_contract().await?;
//! let channel = Arc::new(LineChannel { listen: "127.0.0.1:7000".into(), outbox: "outbox.txt".into() });
//! let runtime = ChannelRuntime::new(channel, RuntimeConfig::default(), switchboard_bus::BusSlot::ready(bus), shutdown.clone());
//! let task = runtime.spawn();
//! tokio::signal::ctrl_c().await?;
//! shutdown.cancel();
//! task.await??;
//! # Ok(()) }
//! ```

pub mod agent_chat;
mod attachment;
mod channel;
mod command;
mod config;
mod health;
mod inbound;
mod runtime;
mod survey;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use attachment::read_attachment;
pub use channel::{AdapterError, Channel, SendError, SendReceipt};
pub use command::{PublishedCommand, Verdict, derived_command_id, publish_command, send_command};
pub use config::{RateLimitConfig, RuntimeConfig, read_secret};
pub use health::{Health, HealthStatus};
pub use inbound::{Inbound, InboundError};
pub use runtime::ChannelRuntime;
pub use survey::{
    ConversationRef, SurveyRefusal, conversation_ref, conversation_ref_in, publish_survey, survey_event, survey_msg_id,
};
pub use switchboard_core::{Envelope, OutboundMessage};
