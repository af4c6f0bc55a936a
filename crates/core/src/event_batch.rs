//! `events/1`: several events in one message on `sb.events.batch`, and the one place that reads
//! whatever a message of `SB_EVENTS` holds (an `event/1` or an `events/1`) as events.
//!
//! The router publishes the events of one journal message (one step, which may hold several
//! customers' messages) together, so that a step costs one write to `SB_EVENTS` instead of one
//! per event; channels and adapters publish single events on `sb.events.<kind>` as before. Every
//! reader of `sb.events.>` goes through [`decode_events`], and looks at each event's
//! `conversation_id`, never at the batch as a whole.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Contract, Event, ValidationError, contract};

/// Events published as one message, in the order they happened; they may concern several
/// conversations. An erasure that finds a person's events in a batch with others' publishes the
/// others' again (header `Sb-Rewrite-Of`) and then deletes the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "events/1")]
pub struct EventBatch {
    /// The events, oldest first: at least one, at most 1,024, each a valid `event/1`.
    pub events: Vec<Event>,
}

impl EventBatch {
    /// The most events one batch holds.
    pub const MAX_EVENTS: usize = 1024;

    /// The largest encoded batch [`EventBatch::pack`] builds (half of NATS's default 1 MiB
    /// `max_payload`); a single event larger than this still goes alone.
    pub const MAX_BYTES: usize = 512 * 1024;

    /// The batch's `Nats-Msg-Id`: `events:<its first event's id>`. Event ids are unique and
    /// stable, so publishing the same batch again is stored once.
    pub fn msg_id(&self) -> String {
        format!("events:{}", self.events.first().map(|e| e.id).unwrap_or_default())
    }

    /// Packs `events` into batches, keeping their order: a new batch starts where one more event
    /// would go over [`EventBatch::MAX_EVENTS`] or [`EventBatch::MAX_BYTES`]. The same events
    /// always pack the same way (so their ids are stable across a replay).
    pub fn pack(events: Vec<Event>) -> Vec<EventBatch> {
        Self::pack_within(events, Self::MAX_BYTES)
    }

    /// [`EventBatch::pack`] with a byte bound of `max_bytes` (for tests of the split).
    pub fn pack_within(events: Vec<Event>, max_bytes: usize) -> Vec<EventBatch> {
        // `{"events":[` + `]}`.
        const FRAME: usize = 13;
        let mut out: Vec<EventBatch> = Vec::new();
        let mut bytes = FRAME;
        for event in events {
            let size = serde_json::to_vec(&event).map(|v| v.len()).unwrap_or_default() + 1;
            let fits = out.last().is_some_and(|b| b.events.len() < Self::MAX_EVENTS && bytes + size <= max_bytes);
            if fits {
                bytes += size;
                out.last_mut().expect("a batch to add to").events.push(event);
            } else {
                bytes = FRAME + size;
                out.push(EventBatch { events: vec![event] });
            }
        }
        out
    }
}

impl Contract for EventBatch {
    const SCHEMA: &'static str = "events/1";

    fn validate(&self) -> Result<(), ValidationError> {
        if self.events.is_empty() {
            return Err(ValidationError::new("events", "must hold at least one event"));
        }
        if self.events.len() > Self::MAX_EVENTS {
            return Err(ValidationError::new(
                "events",
                format!("must hold at most {} events, got {}", Self::MAX_EVENTS, self.events.len()),
            ));
        }
        for (i, event) in self.events.iter().enumerate() {
            event.validate().map_err(|e| e.within(&format!("events.{i}")))?;
        }
        Ok(())
    }
}

/// The batches an erasure rewrote (`sb.events.rewritten`), by the sequence of the batch each
/// replaced, so that a reader folding `SB_EVENTS` in order folds their events where the original
/// stood, not at the end of the stream: the fold is order-sensitive (an `offered` read after the
/// `assigned` that followed it would put the conversation back in the queue).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rewrites(std::collections::BTreeMap<u64, Vec<Event>>);

