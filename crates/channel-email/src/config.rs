//! The `[channels.email]` configuration: mailboxes to watch, the SMTP relay to send through, the
//! support address replies come back to, and agents who work from their own mailbox.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::RuntimeConfig;

/// Settings of the email channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Whether the channel runs at all.
    pub enabled: bool,
    /// The support address customers write to and replies come from, e.g. `support@example.com`;
    /// replies carry `<local>+<token>@<domain>` so a reply finds its conversation.
    pub address: String,
    /// Display name on outgoing mail, e.g. `Example Support`.
    pub display_name: Option<String>,
    /// Other addresses that are ours: mail from them is a loop and is never answered.
    pub own_addresses: Vec<String>,
    /// Mailboxes to watch by name (the name appears in logs and in the cursor's key).
    pub mailboxes: BTreeMap<String, MailboxConfig>,
    /// Where outgoing mail goes.
    pub smtp: SmtpConfig,
    /// Environment variable holding the key that signs reply tokens (at least 16 bytes).
    pub token_secret_env: Option<String>,
    /// File holding the key that signs reply tokens.
    pub token_secret_file: Option<PathBuf>,
    /// Largest message taken, in bytes; bigger ones become dead letters with the reason.
    pub max_message_bytes: usize,
    /// Largest attachment stored, in bytes; bigger ones are listed as skipped, the rest flows.
    pub max_attachment_bytes: usize,
    /// Retries, concurrency and per-sender rate limit.
    pub runtime: RuntimeConfig,
    /// Agents working from their mailbox, by agent id.
    pub agents: BTreeMap<String, AgentMailConfig>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            address: String::new(),
            display_name: None,
            own_addresses: Vec::new(),
            mailboxes: BTreeMap::new(),
            smtp: SmtpConfig::default(),
            token_secret_env: None,
            token_secret_file: None,
            max_message_bytes: 25 * 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
            runtime: RuntimeConfig::default(),
            agents: BTreeMap::new(),
        }
    }
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    #[default]
    Tls,
    /// Plain connection upgraded with STARTTLS (IMAP 143, submission 587).
    Starttls,
    /// No encryption: only allowed to a loopback address (tests, a local relay).
    None,
}

/// One IMAP mailbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailboxConfig {
    /// IMAP server host name.
    pub host: String,
    /// IMAP port (993 for TLS, 143 otherwise).
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// PEM file of a CA (or self-signed certificate) to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Login name.
    pub username: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// The folder to watch.
    pub folder: String,
    /// Where handled mail goes; when absent it is only marked `\Seen`.
    pub move_to: Option<String>,
    /// Seconds between checks when the server has no IDLE, and the longest IDLE before a re-check.
    pub poll_secs: u64,
    /// Whether to use IDLE when the server offers it.
    pub idle: bool,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 993,
            security: Security::Tls,
            ca_file: None,
            username: String::new(),
            password_env: None,
            password_file: None,
            folder: "INBOX".into(),
            move_to: None,
            poll_secs: 60,
            idle: true,
        }
    }
}

/// The SMTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port (465 for TLS, 587 for STARTTLS).
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// PEM file of a CA (or self-signed certificate) to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Login name; no authentication when empty.
    pub username: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Timeout of one SMTP transaction, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 465,
            security: Security::Tls,
            ca_file: None,
            username: String::new(),
            password_env: None,
            password_file: None,
            timeout_ms: 30_000,
        }
    }
}

/// An agent who works from their own mailbox (endpoint kind `email`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentMailConfig {
    /// The agent's address: offers go there, and only mail from it acts for the agent.
    pub address: String,
}

/// An invalid email setting, naming the key (relative to `channels.email`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct EmailConfigError {
    /// Dotted key under `channels.email`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> EmailConfigError {
    EmailConfigError { key: key.into(), reason: reason.into() }
}

/// Reads a secret from the environment variable or the file named, trimmed.
pub fn read_secret(env: &Option<String>, file: &Option<PathBuf>, key: &str) -> Result<String, EmailConfigError> {
    match switchboard_adapter::read_secret(env.as_deref(), file.as_deref()).map_err(|reason| err(key, reason))? {
        None => Err(err(key, "name an environment variable (`*_env`) or a file (`*_file`)")),
        Some(value) if value.is_empty() => Err(err(key, "is empty")),
        Some(value) => Ok(value),
    }
}

/// The local part and domain of an address, lower-cased.
pub fn split_address(address: &str) -> Option<(String, String)> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    if local.is_empty()
        || domain.is_empty()
        || local.contains(char::is_whitespace)
        || domain.contains(char::is_whitespace)
    {
        return None;
    }
    Some((local.to_lowercase(), domain.to_lowercase()))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl EmailConfig {
    /// Checks what can be checked without connecting; the error names the key.
    pub fn validate(&self) -> Result<(), EmailConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let Some((local, _)) = split_address(&self.address) else {
            return Err(err("address", format!("`{}` is not an email address", self.address)));
        };
        if local.contains('+') {
            return Err(err("address", "must not contain `+`: it separates the reply token"));
        }
        for (name, m) in &self.mailboxes {
            let key = |k: &str| format!("mailboxes.{name}.{k}");
            if m.host.trim().is_empty() {
                return Err(err(key("host"), "must not be empty"));
            }
            if m.security == Security::None && !is_loopback(&m.host) {
                return Err(err(key("security"), "`none` is only allowed to a loopback host; use `tls` or `starttls`"));
            }
            if m.username.is_empty() {
                return Err(err(key("username"), "must not be empty"));
            }
            if m.password_env.is_some() == m.password_file.is_some() {
                return Err(err(key("password_env"), "name exactly one of `password_env` and `password_file`"));
            }
            if m.poll_secs == 0 {
                return Err(err(key("poll_secs"), "must be at least 1"));
            }
        }
        if self.smtp.host.trim().is_empty() {
            return Err(err("smtp.host", "must not be empty: replies need an SMTP relay"));
        }
        if self.smtp.security == Security::None && !is_loopback(&self.smtp.host) {
            return Err(err("smtp.security", "`none` is only allowed to a loopback host; use `tls` or `starttls`"));
        }
        if !self.smtp.username.is_empty() && self.smtp.password_env.is_some() == self.smtp.password_file.is_some() {
            return Err(err(
                "smtp.password_env",
                "with a username, name exactly one of `password_env` and `password_file`",
            ));
        }
        if self.token_secret_env.is_some() == self.token_secret_file.is_some() {
            return Err(err("token_secret_env", "name exactly one of `token_secret_env` and `token_secret_file`"));
        }
        for (agent, a) in &self.agents {
            if split_address(&a.address).is_none() {
                return Err(err(format!("agents.{agent}.address"), format!("`{}` is not an email address", a.address)));
            }
        }
        if self.max_message_bytes == 0 {
            return Err(err("max_message_bytes", "must be at least 1"));
        }
        Ok(())
    }
}
