//! Customer data with a lifecycle: retention (`[privacy]`), and erasure and export of one
//! person's data (`switchboard customers forget|export`, `DELETE /v1/customers/{id}`,
//! `GET /v1/customers/{id}/export`). What is kept where, and for how long: `docs/data-lifecycle.md`.

pub mod erase;
pub mod retention;
pub mod scan;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

pub use erase::{Erasure, Export, export, forget};

/// The `[privacy]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Days customer data is kept after it was last written: messages and transcripts (the
    /// streams' max age is capped to it), resolved conversation records, thread tokens,
    /// web-chat profiles, attachments and the router's last-agent memory (the sweep). 0 keeps
    /// them as long as `nats.max_age_secs` keeps the streams, and the rest for ever.
    pub retention_days: u64,
    /// For tests only: the retention in seconds, overriding `retention_days`.
    pub test_retention_secs: Option<u64>,
    /// Seconds between retention sweeps (one process sweeps, by lease). Must be shorter than
    /// the retention, since each sweep also has the routers save a snapshot.
    pub sweep_every_secs: u64,
    /// At most this many messages are read per stream by one export, erasure or sweep; a
    /// stream with more is reported as not scanned to its end.
    pub max_scan_messages: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self { retention_days: 30, test_retention_secs: None, sweep_every_secs: 3600, max_scan_messages: 10_000_000 }
    }
}

impl PrivacyConfig {
    /// The retention period, `None` when data is kept for ever.
    pub fn retention(&self) -> Option<Duration> {
        match self.test_retention_secs {
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(secs)),
            None if self.retention_days == 0 => None,
            None => Some(Duration::from_secs(self.retention_days.saturating_mul(86_400))),
        }
    }

    /// Caps the streams' max age to the retention: messages and transcripts live in the streams.
    /// The de-duplication window is capped too (the server refuses one longer than the age).
    pub fn cap_streams(&self, nats: &mut switchboard_bus::BusConfig) {
        if let Some(retention) = self.retention() {
            let secs = retention.as_secs().max(1);
            if nats.max_age_secs == 0 || nats.max_age_secs > secs {
                nats.max_age_secs = secs;
            }
            nats.duplicate_window_secs = nats.duplicate_window_secs.min(secs);
        }
    }

    /// Checks what the types cannot; the key is relative to `privacy.`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.retention_days > 36_500 {
            return Err(("retention_days".into(), "must be at most 36500 (100 years); 0 keeps data for ever".into()));
        }
        if self.sweep_every_secs == 0 {
            return Err(("sweep_every_secs".into(), "must be greater than 0".into()));
        }
        if let Some(retention) = self.retention()
            && self.sweep_every_secs >= retention.as_secs()
        {
            return Err((
                "sweep_every_secs".into(),
                format!(
                    "must be shorter than the retention ({} s): each sweep has the routers save a snapshot, so that \
                     their journal is never needed beyond the retention",
                    retention.as_secs()
                ),
            ));
        }
        if self.max_scan_messages == 0 {
            return Err(("max_scan_messages".into(), "must be greater than 0".into()));
        }
        Ok(())
    }
}

/// Who a request is about: `<channel>:<customer id>` as the channel names the customer
/// (`email:ann@example.com`, `telegram:123456`, `webchat:<session>`, `webhook:<customer id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRef {
    /// The channel.
    pub channel: String,
    /// The channel's customer id (an e-mail address in lower case).
    pub id: String,
}

impl std::str::FromStr for CustomerRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (channel, id) = s.split_once(':').ok_or_else(|| {
            format!("`{s}` is not <channel>:<customer id> (e.g. email:ann@example.com, webhook:cust-42)")
        })?;
        let channel_ok = !channel.is_empty()
            && channel.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !channel_ok {
            return Err(format!("`{channel}` is not a channel name (lower-case letters, digits, - and _)"));
        }
        let id = id.trim();
        if id.is_empty() || id.chars().count() > 512 {
            return Err("the customer id must be 1 to 512 characters".into());
        }
        let id = if channel == "email" { id.to_lowercase() } else { id.to_string() };
        Ok(CustomerRef { channel: channel.into(), id })
    }
}

impl CustomerRef {
    /// `<channel>:<id>`, as the router keys customers.
    pub fn key(&self) -> String {
        format!("{}:{}", self.channel, self.id)
    }
}

