//! One VK event, the same whether it came by long polling or by callback: it becomes an
//! envelope (files fetched into `sb_attachments` first), an event (an edit, the customer denying
//! or allowing messages), a survey answer, an answer to the customer, or nothing; and its
//! outcome is counted once (`switchboard_inbound_total{channel="vk"}`), except a stored
//! envelope, which the router counts. An `Err` means nothing was decided: the event must come
//! again, and nothing was counted.

use async_nats::HeaderMap;
use serde_json::Value;
use switchboard_adapter::{Inbound, InboundError, conversation_ref, publish_survey, survey_event};
use switchboard_bus::Bus;
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_core::contract::{ATTACHMENTS_STORE, headers, subjects};
use switchboard_core::{Contract, Envelope, Event, EventKind};
use tracing::{debug, info, warn};

use crate::CHANNEL;
use crate::api::Api;
use crate::wire::{self, CANNOT_READ, Incoming, Parsed};

/// The dead-letter component of inbound VK events: `sb.dlq.vk-in` (the event as VK sent it).
pub const DLQ_COMPONENT: &str = "vk-in";

/// What one event became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored as an envelope; the router counts it.
    Published,
    /// Stored before: VK (or a redelivered callback) sent it again.
    Duplicate,
    /// Recorded as an event or a survey answer: not routed.
    Recorded,
    /// Nothing to route (another event type, the community's own message).
    Ignored,
    /// A message of which nothing can be carried (the kinds); the customer was told.
    Unsupported(String),
    /// Refused without storing anything (a forged survey answer): why.
    Refused(String),
    /// Kept as a dead letter on `sb.dlq.vk-in`: why.
    DeadLettered(String),
}

impl Outcome {
    /// The outcome this adapter counts; `None` for a stored envelope, which the router counts.
    pub fn counted(&self) -> Option<InboundOutcome> {
        match self {
            Outcome::Published => None,
            Outcome::Duplicate => Some(InboundOutcome::Duplicate),
            Outcome::Recorded | Outcome::Ignored | Outcome::Unsupported(_) | Outcome::Refused(_) => {
                Some(InboundOutcome::NotRouted)
            }
            Outcome::DeadLettered(_) => Some(InboundOutcome::DeadLetter),
        }
    }
}

/// Handles events for one community.
#[derive(Clone)]
pub struct Handler {
    /// The community's API (files, answers to customers).
    pub api: Api,
    /// Largest file fetched, in bytes.
    pub max_file_bytes: u64,
}

impl Handler {
    /// Handles one event and counts its outcome.
    pub async fn handle(&self, inbound: &Inbound, event: &Value) -> Result<Outcome, String> {
        let bus = inbound.bus().map_err(|e| e.to_string())?;
        let kind = event["type"].as_str().unwrap_or("?").chars().take(32).collect::<String>();
        let outcome = match wire::parse(event) {
            Parsed::Message(m) => self.message(bus, inbound, &m, event).await?,
            Parsed::Edit { peer_id, cmid, text, msg_id } => {
                let mut data = serde_json::Map::new();
                data.insert("peer_id".into(), peer_id.into());
                // The thread key the dialog's envelopes carry, by which the router finds it.
                data.insert("thread_key".into(), peer_id.to_string().into());
                data.insert("message_id".into(), cmid.into());
                data.insert("text".into(), text.into());
                record(bus, EventKind::MessageEdited, &msg_id, data).await?
            }
            Parsed::Permission { user_id, blocked, msg_id } => {
                let mut data = serde_json::Map::new();
                data.insert("user_id".into(), user_id.into());
                data.insert("thread_key".into(), user_id.to_string().into());
                data.insert("blocked".into(), blocked.into());
                record(bus, EventKind::CustomerBlocked, &msg_id, data).await?
            }
            Parsed::Ignored(_) => Outcome::Ignored,
            Parsed::Unreadable(why) => {
                let id = event["event_id"].as_str().map(str::to_string).unwrap_or_else(|| digest(event));
                dead_letter(bus, event, &id, &format!("unreadable VK event: {why}")).await?;
                Outcome::DeadLettered(why)
            }
        };
        match outcome.counted() {
            None => debug!(kind, "vk event stored"),
            Some(counted) => {
                info!(kind, outcome = counted.as_str(), detail = ?outcome, "vk event settled");
                outcomes::record(CHANNEL, counted);
            }
        }
        Ok(outcome)
    }

    async fn message(&self, bus: &Bus, inbound: &Inbound, m: &Incoming, raw: &Value) -> Result<Outcome, String> {
        if let Some(answer) = m.payload.as_deref().and_then(wire::survey_answer) {
            return self.survey(bus, m, answer).await;
        }
        let raw_ref = raw["event_id"].as_str().map(|e| format!("event:{e}"));
        let Some(mut envelope) = m.envelope(raw_ref) else {
            self.tell(m.peer_id, CANNOT_READ, &format!("cannot-read:{}", m.provider_id())).await;
            return Ok(Outcome::Unsupported(m.uncarried.join(",")));
        };
        self.fetch(bus, m, &mut envelope).await?;
        match inbound.publish(envelope.clone()).await {
            Ok(p) if p.duplicate => Ok(Outcome::Duplicate),
            Ok(_) => Ok(Outcome::Published),
            Err(InboundError::Bus(e)) => Err(e.to_string()),
            Err(InboundError::NotReady(why)) => Err(why.into()),
            Err(e) => refuse(bus, &envelope, e).await,
        }
    }

