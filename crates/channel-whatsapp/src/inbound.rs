//! A notification's items, handled: every message becomes an envelope (its media fetched into
//! `sb_attachments` first), a counted not-routed item or a dead letter; every status an event on
//! its conversation. Each item ends in exactly one counted outcome
//! (`switchboard_inbound_total{channel="whatsapp"}`), except a stored envelope, which the router
//! counts. An `Err` means something could not be stored now (the bus, a media download): the
//! webhook answers `503` and Meta delivers the notification again; what was stored before is then
//! a duplicate.

use async_nats::HeaderMap;
use switchboard_adapter::{Inbound, InboundError};
use switchboard_bus::Bus;
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, headers, subjects};
use switchboard_core::{Contract, Envelope, Event, EventKind};
use tracing::{debug, info, warn};

use crate::graph::{Class, Graph};
use crate::payload::{CANNOT_READ, Carried, Item, Status};
use crate::{CHANNEL, state};

/// The dead-letter component of inbound WhatsApp messages: `sb.dlq.whatsapp-in`. A dead letter
/// is the envelope as it would have been stored (`Sb-Dlq-Kind: envelope/1`), so a replay puts it
/// on `sb.in.whatsapp`.
pub const DLQ_COMPONENT: &str = "whatsapp-in";

/// What the inbound side needs besides the publisher.
#[derive(Clone)]
pub struct Receiver {
    /// The Graph API: media downloads, and telling a customer their message cannot be read.
    pub graph: Graph,
    /// Largest media file fetched, in bytes.
    pub max_media_bytes: u64,
}

/// What one item became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Stored as an envelope; the router counts it.
    Published,
    /// Stored before (Meta delivered it again).
    Duplicate,
    /// Recorded as an event (a status): not routed.
    Recorded,
    /// Not routed, for this reason (a kind the channel cannot carry, a reaction taken back).
    NotRouted(String),
    /// Kept as a dead letter, for this reason (a flood from one customer, a message the
    /// contract refuses).
    DeadLettered(String),
    /// Not a message or status at all.
    Rejected(String),
}

impl ItemOutcome {
    /// The outcome counted here; `None` for a stored envelope, which the router counts.
    pub fn counted(&self) -> Option<InboundOutcome> {
        match self {
            ItemOutcome::Published => None,
            ItemOutcome::Duplicate => Some(InboundOutcome::Duplicate),
            ItemOutcome::Recorded | ItemOutcome::NotRouted(_) => Some(InboundOutcome::NotRouted),
            ItemOutcome::DeadLettered(_) => Some(InboundOutcome::DeadLetter),
            ItemOutcome::Rejected(_) => Some(InboundOutcome::Rejected),
        }
    }
}

