//! Raw updates as dead letters: an update the channel could not turn into an envelope is kept
//! whole (`Sb-Dlq-Kind: telegram-update`) on `sb.dlq.telegram-in`, for `switchboard dlq replay`.

use async_nats::HeaderMap;
use switchboard_bus::Bus;
use switchboard_core::contract::{dlq_kinds, headers, subjects};

use crate::CHANNEL;

/// The dead-letter component of inbound Telegram messages: `sb.dlq.telegram-in`. A dead letter's
/// payload is the update exactly as Telegram sent it, so a replay hands it to [`handle_update`].
pub const DLQ_COMPONENT: &str = "telegram-in";

tokio::task_local! {
    /// The id of the replay being handled: a dead letter it leads to is named after it, so that
    /// one failing again is not dropped as a duplicate of the dead letter it was replayed from.
    pub(crate) static REPLAY: String;
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
