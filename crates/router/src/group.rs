//! Group commit: the inputs the leader takes in one step are journaled as one message, applied in
//! order and answered together, so a burst costs one journal round trip instead of one per input.
//!
//! Since a journal message now carries several inputs, JetStream's per-message de-duplication
//! can no longer recognise a redelivered input (one journaled by a leader that died before
//! acking it). [`Recent`] does instead: the ids of the inputs journaled within a window, rebuilt
//! from the journal's tail when a leader takes over.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use switchboard_bus::HandlerError;
use switchboard_routing::Ms;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::entry::{Entry, encode_entries, encode_entry};

/// At most this many inputs go into one journal message.
pub(crate) const GROUP_MAX: usize = 256;

/// A group stops growing at this many bytes of entries (NATS refuses messages over its
/// `max_payload`, 1 MiB by default); a single larger entry still goes alone.
const GROUP_BYTES: usize = 256 * 1024;

/// Where an input's outcome is reported (to the consumer handler that acks or naks it).
pub(crate) type Done = oneshot::Sender<Result<(), HandlerError>>;

/// The ids of inputs journaled lately, by the time they were journaled.
pub(crate) struct Recent {
    window: Ms,
    order: VecDeque<(Ms, Uuid)>,
    ids: HashSet<Uuid>,
}

impl Recent {
    /// Remembers inputs for `window` after they were journaled.
    pub(crate) fn new(window: Duration) -> Self {
        Recent { window: window.as_millis() as Ms, order: VecDeque::new(), ids: HashSet::new() }
    }

    /// Remembers input `id`, journaled at `at`.
    pub(crate) fn insert(&mut self, at: Ms, id: Uuid) {
        if self.ids.insert(id) {
            self.order.push_back((at, id));
        }
    }

    /// Whether input `id` was journaled within the window.
    pub(crate) fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains(id)
    }

    /// Forgets the inputs journaled before `now` minus the window.
    pub(crate) fn expire(&mut self, now: Ms) {
        while let Some(&(at, id)) = self.order.front() {
            if at >= now - self.window {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&id);
        }
    }

    /// How many inputs are remembered.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The entries of one step, with whom to answer once they are journaled and their effects stored.
#[derive(Default)]
pub(crate) struct Group {
    entries: Vec<Entry>,
    parts: Vec<Vec<u8>>,
    bytes: usize,
    ids: HashSet<Uuid>,
    waiting: Vec<Done>,
}

/// What [`Group::offer`] did with an entry.
pub(crate) enum Offered {
    /// It joined the group (or is the same input as one that did, and shares its outcome).
    Taken,
    /// It was journaled before: answered at once, nothing to do twice.
    Duplicate,
    /// The group is full: the entry waits for the next one.
    Full(Entry, Done),
}

impl Group {
    /// Adds an entry whose outcome goes to `done` (or nobody, for a tick), unless the group is
    /// full or the input was journaled already.
    pub(crate) fn offer(&mut self, entry: Entry, done: Option<Done>, recent: &Recent) -> Offered {
        if let Some(id) = entry.input_id() {
            if self.ids.contains(&id) {
                self.waiting.extend(done);
                return Offered::Taken;
            }
            if recent.contains(&id) {
                if let Some(done) = done {
                    let _ = done.send(Ok(()));
                }
                return Offered::Duplicate;
            }
        }
        let part = encode_entry(&entry);
        let full = self.entries.len() >= GROUP_MAX || self.bytes + part.len() > GROUP_BYTES;
        if !self.entries.is_empty() && full {
            // Only inputs are ever offered to a full group; ticks come first.
            if let Some(done) = done {
                return Offered::Full(entry, done);
            }
        }
        if let Some(id) = entry.input_id() {
            self.ids.insert(id);
        }
        self.bytes += part.len();
        self.parts.push(part);
        self.entries.push(entry);
        self.waiting.extend(done);
        Offered::Taken
    }

    /// Whether it holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether another input may still join.
    pub(crate) fn has_room(&self) -> bool {
        self.entries.len() < GROUP_MAX && self.bytes < GROUP_BYTES
    }

    /// The entries, in the order they are applied.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The journal message's payload.
    pub(crate) fn payload(&self) -> Vec<u8> {
        encode_entries(&self.parts)
    }

    /// Records the group's inputs as journaled and answers everyone waiting with `outcome`.
    pub(crate) fn finish(self, outcome: Result<(), HandlerError>, recent: &mut Recent) {
        if outcome.is_ok() {
            for entry in &self.entries {
                if let Some(id) = entry.input_id() {
                    recent.insert(entry.at(), id);
                }
            }
        }
        for done in self.waiting {
            let _ = done.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(id: Uuid, at: Ms) -> Entry {
        let command: switchboard_core::AgentCommand = serde_json::from_value(serde_json::json!({
            "id": id, "agent_id": "a1", "conversation_id": Uuid::nil(),
            "issued_at": "2026-01-01T00:00:00Z", "action": { "type": "accept" }
        }))
        .expect("a command");
        Entry::Command { at, command: Box::new(command), stream_sequence: None }
    }

    #[test]
    fn duplicates_share_an_outcome_or_are_answered_at_once_and_recent_ids_expire() {
        let mut recent = Recent::new(Duration::from_secs(60));
        let (old, fresh) = (Uuid::now_v7(), Uuid::now_v7());
        recent.insert(1_000, old);
        let mut group = Group::default();
        let (tx, mut rx) = oneshot::channel();
        assert!(matches!(group.offer(command(old, 2_000), Some(tx), &recent), Offered::Duplicate));
        assert_eq!(rx.try_recv().expect("answered at once"), Ok(()));
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        assert!(matches!(group.offer(command(fresh, 2_000), Some(tx1), &recent), Offered::Taken));
        assert!(matches!(group.offer(command(fresh, 2_000), Some(tx2), &recent), Offered::Taken));
        assert_eq!(group.entries().len(), 1, "the same input twice is journaled once");
        group.finish(Err(HandlerError::Retry("journal down".into())), &mut recent);
        assert!(rx1.try_recv().expect("answered").is_err() && rx2.try_recv().expect("answered").is_err());
        assert!(!recent.contains(&fresh), "a failed group journaled nothing");
        recent.expire(61_001);
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn a_full_group_hands_the_input_back() {
        let recent = Recent::new(Duration::from_secs(60));
        let mut group = Group::default();
        for _ in 0..GROUP_MAX {
            let (tx, _rx) = oneshot::channel();
            assert!(matches!(group.offer(command(Uuid::now_v7(), 1), Some(tx), &recent), Offered::Taken));
        }
        assert!(!group.has_room());
        let (tx, _rx) = oneshot::channel();
        assert!(matches!(group.offer(command(Uuid::now_v7(), 1), Some(tx), &recent), Offered::Full(..)));
        assert!(decode(&group.payload()).len() == GROUP_MAX);
    }

    fn decode(payload: &[u8]) -> Vec<Entry> {
        crate::entry::decode_entries(payload).expect("decodes")
    }
}
