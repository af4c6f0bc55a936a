//! Runtime settings shared by every channel.

use std::time::Duration;

use serde::Deserialize;
use switchboard_bus::Backoff;

/// How the runtime retries outbound sends and limits inbound senders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Send attempts before an outbound message is dead-lettered.
    pub max_attempts: u64,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Outbound messages sent at once.
    pub concurrency: usize,
    /// Seconds the bus waits for a crashed sender before redelivering.
    pub ack_wait_secs: u64,
    /// Per-sender inbound rate limit.
    pub rate_limit: RateLimitConfig,
    /// Seconds a polling inbound side (IMAP, Telegram long polling) may go without renewing its
    /// lease before another process takes the polling over.
    pub inbound_lease_ttl_secs: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            backoff: Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(60) },
            concurrency: 8,
            ack_wait_secs: 30,
            rate_limit: RateLimitConfig::default(),
            inbound_lease_ttl_secs: 10,
        }
    }
}

/// A token bucket per sender (customer id): `per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Messages per minute a single sender may send, sustained.
    pub per_minute: u32,
    /// Messages a single sender may send at once.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { per_minute: 60, burst: 20 }
    }
}

/// Reads a secret from the environment variable or the file a configuration names, trimmed;
/// `Ok(None)` when it names neither. The error says why in words for a `file: key: reason` report.
pub fn read_secret(env: Option<&str>, file: Option<&std::path::Path>) -> Result<Option<String>, String> {
    let value = match (env, file) {
        (Some(_), Some(_)) => return Err("name either an environment variable or a file, not both".into()),
        (Some(var), None) => std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))?,
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(value.trim().to_string()))
}
