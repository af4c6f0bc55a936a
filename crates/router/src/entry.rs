//! What the router journals: every input it acts on, with the time it acts on it.

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentCommand, Envelope, Event};
use switchboard_routing::Ms;
use uuid::Uuid;

/// One journal entry. The leader fills in everything that is not a pure function of the state
/// (the time, a fresh conversation id), so that replay is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A customer message arrived.
    Inbound {
        /// When the router took it, in ms since the epoch.
        at: Ms,
        /// The message.
        envelope: Box<Envelope>,
        /// The id a new conversation gets if the message opens one.
        new_conversation: Uuid,
        /// The knowledge base's answers to the message, when it may meet the L0 bot; the leader
        /// looks them up, so that replay answers alike after the articles changed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        kb: Vec<crate::kb::KbHit>,
        /// The names of the saved replies matching the message, when it opens or reopens a
        /// conversation, suggested to the agent in the offer; looked up by the leader too.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replies: Vec<String>,
    },
    /// An agent (or an integration on its behalf) issued a command.
    Command {
        /// When the router took it.
        at: Ms,
        /// The command.
        command: Box<AgentCommand>,
        /// Its sequence in `SB_AGENT`: the leader reads commands in stream order from the one
        /// after the last journaled, so a new leader resumes exactly where this one stopped.
        /// Absent in entries journaled before commands were read that way.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_sequence: Option<u64>,
    },
    /// Time passed: timers due by then fire.
    Tick {
        /// The time.
        at: Ms,
    },
    /// An operator asked to erase a person (`switchboard customers forget`). Journaled so that
    /// replay erases them too; the entry itself is deleted from the journal once a snapshot
    /// taken after it is saved, since it names the person.
    Forget {
        /// When the router took it.
        at: Ms,
        /// Customer keys (`<channel>:<customer id>`) and person keys (`email:<address>`): records
        /// whose customer or person is one of them are erased.
        customers: Vec<String>,
        /// Thread keys (`<channel>:<thread key>`) the engine remembers the person by.
        threads: Vec<String>,
    },
    /// A channel's news about a conversation's messages: one to the customer could not be
    /// delivered (`delivery_failed`: its history entry is marked and the agent holding the
    /// conversation told), or the customer edited one (`message_edited`: the agent is told).
    Undelivered {
        /// When the router took it.
        at: Ms,
        /// The event, as the channel published it.
        event: Box<Event>,
    },
    /// The routing configuration changed (a reload, or a leader started with a changed file):
    /// from this entry on, the group routes by `routing` (the whole `[routing]` section, as
    /// JSON). Journaled so that every router of the group, replaying, switches at this entry.
    Configure {
        /// When the router took it.
        at: Ms,
        /// The new `[routing]` section.
        routing: Box<serde_json::Value>,
    },
    /// The retention sweep: memory of customers who last wrote before `before` ends.
    Expire {
        /// When the router took it.
        at: Ms,
        /// The cut-off, in ms since the epoch.
        before: Ms,
    },
}

impl Entry {
    /// The entry's time.
    pub fn at(&self) -> Ms {
        match self {
            Entry::Inbound { at, .. }
            | Entry::Command { at, .. }
            | Entry::Tick { at }
            | Entry::Forget { at, .. }
            | Entry::Undelivered { at, .. }
            | Entry::Configure { at, .. }
            | Entry::Expire { at, .. } => *at,
        }
    }
}

/// The tag a batch of entries carries in the journal. A journal message holds either one
/// [`Entry`] (as every message did before entries were committed in groups, and still does when
/// a group has one entry) or `{"type":"batch","entries":[...]}`.
const BATCH_PREFIX: &[u8] = br#"{"type":"batch","#;

/// A batch as read back (the tag was recognised by its prefix).
#[derive(Deserialize)]
struct BatchIn {
    entries: Vec<Entry>,
}

/// Encodes one entry on its own, as a part for [`encode_entries`].
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(entry).expect("journal entries serialise")
}

/// The payload of one journal message from its entries, each encoded by [`encode_entry`]: the
/// entry itself when there is one, else a batch (built from the parts, not encoded again).
pub fn encode_entries(parts: &[Vec<u8>]) -> Vec<u8> {
    if let [one] = parts {
        return one.clone();
    }
    let size = parts.iter().map(|p| p.len() + 1).sum::<usize>() + BATCH_PREFIX.len() + 16;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(BATCH_PREFIX);
    out.extend_from_slice(br#""entries":["#);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Decodes one journal message into its entries, in the order they were applied.
pub fn decode_entries(payload: &[u8]) -> Result<Vec<Entry>, serde_json::Error> {
    if payload.starts_with(BATCH_PREFIX) {
        Ok(serde_json::from_slice::<BatchIn>(payload)?.entries)
    } else {
        Ok(vec![serde_json::from_slice(payload)?])
    }
}

impl Entry {
    /// The id of the input this entry journals (the envelope's or the command's), by which a
    /// redelivered input is recognised; ticks have none.
    pub fn input_id(&self) -> Option<Uuid> {
        match self {
            Entry::Inbound { envelope, .. } => Some(envelope.id),
            Entry::Command { command, .. } => Some(command.id),
            Entry::Undelivered { event, .. } => Some(event.id),
            Entry::Tick { .. } | Entry::Forget { .. } | Entry::Expire { .. } | Entry::Configure { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_is_written_as_before_and_batches_round_trip() {
        let tick = Entry::Tick { at: 5 };
        assert_eq!(encode_entries(&[encode_entry(&tick)]), serde_json::to_vec(&tick).unwrap());
        assert_eq!(decode_entries(&serde_json::to_vec(&tick).unwrap()).unwrap(), vec![tick.clone()]);
        let batch = vec![Entry::Tick { at: 1 }, Entry::Tick { at: 2 }];
        let bytes = encode_entries(&batch.iter().map(encode_entry).collect::<Vec<_>>());
        assert!(bytes.starts_with(BATCH_PREFIX), "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(decode_entries(&bytes).unwrap(), batch);
        assert!(decode_entries(br#"{"type":"batch","entries":7}"#).is_err());
    }
}
