//! An example channel built with the adapter SDK: customers write by SMS through an HTTP SMS
//! gateway, agents' replies go back through the same gateway. `docs/adapters.md` walks through it.
//!
//! The gateway (the "provider") speaks a small JSON API, described in `gateway.rs`:
//!
//! - **in:** the gateway POSTs each SMS it receives to `POST /v1/sms/inbound` with
//!   `Authorization: Bearer <token>` and retries until it hears `200`. We answer `200` only after
//!   JetStream stored the envelope, so a retry of a stored SMS (same gateway id) is stored once.
//! - **out:** we POST each reply to `<gateway_url>/messages` with the same token and the outbound
//!   message id as `Idempotency-Key`; a `2xx` means the gateway took it, and only then is the bus
//!   message acked. `5xx`, `408`, `429`, timeouts and refused connections are retried; any other
//!   answer is final and the runtime dead-letters the message on `sb.dlq.sms`.
//!
//! The channel never decides routing: it only translates between the gateway and the contract.

mod config;
pub mod gateway;
mod inbound;

use std::time::Duration;

use switchboard_adapter::{Channel, Inbound, OutboundMessage, SendError, SendReceipt};

pub use config::{ConfigError, SmsConfig};

/// The channel name: the subject token of `sb.in.sms` and `sb.out.sms`.
pub const CHANNEL: &str = "sms";

/// The SMS channel: the gateway's address and the token both sides present.
pub struct SmsChannel {
    gateway_url: String,
    token: String,
    http: reqwest::Client,
}

impl SmsChannel {
    /// A channel sending through `config.gateway_url`, with `token` as the shared secret.
    pub fn new(config: &SmsConfig, token: String) -> Result<Self, ConfigError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()
            .map_err(|e| ConfigError::new("request_timeout_ms", format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { gateway_url: config.gateway_url.trim_end_matches('/').to_string(), token, http })
    }
}

impl Channel for SmsChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    // Push-style: the gateway calls us, so inbound is an HTTP route on the daemon's listener and
    // `run_inbound` keeps its default (wait for shutdown).
    fn routes(&self, inbound: Inbound) -> Option<axum::Router> {
        Some(inbound::routes(inbound, self.token.clone()))
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let body = gateway::OutboundSms::from_message(message)?;
        let response = self
            .http
            .post(format!("{}/messages", self.gateway_url))
            .bearer_auth(&self.token)
            // The gateway drops a retry it already took, so a crash between its 2xx and our ack
            // does not send the SMS twice.
            .header("idempotency-key", message.id.to_string())
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() { "timed out" } else { "unreachable" };
                SendError::retryable(format!("SMS gateway {what}"))
            })?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(gateway::classify_status(status));
        }
        // The gateway's id is nice to have (for support questions), not needed: a 2xx is the
        // acceptance, whatever the body says.
        let accepted: Option<gateway::Accepted> = response.json().await.ok();
        Ok(SendReceipt { provider_message_id: accepted.map(|a| a.id) })
    }
}
