//! What the widget learns from the router: an agent took the conversation, it was resolved (so
//! the widget asks for a rating), an agent is typing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchboard_bus::{Bus, BusError, ConsumerSpec, Delivery, HandlerError};
use switchboard_core::contract::{headers, streams, subjects};
use switchboard_core::{Event, EventKind, decode_events};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::hub::Push;
use crate::server::Shared;
use crate::transcript::{self, Entry, EntryKind};

/// Durable consumer of the events the widget shows (shared by every replica).
pub const EVENTS_CONSUMER: &str = "webchat-events";

/// Turns `assigned` and `resolved` events of web-chat conversations into transcript entries until
/// `stop` fires.
pub(crate) async fn run_events(shared: Arc<Shared>, bus: Bus, stop: CancellationToken) -> Result<(), BusError> {
    let spec = ConsumerSpec {
        max_deliver: 20,
        concurrency: 4,
        only_new: true,
        ..ConsumerSpec::new(EVENTS_CONSUMER, streams::EVENTS, EVENTS_CONSUMER, "sb.events.>")
    };
    bus.clone()
        .run_consumer(spec, stop, move |delivery| {
            let (shared, bus) = (shared.clone(), bus.clone());
            async move { on_event(&shared, &bus, delivery).await }
        })
        .await
}

/// A message of `sb.events.>`: a single `assigned` or `resolved` event on its subject, or the
/// router's batches (`sb.events.batch`), which hold those among others. Other single events are
/// passed over by subject, without decoding, and so are batches an erasure rewrote
/// (`sb.events.rewritten`: their events were shown when the original batch came).
pub(crate) async fn on_event(shared: &Shared, bus: &Bus, delivery: Delivery) -> Result<(), HandlerError> {
    let wanted = [EventKind::Assigned, EventKind::Resolved].map(|k| subjects::event(k.as_str()));
    if delivery.subject != subjects::EVENT_BATCH && !wanted.contains(&delivery.subject) {
        return Ok(());
    }
    show(shared, bus, &delivery).await
}

/// Turns the assignments and resolutions a delivery holds (an `event/1` or an `events/1`, by its
/// `Sb-Schema`) into transcript entries. A batch is retried whole: entries it stored already are
/// stored once (their ids derive from the events'), so a retry adds only what was missing.
pub(crate) async fn show(shared: &Shared, bus: &Bus, delivery: &Delivery) -> Result<(), HandlerError> {
    let schema = delivery.headers.get(headers::SCHEMA).map(|s| s.as_str());
    let events = decode_events(schema, &delivery.payload).map_err(|e| HandlerError::Reject(e.to_string()))?;
    for event in events.iter().filter(|e| matches!(e.kind, EventKind::Assigned | EventKind::Resolved)) {
        show_one(shared, bus, event).await?;
    }
    Ok(())
}

async fn show_one(shared: &Shared, bus: &Bus, event: &Event) -> Result<(), HandlerError> {
    let Some(conversation) = event.conversation_id else { return Ok(()) };
    // An unknown conversation is retried too: the router stores the record after publishing.
    let record = match shared.conversation(conversation).await {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(()),
        Err(e) => return Err(HandlerError::Retry(e.to_string())),
    };
    let kind = if event.kind == EventKind::Assigned { EntryKind::Assigned } else { EntryKind::Resolved };
    let entry = Entry {
        id: event.id.to_string(),
        kind,
        at: event.at,
        text: String::new(),
        client_id: None,
        agent_name: event.data.get("agent_name").and_then(|v| v.as_str()).map(str::to_string),
        conversation_id: Some(conversation.to_string()),
        attachments: Vec::new(),
        score: None,
        // The widget shows the buttons of the survey the router asks; a resolution without one
        // (the team asks none, or surveys are off) shows none.
        survey: (kind == EntryKind::Resolved)
            .then(|| event.data.get("survey").and_then(|v| v.as_str()).unwrap_or("none").to_string()),
        queue: None,
        choices: Vec::new(),
    };
    transcript::append(bus, &record.thread_key, &entry, &format!("ev:{}", event.id))
        .await
        .map_err(|e| HandlerError::Retry(e.to_string()))?;
    debug!(session = %record.thread_key, kind = event.kind.as_str(), "web-chat notice stored");
    Ok(())
}

/// `sb.agent.typing`: what an agent's client says while the agent types (the `typing` message
/// of `asyncapi.yaml`; a signal with another field is not one).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Typing {
    conversation_id: uuid::Uuid,
    #[serde(rename = "agent_id")]
    _agent_id: String,
    #[serde(default)]
    agent_name: Option<String>,
}

/// Shows "typing" in the widgets on this process until `stop` fires.
pub(crate) async fn run_typing(shared: Arc<Shared>, bus: Bus, stop: CancellationToken) {
    let mut attempt = 0u64;
    while !stop.is_cancelled() {
        let mut sub = match bus.client().subscribe(subjects::AGENT_TYPING).await {
            Ok(s) => s,
            Err(e) => {
                attempt += 1;
                warn!(error = %e, "typing signals unavailable; retrying");
                let delay = switchboard_bus::Backoff::default().delay(attempt);
                tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(delay) => continue }
            }
        };
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                m = sub.next() => match m { Some(m) => m, None => break },
            };
            let typing = match serde_json::from_slice::<Typing>(&message.payload) {
                Ok(t) => t,
                Err(e) => {
                    // A signal on core NATS, not stored: nothing to dead-letter, nothing to retry.
                    debug!(error = %e, "typing signal that is not `typing` ignored");
                    continue;
                }
            };
            let lookup = tokio::time::timeout(Duration::from_secs(2), shared.conversation(typing.conversation_id));
            if let Ok(Ok(Some(record))) = lookup.await
                && shared.hub.has(&record.thread_key)
            {
                shared.hub.push(&record.thread_key, Push::Typing(typing.agent_name));
            }
        }
    }
}
