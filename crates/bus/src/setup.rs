//! Creating or updating the contract's streams, buckets and object store, idempotently.

use std::time::Duration;

use async_nats::jetstream::{kv, object_store, stream};
use switchboard_core::contract::{ATTACHMENTS_STORE, OBJECT_STORES, buckets, streams};
use tracing::{info, warn};

use crate::limits::{self, StoreKind};
use crate::{Backoff, Bus, BusError};

/// How long a presence entry (`sb_presence`) outlives its last renewal: a daemon that died
/// without saying goodbye disappears from `switchboard status` after this.
pub const PRESENCE_MAX_AGE: Duration = Duration::from_secs(60);

/// Entries kept per web-chat session transcript; older ones are dropped first.
pub const WEBCHAT_KEEP_PER_SESSION: i64 = 1000;

/// A budget as JetStream takes it.
fn budget(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Attempts of one setup step before start-up gives up.
const SETUP_ATTEMPTS: u32 = 8;

/// How long one setup request waits for JetStream's answer.
const SETUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs one idempotent setup step, again after a failure: on a JetStream cluster a request can
/// go unanswered while a stream leader is being elected or another process creates the same
/// stream (seen: three processes starting together against three nodes each had their first
/// request for every stream time out, and the retry found it created).
async fn settle<T, E, F, Fut>(what: &str, mut step: F) -> Result<T, BusError>
where
    E: std::fmt::Display + Into<Box<dyn std::error::Error + Send + Sync>>,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let backoff = Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(4) };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match step().await {
            Ok(done) => return Ok(done),
            // Not a passing state: the server cannot reserve the budget, so say which knob helps.
            Err(e) if e.to_string().contains("insufficient storage") => {
                return Err(BusError::setup(
                    what.to_string(),
                    format!(
                        "{e}: JetStream reserves every stream's, bucket's and store's byte budget against its \
                         storage limit (jetstream max_file_store, by default 75% of the free disk); lower \
                         nats.stream_max_bytes / bucket_max_bytes / store_max_bytes, or give the server more room"
                    ),
                ));
            }
            Err(e) if attempt < SETUP_ATTEMPTS => {
                let delay = backoff.delay(u64::from(attempt));
                warn!(what, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "setup step failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(BusError::setup(what.to_string(), e)),
        }
    }
}

impl Bus {
    /// Creates every stream, KV bucket and the object store of the contract, or updates them to
    /// the configured shape. Safe to call at every start-up and from several processes at once.
    pub async fn ensure_contract(&self) -> Result<(), BusError> {
        let cfg = self.config();
        let max_age = Duration::from_secs(cfg.max_age_secs);
        let attachments_max_age = Duration::from_secs(cfg.attachments_max_age_secs);
        // A short timeout per attempt: a lost answer is retried rather than waited out.
        let mut js = async_nats::jetstream::new(self.client().clone());
        js.set_timeout(SETUP_TIMEOUT);
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
                max_bytes: budget(cfg.max_bytes_of(StoreKind::Stream, name)),
                discard: limits::discard_policy(name),
                ..Default::default()
            };
            // JetStream enforces a lowered budget by deleting the oldest messages, which on a
            // work stream means messages not yet handled: refuse instead.
            if config.discard == stream::DiscardPolicy::New
                && let Ok(mut existing) = js.get_stream(*name).await
                && let Ok(info) = existing.info().await
                && info.state.bytes > cfg.max_bytes_of(StoreKind::Stream, name)
            {
                return Err(BusError::setup(
                    format!("stream {name}"),
                    format!(
                        "it holds {} bytes, more than nats.stream_max_bytes.{} = {}: raise the budget, or let \
                         the stream drain first",
                        info.state.bytes,
                        name.to_lowercase(),
                        cfg.max_bytes_of(StoreKind::Stream, name)
                    ),
                ));
            }
            settle(&format!("stream {name}"), || js.create_or_update_stream(config.clone())).await?;
        }
        for bucket in buckets::ALL {
            // Presence is a heartbeat: only the latest value matters, and it must expire. Upload
            // records live as long as the files they count.
            let (history, max_age) = match *bucket {
                buckets::PRESENCE => (1, PRESENCE_MAX_AGE),
                buckets::UPLOADS => (1, attachments_max_age),
                // A verdict answers retries for as long as JetStream de-duplicates the command.
                buckets::COMMANDS => (1, Duration::from_secs(cfg.duplicate_window_secs)),
                _ => (5, Duration::ZERO),
            };
            let config = kv::Config {
                bucket: bucket.to_string(),
                history,
                max_age,
                max_bytes: budget(cfg.max_bytes_of(StoreKind::Bucket, bucket)),
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                ..Default::default()
            };
            settle(&format!("key-value bucket {bucket}"), || js.create_or_update_key_value(config.clone())).await?;
        }
        for store in OBJECT_STORES {
            // Attachments come from anyone on the web: they expire. Snapshots are one object per
            // name, replaced in place, and must never expire.
            let max_age = if *store == ATTACHMENTS_STORE { attachments_max_age } else { Duration::ZERO };
            let max_bytes = budget(cfg.max_bytes_of(StoreKind::ObjectStore, store));
            let config = object_store::Config {
                bucket: store.to_string(),
                storage: stream::StorageType::File,
                num_replicas: cfg.replicas,
                max_age,
                max_bytes,
                ..Default::default()
            };
            settle(&format!("object store {store}"), || async {
                // An existing store (perhaps created by an older version without limits, or by
                // another process since we looked) gets the configured limits.
                match js.get_stream(format!("OBJ_{store}")).await {
                    Ok(mut existing) => {
                        let mut current = existing.info().await.map_err(|e| e.to_string())?.config.clone();
                        if current.max_bytes != max_bytes || current.max_age != max_age {
                            current.max_bytes = max_bytes;
                            current.max_age = max_age;
                            current.discard = stream::DiscardPolicy::New;
                            js.update_stream(current).await.map_err(|e| e.to_string())?;
                        }
                        Ok(())
                    }
                    Err(_) => js.create_object_store(config.clone()).await.map(|_| ()).map_err(|e| e.to_string()),
                }
            })
            .await?;
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
