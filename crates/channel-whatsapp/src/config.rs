//! The `[channels.whatsapp]` configuration: the Cloud API number, the three secrets (by reference),
//! limits and the re-engagement template.

use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::{RuntimeConfig, read_secret};

/// A message template sent when the customer's 24-hour window is closed (it must be approved in
/// WhatsApp Manager; a template without parameters).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The template's name, e.g. `reengage`.
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
}

/// Settings of the WhatsApp channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsAppConfig {
    /// Whether the daemon runs the channel.
    pub enabled: bool,
    /// The Graph API's base URL; only tests change it.
    pub graph_url: String,
    /// The Graph API version in every path, e.g. `v21.0`.
    pub api_version: String,
    /// The business phone number's id (WhatsApp Manager → API Setup), not the number itself.
    pub phone_number_id: String,
    /// Environment variable holding the access token (a system user's permanent token with
    /// `whatsapp_business_messaging`).
    pub access_token_env: Option<String>,
    /// File holding the access token.
    pub access_token_file: Option<PathBuf>,
    /// Environment variable holding the app secret (signs the webhook's `X-Hub-Signature-256`).
    pub app_secret_env: Option<String>,
    /// File holding the app secret.
    pub app_secret_file: Option<PathBuf>,
    /// Environment variable holding the verify token given to Meta with the webhook URL.
    pub verify_token_env: Option<String>,
    /// File holding the verify token.
    pub verify_token_file: Option<PathBuf>,
    /// Largest webhook body read, in bytes (checked before the signature is computed).
    pub max_body_bytes: usize,
    /// Largest media file fetched into the object store, in bytes; bigger ones are listed as
    /// skipped in the envelope.
    pub max_media_bytes: u64,
    /// Seconds after the customer's last message that free-form replies may still be sent
    /// (WhatsApp's customer service window: 24 hours).
    pub window_secs: u64,
    /// Sent instead of a reply outside the window; without one the agent is told the reply was
    /// not sent.
    pub reengage_template: Option<TemplateConfig>,
    /// Messages per second for the whole number (Cloud API throughput: 80 by default).
    pub per_number_per_sec: u32,
    /// Messages per minute to one customer, sustained (the pair rate limit: one every 6 s).
    pub per_recipient_per_minute: u32,
    /// Messages to one customer at once (a split reply's parts).
    pub per_recipient_burst: u32,
    /// Longest wait inside one send for a rate limit to pass; longer waits hand the message back
    /// to be tried after it.
    pub max_retry_after_secs: u64,
    /// Timeout of one Graph API call, in milliseconds.
    pub request_timeout_ms: u64,
    /// Retries, back-off, concurrency and the per-sender inbound limit (the SDK's settings).
    pub runtime: RuntimeConfig,
}

impl Default for WhatsAppConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            graph_url: "https://graph.facebook.com".into(),
            api_version: "v21.0".into(),
            phone_number_id: String::new(),
            access_token_env: None,
            access_token_file: None,
            app_secret_env: None,
            app_secret_file: None,
            verify_token_env: None,
            verify_token_file: None,
            max_body_bytes: 1024 * 1024,
            max_media_bytes: 16 * 1024 * 1024,
            window_secs: 24 * 3600,
            reengage_template: None,
            per_number_per_sec: 80,
            per_recipient_per_minute: 10,
            per_recipient_burst: 10,
            max_retry_after_secs: 10,
            request_timeout_ms: 15_000,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// An invalid WhatsApp setting: the key (relative to `channels.whatsapp`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct WhatsAppConfigError {
    /// Dotted key under `channels.whatsapp`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> WhatsAppConfigError {
    WhatsAppConfigError { key: key.into(), reason: reason.into() }
}

