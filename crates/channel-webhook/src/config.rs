//! The `[channels.webhook]` configuration and how a source's secret is resolved.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;
use switchboard_adapter::RuntimeConfig;

/// Settings of the webhook channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Whether the channel runs at all.
    pub enabled: bool,
    /// Largest accepted request body, in bytes; bigger requests get `413`.
    pub max_body_bytes: usize,
    /// How far `webhook-timestamp` may be from now, in seconds, before a request is refused.
    pub timestamp_tolerance_secs: u64,
    /// Timeout of one outbound POST, in milliseconds.
    pub request_timeout_ms: u64,
    /// Sources by name: the `{source}` in `/v1/webhooks/{source}`.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Retries, concurrency and per-sender rate limit.
    pub runtime: RuntimeConfig,
    /// Agent endpoints by agent id: where that agent's offers, messages and updates are POSTed
    /// (a helpdesk or chat tool), signed like outbound messages.
    pub agents: BTreeMap<String, AgentEndpointConfig>,
    /// Networks (CIDR) that endpoints registered at runtime (`PUT /v1/agents/{id}`) may reach
    /// although they are loopback, link-local, private or otherwise inward; none by default.
    pub allowed_networks: Vec<String>,
}

/// One agent's webhook endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentEndpointConfig {
    /// URL deliveries are POSTed to.
    pub url: String,
    /// Environment variable holding the signing secret (`whsec_<base64>`).
    pub secret_env: Option<String>,
    /// File holding the signing secret.
    pub secret_file: Option<PathBuf>,
}

impl AgentEndpointConfig {
    /// Checks the URL and that exactly one secret source is named; `key` is relative to
    /// `channels.webhook`.
    pub fn validate(&self, agent: &str) -> Result<(), WebhookConfigError> {
        let key = format!("agents.{agent}.url");
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(WebhookConfigError::new(key, format!("`{}` is not an http(s) URL", self.url)));
        }
        self.as_source().check_secret_location(&format!("agents.{agent}"))
    }

    /// Reads and decodes the signing secret.
    pub fn resolve_secret(&self, agent: &str) -> Result<SecretLookup, WebhookConfigError> {
        self.as_source().resolve_secret(agent)
    }

    fn as_source(&self) -> SourceConfig {
        SourceConfig {
            secret_env: self.secret_env.clone(),
            secret_file: self.secret_file.clone(),
            ..SourceConfig::default()
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_body_bytes: 64 * 1024,
            timestamp_tolerance_secs: 300,
            request_timeout_ms: 10_000,
            sources: BTreeMap::new(),
            runtime: RuntimeConfig::default(),
            agents: BTreeMap::new(),
            allowed_networks: Vec::new(),
        }
    }
}

/// One webhook source. Its secret never sits in the config file: name an environment variable
/// or a file that holds it (`whsec_<base64>`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Environment variable holding the signing secret.
    pub secret_env: Option<String>,
    /// File holding the signing secret (e.g. a mounted Kubernetes secret).
    pub secret_file: Option<PathBuf>,
    /// During a secret rotation: the environment variable holding the previous secret, which
    /// still verifies inbound requests and also signs outbound ones. Unset or empty otherwise.
    pub previous_secret_env: Option<String>,
    /// During a secret rotation: the file holding the previous secret.
    pub previous_secret_file: Option<PathBuf>,
    /// URL that outbound messages for this source are POSTed to; none means replies fail.
    pub outbound_url: Option<String>,
}

/// A configuration problem: the key (relative to `channels.webhook`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct WebhookConfigError {
    /// Dotted key, e.g. `sources.demo.secret_env`.
    pub key: String,
    /// Why it is wrong.
    pub reason: String,
}

