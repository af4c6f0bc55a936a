//! Creating or updating the contract's streams, buckets and object store, idempotently.

use std::time::Duration;

use async_nats::jetstream::{kv, object_store, stream};
use switchboard_core::contract::{ATTACHMENTS_STORE, METRICS_STORE, ROUTER_SNAPSHOTS_STORE, buckets, streams};
use tracing::info;

use crate::{Bus, BusError};

/// How long a presence entry (`sb_presence`) outlives its last renewal: a daemon that died
/// without saying goodbye disappears from `switchboard status` after this.
pub const PRESENCE_MAX_AGE: Duration = Duration::from_secs(60);

/// Entries kept per web-chat session transcript; older ones are dropped first.
pub const WEBCHAT_KEEP_PER_SESSION: i64 = 1000;

impl Bus {
    /// Creates every stream, KV bucket and the object store of the contract, or updates them to
    /// the configured shape. Safe to call at every start-up and from several processes at once.
    pub async fn ensure_contract(&self) -> Result<(), BusError> {
        let cfg = self.config();
        let max_age = Duration::from_secs(cfg.max_age_secs);
        for (name, subjects) in streams::ALL {
            let config = stream::Config {
                name: name.to_string(),
                subjects: subjects.iter().map(|s| s.to_string()).collect(),
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                max_age,
                duplicate_window: Duration::from_secs(cfg.duplicate_window_secs),
                allow_direct: true,
                // A web-chat transcript is replayed whole into the widget: keep it bounded.
                max_messages_per_subject: if *name == streams::WEBCHAT { WEBCHAT_KEEP_PER_SESSION } else { 0 },
                ..Default::default()
            };
            self.jetstream()
                .create_or_update_stream(config)
                .await
                .map_err(|e| BusError::setup(format!("stream {name}"), e))?;
        }
        for bucket in buckets::ALL {
            // Presence is a heartbeat: only the latest value matters, and it must expire.
            let presence = *bucket == buckets::PRESENCE;
            let config = kv::Config {
                bucket: bucket.to_string(),
                history: if presence { 1 } else { 5 },
                max_age: if presence { PRESENCE_MAX_AGE } else { Duration::ZERO },
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                ..Default::default()
            };
            self.jetstream()
                .create_or_update_key_value(config)
                .await
                .map_err(|e| BusError::setup(format!("key-value bucket {bucket}"), e))?;
        }
        for store in [ATTACHMENTS_STORE, ROUTER_SNAPSHOTS_STORE, METRICS_STORE] {
            if self.jetstream().get_object_store(store).await.is_err() {
                let config = object_store::Config {
                    bucket: store.to_string(),
                    storage: stream::StorageType::File,
                    num_replicas: cfg.replicas,
                    ..Default::default()
                };
                self.jetstream()
                    .create_object_store(config)
                    .await
                    .map_err(|e| BusError::setup(format!("object store {store}"), e))?;
            }
        }
        info!(streams = streams::ALL.len(), buckets = buckets::ALL.len(), "bus contract set up");
        Ok(())
    }

    /// Whether every stream of the contract exists: the readiness check.
    pub async fn contract_present(&self) -> bool {
        for (name, _) in streams::ALL {
            if self.jetstream().get_stream(*name).await.is_err() {
                return false;
            }
        }
        true
    }
}
