//! What the channel keeps in KV `sb_channels`, under `whatsapp.`:
//!
//! - `whatsapp.window.<wa_id>`: when the customer last wrote (Unix seconds), which opens the
//!   24-hour customer service window; one key per customer, overwritten.
//! - `whatsapp.template.<wa_id>`: when the re-engagement template was last sent to them, so a
//!   closed window gets one template, not one per reply.
//! - `whatsapp.sent.<outbound id>`: the `wamid`s of the parts of a split reply sent so far, so a
//!   retry resumes at the first unsent part; erased (marker and all) once the whole reply is out.

use async_nats::jetstream::kv::Store;
use serde::{Deserialize, Serialize};
use switchboard_adapter::SendError;
use tracing::warn;

/// A KV key token for a WhatsApp id: the digits as they are, anything else by digest.
fn token(wa_id: &str) -> String {
    if !wa_id.is_empty() && wa_id.len() <= 64 && wa_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return wa_id.to_string();
    }
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(wa_id.as_bytes())[..16])
}

/// The key of a customer's window.
pub fn window_key(wa_id: &str) -> String {
    format!("whatsapp.window.{}", token(wa_id))
}

/// The key of the last template sent to a customer.
pub fn template_key(wa_id: &str) -> String {
    format!("whatsapp.template.{}", token(wa_id))
}

/// The key of an outgoing reply's progress.
pub fn progress_key(id: &uuid::Uuid) -> String {
    format!("whatsapp.sent.{}", id.simple())
}

/// A time kept under `key` (Unix seconds), if any.
pub async fn read_time(kv: &Store, key: &str) -> Result<Option<i64>, String> {
    let value = kv.get(key).await.map_err(|e| format!("read {key}: {e}"))?;
    Ok(value.and_then(|v| String::from_utf8_lossy(&v).trim().parse().ok()))
}

/// Keeps `at` under `key` unless a later time is there already (a late redelivery of an older
/// message must not move the window back).
pub async fn keep_latest(kv: &Store, key: &str, at: i64) -> Result<(), String> {
    if read_time(kv, key).await?.is_some_and(|kept| kept >= at) {
        return Ok(());
    }
    kv.put(key, at.to_string().into()).await.map_err(|e| format!("store {key}: {e}"))?;
    Ok(())
}

/// Claims sending the template under `key` at `now`, compare-and-set, so that two replies at
/// once (two processes, two conversations) send it once: `None` when this caller won (and must
/// send it, or [`release`] the claim), `Some(at)` when one was sent at `at` and `taken(at)` says
/// it still counts, or another caller claimed it a moment ago.
pub async fn claim(kv: &Store, key: &str, now: i64, taken: impl Fn(i64) -> bool) -> Result<Option<i64>, String> {
    use async_nats::jetstream::kv::Operation;
    let entry = kv.entry(key).await.map_err(|e| format!("read {key}: {e}"))?;
    let current = entry
        .as_ref()
        .filter(|e| e.operation == Operation::Put)
        .and_then(|e| String::from_utf8_lossy(&e.value).trim().parse::<i64>().ok());
    if let Some(at) = current.filter(|at| taken(*at)) {
        return Ok(Some(at));
    }
    let value = now.to_string();
    let won = match entry {
        Some(e) => kv.update(key, value.into(), e.revision).await.is_ok(),
        None => kv.create(key, value.into()).await.is_ok(),
    };
    match won {
        true => Ok(None),
        false => Ok(Some(read_time(kv, key).await?.unwrap_or(now))),
    }
}

/// Gives a claim back (the template could not be sent), best effort.
pub async fn release(kv: &Store, key: &str) {
    if let Err(e) = kv.delete(key).await {
        warn!(key, error = %e, "cannot release the template claim");
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// The `wamid`s of the parts sent, in order.
    sent: Vec<String>,
}

/// The parts of one outgoing reply already sent.
pub struct Progress {
    kv: Option<(Store, String)>,
    stored: Stored,
}

impl Progress {
    /// The progress of a reply of `steps` parts under `key`: kept only for more than one.
    pub async fn for_steps(kv: &Store, key: String, steps: usize) -> Result<Progress, SendError> {
        if steps <= 1 {
            return Ok(Progress { kv: None, stored: Stored::default() });
        }
        let value = kv.get(&key).await.map_err(|e| SendError::retryable(format!("read send progress: {e}")))?;
        let stored = match value {
            Some(v) => serde_json::from_slice(&v).unwrap_or_else(|e| {
                // Unreadable progress: starting over may repeat a part, which beats losing the rest.
                warn!(key, error = %e, "unreadable send progress; sending every part");
                Stored::default()
            }),
            None => Stored::default(),
        };
        Ok(Progress { kv: Some((kv.clone(), key)), stored })
    }

    /// How many parts were sent.
    pub fn done(&self) -> usize {
        self.stored.sent.len()
    }

    /// The first part's `wamid`, once sent.
    pub fn first(&self) -> Option<&str> {
        self.stored.sent.first().map(String::as_str)
    }

    /// Notes one more part sent, before the next is tried.
    pub async fn record(&mut self, wamid: String) -> Result<(), SendError> {
        self.stored.sent.push(wamid);
        let Some((kv, key)) = &self.kv else { return Ok(()) };
        let value = serde_json::to_vec(&self.stored).map_err(|e| SendError::retryable(e.to_string()))?;
        kv.put(key.as_str(), value.into())
            .await
            .map_err(|e| SendError::retryable(format!("store send progress: {e}")))?;
        Ok(())
    }

    /// The whole reply is out: its progress is erased (best effort).
    pub async fn finish(self) {
        let Some((kv, key)) = self.kv else { return };
        if let Err(e) = kv.stream.purge().filter(format!("{}{key}", kv.prefix)).await {
            warn!(key, error = %e, "cannot erase finished send progress");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_kv_keys_for_any_id() {
        assert_eq!(window_key("16505551234"), "whatsapp.window.16505551234");
        let odd = window_key("+1 (650) 555.1234");
        let rest = odd.strip_prefix("whatsapp.window.").unwrap();
        assert_eq!(rest.len(), 32);
        assert!(rest.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(template_key("1"), "whatsapp.template.1");
        assert!(progress_key(&uuid::Uuid::nil()).starts_with("whatsapp.sent.0000"));
    }
}
