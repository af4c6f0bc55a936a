//! Runtime settings shared by every channel.

use std::time::Duration;

use serde::Deserialize;
use switchboard_bus::{Backoff, ConsumerSpec};

/// Unacked deliveries a delivery consumer may have out, most of them waiting for their next try:
/// high, so that one receiver that is down (one agent's helpdesk) does not hold up the others.
const DELIVERY_MAX_PENDING: usize = 1000;

/// How the runtime retries outbound sends (to customers, and to agents' endpoints) and limits
/// inbound senders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Send attempts at least, before a message that keeps failing is dead-lettered.
    pub max_attempts: u64,
    /// Seconds a failing send is retried at least, counted from when the message was stored:
    /// a message is dead-lettered only once both `max_attempts` and this are used up, so a
    /// receiver may be down this long (a helpdesk restarting) without losing anything.
    pub retry_for_secs: u64,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Longest wait honoured when a receiver asks to wait (`Retry-After`, flood control): a
    /// longer one is cut to this and the message tried then. Waiting is never a failure: a
    /// message is not dead-lettered while its receiver only asks to wait.
    pub max_retry_after_secs: u64,
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
            retry_for_secs: 600,
            backoff: Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(30) },
            max_retry_after_secs: 3600,
            concurrency: 8,
            ack_wait_secs: 30,
            rate_limit: RateLimitConfig::default(),
            inbound_lease_ttl_secs: 10,
        }
    }
}

impl RuntimeConfig {
    /// The consumer of a delivery subject (`sb.out.<channel>`, `sb.agent.out.<kind>`) with these
    /// settings: attempts, retry window, back-off, wait ceiling, concurrency and `ack_wait`; one
    /// conversation's deliveries one after the other, in order.
    pub fn consumer_spec(&self, component: &str, stream: &str, durable: &str, subject: &str) -> ConsumerSpec {
        ConsumerSpec {
            max_deliver: self.max_attempts.max(1),
            retry_for: Duration::from_secs(self.retry_for_secs),
            backoff: self.backoff,
            max_wait: Duration::from_secs(self.max_retry_after_secs.max(1)),
            ack_wait: Duration::from_secs(self.ack_wait_secs.max(1)),
            concurrency: self.concurrency.max(1),
            max_pending: Some(DELIVERY_MAX_PENDING),
            per_conversation: true,
            ..ConsumerSpec::new(component, stream, durable, subject)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_keep_retrying_through_an_outage_of_minutes() {
        let spec = RuntimeConfig::default().consumer_spec("c", "S", "d", "s.x");
        let minute = Duration::from_secs(60);
        // Up to the attempts, and for every attempt after them inside ten minutes: not given up.
        assert!(!spec.gives_up(spec.max_deliver, 5 * minute));
        assert!(!spec.gives_up(1000, 9 * minute));
        assert!(spec.gives_up(spec.max_deliver, 10 * minute));
        // After a receiver is back, the next try is at most the back-off's 30 s away.
        assert_eq!(spec.backoff.delay(100), Duration::from_secs(30));
        assert_eq!(spec.max_wait, Duration::from_secs(3600));
        assert_eq!(spec.max_pending, Some(DELIVERY_MAX_PENDING));
    }
}
