//! Byte budgets and discard policies of every stream, key-value bucket and object store, so that
//! no flood of input can fill the server's disk and stop every stream.

use std::collections::BTreeMap;

use async_nats::jetstream::stream::DiscardPolicy;
use switchboard_core::contract::{ATTACHMENTS_STORE, METRICS_STORE, OBJECT_STORES, ROUTER_SNAPSHOTS_STORE};
use switchboard_core::contract::{buckets, streams};

use crate::BusConfig;

const MIB: u64 = 1 << 20;

/// The smallest budget accepted: JetStream refuses a message larger than its stream's budget,
/// and messages go up to 1 MiB.
pub const MIN_MAX_BYTES: u64 = MIB;

/// What holds the data: the three kinds have separate budget tables, since a stream and a bucket
/// may share a name (`SB_ROUTER`, `sb_router`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A JetStream stream of the contract (`SB_INBOUND`).
    Stream,
    /// A key-value bucket (`sb_conversations`).
    Bucket,
    /// An object store (`sb_attachments`).
    ObjectStore,
}

impl StoreKind {
    /// The key of its budget table under `[nats]`.
    pub fn config_key(self) -> &'static str {
        match self {
            StoreKind::Stream => "stream_max_bytes",
            StoreKind::Bucket => "bucket_max_bytes",
            StoreKind::ObjectStore => "store_max_bytes",
        }
    }

    /// `stream`, `bucket` or `object_store`: the `kind` label of the fill gauges.
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::Stream => "stream",
            StoreKind::Bucket => "bucket",
            StoreKind::ObjectStore => "object_store",
        }
    }

    /// The JetStream stream behind `name`.
    pub fn backing_stream(self, name: &str) -> String {
        match self {
            StoreKind::Stream => name.to_string(),
            StoreKind::Bucket => format!("KV_{name}"),
            StoreKind::ObjectStore => format!("OBJ_{name}"),
        }
    }

    fn names(self) -> Vec<&'static str> {
        match self {
            StoreKind::Stream => streams::ALL.iter().map(|(n, _)| *n).collect(),
            StoreKind::Bucket => buckets::ALL.to_vec(),
            StoreKind::ObjectStore => OBJECT_STORES.to_vec(),
        }
    }
}

/// Built-in byte budget of a stream, bucket or object store of the contract.
pub fn default_max_bytes(kind: StoreKind, name: &str) -> Option<u64> {
    // Sized for a support desk's 30 days (a few KiB per message, event or journal entry) while
    // their sum (about 2.6 GiB, reserved by JetStream at start-up) fits a small server.
    let mib = match (kind, name) {
        (StoreKind::Stream, streams::INBOUND | streams::OUTBOUND | streams::AGENT | streams::ROUTER) => 256,
        (StoreKind::Stream, streams::EVENTS) => 512,
        (StoreKind::Stream, streams::DLQ | streams::WEBCHAT | streams::REPLAY) => 128,
        (StoreKind::Bucket, buckets::CONVERSATIONS) => 64,
        (StoreKind::Bucket, buckets::CHANNELS) => 32,
        (StoreKind::Bucket, buckets::AGENTS | buckets::ROUTER | buckets::UPLOADS | buckets::COMMANDS) => 16,
        (StoreKind::Bucket, buckets::PRESENCE) => 8,
        (StoreKind::ObjectStore, ATTACHMENTS_STORE) => 512,
        (StoreKind::ObjectStore, ROUTER_SNAPSHOTS_STORE) => 64,
        (StoreKind::ObjectStore, METRICS_STORE) => 16,
        _ => return None,
    };
    Some(mib * MIB)
}

/// What a full stream does. Work streams refuse new messages (`DiscardNew`): the publisher's
/// error becomes a refusal or a retry, and nothing stored but not yet handled is deleted. Streams
/// that are records rather than work drop their oldest messages instead, as their age limit
/// already does: the audit log, the web-chat transcripts, and the router journal, whose state
/// is restored from a snapshot taken every `snapshot_every` entries and only the entries after
/// it are replayed (refusing appends instead would stop routing when it fills).
pub fn discard_policy(stream: &str) -> DiscardPolicy {
    match stream {
        streams::EVENTS | streams::WEBCHAT | streams::ROUTER => DiscardPolicy::Old,
        _ => DiscardPolicy::New,
    }
}