    /// Stores each file under its stable object name (a redelivery overwrites); over the limit
    /// or gone at VK (4xx) it stays listed as skipped. A failed download is an error: the event
    /// comes again.
    async fn fetch(&self, bus: &Bus, m: &Incoming, envelope: &mut Envelope) -> Result<(), String> {
        let over = format!("over the {} byte limit", self.max_file_bytes);
        for (file, attachment) in m.files.iter().zip(envelope.attachments.iter_mut()) {
            if file.size.is_some_and(|s| s > self.max_file_bytes) {
                attachment.skipped = Some(over.clone());
                continue;
            }
            let bytes = match self.api.download(&file.url, self.max_file_bytes).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    attachment.skipped = Some(over.clone());
                    continue;
                }
                Err(e) if e.contains("HTTP 4") => {
                    warn!(error = %e, "a customer's VK file is gone; listed as skipped");
                    attachment.skipped = Some(format!("could not be fetched from VK: {e}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let store = bus
                .jetstream()
                .get_object_store(ATTACHMENTS_STORE)
                .await
                .map_err(|e| format!("attachment store: {e}"))?;
            store.put(file.object.as_str(), &mut bytes.as_slice()).await.map_err(|e| format!("store a file: {e}"))?;
            (attachment.object, attachment.size, attachment.skipped) = (file.object.clone(), bytes.len() as u64, None);
        }
        Ok(())
    }

    /// A press of a survey button: stored once per conversation; refused when the conversation
    /// is not this dialog's or was asked another survey.
    async fn survey(
        &self,
        bus: &Bus,
        m: &Incoming,
        (kind, conversation, score): (switchboard_core::SurveyKind, uuid::Uuid, u8),
    ) -> Result<Outcome, String> {
        let record = conversation_ref(bus, conversation).await.map_err(|e| e.to_string())?;
        let Some(record) = record.filter(|r| r.channel == CHANNEL && r.thread_key == m.peer_id.to_string()) else {
            return Ok(Outcome::Refused("survey answer for an unknown conversation".into()));
        };
        let score = match record.check_answer(kind, i64::from(score)) {
            Ok(score) => score,
            Err(refused) => return Ok(Outcome::Refused(format!("survey answer refused: {refused}"))),
        };
        let event = survey_event(kind, conversation, record.agent, CHANNEL, score);
        let published = publish_survey(bus, &event).await.map_err(|e| e.to_string())?;
        if !published.duplicate {
            self.tell(m.peer_id, "Thank you!", &format!("thanks:{kind}:{conversation}")).await;
        }
        Ok(Outcome::Recorded)
    }

    /// Tells a customer something (best effort: a failure is logged). `key` makes the
    /// `random_id`, so a redelivered event does not say it twice.
    async fn tell(&self, peer_id: i64, text: &str, key: &str) {
        let params = [
            ("peer_id", peer_id.to_string()),
            ("message", text.to_string()),
            ("random_id", wire::random_id(key, 0).to_string()),
        ];
        if let Err(e) = self.api.call_waiting("messages.send", &params).await {
            warn!(error = %e, "cannot answer a VK customer");
        }
    }
}

/// A message the bus refused (a flood from one customer, an envelope the contract refuses): kept
/// as a dead letter, not routed. The envelope is kept, not the VK event, so that
/// `switchboard dlq replay` puts it back on `sb.in.vk` as it would have gone.
async fn refuse(bus: &Bus, envelope: &Envelope, e: InboundError) -> Result<Outcome, String> {
    warn!(reason = %e, "vk message refused");
    let mut h = HeaderMap::new();
    h.insert(headers::SCHEMA, Envelope::SCHEMA);
    let payload = serde_json::to_vec(envelope).map_err(|e| e.to_string())?;
    let msg_id = format!("dlq:{CHANNEL}:{}", envelope.provider_message_id);
    bus.publish_dead_letter(DLQ_COMPONENT, &subjects::inbound(CHANNEL), &e.to_string(), h, payload.into(), &msg_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Outcome::DeadLettered(e.to_string()))
}

/// A short stable name for an event without an id.
fn digest(event: &Value) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(event.to_string().as_bytes());
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

async fn dead_letter(bus: &Bus, raw: &Value, id: &str, reason: &str) -> Result<(), String> {
    let payload = bytes::Bytes::from(raw.to_string());
    let msg_id = format!("dlq:{CHANNEL}:event:{id}");
    bus.publish_dead_letter(DLQ_COMPONENT, &subjects::inbound(CHANNEL), reason, HeaderMap::new(), payload, &msg_id)
        .await
        .map_err(|e| e.to_string())
}

async fn record(
    bus: &Bus,
    kind: EventKind,
    msg_id: &str,
    data: serde_json::Map<String, Value>,
) -> Result<Outcome, String> {
    let event = Event {
        id: uuid::Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind,
        conversation_id: None,
        agent_id: None,
        channel: Some(CHANNEL.into()),
        data,
    };
    let published = bus.publish(&subjects::event(kind.as_str()), &event, msg_id).await.map_err(|e| e.to_string())?;
    Ok(if published.duplicate { Outcome::Duplicate } else { Outcome::Recorded })
}
