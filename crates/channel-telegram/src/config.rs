//! The `[channels.telegram]` configuration.

use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::{RuntimeConfig, read_secret};

/// Settings of the Telegram channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// Whether the channel runs at all.
    pub enabled: bool,
    /// Environment variable holding the bot token (from @BotFather).
    pub token_env: Option<String>,
    /// File holding the bot token.
    pub token_file: Option<PathBuf>,
    /// The Bot API's base URL; only tests and self-hosted Bot API servers change it.
    pub api_url: String,
    /// Longest long poll, in seconds (Telegram holds the request until an update comes).
    pub poll_timeout_secs: u32,
    /// Messages per second to one chat (Telegram allows about 1).
    pub per_chat_per_sec: u32,
    /// Messages per second for the whole bot (Telegram allows about 30).
    pub per_bot_per_sec: u32,
    /// Longest `retry_after` waited inside one send; a longer one hands the message back to be
    /// retried later.
    pub max_retry_after_secs: u32,
    /// Largest file fetched into the object store, in bytes (the Bot API serves up to 20 MB).
    pub max_file_bytes: u64,
    /// Retries, concurrency and per-sender rate limit.
    pub runtime: RuntimeConfig,
    /// Public HTTPS URL Telegram POSTs updates to (ending in `/v1/telegram/updates`); updates come
    /// by long polling when absent.
    pub webhook_url: Option<String>,
    /// Environment variable holding the webhook's secret token (`A-Z a-z 0-9 _ -`, 1-256).
    pub webhook_secret_env: Option<String>,
    /// File holding the webhook's secret token.
    pub webhook_secret_file: Option<PathBuf>,
    /// The answer to a customer's bare `/start` (opening the chat with the bot); a default one
    /// when absent. It is not offered to agents: there is no question yet.
    pub start_greeting: Option<String>,
    /// Agents who work from Telegram (endpoint kind `telegram`); each links a chat with a code
    /// from `POST /v1/agent/telegram-link`.
    pub agents: Vec<String>,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token_env: None,
            token_file: None,
            api_url: "https://api.telegram.org".into(),
            poll_timeout_secs: 25,
            per_chat_per_sec: 1,
            per_bot_per_sec: 30,
            max_retry_after_secs: 60,
            max_file_bytes: 10 * 1024 * 1024,
            runtime: RuntimeConfig::default(),
            webhook_url: None,
            webhook_secret_env: None,
            webhook_secret_file: None,
            start_greeting: None,
            agents: Vec::new(),
        }
    }
}

/// An invalid Telegram setting, naming the key (relative to `channels.telegram`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct TelegramConfigError {
    /// Dotted key under `channels.telegram`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: &str, reason: impl Into<String>) -> TelegramConfigError {
    TelegramConfigError { key: key.into(), reason: reason.into() }
}

impl TelegramConfig {
    /// Checks what can be checked without connecting; the error names the key.
    pub fn validate(&self) -> Result<(), TelegramConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.token_env.is_some() == self.token_file.is_some() {
            return Err(err("token_env", "name exactly one of `token_env` and `token_file`"));
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            return Err(err("api_url", format!("`{}` is not an http(s) URL", self.api_url)));
        }
        if self.poll_timeout_secs > 50 {
            return Err(err("poll_timeout_secs", "at most 50 (Telegram closes longer polls)"));
        }
        if let Some(url) = &self.webhook_url {
            if !url.starts_with("https://") {
                return Err(err("webhook_url", "Telegram only posts to https:// URLs"));
            }
            if self.webhook_secret_env.is_some() == self.webhook_secret_file.is_some() {
                return Err(err(
                    "webhook_secret_env",
                    "a webhook needs exactly one of `webhook_secret_env` and `webhook_secret_file`",
                ));
            }
        }
        if self.start_greeting.as_deref().is_some_and(|g| g.trim().is_empty() || g.chars().count() > 4096) {
            return Err(err("start_greeting", "1 to 4,096 characters when set"));
        }
        if self.per_chat_per_sec == 0 || self.per_bot_per_sec == 0 {
            return Err(err("per_chat_per_sec", "rates must be at least 1"));
        }
        Ok(())
    }

    /// Reads the webhook's secret token, when updates come by webhook; checks its characters.
    pub fn webhook_secret(&self) -> Result<Option<String>, TelegramConfigError> {
        let key = if self.webhook_secret_file.is_some() { "webhook_secret_file" } else { "webhook_secret_env" };
        let read = read_secret(self.webhook_secret_env.as_deref(), self.webhook_secret_file.as_deref());
        let Some(secret) = read.map_err(|reason| err(key, reason))? else { return Ok(None) };
        let ok = (16..=256).contains(&secret.len())
            && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(err("webhook_secret_env", "16-256 characters of A-Z a-z 0-9 _ -"));
        }
        Ok(Some(secret))
    }

    /// Reads the bot token from the variable or file named; checks its shape (`<id>:<secret>`).
    pub fn token(&self) -> Result<String, TelegramConfigError> {
        let key = if self.token_file.is_some() { "token_file" } else { "token_env" };
        let read =
            read_secret(self.token_env.as_deref(), self.token_file.as_deref()).map_err(|reason| err(key, reason))?;
        let token = read.ok_or_else(|| err("token_env", "name `token_env` or `token_file`"))?;
        let shaped = token
            .split_once(':')
            .is_some_and(|(id, secret)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && secret.len() >= 20);
        if !shaped {
            return Err(err("token_env", "does not look like a bot token (`<digits>:<secret>`)"));
        }
        Ok(token)
    }
}