/// Handles a notification's items in order, counting each; stops at the first that cannot be
/// stored now.
pub async fn handle_items(inbound: &Inbound, rx: &Receiver, items: Vec<Item>) -> Result<Vec<ItemOutcome>, String> {
    let bus = inbound.bus().map_err(|e| e.to_string())?;
    let kv = bus.jetstream().get_key_value(buckets::CHANNELS).await.map_err(|e| format!("channel state: {e}"))?;
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let outcome = match item {
            Item::Message(carried) => message(inbound, bus, &kv, rx, *carried).await?,
            Item::Unsupported { wamid, from, kind } => unsupported(bus, &kv, rx, &wamid, &from, &kind).await?,
            Item::NotRouted { reason, .. } => ItemOutcome::NotRouted(reason),
            Item::Status(s) => status(bus, &s).await?,
            Item::Unreadable(why) => ItemOutcome::Rejected(why),
        };
        match outcome.counted() {
            None => debug!("whatsapp message stored"),
            Some(counted) => {
                info!(outcome = counted.as_str(), detail = ?outcome, "whatsapp item settled");
                outcomes::record(CHANNEL, counted);
            }
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Opens (or extends) the customer's window at the time they wrote, capped at now.
async fn touch_window(kv: &async_nats::jetstream::kv::Store, wa_id: &str, sent_at: i64) -> Result<(), String> {
    let now = chrono::Utc::now().timestamp();
    let at = if sent_at <= 0 { now } else { sent_at.min(now) };
    state::keep_latest(kv, &state::window_key(wa_id), at).await
}

async fn message(
    inbound: &Inbound,
    bus: &Bus,
    kv: &async_nats::jetstream::kv::Store,
    rx: &Receiver,
    carried: Carried,
) -> Result<ItemOutcome, String> {
    let Carried { mut envelope, media, sent_at } = carried;
    if let (Some(media), Some(attachment)) = (&media, envelope.attachments.first_mut()) {
        fetch_media(bus, rx, &media.id, attachment).await?;
    }
    // Before the envelope is stored: a reply to it (the L0 bot's) may be sent at once.
    touch_window(kv, &envelope.customer.id, sent_at).await?;
    match inbound.publish(envelope.clone()).await {
        Ok(p) if p.duplicate => Ok(ItemOutcome::Duplicate),
        Ok(_) => Ok(ItemOutcome::Published),
        Err(InboundError::Bus(e)) => Err(e.to_string()),
        Err(InboundError::NotReady(why)) => Err(why.into()),
        // A flood from one customer or a message the contract refuses: kept whole, not routed.
        Err(e) => {
            let reason = e.to_string();
            warn!(reason = %reason, "whatsapp message refused; dead-lettered");
            dead_letter(bus, &envelope, &reason).await?;
            Ok(ItemOutcome::DeadLettered(reason))
        }
    }
}

/// Keeps an envelope the publisher refused on `sb.dlq.whatsapp-in` (replayable to `sb.in.whatsapp`).
async fn dead_letter(bus: &Bus, envelope: &Envelope, reason: &str) -> Result<(), String> {
    let mut h = HeaderMap::new();
    h.insert(headers::SCHEMA, Envelope::SCHEMA);
    let payload = serde_json::to_vec(envelope).map_err(|e| e.to_string())?;
    let msg_id = format!("dlq:{CHANNEL}:{}", envelope.provider_message_id);
    bus.publish_dead_letter(DLQ_COMPONENT, &subjects::inbound(CHANNEL), reason, h, payload.into(), &msg_id)
        .await
        .map_err(|e| e.to_string())
}

/// An object name for a media id: the id itself when it is plain, else its digest.
fn object_name(media_id: &str) -> String {
    if !media_id.is_empty() && media_id.len() <= 128 && media_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return format!("whatsapp/{media_id}");
    }
    use sha2::Digest;
    format!("whatsapp/{}", hex::encode(sha2::Sha256::digest(media_id.as_bytes())))
}

/// Why a file was not fetched: over the limit.
fn over_limit(max: u64) -> String {
    format!("over the {max} byte limit")
}

/// Fetches a media file (`GET /{media-id}`, then its URL with the token) into the object store
/// under `whatsapp/<media id>` (a redelivery overwrites), within the size limit; over it, or gone
/// for good at WhatsApp, it stays listed as skipped with the reason. A failure worth retrying is
/// an error: the notification comes again.
async fn fetch_media(
    bus: &Bus,
    rx: &Receiver,
    media_id: &str,
    attachment: &mut switchboard_core::envelope::AttachmentRef,
) -> Result<(), String> {
    let skip = |attachment: &mut switchboard_core::envelope::AttachmentRef, why: String| {
        attachment.skipped = Some(why);
        Ok(())
    };
    let (url, stated) = match rx.graph.media_url(media_id).await {
        Ok(found) => found,
        Err(e) if e.class == Class::Permanent => return skip(attachment, format!("not fetched: {e}")),
        Err(e) => return Err(e.reason),
    };
    if stated.is_some_and(|n| n > rx.max_media_bytes) {
        attachment.size = stated.unwrap_or_default();
        return skip(attachment, over_limit(rx.max_media_bytes));
    }
    let bytes = match rx.graph.download(&url, rx.max_media_bytes).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return skip(attachment, over_limit(rx.max_media_bytes)),
        Err(e) if e.class == Class::Permanent => return skip(attachment, format!("not fetched: {e}")),
        Err(e) => return Err(e.reason),
    };
    let store =
        bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.map_err(|e| format!("attachment store: {e}"))?;
    let object = object_name(media_id);
    store.put(object.as_str(), &mut bytes.as_slice()).await.map_err(|e| format!("store a file: {e}"))?;
    (attachment.object, attachment.size, attachment.skipped) = (object, bytes.len() as u64, None);
    Ok(())
}

