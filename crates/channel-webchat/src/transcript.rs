//! A session's transcript: what the widget shows, stored in `SB_WEBCHAT`, one subject per session.
//!
//! Every entry is appended with a `Nats-Msg-Id` derived from what caused it (the visitor's
//! client id, the outbound message id, the event id), so a retry stores it once; its stream
//! sequence is the `seq` the widget orders and resumes by.

use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_bus::{Bus, BusError};

use crate::WebchatError;
use switchboard_core::contract::{headers, streams, subjects};

/// Schema header value of transcript entries (internal to the channel, not the public contract).
pub const ENTRY_SCHEMA: &str = "webchat-entry/1";

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique id of the entry (the envelope, outbound message or event it came from).
    pub id: String,
    /// What it is.
    pub kind: EntryKind,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Plain text (rendered as text, never HTML).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// The widget's id of a visitor's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The agent's display name (agent replies, assignment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// The conversation (assignment, resolution, survey answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Files attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// A survey answer's score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    /// On a resolution, the survey the widget asks (`csat`, `nps`, `ces`, or `none`); on an
    /// answer, the survey answered. Absent on entries from before NPS and CES: CSAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<String>,
    /// A `queue` entry's figures: place in line, expected wait, agents online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueFigures>,
    /// Quick replies under an `auto` entry (the L0 bot's yes and no): the widget shows them as
    /// buttons while the entry is the last, and a press sends the label as the visitor's message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// The figures of a `queue` entry (from the router's queue notice, `docs/queue.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFigures {
    /// Place in line, 1 = next.
    pub position: u32,
    /// Expected wait in seconds; absent when nobody who could answer is online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_secs: Option<u64>,
    /// Agents online who could answer.
    pub agents_online: u32,
    /// When the team opens (RFC 3339), while it is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
}

/// The kinds of transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The visitor wrote.
    Customer,
    /// An agent replied.
    Agent,
    /// A rule answered automatically.
    Auto,
    /// A notice from Switchboard.
    System,
    /// An agent took the conversation.
    Assigned,
    /// The conversation was resolved: the widget asks for a rating.
    Resolved,
    /// The visitor answered the CSAT survey (`score`).
    CsatAnswer,
    /// The visitor answered the NPS or CES survey (`survey`, `score`).
    SurveyAnswer,
    /// The visitor's place in line and expected wait (the widget shows the latest one as a
    /// status line until an agent joins, not as a message).
    Queue,
}

/// A file in a transcript entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub content_type: String,
    /// Where the widget downloads it (relative to the daemon's base URL); empty when not stored.
    pub url: String,
}

/// The figures of a queue notice (a `system` message with `queue.*` metadata), if it is one.
pub fn queue_figures(meta: &std::collections::BTreeMap<String, String>) -> Option<QueueFigures> {
    use switchboard_core::contract::metadata;
    let position = meta.get(metadata::QUEUE_POSITION)?.parse().ok()?;
    Some(QueueFigures {
        position,
        estimate_secs: meta.get(metadata::QUEUE_ESTIMATE_SECS).and_then(|s| s.parse().ok()),
        agents_online: meta.get(metadata::QUEUE_AGENTS_ONLINE).and_then(|s| s.parse().ok()).unwrap_or(0),
        opens_at: meta.get(metadata::QUEUE_OPENS_AT).cloned(),
    })
}

/// Appends an entry to a session's transcript; returns its sequence (the first one's, when
/// `msg_id` was seen before).
pub async fn append(bus: &Bus, session: &str, entry: &Entry, msg_id: &str) -> Result<Stored, BusError> {
    let mut h = HeaderMap::new();
    h.insert(headers::SCHEMA, ENTRY_SCHEMA);
    let payload = Bytes::from(serde_json::to_vec(entry).expect("entries serialise"));
    let published = bus.publish_raw(&subjects::webchat_session(session), h, payload, msg_id).await?;
    Ok(Stored { seq: published.sequence, duplicate: published.duplicate })
}

/// Where an appended entry landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Its sequence in the transcript stream.
    pub seq: u64,
    /// True when the same id was appended before (JetStream reports the first one's sequence).
    pub duplicate: bool,
}

/// Reads a session's entries after sequence `after`, in order, at most `limit` of them.
pub async fn history(bus: &Bus, session: &str, after: u64, limit: usize) -> Result<Vec<(u64, Entry)>, WebchatError> {
    let stream = bus
        .jetstream()
        .get_stream(streams::WEBCHAT)
        .await
        .map_err(|e| WebchatError::Nats(format!("stream {}: {e}", streams::WEBCHAT)))?;
    let subject = subjects::webchat_session(session);
    let mut out = Vec::new();
    let mut next = after + 1;
    while out.len() < limit {
        match stream.direct_get_next_for_subject(subject.clone(), Some(next)).await {
            Ok(message) => {
                next = message.sequence + 1;
                match serde_json::from_slice::<Entry>(&message.payload) {
                    Ok(entry) => out.push((message.sequence, entry)),
                    Err(e) => {
                        tracing::warn!(session, seq = message.sequence, error = %e, "unreadable transcript entry skipped")
                    }
                }
            }
            Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(WebchatError::Nats(format!("transcript of session {session}: {e}"))),
        }
    }
    Ok(out)
}

/// Decodes a live transcript message: its session (from the subject) and entry.
pub fn decode(subject: &str, payload: &[u8]) -> Option<(String, Entry)> {
    let session = subject.strip_prefix("sb.webchat.session.")?;
    Some((session.to_string(), serde_json::from_slice(payload).ok()?))
}
