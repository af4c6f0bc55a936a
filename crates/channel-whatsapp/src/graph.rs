//! The Graph API calls the channel makes (`reqwest`): send a message, upload a file, look a
//! media id up and download it. Sends are paced (`governor`: the number's throughput and one
//! customer's pair rate, shared by every sender of the number in the process); errors are sorted
//! by their documented codes: rate limits waited (in place up to `max_retry_after_secs`, then
//! handed back as a wait, never a dead letter), re-engagement (131047) reported as such, 5xx and
//! network failures retried, the rest permanent.
//!
//! Codes: <https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes>.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use switchboard_adapter::SendError;
use tracing::warn;

use crate::config::WhatsAppConfig;

/// What a failed call means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A rate limit: try again after this long.
    Wait(Duration),
    /// The customer's 24-hour window is closed (131047): only a template may go.
    ReEngage,
    /// Worth trying again (5xx, network, WhatsApp's temporary errors).
    Retry,
    /// Will not change (a bad number, a customer who cannot receive, a bad request).
    Permanent,
}

/// A failed Graph API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct GraphError {
    /// What to do about it.
    pub class: Class,
    /// What happened, for the log and the dead letter (never the token).
    pub reason: String,
}

impl From<GraphError> for SendError {
    fn from(e: GraphError) -> SendError {
        match e.class {
            Class::Wait(after) => SendError::wait(e.reason, after),
            Class::Retry => SendError::retryable(e.reason),
            Class::ReEngage | Class::Permanent => SendError::permanent(e.reason),
        }
    }
}

/// Sorts an error answer: the HTTP status, the body's `error.code`, and `Retry-After` if given.
pub fn classify(status: u16, code: Option<i64>, retry_after: Option<Duration>) -> Class {
    match code {
        // Throughput of the number; one customer's pair rate; the app's and the account's limits.
        Some(130429) => Class::Wait(retry_after.unwrap_or(Duration::from_secs(2))),
        Some(131056) => Class::Wait(retry_after.unwrap_or(Duration::from_secs(6))),
        Some(4 | 80007 | 131048) => Class::Wait(retry_after.unwrap_or(Duration::from_secs(60))),
        Some(131047) => Class::ReEngage,
        // Unknown, temporary, service unavailable, something went wrong; an expired token (an
        // operator can renew it within the retry window).
        Some(1 | 2 | 131000 | 131016 | 190) => Class::Retry,
        _ if status == 429 => Class::Wait(retry_after.unwrap_or(Duration::from_secs(2))),
        _ if status >= 500 || status == 408 => Class::Retry,
        _ => Class::Permanent,
    }
}

/// The `error` of an error answer, in words: `(#131026) Message undeliverable` and its code.
fn describe(status: u16, body: &str) -> (Option<i64>, String) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let e = &v["error"];
    let code = e["code"].as_i64();
    let message = e["message"].as_str().unwrap_or("no message");
    let details = e["error_data"]["details"].as_str().map(|d| format!(": {d}")).unwrap_or_default();
    let reason = match code {
        Some(c) => format!("WhatsApp refused (HTTP {status}, code {c}): {message}{details}"),
        None => format!("WhatsApp answered HTTP {status}"),
    };
    (code, reason.chars().take(1000).collect())
}

/// The number's and each customer's send rates, shared by every [`Graph`] of the number.
struct Pacer {
    number: DefaultDirectRateLimiter,
    recipient: DefaultKeyedRateLimiter<String>,
}

/// Keys of the per-customer limiter kept before idle ones are forgotten.
const MAX_PACED_RECIPIENTS: usize = 10_000;

/// The Graph API for one business number.
#[derive(Clone)]
pub struct Graph {
    http: reqwest::Client,
    /// `<graph_url>/<version>`.
    base: String,
    phone_number_id: String,
    token: Arc<str>,
    pacer: Arc<Pacer>,
    max_wait: Duration,
}

