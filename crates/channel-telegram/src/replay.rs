//! Raw updates as dead letters, and their replay: an update the channel could not turn into an
//! envelope is kept whole (`Sb-Dlq-Kind: telegram-update`) on `sb.dlq.telegram-in`, and
//! `switchboard dlq replay` stores it on `sb.replay.telegram-in` (stream `SB_REPLAY`), where this
//! consumer hands it to the same update handler as a polled one: it becomes an envelope (or an
//! event, a command), or a dead letter again with the reason.

use switchboard_adapter::Inbound;
use switchboard_bus::{BusError, ConsumerSpec, Delivery, HandlerError};
use switchboard_core::contract::{dlq_kinds, headers};
use tracing::info;

use crate::agent::AgentChats;
use crate::deadletter::{DLQ_COMPONENT, REPLAY};
use crate::inbound::{Files, handle_update};

/// Durable consumer of replayed updates (shared by every process running the inbound side).
pub const REPLAY_CONSUMER: &str = "telegram-replay";

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
