//! `[channels.sms]`: where the gateway is and where the shared token comes from.

use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::{RuntimeConfig, read_secret};

/// The channel's configuration section, as the daemon reads it from `[channels.sms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Whether the daemon runs the channel.
    pub enabled: bool,
    /// The gateway's base URL; replies are POSTed to `<gateway_url>/messages`.
    pub gateway_url: String,
    /// Environment variable holding the token the gateway and we present to each other.
    pub token_env: Option<String>,
    /// File holding that token.
    pub token_file: Option<PathBuf>,
    /// Longest a call to the gateway may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// Retries, back-off, concurrency and the per-sender limit (the SDK's settings).
    pub runtime: RuntimeConfig,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            gateway_url: String::new(),
            token_env: None,
            token_file: None,
            request_timeout_ms: 10_000,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// A configuration problem: the key within `[channels.sms]` and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The key, e.g. `gateway_url`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

impl SmsConfig {
    /// Checks what the types cannot; a disabled channel is not checked.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if !(self.gateway_url.starts_with("http://") || self.gateway_url.starts_with("https://")) {
            return Err(ConfigError::new("gateway_url", "must be an http:// or https:// URL"));
        }
        if self.token_env.is_some() == self.token_file.is_some() {
            return Err(ConfigError::new("token_env", "set exactly one of token_env and token_file"));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::new("request_timeout_ms", "must be greater than 0"));
        }
        Ok(())
    }

    /// Reads the shared token from the environment variable or file the section names.
    pub fn token(&self) -> Result<String, ConfigError> {
        let key = if self.token_env.is_some() { "token_env" } else { "token_file" };
        match read_secret(self.token_env.as_deref(), self.token_file.as_deref()) {
            Ok(Some(token)) if !token.is_empty() => Ok(token),
            Ok(_) => Err(ConfigError::new(key, "the token is empty")),
            Err(reason) => Err(ConfigError::new(key, reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> SmsConfig {
        SmsConfig {
            enabled: true,
            gateway_url: "http://127.0.0.1:9".into(),
            token_file: Some("/dev/null".into()),
            ..SmsConfig::default()
        }
    }

    #[test]
    fn a_disabled_channel_needs_nothing() {
        assert_eq!(SmsConfig::default().validate(), Ok(()));
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(enabled().validate(), Ok(()));
        let bad_url = SmsConfig { gateway_url: "ftp://x".into(), ..enabled() };
        assert_eq!(bad_url.validate().unwrap_err().key, "gateway_url");
        let no_token = SmsConfig { token_file: None, ..enabled() };
        assert_eq!(no_token.validate().unwrap_err().key, "token_env");
        let zero = SmsConfig { request_timeout_ms: 0, ..enabled() };
        assert_eq!(zero.validate().unwrap_err().key, "request_timeout_ms");
    }

    #[test]
    fn an_empty_token_is_refused() {
        let err = enabled().token().unwrap_err();
        assert_eq!((err.key.as_str(), err.reason.as_str()), ("token_file", "the token is empty"));
    }
}