impl Graph {
    /// The API for the configured number with `token`.
    pub fn new(cfg: &WhatsAppConfig, token: &str) -> Graph {
        let rate = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let pacer = Pacer {
            number: RateLimiter::direct(Quota::per_second(rate(cfg.per_number_per_sec))),
            recipient: RateLimiter::keyed(
                Quota::per_minute(rate(cfg.per_recipient_per_minute)).allow_burst(rate(cfg.per_recipient_burst)),
            ),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.request_timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Graph {
            http,
            base: cfg.graph_base(),
            phone_number_id: cfg.phone_number_id.clone(),
            token: token.into(),
            pacer: Arc::new(pacer),
            max_wait: Duration::from_secs(cfg.max_retry_after_secs),
        }
    }

    /// Sends one message (`body` without `messaging_product`, added here) to `to`, within the
    /// rates, waiting out rate limits up to the configured maximum; returns its `wamid`.
    pub async fn send(&self, to: &str, mut body: Value) -> Result<String, GraphError> {
        body["messaging_product"] = "whatsapp".into();
        body["recipient_type"] = "individual".into();
        body["to"] = to.into();
        let url = format!("{}/{}/messages", self.base, self.phone_number_id);
        let mut waited = Duration::ZERO;
        loop {
            if self.pacer.recipient.len() > MAX_PACED_RECIPIENTS {
                self.pacer.recipient.retain_recent();
            }
            self.pacer.recipient.until_key_ready(&to.to_string()).await;
            self.pacer.number.until_ready().await;
            match self.call(self.http.post(&url).json(&body)).await {
                Ok(v) => {
                    return v["messages"][0]["id"].as_str().map(str::to_string).ok_or(GraphError {
                        class: Class::Retry,
                        reason: "WhatsApp accepted a message without giving its id".into(),
                    });
                }
                Err(GraphError { class: Class::Wait(after), reason }) if waited + after <= self.max_wait => {
                    warn!(wait_ms = after.as_millis() as u64, %reason, "WhatsApp rate limit; waiting");
                    waited += after;
                    tokio::time::sleep(after).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks the token against the number (`GET /{phone-number-id}`): its display number, or
    /// why not; a refused token (HTTP 401, code 190) is [`Class::Permanent`].
    pub async fn check_number(&self) -> Result<String, GraphError> {
        let url = format!("{}/{}?fields=display_phone_number,verified_name", self.base, self.phone_number_id);
        match self.call(self.http.get(url)).await {
            Ok(v) => Ok(v["display_phone_number"].as_str().unwrap_or("?").to_string()),
            Err(e) if e.reason.contains("code 190") || e.reason.contains("HTTP 401") => Err(GraphError {
                class: Class::Permanent,
                reason: format!("the access token is refused: {}", e.reason),
            }),
            Err(e) => Err(e),
        }
    }

    /// Uploads a file for sending (`POST /{phone-number-id}/media`); returns its media id.
    pub async fn upload(&self, bytes: Vec<u8>, mime: &str, filename: &str) -> Result<String, GraphError> {
        let url = format!("{}/{}/media", self.base, self.phone_number_id);
        let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string());
        let part = part.mime_str(mime).map_err(|_| GraphError {
            class: Class::Permanent,
            reason: format!("`{mime}` is not a MIME type WhatsApp could take"),
        })?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_string())
            .part("file", part);
        let v = self.call(self.http.post(&url).multipart(form)).await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or(GraphError { class: Class::Retry, reason: "WhatsApp took an upload without giving its id".into() })
    }

    /// Looks a media id up: its download URL and stated size (`GET /{media-id}`).
    pub async fn media_url(&self, id: &str) -> Result<(String, Option<u64>), GraphError> {
        let v = self.call(self.http.get(format!("{}/{id}", self.base))).await?;
        let url = v["url"]
            .as_str()
            .ok_or(GraphError { class: Class::Retry, reason: format!("media {id} came without a URL") })?;
        Ok((url.to_string(), v["file_size"].as_u64()))
    }

    /// Downloads a media URL with the token, at most `max` bytes: `None` when it is larger.
    pub async fn download(&self, url: &str, max: u64) -> Result<Option<Vec<u8>>, GraphError> {
        let mut response =
            self.http.get(url).bearer_auth(&*self.token).send().await.map_err(|e| GraphError {
                class: Class::Retry,
                reason: format!("media download: {}", e.without_url()),
            })?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(GraphError {
                class: classify(status, None, None),
                reason: format!("media download: HTTP {status}"),
            });
        }
        if response.content_length().is_some_and(|n| n > max) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| GraphError { class: Class::Retry, reason: format!("media download: {}", e.without_url()) })?
        {
            if (bytes.len() + chunk.len()) as u64 > max {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// One call with the token; a `2xx` answer's JSON, or the error sorted.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, GraphError> {
        let response = request
            .bearer_auth(&*self.token)
            .send()
            .await
            .map_err(|e| GraphError { class: Class::Retry, reason: format!("Graph API: {}", e.without_url()) })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        let text = response
            .text()
            .await
            .map_err(|e| GraphError { class: Class::Retry, reason: format!("Graph API body: {}", e.without_url()) })?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|e| GraphError { class: Class::Retry, reason: format!("Graph API answer: {e}") });
        }
        let (code, reason) = describe(status, &text);
        Err(GraphError { class: classify(status, code, retry_after), reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_are_sorted() {
        let s = Duration::from_secs;
        assert_eq!(classify(400, Some(130429), None), Class::Wait(s(2)));
        assert_eq!(classify(400, Some(131056), None), Class::Wait(s(6)));
        assert_eq!(classify(400, Some(80007), Some(s(30))), Class::Wait(s(30)));
        assert_eq!(classify(429, None, Some(s(3))), Class::Wait(s(3)));
        assert_eq!(classify(400, Some(131047), None), Class::ReEngage);
        assert_eq!(classify(400, Some(131026), None), Class::Permanent);
        assert_eq!(classify(400, Some(100), None), Class::Permanent);
        assert_eq!(classify(400, Some(131051), None), Class::Permanent);
        assert_eq!(classify(500, Some(131000), None), Class::Retry);
        assert_eq!(classify(503, None, None), Class::Retry);
        assert_eq!(classify(401, Some(190), None), Class::Retry);
        assert_eq!(classify(404, None, None), Class::Permanent);
    }

    #[test]
    fn an_error_body_is_described_by_its_code_and_message() {
        let body = r#"{"error":{"message":"(#131026) Message undeliverable","type":"OAuthException","code":131026,"error_data":{"messaging_product":"whatsapp","details":"Unable to deliver"},"error_subcode":2494010,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
        let (code, reason) = describe(400, body);
        assert_eq!(code, Some(131026));
        assert_eq!(
            reason,
            "WhatsApp refused (HTTP 400, code 131026): (#131026) Message undeliverable: Unable to deliver"
        );
        assert_eq!(describe(502, "<html>bad gateway</html>"), (None, "WhatsApp answered HTTP 502".into()));
        let e: SendError = GraphError { class: Class::Wait(Duration::from_secs(6)), reason: "x".into() }.into();
        assert_eq!(e.retry_after, Some(Duration::from_secs(6)));
        let e: SendError = GraphError { class: Class::ReEngage, reason: "x".into() }.into();
        assert!(!e.retryable);
    }
}
