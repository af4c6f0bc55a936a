//! The `[channels.slack]` configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::{RuntimeConfig, read_secret};

/// How Slack reaches the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    /// Slack POSTs events, interactions and slash commands to the daemon's public URL (signed).
    #[default]
    Events,
    /// The daemon opens a WebSocket to Slack (no public URL needed; an app-level token).
    Socket,
}

/// Settings of the Slack agent endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// Whether agents work from Slack at all.
    pub enabled: bool,
    /// The Web API's base URL; only tests change it.
    pub api_base: String,
    /// Environment variable holding the bot token (`xoxb-...`).
    pub bot_token_env: Option<String>,
    /// File holding the bot token.
    pub bot_token_file: Option<PathBuf>,
    /// Environment variable holding the app's signing secret (Events API mode).
    pub signing_secret_env: Option<String>,
    /// File holding the signing secret.
    pub signing_secret_file: Option<PathBuf>,
    /// Environment variable holding the app-level token (`xapp-...`, Socket Mode).
    pub app_token_env: Option<String>,
    /// File holding the app-level token.
    pub app_token_file: Option<PathBuf>,
    /// `events` (Slack POSTs to `/v1/slack/*`) or `socket` (Socket Mode).
    pub mode: SlackMode,
    /// Agents who work from Slack: agent id → their Slack user id (`U012ABC`). Only these users act.
    pub agents: BTreeMap<String, String>,
    /// Team → Slack channel id (`C0123`) whose one pinned-in-place message shows the team's queue.
    pub team_channels: BTreeMap<String, String>,
    /// Largest file passed either way, in bytes.
    pub max_file_bytes: u64,
    /// Largest request body accepted on `/v1/slack/*`, in bytes (checked after the signature's
    /// headers, before the body is read whole).
    pub max_body_bytes: usize,
    /// Oldest `X-Slack-Request-Timestamp` accepted, in seconds (Slack recommends 5 minutes).
    pub timestamp_tolerance_secs: u64,
    /// Longest `Retry-After` waited inside one call; a longer one hands the delivery back to be
    /// tried when the wait is over.
    pub max_retry_after_secs: u64,
    /// Timeout of one Web API call, in milliseconds.
    pub request_timeout_ms: u64,
    /// Retries and concurrency of the delivery consumer.
    pub runtime: RuntimeConfig,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            api_base: "https://slack.com/api".into(),
            bot_token_env: None,
            bot_token_file: None,
            signing_secret_env: None,
            signing_secret_file: None,
            app_token_env: None,
            app_token_file: None,
            mode: SlackMode::Events,
            agents: BTreeMap::new(),
            team_channels: BTreeMap::new(),
            max_file_bytes: 10 * 1024 * 1024,
            max_body_bytes: 256 * 1024,
            timestamp_tolerance_secs: 300,
            max_retry_after_secs: 30,
            request_timeout_ms: 10_000,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// An invalid Slack setting, naming the key (relative to `channels.slack`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SlackConfigError {
    /// Dotted key under `channels.slack`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> SlackConfigError {
    SlackConfigError { key: key.into(), reason: reason.into() }
}

