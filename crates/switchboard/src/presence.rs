//! Presence: every `switchboard run` process announces itself in KV `sb_presence` (who it is,
//! what it runs, whether it is ready) and renews the entry every [`HEARTBEAT`], so that
//! `switchboard status` can list the daemons and mark those that stopped renewing.
//!
//! A graceful stop deletes the entry; a crashed process's entry is marked stale after
//! [`STALE_AFTER`] and dropped by the bucket's max age ([`switchboard_bus::PRESENCE_MAX_AGE`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_bus::Bus;
use switchboard_core::contract::buckets;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::http::Readiness;

/// How often a daemon renews its presence entry.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// An entry not renewed for this long belongs to a process that stopped or lost NATS: three
/// missed heartbeats, so one slow renewal does not flag a healthy daemon.
pub const STALE_AFTER: Duration = Duration::from_secs(15);

/// What a daemon announces about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRecord {
    /// The daemon run's unique name; its routers hold their leases under the same name.
    pub holder: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The `switchboard` version it runs.
    pub version: String,
    /// The components it runs (channels, agent endpoints, metrics, router).
    pub components: Vec<String>,
    /// The routing groups its routers contend for (none when the router is disabled).
    pub router_groups: Vec<String>,
    /// Whether `/readyz` would answer 200 right now.
    pub ready: bool,
    /// What is not ready and why (`bus` or a component name → its status).
    pub not_ready: BTreeMap<String, String>,
    /// When the daemon had connected to NATS and started its components.
    pub started_at: DateTime<Utc>,
}

/// The key of a holder's entry: KV keys allow only letters, digits and `-_=/.`, and a dot would
/// split the key into tokens.
pub fn presence_key(holder: &str) -> String {
    holder.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// A new holder name for this process: `<host>:<pid>:<UUIDv7>`, unique per daemon run.
pub fn new_holder() -> String {
    format!("{}:{}:{}", host_name(), std::process::id(), uuid::Uuid::now_v7())
}

pub use crate::host::host_name;

/// Writes `record` (with the current readiness) every [`HEARTBEAT`] until `stop`, then deletes
/// it. Failures are logged and retried at the next beat: presence is for operators, never a
/// reason to stop the daemon.
pub async fn announce(
    bus: Bus,
    mut record: PresenceRecord,
    readiness: Readiness,
    stop: CancellationToken,
) -> Result<(), String> {
    let key = presence_key(&record.holder);
    let mut kv = None;
    loop {
        if kv.is_none() {
            match bus.jetstream().get_key_value(buckets::PRESENCE).await {
                Ok(store) => kv = Some(store),
                Err(e) => warn!(error = %e, "presence bucket unavailable"),
            }
        }
        if let Some(store) = &kv {
            let report = readiness.check().await;
            record.ready = report.ready;
            record.not_ready = report.problems();
            let value = serde_json::to_vec(&record).expect("a presence record serialises");
            if let Err(e) = store.put(key.as_str(), value.into()).await {
                debug!(error = %e, "presence not renewed; next beat retries");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    if let Some(store) = kv
        && let Err(e) = store.delete(key.as_str()).await
    {
        debug!(error = %e, "presence entry not deleted; it expires by itself");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_hold_only_what_kv_allows() {
        assert_eq!(super::presence_key("web-1:4242:0190abcd-ef"), "web-1_4242_0190abcd-ef");
        assert_eq!(super::presence_key("a.b c"), "a_b_c");
    }
}
