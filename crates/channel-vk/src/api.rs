//! The VK API over `reqwest`: methods POSTed as forms with the community token and version
//! (never in a URL, so no error text carries the token), paced by one `governor` budget per
//! community token (VK allows 20 calls a second), the Long Poll server's `a_check`, file
//! downloads within a limit and multipart uploads to VK's upload servers.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use switchboard_adapter::SendError;
use tracing::warn;

use crate::wire::{ErrorClass, classify};

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// VK answered `{"error": {"error_code", "error_msg"}}`.
    #[error("VK error {code}: {message}")]
    Vk {
        /// `error_code`.
        code: i64,
        /// `error_msg`.
        message: String,
    },
    /// No answer, or not one VK gives (network, HTTP status, not JSON).
    #[error("{0}")]
    Transport(String),
}

impl ApiError {
    /// As a send failure: waits for flood control are waits, a refused customer or a bad
    /// request permanent, the rest retried.
    pub fn into_send_error(self) -> SendError {
        match self {
            ApiError::Vk { code, message } => match classify(code) {
                ErrorClass::Wait => SendError::wait(format!("VK error {code}: {message}"), Duration::from_secs(1)),
                ErrorClass::Auth => {
                    SendError::retryable(format!("VK refused the community token (error 5): {message}"))
                }
                ErrorClass::Denied => SendError::permanent(crate::wire::denied_reason(code)),
                ErrorClass::Permanent => SendError::permanent(format!("VK refused: error {code}: {message}")),
            },
            ApiError::Transport(e) => SendError::retryable(e),
        }
    }
}

/// The Long Poll server of a community: where and with which key to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongPollServer {
    /// `server` (a full URL).
    pub server: String,
    /// `key`.
    pub key: String,
    /// `ts`: the first event not yet read.
    pub ts: String,
}

/// A client of one community's API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Arc<str>,
    version: String,
    limiter: Arc<DefaultDirectRateLimiter>,
    max_wait: Duration,
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Api {
    /// A client for `base` (`https://api.vk.com/method`) with the community `token`.
    pub fn new(base: &str, token: &str, version: &str, per_sec: u32, max_wait_secs: u32) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap_or_default();
        let quota = Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN));
        Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.into(),
            version: version.into(),
            limiter: Arc::new(RateLimiter::direct(quota)),
            max_wait: Duration::from_secs(u64::from(max_wait_secs)),
        }
    }

    /// One call of `method`, within the budget; `response` on success.
    pub async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, ApiError> {
        self.limiter.until_ready().await;
        let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("access_token", &self.token));
        form.push(("v", &self.version));
        let response = self
            .http
            .post(format!("{}/{method}", self.base))
            .form(&form)
            .send()
            .await
            .map_err(|e| ApiError::Transport(format!("{method}: {}", e.without_url())))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| {
            ApiError::Transport(format!("{method}: HTTP {status}: unreadable answer: {}", e.without_url()))
        })?;
        if let Some(error) = body.get("error") {
            let code = error["error_code"].as_i64().unwrap_or(0);
            let message = error["error_msg"].as_str().unwrap_or("no message").chars().take(300).collect();
            return Err(ApiError::Vk { code, message });
        }
        body.get("response")
            .cloned()
            .ok_or_else(|| ApiError::Transport(format!("{method}: HTTP {status}: no `response`")))
    }

    /// A call that waits out VK's "too many requests" and flood control (errors 6, 9, 10) up to
    /// the configured maximum; past it, the caller gets a wait to hand back.
    pub async fn call_waiting(&self, method: &str, params: &[(&str, String)]) -> Result<Value, ApiError> {
        let mut waited = Duration::ZERO;
        let mut wait = Duration::from_millis(500);
        loop {
            match self.call(method, params).await {
                Err(ApiError::Vk { code, .. })
                    if classify(code) == ErrorClass::Wait && waited + wait <= self.max_wait =>
                {
                    warn!(method, code, wait_ms = wait.as_millis() as u64, "VK asked to slow down; waiting");
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }

    /// `groups.getLongPollServer`.
    pub async fn long_poll_server(&self, group_id: u64) -> Result<LongPollServer, ApiError> {
        let r = self.call_waiting("groups.getLongPollServer", &[("group_id", group_id.to_string())]).await?;
        match (r["server"].as_str(), r["key"].as_str(), string_of(&r["ts"])) {
            (Some(server), Some(key), Some(ts)) => Ok(LongPollServer { server: server.into(), key: key.into(), ts }),
            _ => Err(ApiError::Transport("groups.getLongPollServer: no server, key or ts".into())),
        }
    }

    /// One `a_check` on the Long Poll server: the answer as VK gave it (`{ts, updates}` or
    /// `{failed}`).
    pub async fn check(&self, server: &LongPollServer, ts: &str, wait: u32) -> Result<Value, String> {
        let response = self
            .http
            .get(&server.server)
            .query(&[("act", "a_check"), ("key", server.key.as_str()), ("ts", ts), ("wait", &wait.to_string())])
            .timeout(Duration::from_secs(u64::from(wait) + 15))
            .send()
            .await
            .map_err(|e| format!("a_check: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("a_check: HTTP {status}"));
        }
        response.json().await.map_err(|e| format!("a_check: unreadable answer: {}", e.without_url()))
    }

    /// A file's bytes, or `None` when it is larger than `max_bytes` (stopped reading there).
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, String> {
        let mut response = self.http.get(url).send().await.map_err(|e| format!("download: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("download: HTTP {}", response.status()));
        }
        if response.content_length().is_some_and(|n| n > max_bytes) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("download: {}", e.without_url()))? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// POSTs a file to an upload server (multipart, the file in `field`); its JSON answer.
    pub async fn upload(
        &self,
        url: &str,
        field: &'static str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Value, ApiError> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(content_type)
            .map_err(|e| ApiError::Transport(format!("upload: content type: {e}")))?;
        let form = reqwest::multipart::Form::new().part(field, part);
        self.limiter.until_ready().await;
        let response = self
            .http
            .post(url)
            .multipart(form)
            .send()
            .await
            .map_err(|e| ApiError::Transport(format!("upload: {}", e.without_url())))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| ApiError::Transport(format!("upload: HTTP {status}: {}", e.without_url())))?;
        if let Some(error) = body.get("error") {
            let message = error.as_str().map(str::to_string).unwrap_or_else(|| error.to_string());
            return Err(ApiError::Transport(format!("upload refused: {message}")));
        }
        Ok(body)
    }
}