/// A Slack id: an upper-case letter then upper-case letters and digits (`U012ABC`, `C0123`).
fn is_slack_id(id: &str, first: &[u8]) -> bool {
    let b = id.as_bytes();
    (2..=32).contains(&b.len())
        && first.contains(&b[0])
        && b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl SlackConfig {
    /// Checks what can be checked without connecting; the error names the key.
    pub fn validate(&self) -> Result<(), SlackConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.bot_token_env.is_some() == self.bot_token_file.is_some() {
            return Err(err("bot_token_env", "name exactly one of `bot_token_env` and `bot_token_file`"));
        }
        match self.mode {
            SlackMode::Events if self.signing_secret_env.is_some() == self.signing_secret_file.is_some() => {
                return Err(err(
                    "signing_secret_env",
                    "mode \"events\" needs exactly one of `signing_secret_env` and `signing_secret_file`",
                ));
            }
            SlackMode::Socket if self.app_token_env.is_some() == self.app_token_file.is_some() => {
                return Err(err(
                    "app_token_env",
                    "mode \"socket\" needs exactly one of `app_token_env` and `app_token_file`",
                ));
            }
            _ => {}
        }
        if !(self.api_base.starts_with("https://") || self.api_base.starts_with("http://")) {
            return Err(err("api_base", format!("`{}` is not an http(s) URL", self.api_base)));
        }
        for (agent, user) in &self.agents {
            if !is_slack_id(user, b"UW") {
                return Err(err(format!("agents.{agent}"), format!("`{user}` is not a Slack user id (U012ABC)")));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for user in self.agents.values() {
            if !seen.insert(user) {
                return Err(err("agents", format!("Slack user `{user}` is mapped to two agents")));
            }
        }
        for (team, channel) in &self.team_channels {
            if !is_slack_id(channel, b"CG") {
                return Err(err(
                    format!("team_channels.{team}"),
                    format!("`{channel}` is not a Slack channel id (C0123)"),
                ));
            }
        }
        if self.max_file_bytes == 0 {
            return Err(err("max_file_bytes", "must be greater than 0"));
        }
        if self.max_body_bytes < 4096 {
            return Err(err("max_body_bytes", "at least 4096 (Slack's payloads carry blocks)"));
        }
        if !(1..=3600).contains(&self.timestamp_tolerance_secs) {
            return Err(err("timestamp_tolerance_secs", "1 to 3600 seconds"));
        }
        Ok(())
    }

    /// Reads the bot token from the variable or file named; checks its shape (`xoxb-`).
    pub fn bot_token(&self) -> Result<String, SlackConfigError> {
        let key = if self.bot_token_file.is_some() { "bot_token_file" } else { "bot_token_env" };
        let token = read_secret(self.bot_token_env.as_deref(), self.bot_token_file.as_deref())
            .map_err(|reason| err(key, reason))?
            .ok_or_else(|| err("bot_token_env", "name `bot_token_env` or `bot_token_file`"))?;
        if !token.starts_with("xoxb-") {
            return Err(err(key, "does not look like a bot token (`xoxb-...`)"));
        }
        Ok(token)
    }

    /// Reads the signing secret, when one is named (Events API mode needs it).
    pub fn signing_secret(&self) -> Result<Option<String>, SlackConfigError> {
        let key = if self.signing_secret_file.is_some() { "signing_secret_file" } else { "signing_secret_env" };
        let secret = read_secret(self.signing_secret_env.as_deref(), self.signing_secret_file.as_deref())
            .map_err(|reason| err(key, reason))?;
        if secret.as_deref().is_some_and(|s| s.len() < 16) {
            return Err(err(key, "too short for a Slack signing secret"));
        }
        Ok(secret)
    }

    /// Reads the app-level token, when one is named (Socket Mode needs it); checks `xapp-`.
    pub fn app_token(&self) -> Result<Option<String>, SlackConfigError> {
        let key = if self.app_token_file.is_some() { "app_token_file" } else { "app_token_env" };
        let token = read_secret(self.app_token_env.as_deref(), self.app_token_file.as_deref())
            .map_err(|reason| err(key, reason))?;
        if token.as_deref().is_some_and(|t| !t.starts_with("xapp-")) {
            return Err(err(key, "does not look like an app-level token (`xapp-...`)"));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> SlackConfig {
        SlackConfig {
            enabled: true,
            bot_token_env: Some("SLACK_BOT_TOKEN".into()),
            signing_secret_env: Some("SLACK_SIGNING_SECRET".into()),
            ..SlackConfig::default()
        }
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(enabled().validate(), Ok(()));
        let mut c = enabled();
        c.agents.insert("alice".into(), "alice".into());
        assert_eq!(c.validate().unwrap_err().key, "agents.alice");
        let mut c = enabled();
        c.agents.insert("alice".into(), "U1".into());
        c.agents.insert("bob".into(), "U1".into());
        assert_eq!(c.validate().unwrap_err().key, "agents");
        let mut c = enabled();
        c.team_channels.insert("billing".into(), "#billing".into());
        assert_eq!(c.validate().unwrap_err().key, "team_channels.billing");
        let c = SlackConfig { mode: SlackMode::Socket, ..enabled() };
        assert_eq!(c.validate().unwrap_err().key, "app_token_env");
        let c = SlackConfig { signing_secret_env: None, ..enabled() };
        assert_eq!(c.validate().unwrap_err().key, "signing_secret_env");
    }
}