/// Every stream, bucket and object store of the contract with its kind.
pub fn budgeted() -> impl Iterator<Item = (StoreKind, &'static str)> {
    [StoreKind::Stream, StoreKind::Bucket, StoreKind::ObjectStore]
        .into_iter()
        .flat_map(|kind| kind.names().into_iter().map(move |name| (kind, name)))
}

impl BusConfig {
    fn budgets(&self, kind: StoreKind) -> &BTreeMap<String, u64> {
        match kind {
            StoreKind::Stream => &self.stream_max_bytes,
            StoreKind::Bucket => &self.bucket_max_bytes,
            StoreKind::ObjectStore => &self.store_max_bytes,
        }
    }

    /// The byte budget of `name`: the configured one (`nats.<kind>_max_bytes.<name>`, any case)
    /// or the built-in default.
    pub fn max_bytes_of(&self, kind: StoreKind, name: &str) -> u64 {
        self.budgets(kind)
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .or_else(|| default_max_bytes(kind, name))
            .unwrap_or(MIN_MAX_BYTES)
    }

    /// Checks the budgets and ages: the dotted key under `nats` and the reason when one is wrong.
    pub fn validate_limits(&self) -> Result<(), (String, String)> {
        for kind in [StoreKind::Stream, StoreKind::Bucket, StoreKind::ObjectStore] {
            let table = self.budgets(kind);
            for (name, value) in table {
                let key = format!("{}.{name}", kind.config_key());
                if let Some(other) = table.keys().find(|k| *k != name && k.eq_ignore_ascii_case(name)) {
                    return Err((
                        key,
                        format!(
                            "given twice, also as `{other}`: write it once, in lower case (environment \
                             overrides arrive in lower case)"
                        ),
                    ));
                }
                if !kind.names().iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    return Err((
                        key,
                        format!("not a {} of the contract (one of {})", kind.label(), kind.names().join(", ")),
                    ));
                }
                if *value < MIN_MAX_BYTES {
                    return Err((
                        key,
                        format!("must be at least {MIN_MAX_BYTES} (1 MiB): a message may be that large"),
                    ));
                }
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
        for (kind, name) in budgeted() {
            assert!(default_max_bytes(kind, name).is_some_and(|b| b >= MIN_MAX_BYTES), "{name}");
        }
        assert_ne!(
            default_max_bytes(StoreKind::Stream, streams::ROUTER),
            default_max_bytes(StoreKind::Bucket, buckets::ROUTER),
            "a stream and a bucket of one name have their own budgets"
        );
    }

    #[test]
    fn configured_budgets_override_by_any_case_and_unknown_names_are_refused() {
        let mut cfg = BusConfig::default();
        cfg.store_max_bytes.insert("sb_attachments".into(), 8 * MIB);
        cfg.bucket_max_bytes.insert("sb_router".into(), 2 * MIB);
        assert_eq!(cfg.max_bytes_of(StoreKind::ObjectStore, ATTACHMENTS_STORE), 8 * MIB);
        assert_eq!(cfg.max_bytes_of(StoreKind::Bucket, buckets::ROUTER), 2 * MIB);
        assert_eq!(cfg.max_bytes_of(StoreKind::Stream, streams::ROUTER), 256 * MIB);
        assert!(cfg.validate_limits().is_ok());
        cfg.stream_max_bytes.insert("sb_nope".into(), 8 * MIB);
        assert_eq!(cfg.validate_limits().unwrap_err().0, "stream_max_bytes.sb_nope");
        cfg.stream_max_bytes.clear();
        cfg.stream_max_bytes.insert("sb_events".into(), 10);
        assert!(cfg.validate_limits().unwrap_err().1.contains("at least"));
        cfg.stream_max_bytes.insert("sb_events".into(), 2 * MIB);
        cfg.stream_max_bytes.insert("SB_EVENTS".into(), 3 * MIB);
        assert!(cfg.validate_limits().unwrap_err().1.contains("given twice"));
        cfg.stream_max_bytes.clear();
        cfg.attachments_max_age_secs = 0;
        assert_eq!(cfg.validate_limits().unwrap_err().0, "attachments_max_age_secs");
    }
}
