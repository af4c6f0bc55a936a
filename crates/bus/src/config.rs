//! How to reach NATS and how to shape the contract's streams.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::Backoff;

/// Bus settings, the `[nats]` section of the daemon's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// Server URL(s), comma-separated, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Client name shown in the server's connection list.
    pub client_name: String,
    /// Path of a credentials file (`.creds`), if the server requires one.
    pub credentials_file: Option<String>,
    /// Back-off between connection attempts at start-up.
    pub connect_backoff: Backoff,
    /// Replicas of every stream and bucket: 1 on a single server, 3 on a cluster.
    pub replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id` for de-duplication, in seconds.
    pub duplicate_window_secs: u64,
    /// How long messages are kept in the contract's streams, in seconds (0 = forever).
    pub max_age_secs: u64,
    /// Byte budgets of streams by name (`sb_events`, any case), over the built-in defaults of
    /// [`crate::limits::default_max_bytes`].
    pub stream_max_bytes: BTreeMap<String, u64>,
    /// Byte budgets of key-value buckets by name (`sb_conversations`).
    pub bucket_max_bytes: BTreeMap<String, u64>,
    /// Byte budgets of object stores by name (`sb_attachments`).
    pub store_max_bytes: BTreeMap<String, u64>,
    /// How long files in `sb_attachments` (and their upload records) are kept, in seconds.
    pub attachments_max_age_secs: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            client_name: "switchboard".into(),
            credentials_file: None,
            connect_backoff: Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(10) },
            replicas: 1,
            duplicate_window_secs: 24 * 3600,
            max_age_secs: 30 * 24 * 3600,
            stream_max_bytes: BTreeMap::new(),
            bucket_max_bytes: BTreeMap::new(),
            store_max_bytes: BTreeMap::new(),
            attachments_max_age_secs: 30 * 24 * 3600,
        }
    }
}

impl BusConfig {
    /// Settings for `url` with every other field at its default.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self { url: url.into(), ..Self::default() }
    }
}
