//! The Slack Web API (<https://api.slack.com/web>) over `reqwest`: each method a POST to
//! `<api_base>/<method>` with the bot token, answered `{"ok": true, ...}` or
//! `{"ok": false, "error": "..."}`. Rate limits (HTTP 429 with `Retry-After`, or the error
//! `ratelimited`) are waited out in place up to a ceiling and otherwise handed back as a wait
//! ([`SendError::wait`]); other failures are classed retryable or permanent.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use serde_json::Value;
use switchboard_adapter::SendError;
use tracing::{debug, warn};

/// Waits taken in place within one call before the call hands the wait back.
const INLINE_WAITS: usize = 3;

/// A Web API client for one bot token.
#[derive(Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    base: Arc<str>,
    token: Arc<str>,
    /// Longest `Retry-After` waited in place.
    max_wait: Duration,
}

/// A method's body: JSON (most write methods), or a form (methods that take only form arguments,
/// such as `files.getUploadURLExternal`).
pub enum Args<'a> {
    /// `application/json; charset=utf-8`.
    Json(&'a Value),
    /// `application/x-www-form-urlencoded`.
    Form(&'a [(&'a str, String)]),
}

/// Errors Slack documents as temporary: worth trying again.
const RETRYABLE: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
    "ekm_access_denied",
];

impl SlackApi {
    /// A client of `base` (`https://slack.com/api`) with `token`; `timeout` per call.
    pub fn new(base: &str, token: &str, timeout: Duration, max_wait: Duration) -> Result<SlackApi, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(SlackApi { http, base: Arc::from(base.trim_end_matches('/')), token: Arc::from(token), max_wait })
    }

    /// The same client with another token (the app-level token for `apps.connections.open`).
    pub fn with_token(&self, token: &str) -> SlackApi {
        SlackApi { token: Arc::from(token), ..self.clone() }
    }

    /// The underlying HTTP client (file transfers).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The bot token, for fetching `url_private` files.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Calls `method` with a JSON body.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        self.call_with(method, Args::Json(body)).await
    }

    /// Calls `method`, waiting out rate limits up to the ceiling a few times.
    pub async fn call_with(&self, method: &str, args: Args<'_>) -> Result<Value, SendError> {
        let mut waited = 0;
        loop {
            match self.once(method, &args).await {
                Err(e) if e.retry_after.is_some_and(|w| w <= self.max_wait) && waited < INLINE_WAITS => {
                    let wait = e.retry_after.unwrap_or_default();
                    debug!(method, wait_ms = wait.as_millis() as u64, "slack rate limit: waiting");
                    tokio::time::sleep(wait).await;
                    waited += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(&self, method: &str, args: &Args<'_>) -> Result<Value, SendError> {
        let url = format!("{}/{method}", self.base);
        let request = self.http.post(&url).header(AUTHORIZATION, format!("Bearer {}", self.token));
        let request = match args {
            Args::Json(body) => request.json(body),
            Args::Form(fields) => request.form(fields),
        };
        let response = request.send().await.map_err(|e| SendError::retryable(format!("{method}: {e}")))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body: Value = match response.json().await {
            Ok(v) => v,
            Err(_) if status == StatusCode::TOO_MANY_REQUESTS => Value::Null,
            Err(e) if status.is_server_error() => {
                return Err(SendError::retryable(format!("{method}: HTTP {status}: {e}")));
            }
            Err(e) => return Err(SendError::permanent(format!("{method}: HTTP {status}, unreadable answer: {e}"))),
        };
        let error = body["error"].as_str().unwrap_or_default();
        if status == StatusCode::TOO_MANY_REQUESTS || error == "ratelimited" {
            let wait = retry_after.unwrap_or(Duration::from_secs(1));
            warn!(method, wait_secs = wait.as_secs_f64(), "slack asked to wait (rate limited)");
            return Err(SendError::wait(format!("{method}: ratelimited"), wait));
        }
        if status.is_server_error() {
            return Err(SendError::retryable(format!("{method}: HTTP {status}")));
        }
        if body["ok"].as_bool() == Some(true) {
            return Ok(body);
        }
        let error = if error.is_empty() { format!("HTTP {status}") } else { error.to_string() };
        if RETRYABLE.contains(&error.as_str()) {
            Err(SendError::retryable(format!("{method}: {error}")))
        } else {
            Err(SendError::permanent(format!("{method}: {error}")))
        }
    }

    /// Fetches a `url_private(_download)` file with the bot token, at most `max_bytes` of it:
    /// `Ok(None)` when it is bigger.
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, String> {
        let mut response = self
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .send()
            .await
            .map_err(|e| format!("download a file: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("download a file: HTTP {}", response.status()));
        }
        if response.content_length().is_some_and(|n| n > max_bytes) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("download a file: {e}"))? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// Uploads `bytes` as `name` into `channel` (in thread `thread_ts`) the way Slack asks:
    /// `files.getUploadURLExternal`, the bytes POSTed to the URL it gave, then
    /// `files.completeUploadExternal`.
    pub async fn upload(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        name: &str,
        bytes: Vec<u8>,
        comment: Option<&str>,
    ) -> Result<(), SendError> {
        let fields = [("filename", name.to_string()), ("length", bytes.len().to_string())];
        let got = self.call_with("files.getUploadURLExternal", Args::Form(&fields)).await?;
        let (Some(url), Some(file_id)) = (got["upload_url"].as_str(), got["file_id"].as_str()) else {
            return Err(SendError::permanent("files.getUploadURLExternal: no upload_url or file_id"));
        };
        let sent = self
            .http
            .post(url)
            .body(bytes)
            .send()
            .await
            .map_err(|e| SendError::retryable(format!("upload a file: {e}")))?;
        match sent.status() {
            s if s.is_success() => {}
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                return Err(SendError::retryable(format!("upload a file: HTTP {s}")));
            }
            s => return Err(SendError::permanent(format!("upload a file: HTTP {s}"))),
        }
        let files = serde_json::json!([{ "id": file_id, "title": name }]).to_string();
        let mut fields = vec![("files", files), ("channel_id", channel.to_string())];
        if let Some(ts) = thread_ts {
            fields.push(("thread_ts", ts.to_string()));
        }
        if let Some(comment) = comment {
            fields.push(("initial_comment", comment.to_string()));
        }
        self.call_with("files.completeUploadExternal", Args::Form(&fields)).await?;
        Ok(())
    }
}

/// `Retry-After` in seconds (Slack sends whole seconds).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}
