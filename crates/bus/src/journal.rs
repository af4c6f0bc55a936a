//! A single-writer journal on one subject of the `SB_ROUTER` stream: the router's record of every
//! input it acted on, so that state can be rebuilt by replaying it and a standby can take over.
//!
//! Single-writer is enforced by the server, not by trust: every append says which sequence it
//! expects to follow (`Nats-Expected-Last-Subject-Sequence`), so a writer that was deposed (its
//! lease taken over while it was paused or cut off) gets [`AppendError::Fenced`] instead of
//! forking the history.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use switchboard_core::contract::{headers, streams};

use crate::{Bus, BusError};

/// One subject's journal, opened for appending and replay.
#[derive(Debug)]
pub struct Journal {
    bus: Bus,
    subject: String,
    last: u64,
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended since we last did: we are not the only writer any more.
    #[error("journal {subject}: another writer appended after sequence {expected}")]
    Fenced {
        /// The subject.
        subject: String,
        /// The sequence we expected to follow.
        expected: u64,
    },
    /// The append was not acknowledged (NATS unreachable, timeout); it may or may not be stored.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The entry's sequence (the original's, for a duplicate).
    pub sequence: u64,
    /// True when an entry with the same id was already in the journal.
    pub duplicate: bool,
}

/// One journal entry read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Its stream sequence.
    pub sequence: u64,
    /// What was appended.
    pub payload: Bytes,
}

impl Bus {
    /// Opens the journal on `subject` (under `sb.router.journal.`), learning its last sequence.
    pub async fn open_journal(&self, subject: &str) -> Result<Journal, BusError> {
        let mut journal = Journal { bus: self.clone(), subject: subject.to_string(), last: 0 };
        journal.last = journal.fetch_last().await?;
        Ok(journal)
    }
}

impl Journal {
    async fn fetch_last(&self) -> Result<u64, BusError> {
        let err = |e: Box<dyn std::error::Error + Send + Sync>| BusError::Consumer {
            stream: streams::ROUTER.into(),
            durable: format!("last of {}", self.subject),
            source: e,
        };
        let stream = self.bus.jetstream().get_stream(streams::ROUTER).await.map_err(|e| err(e.into()))?;
        match stream.get_last_raw_message_by_subject(&self.subject).await {
            Ok(m) => Ok(m.sequence),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(err(e.into())),
        }
    }

    /// The sequence of the last entry (0 when empty), as far as this writer knows.
    pub fn last_sequence(&self) -> u64 {
        self.last
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Appends an entry if nobody else appended since our last append (or since opening), and
    /// says where it landed. `msg_id` de-duplicates a retried append of the same entry.
    pub async fn append(&mut self, payload: Bytes, msg_id: &str) -> Result<Appended, AppendError> {
        match self.try_append(payload.clone(), msg_id).await {
            // Our own last entries were deleted (a customer's erasure deletes the entries that
            // name them up to the router's snapshot, its own `forget` entry included): the
            // journal now ends before where we left it, which no other writer can cause (theirs
            // would end after it). Continue from where it ends.
            Err(AppendError::Fenced { .. }) if self.fetch_last().await.is_ok_and(|last| last < self.last) => {
                self.last = self.fetch_last().await.map_err(AppendError::Bus)?;
                self.try_append(payload, msg_id).await
            }
            other => other,
        }
    }

    async fn try_append(&mut self, payload: Bytes, msg_id: &str) -> Result<Appended, AppendError> {
        let mut h = HeaderMap::new();
        h.insert(headers::MSG_ID, msg_id);
        h.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, self.last.to_string().as_str());
        let publish_err = |e: Box<dyn std::error::Error + Send + Sync>| BusError::Publish {
            subject: self.subject.clone(),
            source: e,
        };
        let ack = self
            .bus
            .jetstream()
            .publish_with_headers(self.subject.clone(), h, payload)
            .await
            .map_err(|e| publish_err(e.into()))?
            .await;
        match ack {
            Ok(ack) => {
                self.last = self.last.max(ack.sequence);
                Ok(Appended { sequence: ack.sequence, duplicate: ack.duplicate })
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                // The server checks the expected sequence before de-duplicating, so a retry of an
                // append whose ack was lost lands here too: if the last entry is this very one,
                // the append did happen.
                if let Some(sequence) = self.last_if_ours(msg_id).await {
                    self.last = sequence;
                    return Ok(Appended { sequence, duplicate: true });
                }
                Err(AppendError::Fenced { subject: self.subject.clone(), expected: self.last })
            }
            Err(e) => Err(AppendError::Bus(publish_err(e.into()))),
        }
    }

    async fn last_if_ours(&self, msg_id: &str) -> Option<u64> {
        let stream = self.bus.jetstream().get_stream(streams::ROUTER).await.ok()?;
        let last = stream.get_last_raw_message_by_subject(&self.subject).await.ok()?;
        let id = last.headers.get(headers::MSG_ID)?;
        (id.as_str() == msg_id).then_some(last.sequence)
    }

    /// Every entry after sequence `after`, in order, up to the last one present when called.
    pub async fn read_after(&mut self, after: u64) -> Result<Vec<JournalEntry>, BusError> {
        self.last = self.fetch_last().await?;
        if self.last <= after {
            return Ok(Vec::new());
        }
        self.read(DeliverPolicy::ByStartSequence { start_sequence: after + 1 }).await
    }

    /// Every entry the server stored at or after `since` (by its clock), in order: what a new
    /// writer reads to learn which inputs were journaled lately.
    pub async fn read_since(&mut self, since: std::time::SystemTime) -> Result<Vec<JournalEntry>, BusError> {
        self.last = self.fetch_last().await?;
        if self.last == 0 {
            return Ok(Vec::new());
        }
        self.read(DeliverPolicy::ByStartTime { start_time: time::OffsetDateTime::from(since) }).await
    }

    /// Reads from `policy` as many entries as the server said were pending when the reader was
    /// created: nothing else is appended meanwhile, since we are the only writer.
    async fn read(&self, policy: DeliverPolicy) -> Result<Vec<JournalEntry>, BusError> {
        let err = |e: Box<dyn std::error::Error + Send + Sync>| BusError::Consumer {
            stream: streams::ROUTER.into(),
            durable: format!("replay of {}", self.subject),
            source: e,
        };
        let stream = self.bus.jetstream().get_stream(streams::ROUTER).await.map_err(|e| err(e.into()))?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.subject.clone(),
                deliver_policy: policy,
                ..Default::default()
            })
            .await
            .map_err(|e| err(e.into()))?;
        let pending = consumer.cached_info().num_pending;
        let mut entries = Vec::with_capacity(pending as usize);
        if pending == 0 {
            return Ok(entries);
        }
        let mut messages = consumer.messages().await.map_err(|e| err(e.into()))?;
        while let Some(next) = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .map_err(|_| err("replay stalled for 30 s".into()))?
        {
            let message = next.map_err(|e| err(e.into()))?;
            let info = message.info().map_err(|e| err(e.to_string().into()))?;
            entries.push(JournalEntry { sequence: info.stream_sequence, payload: message.payload.clone() });
            if info.pending == 0 || entries.len() as u64 >= pending {
                break;
            }
        }
        Ok(entries)
    }
}