/// A message the channel cannot carry: recorded as `message_not_routed` (once per `wamid`, so a
/// redelivery is a duplicate and the customer is told once) and the customer is told.
async fn unsupported(
    bus: &Bus,
    kv: &async_nats::jetstream::kv::Store,
    rx: &Receiver,
    wamid: &str,
    from: &str,
    kind: &str,
) -> Result<ItemOutcome, String> {
    touch_window(kv, from, 0).await?;
    let reason = format!("a `{kind}` message, which the channel cannot carry");
    let mut data = serde_json::Map::new();
    data.insert("outcome".into(), "not_routed".into());
    data.insert("reason".into(), reason.clone().into());
    data.insert("thread_key".into(), from.into());
    data.insert("provider_message_id".into(), wamid.into());
    let msg_id = format!("wa-unsupported:{}", crate::payload::dedupe_id(wamid));
    let published = record(bus, EventKind::MessageNotRouted, None, data, &msg_id).await?;
    if published {
        let body = serde_json::json!({ "type": "text", "text": { "body": CANNOT_READ } });
        if let Err(e) = rx.graph.send(from, body).await {
            warn!(error = %e, "cannot tell a customer their message cannot be read");
        }
        return Ok(ItemOutcome::NotRouted(reason));
    }
    Ok(ItemOutcome::Duplicate)
}

/// The conversation and outbound message a send named in `biz_opaque_callback_data`.
pub fn callback_ids(callback: Option<&str>) -> (Option<uuid::Uuid>, Option<uuid::Uuid>) {
    let Some((c, o)) = callback.and_then(|c| c.split_once(':')) else { return (None, None) };
    (c.parse().ok(), o.parse().ok())
}

/// A status as an event on its conversation: `failed` as `delivery_failed` (the router marks the
/// reply undelivered and tells the agent), the others as `message_status`.
async fn status(bus: &Bus, s: &Status) -> Result<ItemOutcome, String> {
    let (conversation, outbound) = callback_ids(s.callback.as_deref());
    let mut data = serde_json::Map::new();
    data.insert("provider_message_id".into(), s.wamid.clone().into());
    data.insert("recipient".into(), s.recipient.clone().into());
    data.insert("timestamp".into(), s.timestamp.into());
    if let Some(o) = outbound {
        data.insert("outbound_id".into(), o.to_string().into());
    }
    let id = crate::payload::dedupe_id(&s.wamid);
    let published = if s.status == "failed" {
        let why: Vec<String> = s.errors.iter().map(ToString::to_string).collect();
        let why = if why.is_empty() { "no reason given".to_string() } else { why.join("; ") };
        data.insert("reason".into(), format!("WhatsApp could not deliver it: {why}").into());
        if let Some(e) = s.errors.first() {
            data.insert("error_code".into(), e.code.into());
        }
        // Apart from the runtime's `delivery-failed:<outbound id>`: a reply WhatsApp took and then
        // could not deliver (a closed window's template among them) is told too, once for all its
        // parts.
        let msg_id = match outbound {
            Some(o) => format!("delivery-failed:{o}:status"),
            None => format!("wa-status:{id}:failed"),
        };
        record(bus, EventKind::DeliveryFailed, conversation, data, &msg_id).await?
    } else {
        data.insert("status".into(), s.status.clone().into());
        record(bus, EventKind::MessageStatus, conversation, data, &format!("wa-status:{id}:{}", s.status)).await?
    };
    Ok(if published { ItemOutcome::Recorded } else { ItemOutcome::Duplicate })
}

/// Publishes an event; `false` when it was stored before.
async fn record(
    bus: &Bus,
    kind: EventKind,
    conversation: Option<uuid::Uuid>,
    data: serde_json::Map<String, serde_json::Value>,
    msg_id: &str,
) -> Result<bool, String> {
    let event = Event {
        id: uuid::Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind,
        conversation_id: conversation,
        agent_id: None,
        channel: Some(CHANNEL.into()),
        data,
    };
    let published = bus.publish(&subjects::event(kind.as_str()), &event, msg_id).await.map_err(|e| e.to_string())?;
    Ok(!published.duplicate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_names_the_conversation_and_the_message() {
        let (c, o) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        assert_eq!(callback_ids(Some(&format!("{c}:{o}"))), (Some(c), Some(o)));
        assert_eq!(callback_ids(Some("something else")), (None, None));
        assert_eq!(callback_ids(None), (None, None));
        assert_eq!(object_name("1037543291543636"), "whatsapp/1037543291543636");
        assert_eq!(object_name("../x").len(), "whatsapp/".len() + 64);
    }
}
