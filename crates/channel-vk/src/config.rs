//! The `[channels.vk]` configuration.

use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::{RuntimeConfig, read_secret};

/// How VK reaches the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VkMode {
    /// The daemon asks VK (Bots Long Poll API): no public URL needed; one process polls at a time.
    #[default]
    LongPoll,
    /// VK POSTs each event to `/v1/vk/callback` (Callback API), with the configured secret.
    Callback,
}

/// Settings of the VK channel: one community.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VkConfig {
    /// Whether the channel runs at all.
    pub enabled: bool,
    /// `long_poll` or `callback`.
    pub mode: VkMode,
    /// The community's id (positive, as in `club<id>`).
    pub group_id: u64,
    /// Environment variable holding the community token (scopes `messages`, `photos`, `docs`, `manage`).
    pub token_env: Option<String>,
    /// File holding the community token.
    pub token_file: Option<PathBuf>,
    /// The API's base URL; only tests change it.
    pub api_url: String,
    /// The API version sent with every call.
    pub api_version: String,
    /// Longest long poll, in seconds (VK holds `a_check` up to 90).
    pub wait_secs: u32,
    /// Environment variable holding the Callback API's secret key (callback mode).
    pub secret_env: Option<String>,
    /// File holding the Callback API's secret key.
    pub secret_file: Option<PathBuf>,
    /// The string VK expects back when it confirms the callback server (callback mode).
    pub confirmation: Option<String>,
    /// Largest callback body read, in bytes.
    pub max_body_bytes: usize,
    /// Largest file fetched into the object store or uploaded, in bytes.
    pub max_file_bytes: u64,
    /// API calls per second for the community token (VK allows 20).
    pub requests_per_sec: u32,
    /// Longest flood-control wait taken inside one send; a longer one hands the message back.
    pub max_retry_after_secs: u32,
    /// Retries, concurrency and per-sender rate limit.
    pub runtime: RuntimeConfig,
}

impl Default for VkConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: VkMode::LongPoll,
            group_id: 0,
            token_env: None,
            token_file: None,
            api_url: "https://api.vk.com/method".into(),
            api_version: crate::API_VERSION.into(),
            wait_secs: 25,
            secret_env: None,
            secret_file: None,
            confirmation: None,
            max_body_bytes: 256 * 1024,
            max_file_bytes: 10 * 1024 * 1024,
            requests_per_sec: 20,
            max_retry_after_secs: 30,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// An invalid VK setting, naming the key (relative to `channels.vk`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct VkConfigError {
    /// Dotted key under `channels.vk`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: &str, reason: impl Into<String>) -> VkConfigError {
    VkConfigError { key: key.into(), reason: reason.into() }
}

impl VkConfig {
    /// Checks what can be checked without connecting; the error names the key.
    pub fn validate(&self) -> Result<(), VkConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.group_id == 0 {
            return Err(err("group_id", "the community's id is required"));
        }
        if self.token_env.is_some() == self.token_file.is_some() {
            return Err(err("token_env", "name exactly one of `token_env` and `token_file`"));
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            return Err(err("api_url", format!("`{}` is not an http(s) URL", self.api_url)));
        }
        if !(1..=90).contains(&self.wait_secs) {
            return Err(err("wait_secs", "1 to 90 (VK holds a long poll at most 90 s)"));
        }
        if self.requests_per_sec == 0 {
            return Err(err("requests_per_sec", "at least 1"));
        }
        if self.max_body_bytes == 0 {
            return Err(err("max_body_bytes", "must be greater than 0"));
        }
        if self.mode == VkMode::Callback {
            if self.secret_env.is_some() == self.secret_file.is_some() {
                return Err(err("secret_env", "callback mode needs exactly one of `secret_env` and `secret_file`"));
            }
            if self.confirmation.as_deref().is_none_or(|c| c.trim().is_empty() || c.len() > 64) {
                return Err(err("confirmation", "callback mode needs the confirmation string VK shows (1-64 bytes)"));
            }
        }
        Ok(())
    }

    /// Reads the community token.
    pub fn token(&self) -> Result<String, VkConfigError> {
        let key = if self.token_file.is_some() { "token_file" } else { "token_env" };
        match read_secret(self.token_env.as_deref(), self.token_file.as_deref()).map_err(|r| err(key, r))? {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(err(key, "the community token is empty or not configured")),
        }
    }

    /// Reads the Callback API's secret key, in callback mode (1 to 50 characters, as VK allows).
    pub fn secret(&self) -> Result<Option<String>, VkConfigError> {
        if self.mode != VkMode::Callback {
            return Ok(None);
        }
        let key = if self.secret_file.is_some() { "secret_file" } else { "secret_env" };
        let secret = read_secret(self.secret_env.as_deref(), self.secret_file.as_deref()).map_err(|r| err(key, r))?;
        match secret {
            Some(s) if (1..=50).contains(&s.len()) => Ok(Some(s)),
            _ => Err(err(key, "the secret key must be 1 to 50 characters")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_their_key() {
        let on = VkConfig { enabled: true, group_id: 7, token_env: Some("T".into()), ..VkConfig::default() };
        assert_eq!(on.validate(), Ok(()));
        assert_eq!(VkConfig { group_id: 0, ..on.clone() }.validate().unwrap_err().key, "group_id");
        assert_eq!(VkConfig { token_env: None, ..on.clone() }.validate().unwrap_err().key, "token_env");
        assert_eq!(VkConfig { wait_secs: 91, ..on.clone() }.validate().unwrap_err().key, "wait_secs");
        let callback = VkConfig { mode: VkMode::Callback, ..on.clone() };
        assert_eq!(callback.validate().unwrap_err().key, "secret_env");
        let callback = VkConfig { secret_env: Some("S".into()), ..callback };
        assert_eq!(callback.validate().unwrap_err().key, "confirmation");
        let callback = VkConfig { confirmation: Some("1a2b3c4d".into()), ..callback };
        assert_eq!(callback.validate(), Ok(()));
    }
}