impl WebhookConfigError {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

/// The outcome of resolving one source's secret.
#[derive(Debug)]
pub enum SecretLookup {
    /// The decoded HMAC key.
    Found(Vec<u8>),
    /// Not set: the source is disabled, for the reason given (the daemon logs it).
    Missing(String),
}

impl SourceConfig {
    /// Exactly one of `secret_env` and `secret_file`; `prefix` is the key they sit under.
    fn check_secret_location(&self, prefix: &str) -> Result<(), WebhookConfigError> {
        match (&self.secret_env, &self.secret_file) {
            (None, None) => {
                Err(WebhookConfigError::new(format!("{prefix}.secret_env"), "set secret_env or secret_file"))
            }
            (Some(_), Some(_)) => Err(WebhookConfigError::new(
                format!("{prefix}.secret_file"),
                "set only one of secret_env and secret_file",
            )),
            _ => Ok(()),
        }
    }

    /// Checks the source's keys: a secret location, a usable URL.
    pub fn validate(&self, name: &str) -> Result<(), WebhookConfigError> {
        let key = |k: &str| format!("sources.{name}.{k}");
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') || name.is_empty() {
            return Err(WebhookConfigError::new(format!("sources.{name}"), "source names use only a-z, 0-9, '-', '_'"));
        }
        self.check_secret_location(&format!("sources.{name}"))?;
        if self.previous_secret_env.is_some() && self.previous_secret_file.is_some() {
            return Err(WebhookConfigError::new(
                key("previous_secret_file"),
                "set only one of previous_secret_env and previous_secret_file",
            ));
        }
        if let Some(url) = &self.outbound_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(WebhookConfigError::new(key("outbound_url"), "must be an http:// or https:// URL"));
        }
        Ok(())
    }

    /// Reads and decodes the secret from the environment or the file.
    pub fn resolve_secret(&self, name: &str) -> Result<SecretLookup, WebhookConfigError> {
        let (raw, key) = if let Some(var) = &self.secret_env {
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => (v, format!("sources.{name}.secret_env")),
                _ => return Ok(SecretLookup::Missing(format!("environment variable {var} is not set"))),
            }
        } else if let Some(path) = &self.secret_file {
            match std::fs::read_to_string(path) {
                Ok(v) => (v, format!("sources.{name}.secret_file")),
                Err(e) => return Ok(SecretLookup::Missing(format!("cannot read {}: {e}", path.display()))),
            }
        } else {
            return Ok(SecretLookup::Missing("no secret configured".into()));
        };
        decode_secret(raw.trim()).map(SecretLookup::Found).map_err(|reason| WebhookConfigError::new(key, reason))
    }
}

impl SourceConfig {
    /// Reads and decodes the previous secret of a rotation: `None` when none is named or the
    /// variable or file is empty (the usual state outside a rotation); an error when it is set but
    /// is not a valid secret, so that a typo does not silently lock the sender out.
    pub fn resolve_previous_secret(&self, name: &str) -> Result<Option<Vec<u8>>, WebhookConfigError> {
        let (raw, key) = if let Some(var) = &self.previous_secret_env {
            (std::env::var(var).unwrap_or_default(), format!("sources.{name}.previous_secret_env"))
        } else if let Some(path) = &self.previous_secret_file {
            let key = format!("sources.{name}.previous_secret_file");
            match std::fs::read_to_string(path) {
                Ok(v) => (v, key),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), key),
                Err(e) => return Err(WebhookConfigError::new(key, format!("cannot read {}: {e}", path.display()))),
            }
        } else {
            return Ok(None);
        };
        if raw.trim().is_empty() {
            return Ok(None);
        }
        decode_secret(raw.trim()).map(Some).map_err(|reason| WebhookConfigError::new(key, reason))
    }
}

/// Decodes a Standard Webhooks secret, `whsec_<base64>`, into the HMAC key.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").ok_or("the secret must look like whsec_<base64>")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the secret is not valid base64: {e}"))?;
    if key.len() < 16 {
        return Err(format!("the secret is {} bytes; use at least 16 (24-64 recommended)", key.len()));
    }
    Ok(key)
}
