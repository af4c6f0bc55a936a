//! The `[channels.webchat]` configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::{RuntimeConfig, read_secret};

/// Settings of the web-chat channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebchatConfig {
    /// Whether the channel runs at all.
    pub enabled: bool,
    /// Environment variable holding the key that signs visitors' session tokens (32+ bytes).
    pub session_secret_env: Option<String>,
    /// File holding that key.
    pub session_secret_file: Option<PathBuf>,
    /// Environment variable holding the key the host site signs user ids with (optional: without
    /// it, identities from the page are ignored and every visitor is anonymous).
    pub identity_secret_env: Option<String>,
    /// File holding that key.
    pub identity_secret_file: Option<PathBuf>,
    /// Origins (`https://shop.example.com`) whose pages may open the chat; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// The team whose availability decides online or offline mode when no topic names one.
    pub team: String,
    /// Ask for name, email and topic before the first message.
    pub prechat: bool,
    /// Topics offered in the pre-chat form, by id (the id goes into the `topic` metadata).
    pub topics: BTreeMap<String, TopicConfig>,
    /// Largest message text, in bytes.
    pub max_text_bytes: usize,
    /// Largest WebSocket frame, in bytes; at least [`smallest_frame`] of `max_text_bytes`
    /// (6 × the text limit + 16 KiB), so that any message within the text limit fits.
    pub max_frame_bytes: usize,
    /// Largest upload, in bytes.
    pub max_upload_bytes: usize,
    /// Open sockets allowed from one IP address.
    pub max_connections_per_ip: u32,
    /// Messages per minute from one IP address, sustained.
    pub ip_messages_per_minute: u32,
    /// Uploads per minute from one IP address (a limit of its own, lower than messages').
    pub ip_uploads_per_minute: u32,
    /// Uploads per minute from one session, counted across every daemon process.
    pub uploads_per_minute: u32,
    /// Files a session may upload before it has sent a message (enough to attach a screenshot
    /// to the first one; 0 = send a message first).
    pub uploads_before_message: u32,
    /// Bytes one session may upload in all (files deleted later still count).
    pub session_upload_bytes: u64,
    /// Seconds an uploaded file may wait for a message to attach it before it is deleted.
    pub upload_grace_secs: u64,
    /// Seconds between sweeps for files no message attached.
    pub upload_sweep_secs: u64,
    /// Seconds between pings on an idle socket (a dead peer is dropped after two missed pongs).
    pub ping_secs: u64,
    /// Seconds an availability answer from the router is reused.
    pub availability_cache_secs: u64,
    /// Trust the last address of `X-Forwarded-For` as the client's IP (behind a reverse proxy).
    pub trust_forwarded_for: bool,
    /// Serve a demo page that embeds the widget at `/chat/demo` (add the daemon's own origin to
    /// `allowed_origins`).
    pub demo_page: bool,
    /// Retries, concurrency and the per-visitor rate limit.
    pub runtime: RuntimeConfig,
}

/// One topic of the pre-chat form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Label in English.
    pub en: String,
    /// Label in Russian (English when absent).
    #[serde(default)]
    pub ru: Option<String>,
    /// Team whose availability counts for this topic (the channel's `team` when absent).
    #[serde(default)]
    pub team: Option<String>,
}

impl Default for WebchatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            session_secret_env: None,
            session_secret_file: None,
            identity_secret_env: None,
            identity_secret_file: None,
            allowed_origins: Vec::new(),
            team: "support".into(),
            prechat: true,
            topics: BTreeMap::new(),
            max_text_bytes: 8 * 1024,
            max_frame_bytes: 64 * 1024,
            max_upload_bytes: 10 * 1024 * 1024,
            max_connections_per_ip: 20,
            ip_messages_per_minute: 120,
            ip_uploads_per_minute: 20,
            uploads_per_minute: 10,
            uploads_before_message: 3,
            session_upload_bytes: 50 * 1024 * 1024,
            upload_grace_secs: 3600,
            upload_sweep_secs: 300,
            ping_secs: 30,
            availability_cache_secs: 10,
            trust_forwarded_for: false,
            demo_page: false,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// Bytes one byte of message text can take in a frame: JSON escapes a control character as
/// `\u00XX`.
pub const JSON_ESCAPE_FACTOR: usize = 6;

/// Room a `send` frame needs besides its text: the frame's keys and client id, pre-chat answers
/// (a 100-character name and a 254-byte email, escaped) and up to 10 attachment references (each
/// with a 200-character file name and its type).
pub const FRAME_OVERHEAD_BYTES: usize = 16 * 1024;

