//! Leadership leases in the `sb_router` KV bucket, so that of several processes doing the same
//! job (routers of one routing group) exactly one acts while the others stand by.
//!
//! A lease is one key, `lease.<name>`, whose value names the holder. The holder renews it by a
//! compare-and-set on the revision it last wrote; a renewal that finds another revision means the
//! lease was taken over, and the holder must stop at once. A contender takes the lease over only
//! after the key's revision stood still for a whole TTL *by its own monotonic clock*, so clocks of
//! different machines never have to agree. The holder, for its part, counts itself expired a
//! margin before the TTL from its last successful renewal, so it gives up before anyone can take
//! over, even when it cannot reach NATS to learn that it lost.

use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use serde::{Deserialize, Serialize};
use switchboard_core::contract::buckets;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::{Bus, BusError};

/// What a lease key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Who holds it (unique per process); empty when released.
    pub holder: String,
    /// The TTL the holder promised to renew within, in milliseconds.
    pub ttl_ms: u64,
}

/// A held lease. Renew it well within its TTL; act only while [`Lease::valid`] says so.
#[derive(Debug)]
pub struct Lease {
    kv: kv::Store,
    key: String,
    holder: String,
    ttl: Duration,
    revision: u64,
    renewed_at: Instant,
}

/// The lease is no longer ours: someone else holds it, or we could not renew it in time.
#[derive(Debug, thiserror::Error)]
#[error("lease {key} lost: {reason}")]
pub struct LeaseLost {
    /// The lease key.
    pub key: String,
    /// Why.
    pub reason: String,
}

fn lease_key(name: &str) -> String {
    format!("lease.{name}")
}

fn record(holder: &str, ttl: Duration) -> bytes::Bytes {
    let r = LeaseRecord { holder: holder.to_string(), ttl_ms: ttl.as_millis() as u64 };
    serde_json::to_vec(&r).expect("a lease record serialises").into()
}

/// Whether an entry leaves the lease free to take at once (absent, deleted, or released).
fn vacant(entry: &kv::Entry) -> bool {
    entry.operation != Operation::Put
        || serde_json::from_slice::<LeaseRecord>(&entry.value).map(|r| r.holder.is_empty()).unwrap_or(false)
}

impl Bus {
    /// Waits until this process holds lease `name` as `holder`, and returns it; `None` when
    /// `shutdown` fired first. `holder` must be unique per process (e.g. host, pid and a UUID).
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        shutdown: &CancellationToken,
    ) -> Result<Option<Lease>, BusError> {
        let kv = self
            .jetstream()
            .get_key_value(buckets::ROUTER)
            .await
            .map_err(|e| BusError::setup(format!("key-value bucket {}", buckets::ROUTER), e))?;
        let key = lease_key(name);
        let poll = (ttl / 5).max(Duration::from_millis(20));
        // The revision we saw standing still, and since when (our clock).
        let mut watched: Option<(u64, Instant)> = None;
        loop {
            let entry = kv.entry(key.as_str()).await.map_err(|e| lease_error(&key, e))?;
            let attempt = match &entry {
                None => Some(kv.create(key.as_str(), record(holder, ttl)).await.map_err(|e| e.to_string())),
                Some(e) if vacant(e) => Some(update(&kv, &key, holder, ttl, e.revision).await),
                Some(e) => match watched {
                    Some((rev, since)) if rev == e.revision && since.elapsed() >= ttl => {
                        info!(lease = %key, "lease not renewed for its TTL; taking it over");
                        Some(update(&kv, &key, holder, ttl, e.revision).await)
                    }
                    Some((rev, _)) if rev == e.revision => None,
                    _ => {
                        watched = Some((e.revision, Instant::now()));
                        None
                    }
                },
            };
            match attempt {
                Some(Ok(revision)) => {
                    info!(lease = %key, holder, "lease acquired");
                    let renewed_at = Instant::now();
                    return Ok(Some(Lease { kv, key, holder: holder.to_string(), ttl, revision, renewed_at }));
                }
                // Somebody else was faster; look again.
                Some(Err(reason)) => debug!(lease = %key, %reason, "lease taken by another contender"),
                None => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

async fn update(kv: &kv::Store, key: &str, holder: &str, ttl: Duration, revision: u64) -> Result<u64, String> {
    kv.update(key, record(holder, ttl), revision).await.map_err(|e| e.to_string())
}

fn lease_error(key: &str, e: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::setup(format!("lease {key}"), e)
}

impl Lease {
    /// The safety margin: the holder counts itself expired this long before the TTL.
    fn margin(&self) -> Duration {
        self.ttl / 5
    }

    /// Whether the holder may still act: renewed successfully less than TTL minus a margin ago.
    pub fn valid(&self) -> bool {
        self.renewed_at.elapsed() + self.margin() < self.ttl
    }

    /// How often to renew: a third of the TTL, so two renewals may fail before expiry.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// The KV revision of the lease as last written by us (a fencing token: it only grows).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The lease's name in the bucket.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Renews the lease. An error means it is lost for good: stop acting and contend again.
    /// A renewal that could not reach NATS is retried by the next call while [`Lease::valid`].
    pub async fn renew(&mut self) -> Result<(), LeaseLost> {
        let result = self.kv.update(self.key.as_str(), record(&self.holder, self.ttl), self.revision).await;
        let reason = match result {
            Ok(revision) => {
                self.revision = revision;
                self.renewed_at = Instant::now();
                return Ok(());
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => "another process holds it now".to_string(),
            Err(e) if self.valid() => {
                debug!(lease = %self.key, error = %e, "lease renewal failed; will retry");
                return Ok(());
            }
            Err(e) => format!("not renewed within its TTL ({e})"),
        };
        Err(LeaseLost { key: self.key.clone(), reason })
    }

    /// Gives the lease up so a standby takes over at once instead of after the TTL.
    pub async fn release(self) {
        let released = record("", self.ttl);
        if let Err(e) = self.kv.update(self.key.as_str(), released, self.revision).await {
            debug!(lease = %self.key, error = %e, "lease release failed; it will lapse after its TTL");
        }
    }
}
