//! Raw updates as dead letters, and their replay: an update the channel could not turn into an
//! envelope is kept whole (`Sb-Dlq-Kind: telegram-update`) on `sb.dlq.telegram-in`, and
//! `switchboard dlq replay` stores it on `sb.replay.telegram-in` (stream `SB_REPLAY`), where this
//! consumer hands it to the same update handler as a polled one: it becomes an envelope (or an
//! event, a command), or a dead letter again with the reason.

use async_nats::HeaderMap;
use switchboard_adapter::Inbound;
use switchboard_bus::{Bus, BusError, ConsumerSpec, Delivery, HandlerError};
use switchboard_core::contract::{dlq_kinds, headers, subjects};
use tracing::info;

use crate::CHANNEL;
use crate::agent::AgentChats;
use crate::inbound::{DLQ_COMPONENT, Files, handle_update};

/// Durable consumer of replayed updates (shared by every process running the inbound side).
pub const REPLAY_CONSUMER: &str = "telegram-replay";

tokio::task_local! {
    /// The id of the replay being handled: a dead letter it leads to is named after it, so that
    /// one failing again is not dropped as a duplicate of the dead letter it was replayed from.
    static REPLAY: String;
}

/// Keeps an update as Telegram sent it (JSON bytes, even one the client cannot read) on
/// `sb.dlq.telegram-in` with the reason; `update_id` names it (the dead letter's id derives from
/// it, so the same update given up twice is kept once).
pub async fn dead_letter_raw_update(bus: &Bus, raw: &[u8], update_id: &str, reason: &str) -> Result<(), String> {
    let mut h = HeaderMap::new();
    h.insert(headers::DLQ_KIND, dlq_kinds::TELEGRAM_UPDATE);
    let replay = REPLAY.try_with(|r| format!(":{r}")).unwrap_or_default();
    let msg_id = format!("dlq:{CHANNEL}:update:{update_id}{replay}");
    let payload = bytes::Bytes::copy_from_slice(raw);
    bus.publish_dead_letter(DLQ_COMPONENT, &subjects::inbound(CHANNEL), reason, h, payload, &msg_id)
        .await
        .map_err(|e| e.to_string())
}

/// Handles replayed updates until `inbound`'s shutdown.
pub async fn run(inbound: Inbound, agents: Option<AgentChats>, files: Files) -> Result<(), BusError> {
    let bus = inbound.bus()?.clone();
    let spec = ConsumerSpec::replay(DLQ_COMPONENT, REPLAY_CONSUMER);
    let shutdown = inbound.shutdown().clone();
    bus.run_consumer(spec, shutdown, move |d: Delivery| {
        let (inbound, agents, files) = (inbound.clone(), agents.clone(), files.clone());
        async move { replay_one(&inbound, agents.as_ref(), &files, d).await }
    })
    .await
}

async fn replay_one(
    inbound: &Inbound,
    agents: Option<&AgentChats>,
    files: &Files,
    d: Delivery,
) -> Result<(), HandlerError> {
    let kind = d.headers.get(headers::DLQ_KIND).map(|v| v.as_str().to_string());
    if kind.as_deref().is_some_and(|k| k != dlq_kinds::TELEGRAM_UPDATE) {
        return Err(HandlerError::Reject(format!("not a telegram update but {}", kind.unwrap_or_default())));
    }
    let raw = std::str::from_utf8(&d.payload)
        .map_err(|e| HandlerError::Reject(format!("not a readable telegram update: {e}")))?;
    let replay_id = d
        .headers
        .get(headers::MSG_ID)
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| format!("replay:{}", d.stream_sequence));
    // The same handler as a polled update: counted once, as the poller counts it.
    let outcome =
        REPLAY.scope(replay_id, handle_update(inbound, agents, files, raw)).await.map_err(HandlerError::Retry)?;
    info!(stream_sequence = d.stream_sequence, ?outcome, "replayed telegram update handled");
    Ok(())
}