/// The smallest `max_frame_bytes` for `max_text_bytes`: the frame of any message within the text
/// limit fits, however its text is escaped (a frame over the limit is refused unread).
pub fn smallest_frame(max_text_bytes: usize) -> usize {
    max_text_bytes.saturating_mul(JSON_ESCAPE_FACTOR).saturating_add(FRAME_OVERHEAD_BYTES)
}

/// An invalid web-chat setting, naming the key (relative to `channels.webchat`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct WebchatConfigError {
    /// Dotted key under `channels.webchat`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: &str, reason: impl Into<String>) -> WebchatConfigError {
    WebchatConfigError { key: key.into(), reason: reason.into() }
}

impl WebchatConfig {
    /// Checks what can be checked without reading secrets.
    pub fn validate(&self) -> Result<(), WebchatConfigError> {
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            let ok = origin == "*"
                || ((origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin.trim_end_matches('/').contains(['?', '#'])
                    && origin.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.contains('/')));
            if !ok {
                return Err(err(
                    &format!("allowed_origins[{i}]"),
                    format!(
                        "`{origin}` is not an origin like `https://shop.example.com` (scheme and host, no path) or `*`"
                    ),
                ));
            }
        }
        if self.team.trim().is_empty() {
            return Err(err("team", "must name a team"));
        }
        if self.max_text_bytes == 0 || self.max_text_bytes > switchboard_core::envelope::MAX_TEXT_BYTES {
            return Err(err(
                "max_text_bytes",
                format!("must be between 1 and {}", switchboard_core::envelope::MAX_TEXT_BYTES),
            ));
        }
        let smallest = smallest_frame(self.max_text_bytes);
        if self.max_frame_bytes < smallest {
            return Err(err(
                "max_frame_bytes",
                format!(
                    "must be at least {smallest}: {JSON_ESCAPE_FACTOR} × max_text_bytes (JSON escapes a control \
                     character as 6 bytes) + {FRAME_OVERHEAD_BYTES} (the frame's other fields: pre-chat answers, \
                     attachments), so that every message within max_text_bytes fits in a frame"
                ),
            ));
        }
        for (key, value) in [
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            ("ip_messages_per_minute", self.ip_messages_per_minute as u64),
            ("ping_secs", self.ping_secs),
            ("max_upload_bytes", self.max_upload_bytes as u64),
            ("ip_uploads_per_minute", self.ip_uploads_per_minute as u64),
            ("uploads_per_minute", self.uploads_per_minute as u64),
            ("upload_grace_secs", self.upload_grace_secs),
            ("upload_sweep_secs", self.upload_sweep_secs),
        ] {
            if value == 0 {
                return Err(err(key, "must be at least 1"));
            }
        }
        if self.session_upload_bytes < self.max_upload_bytes as u64 {
            return Err(err(
                "session_upload_bytes",
                format!("must be at least max_upload_bytes ({}): one file must fit", self.max_upload_bytes),
            ));
        }
        for id in self.topics.keys() {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(err(&format!("topics.{id}"), "topic ids use letters, digits, `-` and `_`"));
            }
        }
        Ok(())
    }

    /// The session-signing key; required.
    pub fn session_secret(&self) -> Result<Vec<u8>, WebchatConfigError> {
        let key = if self.session_secret_env.is_some() { "session_secret_env" } else { "session_secret_file" };
        let secret = read_secret(self.session_secret_env.as_deref(), self.session_secret_file.as_deref())
            .map_err(|reason| err(key, reason))?
            .ok_or_else(|| err("session_secret_env", "name the variable (or session_secret_file) holding the key"))?;
        if secret.len() < 32 {
            return Err(err(key, "the key must be at least 32 characters"));
        }
        Ok(secret.into_bytes())
    }

    /// The identity-signing key shared with the host site, when configured.
    pub fn identity_secret(&self) -> Result<Option<Vec<u8>>, WebchatConfigError> {
        let key = if self.identity_secret_env.is_some() { "identity_secret_env" } else { "identity_secret_file" };
        let secret = read_secret(self.identity_secret_env.as_deref(), self.identity_secret_file.as_deref())
            .map_err(|reason| err(key, reason))?;
        match secret {
            Some(s) if s.len() < 16 => Err(err(key, "the key must be at least 16 characters")),
            other => Ok(other.map(String::into_bytes)),
        }
    }

    /// Whether a page from `origin` may open the chat.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }
}
