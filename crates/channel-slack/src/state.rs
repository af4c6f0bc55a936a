//! What the Slack endpoint keeps in KV `sb_channels`, so any process (and a restarted one) finds
//! it: `slack.dm.<agent>` (the agent's DM channel with the bot), `slack.root.<agent>.<conversation>`
//! (the thread root: the offer message), `slack.live.<agent>.<conversation>` (a message in the
//! thread with a Resolve button), `slack.thread.<channel>.<ts>` (the conversation of a
//! thread), `slack.code.<agent>.<code>` (a conversation by its short code, for `/sb`),
//! `slack.sent.<delivery>` (a delivery's progress, so a retry resumes), `slack.board.<team>` (the
//! team channel's queue message).

use async_nats::jetstream::kv::Store;
use serde::{Deserialize, Serialize};
use switchboard_adapter::SendError;
use switchboard_bus::Bus;
use switchboard_core::contract::buckets;
use uuid::Uuid;

/// A thread root: the message a conversation's thread hangs under.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Root {
    /// The DM channel.
    pub channel: String,
    /// The root message's `ts` (`thread_ts` of everything in the thread).
    pub ts: String,
    /// The root's section text, to show again when its buttons are replaced.
    pub text: String,
}

/// How far a delivery got: the message posted and the files uploaded after it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sent {
    /// The posted message's `ts`.
    pub ts: Option<String>,
    /// Files uploaded.
    pub files: usize,
}

pub(crate) fn key_dm(agent: &str) -> String {
    format!("slack.dm.{agent}")
}
pub(crate) fn key_root(agent: &str, conversation: Uuid) -> String {
    format!("slack.root.{agent}.{}", conversation.simple())
}
pub(crate) fn key_live(agent: &str, conversation: Uuid) -> String {
    format!("slack.live.{agent}.{}", conversation.simple())
}
pub(crate) fn key_thread(channel: &str, ts: &str) -> String {
    format!("slack.thread.{channel}.{ts}")
}
pub(crate) fn key_code(agent: &str, code: &str) -> String {
    format!("slack.code.{agent}.{}", code.trim_start_matches('#').to_ascii_uppercase())
}
pub(crate) fn key_sent(delivery: Uuid) -> String {
    format!("slack.sent.{}", delivery.simple())
}
pub(crate) fn key_board(team: &str) -> String {
    format!("slack.board.{team}")
}

/// The `sb_channels` bucket.
pub async fn kv(bus: &Bus) -> Result<Store, String> {
    bus.jetstream().get_key_value(buckets::CHANNELS).await.map_err(|e| format!("channel state bucket: {e}"))
}

/// A string value.
pub async fn get(kv: &Store, key: String) -> Result<Option<String>, String> {
    let value = kv.get(key).await.map_err(|e| format!("read channel state: {e}"))?;
    Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// A JSON value.
pub async fn get_json<T: for<'de> Deserialize<'de>>(kv: &Store, key: String) -> Result<Option<T>, String> {
    Ok(get(kv, key).await?.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Stores a string value; a failure is worth retrying.
pub async fn put(kv: &Store, key: String, value: String) -> Result<(), SendError> {
    kv.put(key, value.into()).await.map_err(|e| SendError::retryable(format!("store channel state: {e}")))?;
    Ok(())
}

/// Stores a JSON value.
pub async fn put_json<T: Serialize>(kv: &Store, key: String, value: &T) -> Result<(), SendError> {
    put(kv, key, serde_json::to_string(value).unwrap_or_default()).await
}

/// The conversation of the thread rooted at `ts` in `channel`.
pub async fn thread(kv: &Store, channel: &str, ts: &str) -> Result<Option<Uuid>, String> {
    Ok(get(kv, key_thread(channel, ts)).await?.and_then(|c| Uuid::try_parse(&c).ok()))
}

/// The conversation `agent` knows by `code` (`K4F2` or `#K4F2`).
pub async fn by_code(kv: &Store, agent: &str, code: &str) -> Result<Option<Uuid>, String> {
    let valid = !code.is_empty() && code.trim_start_matches('#').bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid {
        return Ok(None);
    }
    Ok(get(kv, key_code(agent, code)).await?.and_then(|c| Uuid::try_parse(&c).ok()))
}
