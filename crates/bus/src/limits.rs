//! Byte budgets and discard policies of every stream, key-value bucket and object store, so that
//! no flood of input can fill the server's disk and stop every stream.

use async_nats::jetstream::stream::DiscardPolicy;
use switchboard_core::contract::{ATTACHMENTS_STORE, METRICS_STORE, OBJECT_STORES, ROUTER_SNAPSHOTS_STORE};
use switchboard_core::contract::{buckets, streams};

use crate::BusConfig;

const MIB: u64 = 1 << 20;

/// The smallest budget accepted: JetStream refuses a message larger than its stream's budget,
/// and messages go up to 1 MiB.
pub const MIN_MAX_BYTES: u64 = MIB;

/// Built-in byte budget of a stream, bucket or object store of the contract, by name.
pub fn default_max_bytes(name: &str) -> Option<u64> {
    let mib = match name {
        streams::INBOUND | streams::OUTBOUND | streams::AGENT | streams::ROUTER => 512,
        streams::EVENTS => 1024,
        streams::DLQ | streams::WEBCHAT => 256,
        streams::REPLAY => 1024,
        buckets::CONVERSATIONS => 256,
        buckets::AGENTS | buckets::ROUTER | buckets::CHANNELS | buckets::UPLOADS => 64,
        buckets::PRESENCE => 16,
        ATTACHMENTS_STORE => 1024,
        ROUTER_SNAPSHOTS_STORE => 256,
        METRICS_STORE => 64,
        _ => return None,
    };
    Some(mib * MIB)
}

/// What a full stream does. Work streams refuse new messages (`DiscardNew`): the publisher's
/// error becomes a refusal or a retry, and nothing stored but not yet handled is deleted. Streams
/// that are records rather than work (the audit log, the web-chat transcripts) drop their oldest
/// messages instead, as their age limit already does.
pub fn discard_policy(stream: &str) -> DiscardPolicy {
    match stream {
        streams::EVENTS | streams::WEBCHAT => DiscardPolicy::Old,
        _ => DiscardPolicy::New,
    }
}

/// Every name with a budget: streams, buckets, object stores.
pub fn budgeted_names() -> impl Iterator<Item = &'static str> {
    streams::ALL.iter().map(|(name, _)| *name).chain(buckets::ALL.iter().copied()).chain(OBJECT_STORES.iter().copied())
}

impl BusConfig {
    /// The byte budget of `name` (a stream, bucket or object store of the contract): the
    /// configured one (`nats.max_bytes.<name>`, any case) or the built-in default.
    pub fn max_bytes_of(&self, name: &str) -> u64 {
        self.max_bytes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .or_else(|| default_max_bytes(name))
            .unwrap_or(MIN_MAX_BYTES)
    }

    /// Checks the budgets and ages: the dotted key under `nats` and the reason when one is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (name, value) in &self.max_bytes {
            if !budgeted_names().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err((
                    format!("max_bytes.{name}"),
                    format!(
                        "not a stream, bucket or object store of the contract (one of {})",
                        budgeted_names().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if *value < MIN_MAX_BYTES {
                return Err((
                    format!("max_bytes.{name}"),
                    format!("must be at least {MIN_MAX_BYTES} (1 MiB): a message may be that large"),
                ));
            }
        }
        if self.attachments_max_age_secs == 0 {
            return Err((
                "attachments_max_age_secs".into(),
                "must be at least 1: files from anyone on the web must expire".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_bucket_and_store_has_a_default_budget() {
        for name in budgeted_names() {
            assert!(default_max_bytes(name).is_some_and(|b| b >= MIN_MAX_BYTES), "{name}");
        }
    }

    #[test]
    fn configured_budgets_override_by_any_case_and_unknown_names_are_refused() {
        let mut cfg = BusConfig::default();
        cfg.max_bytes.insert("sb_attachments".into(), 8 * MIB);
        assert_eq!(cfg.max_bytes_of(ATTACHMENTS_STORE), 8 * MIB);
        assert_eq!(cfg.max_bytes_of(streams::EVENTS), 1024 * MIB);
        assert!(cfg.validate().is_ok());
        cfg.max_bytes.insert("SB_NOPE".into(), 8 * MIB);
        assert_eq!(cfg.validate().unwrap_err().0, "max_bytes.SB_NOPE");
        cfg.max_bytes.remove("SB_NOPE");
        cfg.max_bytes.insert("SB_EVENTS".into(), 10);
        assert!(cfg.validate().unwrap_err().1.contains("at least"));
        cfg.max_bytes.remove("SB_EVENTS");
        cfg.attachments_max_age_secs = 0;
        assert_eq!(cfg.validate().unwrap_err().0, "attachments_max_age_secs");
    }
}
