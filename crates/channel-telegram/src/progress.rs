//! How far one outgoing message got: a long text goes out in parts (and files after it), and a
//! retry must send from the first part Telegram has not taken, never the customer's first part
//! again. The ids of the parts sent are kept in KV (`sb_channels`, `telegram.sent.<message id>`),
//! written after each part, so this holds across a crash between parts too. A message of one
//! part keeps nothing (a failed try sent nothing), and the key of a finished one is erased from
//! the bucket's stream, marker and all: the bucket has no TTL, and a tombstone per message sent
//! would pile up forever.

use async_nats::jetstream::kv::Store;
use serde::{Deserialize, Serialize};
use switchboard_adapter::SendError;
use tracing::warn;

/// The `sb_channels` key of one outgoing message's progress (an outbound message's or an agent
/// delivery's id).
pub fn progress_key(id: &uuid::Uuid) -> String {
    format!("telegram.sent.{}", id.simple())
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// Telegram's message ids of the parts sent, in order.
    sent: Vec<i32>,
}

/// The parts of one outgoing message already sent.
pub struct Progress {
    kv: Option<(Store, String)>,
    stored: Stored,
}

impl Progress {
    /// Progress that is not kept (short notices, where a repeat does no harm).
    pub fn untracked() -> Progress {
        Progress { kv: None, stored: Stored::default() }
    }

    /// The progress of a message of `steps` parts (text parts and files) kept under `key`, or a
    /// fresh one; untracked for a single part.
    pub async fn for_steps(kv: Store, key: String, steps: usize) -> Result<Progress, SendError> {
        match steps {
            0 | 1 => Ok(Progress::untracked()),
            _ => Progress::load(kv, key).await,
        }
    }

    /// The progress kept under `key`, or a fresh one.
    pub async fn load(kv: Store, key: String) -> Result<Progress, SendError> {
        let value = kv.get(&key).await.map_err(|e| SendError::retryable(format!("read send progress: {e}")))?;
        let stored = match value {
            Some(v) => serde_json::from_slice(&v).unwrap_or_else(|e| {
                // Unreadable progress: starting over may repeat a part, which beats losing the rest.
                warn!(key, error = %e, "unreadable send progress; sending every part");
                Stored::default()
            }),
            None => Stored::default(),
        };
        Ok(Progress { kv: Some((kv, key)), stored })
    }

    /// How many parts were sent.
    pub fn done(&self) -> usize {
        self.stored.sent.len()
    }

    /// Telegram's ids of the parts sent.
    pub fn sent(&self) -> &[i32] {
        &self.stored.sent
    }

    /// Notes one more part sent, before the next is tried.
    pub async fn record(&mut self, message_id: i32) -> Result<(), SendError> {
        self.stored.sent.push(message_id);
        let Some((kv, key)) = &self.kv else { return Ok(()) };
        let value = serde_json::to_vec(&self.stored).map_err(|e| SendError::retryable(e.to_string()))?;
        kv.put(key.as_str(), value.into())
            .await
            .map_err(|e| SendError::retryable(format!("store send progress: {e}")))?;
        Ok(())
    }

    /// The whole message is out: its progress is erased (best effort; a leftover only says every
    /// part was sent, so a stray redelivery sends nothing twice).
    pub async fn finish(self) {
        let Some((kv, key)) = self.kv else { return };
        if let Err(e) = kv.stream.purge().filter(format!("{}{key}", kv.prefix)).await {
            warn!(key, error = %e, "cannot erase finished send progress");
        }
    }
}