/// Strings that identify a person, and whether a stored item mentions one: a string value equal
/// to one (ignoring case), or containing one of at least [`Needles::MIN_CONTAINED`] characters
/// as a whole word (not inside a longer id), e.g. an address inside `email:ann@example.com`.
#[derive(Debug, Clone, Default)]
pub struct Needles {
    set: BTreeSet<String>,
}

impl Needles {
    /// Shorter identifiers are matched only as whole values, never inside text.
    pub const MIN_CONTAINED: usize = 6;

    /// Adds an identifier (blank ones are ignored).
    pub fn add(&mut self, s: &str) {
        let s = s.trim();
        if !s.is_empty() {
            self.set.insert(s.to_lowercase());
        }
    }

    /// The identifiers, in lower case.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(String::as_str)
    }

    /// Whether a string mentions one.
    pub fn in_str(&self, s: &str) -> bool {
        let lower = s.to_lowercase();
        if self.set.contains(lower.trim()) {
            return true;
        }
        self.set.iter().filter(|n| n.len() >= Self::MIN_CONTAINED).any(|n| contains_word(&lower, n))
    }

    /// Whether a JSON value mentions one in any string.
    pub fn in_json(&self, v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => self.in_str(s),
            serde_json::Value::Array(a) => a.iter().any(|v| self.in_json(v)),
            serde_json::Value::Object(m) => m.values().any(|v| self.in_json(v)),
            _ => false,
        }
    }

    /// Whether a payload mentions one: as JSON when it is, else as text (a raw mail).
    pub fn in_bytes(&self, payload: &[u8]) -> bool {
        match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(v) => self.in_json(&v),
            Err(_) => self.in_str(&String::from_utf8_lossy(payload)),
        }
    }

    /// Whether one of a subject's tokens is one (`sb.webchat.session.<s>`, `$KV.b.webchat.profile.<s>`).
    pub fn in_subject(&self, subject: &str) -> bool {
        subject.split('.').any(|t| self.set.contains(&t.to_lowercase()))
    }
}

/// Whether `hay` contains `needle` with no letter or digit right before or after it.
fn contains_word(hay: &str, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        if !word(hay[..start].chars().next_back()) && !word(hay[end..].chars().next()) {
            return true;
        }
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_refs_name_a_channel_and_an_id() {
        let r: CustomerRef = "email:Ann@Example.com".parse().unwrap();
        assert_eq!(r.key(), "email:ann@example.com");
        assert_eq!("webhook:cust-42".parse::<CustomerRef>().unwrap().key(), "webhook:cust-42");
        assert!("cust-42".parse::<CustomerRef>().is_err());
        assert!("Web Hook:x".parse::<CustomerRef>().is_err());
        assert!("webhook:  ".parse::<CustomerRef>().is_err());
    }

    #[test]
    fn needles_match_whole_values_and_long_ids_as_words_only() {
        let mut n = Needles::default();
        n.add("ann@example.com");
        n.add("42");
        assert!(n.in_str("ANN@example.com"));
        assert!(n.in_str("email:ann@example.com"));
        assert!(n.in_str("42"));
        assert!(!n.in_str("order 42 is late"), "short ids only as whole values");
        assert!(!n.in_str("joann@example.com"), "not inside a longer address");
        assert!(n.in_json(&serde_json::json!({ "customer": { "id": "x", "email": "ann@example.com" } })));
        assert!(!n.in_json(&serde_json::json!({ "priority": 42 })));
        assert!(n.in_bytes(b"From: Ann <ann@example.com>\r\n\r\nhello"));
        assert!(n.in_subject("sb.webchat.session.42"));
        assert!(!n.in_subject("sb.webchat.session.420"));
    }

    #[test]
    fn retention_is_validated_against_the_sweep() {
        let mut c = PrivacyConfig::default();
        assert_eq!(c.retention(), Some(Duration::from_secs(30 * 86_400)));
        assert!(c.validate().is_ok());
        c.test_retention_secs = Some(5);
        assert_eq!(c.validate().unwrap_err().0, "sweep_every_secs");
        c.sweep_every_secs = 1;
        assert!(c.validate().is_ok());
        c.retention_days = 0;
        c.test_retention_secs = None;
        assert_eq!(c.retention(), None);
        assert!(c.validate().is_ok());
    }
}