/// The three secrets, read.
#[derive(Clone)]
pub struct Secrets {
    /// The Graph API bearer token.
    pub access_token: String,
    /// The app secret: the HMAC key of webhook signatures.
    pub app_secret: String,
    /// The token Meta presents when it verifies the webhook URL.
    pub verify_token: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl WhatsAppConfig {
    /// Checks what can be checked without connecting; a disabled channel is not checked.
    pub fn validate(&self) -> Result<(), WhatsAppConfigError> {
        if !self.enabled {
            return Ok(());
        }
        for (name, env, file) in [
            ("access_token", &self.access_token_env, &self.access_token_file),
            ("app_secret", &self.app_secret_env, &self.app_secret_file),
            ("verify_token", &self.verify_token_env, &self.verify_token_file),
        ] {
            if env.is_some() == file.is_some() {
                return Err(err(format!("{name}_env"), format!("name exactly one of `{name}_env` and `{name}_file`")));
            }
        }
        if self.phone_number_id.is_empty() || !self.phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("phone_number_id", "the phone number's numeric id (WhatsApp Manager, API Setup)"));
        }
        if !(self.graph_url.starts_with("https://") || self.graph_url.starts_with("http://")) {
            return Err(err("graph_url", format!("`{}` is not an http(s) URL", self.graph_url)));
        }
        let version = self.api_version.strip_prefix('v').unwrap_or_default();
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(err("api_version", "a Graph API version such as `v21.0`"));
        }
        if self.max_body_bytes < 4096 {
            return Err(err("max_body_bytes", "at least 4096"));
        }
        if self.max_media_bytes == 0 {
            return Err(err("max_media_bytes", "must be greater than 0"));
        }
        if self.window_secs == 0 {
            return Err(err("window_secs", "must be greater than 0"));
        }
        if let Some(t) = &self.reengage_template {
            if t.name.is_empty() || !t.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(err("reengage_template.name", "a template name: lower-case letters, digits and `_`"));
            }
            if t.language.is_empty() || t.language.len() > 16 {
                return Err(err("reengage_template.language", "a language code such as `en_US`"));
            }
        }
        for (key, v) in [
            ("per_number_per_sec", self.per_number_per_sec),
            ("per_recipient_per_minute", self.per_recipient_per_minute),
            ("per_recipient_burst", self.per_recipient_burst),
        ] {
            if v == 0 {
                return Err(err(key, "must be greater than 0"));
            }
        }
        Ok(())
    }

    /// Reads the three secrets from the variables or files named; the error names the key.
    pub fn secrets(&self) -> Result<Secrets, WhatsAppConfigError> {
        let read = |name: &str, env: &Option<String>, file: &Option<PathBuf>, min: usize| {
            let key = if file.is_some() { format!("{name}_file") } else { format!("{name}_env") };
            let value = read_secret(env.as_deref(), file.as_deref())
                .map_err(|reason| err(&key, reason))?
                .ok_or_else(|| err(&key, format!("name `{name}_env` or `{name}_file`")))?;
            if value.len() < min {
                return Err(err(&key, format!("too short: at least {min} characters")));
            }
            Ok(value)
        };
        Ok(Secrets {
            access_token: read("access_token", &self.access_token_env, &self.access_token_file, 16)?,
            app_secret: read("app_secret", &self.app_secret_env, &self.app_secret_file, 16)?,
            verify_token: read("verify_token", &self.verify_token_env, &self.verify_token_file, 8)?,
        })
    }

    /// `<graph_url>/<api_version>`, the base of every call.
    pub fn graph_base(&self) -> String {
        format!("{}/{}", self.graph_url.trim_end_matches('/'), self.api_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> WhatsAppConfig {
        WhatsAppConfig {
            enabled: true,
            phone_number_id: "106540352242922".into(),
            access_token_env: Some("WA_TOKEN".into()),
            app_secret_env: Some("WA_APP_SECRET".into()),
            verify_token_env: Some("WA_VERIFY".into()),
            ..WhatsAppConfig::default()
        }
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(enabled().validate(), Ok(()));
        assert_eq!(WhatsAppConfig::default().validate(), Ok(()), "off: not checked");
        let c = WhatsAppConfig { app_secret_env: None, ..enabled() };
        assert_eq!(c.validate().unwrap_err().key, "app_secret_env");
        let c = WhatsAppConfig { phone_number_id: "+1 555".into(), ..enabled() };
        assert_eq!(c.validate().unwrap_err().key, "phone_number_id");
        let c = WhatsAppConfig { api_version: "21".into(), ..enabled() };
        assert_eq!(c.validate().unwrap_err().key, "api_version");
        let t = TemplateConfig { name: "Re-engage".into(), language: "en_US".into() };
        let c = WhatsAppConfig { reengage_template: Some(t), ..enabled() };
        assert_eq!(c.validate().unwrap_err().key, "reengage_template.name");
        let c = WhatsAppConfig { per_recipient_burst: 0, ..enabled() };
        assert_eq!(c.validate().unwrap_err().key, "per_recipient_burst");
    }

    #[test]
    fn secrets_come_from_files_and_are_never_printed() {
        let dir = std::env::temp_dir().join(format!("wa-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, value: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("{value}\n")).unwrap();
            Some(p)
        };
        let c = WhatsAppConfig {
            access_token_env: None,
            app_secret_env: None,
            verify_token_env: None,
            access_token_file: file("token", "EAAG-a-long-access-token"),
            app_secret_file: file("secret", "0123456789abcdef0123"),
            verify_token_file: file("verify", "short"),
            ..enabled()
        };
        assert_eq!(c.secrets().unwrap_err().key, "verify_token_file", "too short");
        let c = WhatsAppConfig { verify_token_file: file("verify", "verify-me-please"), ..c };
        let s = c.secrets().unwrap();
        assert_eq!(
            (s.access_token.as_str(), s.verify_token.as_str()),
            ("EAAG-a-long-access-token", "verify-me-please")
        );
        assert_eq!(format!("{s:?}"), "Secrets(<redacted>)");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
