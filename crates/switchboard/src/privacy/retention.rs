//! The retention sweep: one process (the holder of the lease `privacy.retention`) deletes, every
//! `privacy.sweep_every_secs`, what has not been written for the retention period and is not
//! part of an open conversation. Messages and transcripts need no sweep: the streams' max age
//! is capped to the retention (`PrivacyConfig::cap_streams`, at start-up).

use std::time::Duration;

use serde::Serialize;
use switchboard_bus::Bus;
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, subjects};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::PrivacyConfig;
use super::scan::{Stored, scan};

/// The lease that makes one process the sweeper.
pub const LEASE: &str = "privacy.retention";

/// Keys of `sb_channels` that are about customers, by prefix; cursors and agent links are not.
pub const CHANNEL_KEY_PREFIXES: &[&str] =
    &["email.thread.", "email.csat.", "webchat.profile.", "telegram.sent.", "telegram.msg."];

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Conversation records of resolved conversations.
    pub records: usize,
    /// Channel mappings (thread tokens, web-chat profiles, Telegram message maps).
    pub mappings: usize,
    /// Attachments.
    pub objects: usize,
    /// Routing groups whose router ended the memory of silent customers.
    pub routers: usize,
}

/// The latest message of every subject of a stream.
async fn latest(bus: &Bus, stream: &str, limit: u64) -> anyhow::Result<Vec<Stored>> {
    let mut by_subject = std::collections::BTreeMap::new();
    scan(bus, stream, limit, |m| {
        by_subject.insert(m.subject.clone(), m);
        Ok(())
    })
    .await?;
    Ok(by_subject.into_values().collect())
}

fn live(m: &Stored) -> bool {
    m.operation.is_none() || m.operation.as_deref() == Some("PUT")
}

/// Deletes what is older than `retention` once; see the module documentation.
pub async fn sweep(bus: &Bus, cfg: &PrivacyConfig, groups: &[String], retention: Duration) -> anyhow::Result<Swept> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut swept = Swept::default();
    // Routers first: once a record is gone, the memory behind it is gone too.
    let before = cutoff.timestamp_millis();
    for group in groups {
        let body = serde_json::json!({ "before": before }).to_string();
        let ask = bus.client().request(subjects::router_expire(group), body.into());
        match tokio::time::timeout(Duration::from_secs(30), ask).await {
            Ok(Ok(answer)) if !String::from_utf8_lossy(&answer.payload).contains("\"error\"") => swept.routers += 1,
            Ok(Ok(answer)) => {
                warn!(group, answer = %String::from_utf8_lossy(&answer.payload), "router did not expire memory")
            }
            Ok(Err(e)) => warn!(group, error = %e, "no router leads; its memory expires at the next sweep"),
            Err(_) => warn!(group, "the router did not answer the retention sweep in time"),
        }
    }
    let js = bus.jetstream();
    let conversations = format!("KV_{}", buckets::CONVERSATIONS);
    let stream = js.get_stream(&conversations).await?;
    for m in latest(bus, &conversations, cfg.max_scan_messages).await? {
        let state = serde_json::from_slice::<serde_json::Value>(&m.payload)
            .ok()
            .and_then(|r| r["state"].as_str().map(str::to_string));
        // An open conversation keeps its record however long it is open.
        if live(&m) && m.time < cutoff && state.as_deref() == Some("resolved") {
            stream.purge().filter(m.subject.clone()).await?;
            swept.records += 1;
        }
    }
    let channels = format!("KV_{}", buckets::CHANNELS);
    let stream = js.get_stream(&channels).await?;
    let prefix = format!("$KV.{}.", buckets::CHANNELS);
    for m in latest(bus, &channels, cfg.max_scan_messages).await? {
        let key = m.subject.strip_prefix(&prefix).unwrap_or_default();
        if m.time < cutoff && CHANNEL_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) {
            stream.purge().filter(m.subject.clone()).await?;
            swept.mappings += 1;
        }
    }
    let objects = format!("OBJ_{ATTACHMENTS_STORE}");
    let meta_prefix = format!("$O.{ATTACHMENTS_STORE}.M.");
    let store = js.get_object_store(ATTACHMENTS_STORE).await?;
    let stream = js.get_stream(&objects).await?;
    for m in latest(bus, &objects, cfg.max_scan_messages).await? {
        if !m.subject.starts_with(&meta_prefix) || m.time >= cutoff {
            continue;
        }
        let info = serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap_or_default();
        if let Some(name) = info["name"].as_str()
            && info["deleted"].as_bool() != Some(true)
            && let Err(e) = store.delete(name).await
        {
            warn!(error = %e, "expired attachment not deleted; purging its metadata");
        }
        stream.purge().filter(m.subject.clone()).await?;
        swept.objects += 1;
    }
    Ok(swept)
}

/// Sweeps every `sweep_every_secs` while holding the lease [`LEASE`], until `stop`. Does
/// nothing when data is kept for ever (`retention_days = 0`).
pub async fn run(
    bus: Bus,
    cfg: PrivacyConfig,
    groups: Vec<String>,
    holder: String,
    stop: CancellationToken,
) -> Result<(), String> {
    let Some(retention) = cfg.retention() else {
        stop.cancelled().await;
        return Ok(());
    };
    let every = Duration::from_secs(cfg.sweep_every_secs);
    let ttl = Duration::from_secs(15);
    loop {
        let mut lease = match bus.acquire_lease(LEASE, &holder, ttl, &stop).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Ok(()),
            Err(e) => {
                warn!(error = %e, "cannot contend for the retention lease; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        };
        let mut next = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next {
                // A sweep in progress does not hold up a shutdown; the next one starts over.
                let swept = tokio::select! {
                    swept = sweep(&bus, &cfg, &groups, retention) => swept,
                    _ = stop.cancelled() => {
                        lease.release().await;
                        return Ok(());
                    }
                };
                match swept {
                    Ok(s) => info!(
                        records = s.records,
                        mappings = s.mappings,
                        objects = s.objects,
                        routers = s.routers,
                        "retention sweep done"
                    ),
                    Err(e) => warn!(error = %e, "retention sweep failed; trying again at the next one"),
                }
                next = tokio::time::Instant::now() + every;
            }
            if let Err(lost) = lease.renew().await {
                warn!(error = %lost, "retention lease lost");
                break;
            }
            let wait = lease.renew_every().min(next.saturating_duration_since(tokio::time::Instant::now()));
            tokio::select! {
                _ = stop.cancelled() => {
                    lease.release().await;
                    return Ok(());
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
