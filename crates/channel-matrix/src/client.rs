//! The bot's client-server API calls, over `reqwest`: the few endpoints an agent endpoint needs
//! (sync, send, redact, rooms, state, media), with Matrix's errors classified for the consumer:
//! `M_LIMIT_EXCEEDED` waited (within a bound) or handed back with its wait, 5xx and network
//! failures retried, other 4xx permanent.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_adapter::SendError;
use tracing::{debug, warn};

/// What percent-encoding leaves alone in a path segment (RFC 3986 unreserved characters).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The longest `retry_after_ms` waited inside one call; a longer one is handed back.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(20);

/// How long a request other than `/sync` may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One path segment, encoded (room and event ids carry `!`, `$`, `:`, `/`, `+`).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A failed call: the HTTP status (none when no answer came), Matrix's `errcode` and message,
/// and the wait the server asked for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{errcode} ({}): {message}", status.map_or("no answer".to_string(), |s| s.to_string()))]
pub struct MatrixError {
    /// HTTP status; `None` when the homeserver could not be reached.
    pub status: Option<u16>,
    /// Matrix's error code, e.g. `M_FORBIDDEN`; `M_NETWORK` when there was no answer.
    pub errcode: String,
    /// The homeserver's message.
    pub message: String,
    /// `retry_after_ms` (or `Retry-After`) of a rate-limited call.
    pub retry_after: Option<Duration>,
}

impl MatrixError {
    fn network(e: impl std::fmt::Display) -> MatrixError {
        MatrixError { status: None, errcode: "M_NETWORK".into(), message: e.to_string(), retry_after: None }
    }

    /// Whether trying again may work: no answer, 5xx, or rate limited.
    pub fn retryable(&self) -> bool {
        self.status.is_none_or(|s| s >= 500 || s == 429) || self.errcode == "M_LIMIT_EXCEEDED"
    }

    /// Whether the homeserver said there is no such thing (`M_NOT_FOUND` or 404).
    pub fn not_found(&self) -> bool {
        self.errcode == "M_NOT_FOUND" || self.status == Some(404)
    }
}

impl From<MatrixError> for SendError {
    fn from(e: MatrixError) -> SendError {
        match (e.retry_after, e.retryable()) {
            (Some(wait), _) => SendError::wait(e.to_string(), wait),
            (None, true) => SendError::retryable(e.to_string()),
            (None, false) => SendError::permanent(e.to_string()),
        }
    }
}

/// The bot's connection to its homeserver.
#[derive(Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    base: Arc<str>,
    token: Arc<str>,
}

impl std::fmt::Debug for MatrixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl MatrixClient {
    /// A client for `homeserver` (the base URL) acting with `access_token`.
    pub fn new(homeserver: &str, access_token: &str) -> Result<MatrixClient, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("switchboard-matrix/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(MatrixClient { http, base: homeserver.trim_end_matches('/').into(), token: access_token.into() })
    }

