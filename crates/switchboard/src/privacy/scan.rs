//! Reading every message of a stream (the contract's streams and the streams behind KV buckets
//! and object stores) once, oldest first, bounded, with progress in the log.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use switchboard_bus::Bus;
use tracing::info;

/// How long a scan waits for the next message before giving up (the server stopped answering).
const STALL: Duration = Duration::from_secs(10);

/// Progress is logged every this many messages of one stream.
const PROGRESS_EVERY: u64 = 50_000;

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its stream.
    pub stream: String,
    /// Its stream sequence.
    pub seq: u64,
    /// Its subject.
    pub subject: String,
    /// When it was stored (the server's clock).
    pub time: DateTime<Utc>,
    /// KV operation header (`DEL`, `PURGE`), for the streams behind buckets.
    pub operation: Option<String>,
    /// The payload.
    pub payload: Bytes,
}

/// How a scan went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Scanned {
    /// Messages read.
    pub messages: u64,
    /// Whether the scan stopped at the limit before the stream's end.
    pub truncated: bool,
}

/// Calls `each` with every message of `stream` stored when called (at most `limit`), oldest
/// first. A stream that does not exist is an error naming it.
pub async fn scan(
    bus: &Bus,
    stream: &str,
    limit: u64,
    mut each: impl FnMut(Stored) -> anyhow::Result<()>,
) -> anyhow::Result<Scanned> {
    let s = bus.jetstream().get_stream(stream).await.with_context(|| format!("no stream {stream}"))?;
    let state = s.get_info().await.with_context(|| format!("reading stream {stream}"))?.state;
    let mut out = Scanned::default();
    if state.messages == 0 {
        return Ok(out);
    }
    let last = state.last_sequence;
    let consumer = s
        .create_consumer(pull::OrderedConfig { deliver_policy: DeliverPolicy::All, ..Default::default() })
        .await
        .with_context(|| format!("creating a consumer on {stream}"))?;
    let mut messages = consumer.messages().await.with_context(|| format!("reading {stream}"))?;
    loop {
        if out.messages >= limit {
            out.truncated = true;
            break;
        }
        let next = tokio::time::timeout(STALL, messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("reading {stream} stalled for {} s", STALL.as_secs()))?;
        let Some(next) = next else { break };
        let message = next.with_context(|| format!("reading {stream}"))?;
        let info = message.info().map_err(|e| anyhow::anyhow!("a message of {stream} without metadata: {e}"))?;
        let (seq, pending, published) = (info.stream_sequence, info.pending, info.published);
        if seq > last {
            break;
        }
        out.messages += 1;
        if out.messages.is_multiple_of(PROGRESS_EVERY) {
            info!(stream, scanned = out.messages, of = state.messages, "scanning for a customer's data");
        }
        let operation = message.headers.as_ref().and_then(|h| h.get("KV-Operation")).map(|v| v.as_str().to_string());
        let time = DateTime::from_timestamp_nanos(published.unix_timestamp_nanos() as i64);
        each(Stored {
            stream: stream.to_string(),
            seq,
            subject: message.subject.to_string(),
            time,
            operation,
            payload: message.payload.clone(),
        })?;
        if pending == 0 || seq >= last {
            break;
        }
    }
    Ok(out)
}
