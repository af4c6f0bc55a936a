//! Outbound: POST a signed JSON message to the source's URL.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

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
    /// Files the message carries (an agent's reply with files), by reference: name, type, size
    /// and the object in `sb_attachments`. Listed so a receiver knows of them; this channel does
    /// not serve their bytes over HTTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<switchboard_core::AttachmentRef>,
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
    let live = channel.live();
    let source =
        live.sources.get(name).ok_or_else(|| SendError::permanent(format!("unknown webhook source {name}")))?;
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
        attachments: message.attachments.clone(),
    };
    let body = serde_json::to_vec(&delivery).map_err(|e| SendError::permanent(format!("cannot encode: {e}")))?;
    post_signed(&channel.http, url, &source.keys(), &message.id.to_string(), body, &format!("source {name}")).await?;
    Ok(SendReceipt::default())
}

/// POSTs a JSON body signed with Standard Webhooks headers (`webhook-id` = `id`; one signature per
/// key, several while a secret is rotated), and classifies failures: a `429` or `503` with
/// `Retry-After` is a wait the runtime honours (never a dead letter); timeouts, refused
/// connections, 5xx, 408 and 429 are worth retrying; other 4xx are not.
pub(crate) async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    keys: &[&[u8]],
    id: &str,
    body: Vec<u8>,
    receiver: &str,
) -> Result<(), SendError> {
    let ts = Utc::now().timestamp();
    let mut request = http.post(url);
    // The receiver may continue the trace (and send `traceparent` back with the agent's answer).
    for (key, value) in switchboard_bus::trace::current() {
        request = request.header(key, value);
    }
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::ID, id)
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign_all(keys, id, ts, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if let Some(refused) = crate::guard::forbidden_in(&e) {
                return SendError::permanent(format!("receiver of {receiver} refused: {refused}"));
            }
            let what = if e.is_timeout() { "timed out" } else { "unreachable" };
            SendError::retryable(format!("receiver of {receiver} {what}"))
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let mut reason = format!("HTTP {} from receiver of {receiver}", status.as_u16());
    if status.is_redirection() {
        reason.push_str(" (redirects are not followed: configure the final URL)");
    }
    if matches!(status.as_u16(), 429 | 503)
        && let Some(after) = retry_after(response.headers(), SystemTime::now())
    {
        return Err(SendError::wait(format!("{reason}, asked to wait {} s", after.as_secs()), after));
    }
    // 408 and 429 say "later"; other 4xx say the request itself is wrong and will stay wrong.
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(SendError::retryable(reason))
    } else {
        Err(SendError::permanent(reason))
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP date (any of the three forms
/// RFC 9110 names), at least one second so a receiver answering `0` or a past date is not
/// hammered. `None` when absent or unreadable (the failure is then retried with back-off).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let after = if value.bytes().all(|b| b.is_ascii_digit()) {
        // An absurd number of seconds is still a wait; the runtime caps it (`max_retry_after_secs`).
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or_default()
    };
    Some(after.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use super::*;

    fn after(value: &str, now: SystemTime) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        retry_after(&headers, now)
    }

    #[test]
    fn retry_after_reads_seconds_and_every_http_date_form() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(after("Sun, 06 Nov 1994 08:50:37 GMT", now), Some(Duration::from_secs(60)), "IMF-fixdate");
        assert_eq!(after("Sunday, 06-Nov-94 08:49:47 GMT", now), Some(Duration::from_secs(10)), "RFC 850");
        assert_eq!(after("Sun Nov  6 08:49:42 1994", now), Some(Duration::from_secs(5)), "asctime");
        assert_eq!(after("0", now), Some(Duration::from_secs(1)), "at least a second");
        assert_eq!(after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::from_secs(1)), "a past date");
        assert_eq!(after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)), "capped later");
        assert_eq!(after("soon", now), None);
        assert_eq!(after("-5", now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