    /// One call; a rate-limited one is waited and tried again while the wait is short.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, MatrixError> {
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&*self.token)
                .timeout(timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = request.send().await.map_err(MatrixError::network)?;
            match answer_json(answer).await {
                Err(e) if e.retry_after.is_some_and(|w| w <= MAX_INLINE_WAIT) => {
                    let wait = e.retry_after.unwrap_or_default();
                    warn!(wait_ms = wait.as_millis() as u64, "homeserver rate limit; waiting");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// `GET /account/whoami`: whose token this is.
    pub async fn whoami(&self) -> Result<String, MatrixError> {
        let v = self.call(Method::GET, "/_matrix/client/v3/account/whoami", None, REQUEST_TIMEOUT).await?;
        Ok(v["user_id"].as_str().unwrap_or_default().to_string())
    }

    /// `GET /sync` from `since` (the whole state when `None`), waiting up to `timeout` for events.
    pub async fn sync(&self, since: Option<&str>, timeout: Duration, filter: &str) -> Result<Value, MatrixError> {
        let mut path = format!(
            "/_matrix/client/v3/sync?timeout={}&filter={}&set_presence=offline",
            timeout.as_millis(),
            seg(filter)
        );
        if let Some(since) = since {
            path.push_str(&format!("&since={}", seg(since)));
        }
        self.call(Method::GET, &path, None, timeout + REQUEST_TIMEOUT).await
    }

    /// `GET /rooms/{room}/messages` backwards from `from` down to `to`: up to `limit` events,
    /// newest first, and the token to go on from (`None` at `to` or the room's start).
    pub async fn messages_back(
        &self,
        room: &str,
        from: &str,
        to: &str,
        limit: u32,
    ) -> Result<(Vec<Value>, Option<String>), MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&from={}&to={}&limit={limit}",
            seg(room),
            seg(from),
            seg(to)
        );
        let v = self.call(Method::GET, &path, None, REQUEST_TIMEOUT).await?;
        let chunk = v["chunk"].as_array().cloned().unwrap_or_default();
        let end = v["end"].as_str().filter(|_| !chunk.is_empty()).map(str::to_string);
        Ok((chunk, end))
    }

    /// `PUT /rooms/{room}/send/{type}/{txn}`: the event's id. The same `txn` is the same event:
    /// the homeserver answers a repeated one with the first one's id instead of sending twice.
    pub async fn send(&self, room: &str, kind: &str, txn: &str, content: &Value) -> Result<String, MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/send/{}/{}", seg(room), seg(kind), seg(txn));
        let v = self.call(Method::PUT, &path, Some(content), REQUEST_TIMEOUT).await?;
        event_id(&v)
    }

    /// `PUT /rooms/{room}/redact/{event}/{txn}`.
    pub async fn redact(&self, room: &str, event: &str, txn: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/redact/{}/{}", seg(room), seg(event), seg(txn));
        self.call(Method::PUT, &path, Some(&json!({})), REQUEST_TIMEOUT).await.map(drop)
    }

    /// `POST /createRoom`: the new room's id.
    pub async fn create_room(&self, body: &Value) -> Result<String, MatrixError> {
        let v = self.call(Method::POST, "/_matrix/client/v3/createRoom", Some(body), REQUEST_TIMEOUT).await?;
        v["room_id"].as_str().map(str::to_string).ok_or_else(|| MatrixError::network("createRoom: no room_id"))
    }

    /// `POST /join/{room}`.
    pub async fn join(&self, room: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/join/{}", seg(room));
        self.call(Method::POST, &path, Some(&json!({})), REQUEST_TIMEOUT).await.map(drop)
    }

    /// `POST /rooms/{room}/leave`.
    pub async fn leave(&self, room: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/leave", seg(room));
        self.call(Method::POST, &path, Some(&json!({})), REQUEST_TIMEOUT).await.map(drop)
    }

    /// `GET /rooms/{room}/state/{type}/{key}`: the state event's content, `None` when unset.
    pub async fn state(&self, room: &str, kind: &str, key: &str) -> Result<Option<Value>, MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/state/{}/{}", seg(room), seg(kind), seg(key));
        match self.call(Method::GET, &path, None, REQUEST_TIMEOUT).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /_matrix/media/v3/upload`: the content URI (`mxc://server/id`).
    pub async fn upload(&self, bytes: Vec<u8>, content_type: &str, filename: &str) -> Result<String, MatrixError> {
        let url = format!("{}/_matrix/media/v3/upload?filename={}", self.base, seg(filename));
        let answer = self
            .http
            .post(url)
            .bearer_auth(&*self.token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(REQUEST_TIMEOUT * 5)
            .body(bytes)
            .send()
            .await
            .map_err(MatrixError::network)?;
        let v = answer_json(answer).await?;
        v["content_uri"].as_str().map(str::to_string).ok_or_else(|| MatrixError::network("upload: no content_uri"))
    }

    /// Downloads `mxc://server/id`, at most `max_bytes` (`Ok(None)` when larger): authenticated
    /// media (`/_matrix/client/v1/media/download`, spec 1.11) first, the older unauthenticated
    /// endpoint when the homeserver does not know that one.
    pub async fn download(&self, mxc: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, MatrixError> {
        let Some((server, id)) = mxc.strip_prefix("mxc://").and_then(|r| r.split_once('/')) else {
            return Err(MatrixError {
                status: Some(400),
                errcode: "M_INVALID_PARAM".into(),
                message: format!("`{mxc}` is not a content URI"),
                retry_after: None,
            });
        };
        let (server, id) = (seg(server), seg(id));
        let mut answer = self.get_media(&format!("/_matrix/client/v1/media/download/{server}/{id}")).await?;
        if matches!(answer.status(), StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) {
            debug!("no authenticated media download; trying the unauthenticated endpoint");
            let older = self.get_media(&format!("/_matrix/media/v3/download/{server}/{id}")).await?;
            if older.status().is_success() || answer.status() == StatusCode::METHOD_NOT_ALLOWED {
                answer = older;
            }
        }
        if !answer.status().is_success() {
            return Err(answer_json(answer).await.err().unwrap_or_else(|| MatrixError::network("download failed")));
        }
        if answer.content_length().is_some_and(|l| l > max_bytes) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(MatrixError::network)? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    async fn get_media(&self, path: &str) -> Result<reqwest::Response, MatrixError> {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&*self.token)
            .timeout(REQUEST_TIMEOUT * 5)
            .send()
            .await
            .map_err(MatrixError::network)
    }
}

fn event_id(v: &Value) -> Result<String, MatrixError> {
    v["event_id"].as_str().map(str::to_string).ok_or_else(|| MatrixError::network("no event_id in the answer"))
}

/// The answer's JSON, or the Matrix error it carries.
async fn answer_json(answer: reqwest::Response) -> Result<Value, MatrixError> {
    let status = answer.status();
    let header_wait = answer
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = answer.text().await.map_err(MatrixError::network)?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let errcode = body["errcode"].as_str().unwrap_or("M_UNKNOWN").to_string();
    let retry_after = body["retry_after_ms"].as_u64().map(Duration::from_millis).or(header_wait).or_else(|| {
        (status == StatusCode::TOO_MANY_REQUESTS || errcode == "M_LIMIT_EXCEEDED").then_some(Duration::from_secs(1))
    });
    let message: String =
        body["error"].as_str().unwrap_or_else(|| status.canonical_reason().unwrap_or("")).chars().take(300).collect();
    Err(MatrixError { status: Some(status.as_u16()), errcode, message, retry_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_as_one_segment() {
        assert_eq!(seg("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(seg("$a+b/c"), "%24a%2Bb%2Fc");
    }

    #[test]
    fn errors_are_classified_for_the_consumer() {
        let e = |status, errcode: &str, wait| MatrixError {
            status: Some(status),
            errcode: errcode.into(),
            message: String::new(),
            retry_after: wait,
        };
        let limited = SendError::from(e(429, "M_LIMIT_EXCEEDED", Some(Duration::from_secs(90))));
        assert_eq!(limited.retry_after, Some(Duration::from_secs(90)));
        assert!(SendError::from(e(502, "M_UNKNOWN", None)).retryable);
        assert!(SendError::from(MatrixError::network("refused")).retryable);
        assert!(!SendError::from(e(403, "M_FORBIDDEN", None)).retryable);
    }
}