impl Rewrites {
    /// Notes the events of a rewrite of the batch at sequence `of`.
    pub fn insert(&mut self, of: u64, events: Vec<Event>) {
        self.0.entry(of).or_default().extend(events);
    }

    /// Forgets the rewrites of batches before sequence `seq` (outside what the reader folds).
    pub fn drop_before(&mut self, seq: u64) {
        self.0 = self.0.split_off(&seq);
    }

    /// Takes the events of the rewrites of batches before sequence `seq`, oldest batch first:
    /// what to fold before the message at `seq`.
    pub fn take_before(&mut self, seq: u64) -> Vec<Event> {
        let later = self.0.split_off(&seq);
        std::mem::replace(&mut self.0, later).into_values().flatten().collect()
    }

    /// The sequence a rewrite names in its `Sb-Rewrite-Of` header.
    pub fn of(header: Option<&str>) -> Option<u64> {
        header.and_then(|h| h.trim().parse().ok())
    }

    /// Whether there is nothing left to fold.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a message of `SB_EVENTS` holds no events a reader can use; the text is the reason a
/// consumer dead-letters it with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// `Sb-Schema` names something else than `event/1` or `events/1`.
    #[error("{0}")]
    Unsupported(String),
    /// The payload is not a valid `event/1` or `events/1`.
    #[error("{0}")]
    Invalid(String),
}

