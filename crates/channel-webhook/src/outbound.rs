//! Outbound: POST a signed JSON message to the source's URL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_adapter::{SendError, SendReceipt};
use switchboard_core::{OutboundKind, OutboundMessage};
use uuid::Uuid;

use crate::{SOURCE_KEY, WebhookChannel, signature};

/// The JSON body POSTed to a source's `outbound_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Outbound message id; also the `webhook-id` header, so receivers can de-duplicate.
    pub id: Uuid,
    /// The conversation.
    pub conversation_id: Uuid,
    /// The customer's id at the source.
    pub customer_id: String,
    /// The thread at the source (the `thread_id` the source sent, or the customer id).
    pub thread_id: String,
    /// The text.
    pub text: String,
    /// Subject, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The source's message id this answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// `agent_reply`, `auto_reply` or `system`.
    pub kind: OutboundKind,
    /// The agent who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Extra metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// The source an outbound message is for: its metadata, else the thread key's prefix.
fn source_of(message: &OutboundMessage) -> Option<&str> {
    message
        .metadata
        .get(SOURCE_KEY)
        .map(String::as_str)
        .or_else(|| message.to.thread_key.split_once(':').map(|(s, _)| s))
}

pub(crate) async fn send(channel: &WebhookChannel, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
    let name = source_of(message).ok_or_else(|| SendError::permanent("no webhook source on the message"))?;
    let source =
        channel.sources.get(name).ok_or_else(|| SendError::permanent(format!("unknown webhook source {name}")))?;
    let url = source
        .outbound_url
        .as_deref()
        .ok_or_else(|| SendError::permanent(format!("source {name} has no outbound_url")))?;
    let prefix = format!("{name}:");
    let strip = |s: &str| s.strip_prefix(&prefix).unwrap_or(s).to_string();
    let mut metadata = message.metadata.clone();
    metadata.remove(SOURCE_KEY);
    let delivery = WebhookDelivery {
        id: message.id,
        conversation_id: message.conversation_id,
        customer_id: message.to.customer_id.clone(),
        thread_id: strip(&message.to.thread_key),
        text: message.text.clone(),
        subject: message.subject.clone(),
        in_reply_to: message.reply_to.as_deref().map(strip),
        kind: message.kind,
        agent_id: message.agent_id.clone(),
        created_at: message.created_at,
        metadata,
    };
    let body = serde_json::to_vec(&delivery).map_err(|e| SendError::permanent(format!("cannot encode: {e}")))?;
    post_signed(&channel.http, url, &source.keys(), &message.id.to_string(), body, &format!("source {name}")).await?;
    Ok(SendReceipt::default())
}

/// POSTs a JSON body signed with Standard Webhooks headers (`webhook-id` = `id`), and classifies
/// failures (one signature per key: several while a secret is rotated): timeouts, refused connections, 5xx, 408 and 429 are worth retrying; other 4xx are not.
pub(crate) async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    keys: &[&[u8]],
    id: &str,
    body: Vec<u8>,
    receiver: &str,
) -> Result<(), SendError> {
    let ts = Utc::now().timestamp();
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::ID, id)
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign_all(keys, id, ts, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let what = if e.is_timeout() { "timed out" } else { "unreachable" };
            SendError::retryable(format!("receiver of {receiver} {what}"))
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("HTTP {} from receiver of {receiver}", status.as_u16());
    // 408 and 429 say "later"; other 4xx say the request itself is wrong and will stay wrong.
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(SendError::retryable(reason))
    } else {
        Err(SendError::permanent(reason))
    }
}