/// The events a message of `SB_EVENTS` holds, read by its `Sb-Schema` header (`schema`): an
/// `events/1` batch's events in order, or the one `event/1` (also without a header, as older or
/// foreign publishers may send it). Every reader of `sb.events.>` decodes through this.
pub fn decode_events(schema: Option<&str>, payload: &[u8]) -> Result<Vec<Event>, EventsError> {
    match schema {
        Some(EventBatch::SCHEMA) => EventBatch::from_json(payload)
            .map(|b| b.events)
            .map_err(|e| EventsError::Invalid(contract::invalid_payload(EventBatch::SCHEMA, &e))),
        None | Some(Event::SCHEMA) => Event::from_json(payload)
            .map(|e| vec![e])
            .map_err(|e| EventsError::Invalid(contract::invalid_payload(Event::SCHEMA, &e))),
        Some(other) => Err(EventsError::Unsupported(contract::unsupported_schema(
            other,
            &format!("{} or {}", Event::SCHEMA, EventBatch::SCHEMA),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::EventKind;

    fn event(kind: EventKind, conversation: Option<Uuid>) -> Event {
        Event {
            id: Uuid::now_v7(),
            at: chrono::Utc::now(),
            kind,
            conversation_id: conversation,
            agent_id: None,
            channel: Some("webhook".into()),
            data: serde_json::Map::new(),
        }
    }

    #[test]
    fn batch_and_rewritten_are_no_event_kinds() {
        // `sb.events.batch` would otherwise be two things at once.
        assert!(serde_json::from_str::<EventKind>("\"batch\"").is_err());
        assert_eq!(contract::subjects::EVENT_BATCH, contract::subjects::event("batch"));
        assert!(serde_json::from_str::<EventKind>("\"rewritten\"").is_err());
        assert_eq!(contract::subjects::EVENT_REWRITE, contract::subjects::event("rewritten"));
    }

    #[test]
    fn rewrites_are_taken_where_their_originals_stood() {
        let c = Some(Uuid::now_v7());
        let (a, b, d) = (event(EventKind::Offered, c), event(EventKind::Assigned, c), event(EventKind::Resolved, c));
        let mut r = Rewrites::default();
        r.insert(9, vec![d.clone()]);
        r.insert(3, vec![a.clone(), b.clone()]);
        r.insert(1, vec![event(EventKind::Offered, c)]);
        r.drop_before(2);
        assert_eq!(r.take_before(3), vec![], "nothing before 3 (1 was dropped)");
        assert_eq!(r.take_before(4), vec![a, b]);
        assert!(!r.is_empty());
        assert_eq!(r.take_before(u64::MAX), vec![d]);
        assert!(r.is_empty());
        assert_eq!((Rewrites::of(Some(" 42")), Rewrites::of(Some("x")), Rewrites::of(None)), (Some(42), None, None));
    }

    #[test]
    fn a_step_of_one_conversation_packs_into_one_batch_in_order() {
        let c = Some(Uuid::now_v7());
        let events = vec![
            event(EventKind::MessageReceived, c),
            event(EventKind::ConversationOpened, c),
            event(EventKind::Offered, c),
        ];
        let batches = EventBatch::pack(events.clone());
        assert_eq!(batches, vec![EventBatch { events: events.clone() }]);
        assert_eq!(batches[0].msg_id(), format!("events:{}", events[0].id));
        assert_eq!(EventBatch::pack(events), batches, "the same events pack the same way");
    }

    #[test]
    fn batches_split_by_count_and_bytes_not_by_conversation() {
        let (a, b) = (Some(Uuid::now_v7()), Some(Uuid::now_v7()));
        let mixed = vec![event(EventKind::Assigned, a), event(EventKind::Assigned, b), event(EventKind::Resolved, a)];
        let packed = EventBatch::pack(mixed.clone());
        assert_eq!(packed, vec![EventBatch { events: mixed }], "one step's conversations in one batch, order kept");
        assert_eq!(packed[0].validate(), Ok(()));
        let many: Vec<Event> = (0..EventBatch::MAX_EVENTS + 1).map(|_| event(EventKind::Offered, a)).collect();
        let sizes: Vec<usize> = EventBatch::pack(many).iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, [EventBatch::MAX_EVENTS, 1]);
        let one = serde_json::to_vec(&EventBatch { events: vec![event(EventKind::Offered, a)] }).unwrap().len();
        let five: Vec<Event> = (0..5).map(|_| event(EventKind::Offered, a)).collect();
        let packed = EventBatch::pack_within(five, 2 * one);
        let sizes: Vec<usize> = packed.iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, [2, 2, 1], "two events fit the bound, three do not");
        assert!(packed.iter().all(|b| serde_json::to_vec(b).unwrap().len() <= 2 * one), "within the bound");
    }

    #[test]
    fn validation_names_the_bad_field() {
        let empty = EventBatch { events: vec![] };
        assert_eq!(empty.validate().unwrap_err().field, "events");
        let mut bad = event(EventKind::Offered, None);
        bad.id = Uuid::nil();
        let batch = EventBatch { events: vec![event(EventKind::Offered, None), bad] };
        assert_eq!(batch.validate().unwrap_err().field, "events.1.id");
        let too_many =
            EventBatch { events: (0..EventBatch::MAX_EVENTS + 1).map(|_| event(EventKind::Offered, None)).collect() };
        assert_eq!(too_many.validate().unwrap_err().field, "events");
    }

    #[test]
    fn readers_decode_single_events_and_batches_alike() {
        let c = Some(Uuid::now_v7());
        let one = event(EventKind::DeliveryFailed, c);
        let single = serde_json::to_vec(&one).unwrap();
        assert_eq!(decode_events(Some("event/1"), &single), Ok(vec![one.clone()]));
        assert_eq!(decode_events(None, &single), Ok(vec![one.clone()]), "no header: an event/1");
        let batch = EventBatch { events: vec![one.clone(), event(EventKind::Resolved, c)] };
        let bytes = serde_json::to_vec(&batch).unwrap();
        assert_eq!(decode_events(Some("events/1"), &bytes), Ok(batch.events));
        assert_eq!(
            decode_events(Some("event/2"), &single),
            Err(EventsError::Unsupported("unsupported schema event/2, expected event/1 or events/1".into()))
        );
        assert!(matches!(decode_events(Some("events/1"), &single), Err(EventsError::Invalid(_))));
        assert!(matches!(decode_events(Some("event/1"), &bytes), Err(EventsError::Invalid(_))));
    }
}
