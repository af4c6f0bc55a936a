//! Buttons in agents' chats after use: once an offer is accepted, declined, withdrawn or the
//! conversation resolved or transferred, the buttons of its messages are replaced by one that
//! says so ("✓ Accepted", "Offer withdrawn"), and pressing that one is answered at once.
//!
//! The messages of a conversation that still carry live buttons are kept in KV `sb_channels`
//! under `telegram.live.<chat>.<conversation>` (a JSON list of message ids).

use async_nats::jetstream::kv::Store;
use switchboard_adapter::SendError;
use teloxide_core::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use uuid::Uuid;

use crate::outbound::Sender;

/// Callback data verb of a button that only shows what became of the conversation.
pub(crate) const USED: &str = "used";

/// What a press of a used button is answered, at once.
pub(crate) const ALREADY_HANDLED: &str = "Already handled.";

/// The label after accepting.
pub(crate) const ACCEPTED: &str = "✓ Accepted";
/// The label after declining.
pub(crate) const DECLINED: &str = "✗ Declined";
/// The label after resolving.
pub(crate) const RESOLVED: &str = "✓ Resolved";

fn key(chat: i64, conversation: Uuid) -> String {
    format!("telegram.live.{chat}.{}", conversation.simple())
}

/// The one button that replaces the live ones: `label`, answered "already handled".
pub(crate) fn status(label: &str, conversation: Uuid) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(label, format!("{USED}:{}", conversation.simple()))]])
}

/// The label a conversation update puts on the conversation's live buttons; `None` when the
/// update leaves them live (a new message, a failed delivery).
pub(crate) fn label_for(change: &str) -> Option<&'static str> {
    switchboard_adapter::agent_chat::settled_label(change)
}

/// The label a command's success puts on the pressed button's message.
pub(crate) fn label_for_verb(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "acc" => ACCEPTED,
        "dec" => DECLINED,
        "res" => RESOLVED,
        _ => return None,
    })
}

async fn load(kv: &Store, key: &str) -> Result<Vec<i32>, SendError> {
    let value = kv.get(key).await.map_err(|e| SendError::retryable(format!("read live buttons: {e}")))?;
    Ok(value.and_then(|v| serde_json::from_slice(&v).ok()).unwrap_or_default())
}

/// Remembers that `message` carries live buttons of `conversation`.
pub(crate) async fn remember(kv: &Store, chat: i64, conversation: Uuid, message: i32) -> Result<(), SendError> {
    let key = key(chat, conversation);
    let mut live = load(kv, &key).await?;
    if !live.contains(&message) {
        live.push(message);
    }
    let value = serde_json::to_vec(&live).unwrap_or_default();
    kv.put(key, value.into()).await.map_err(|e| SendError::retryable(format!("remember live buttons: {e}")))?;
    Ok(())
}

/// Replaces the live buttons of `conversation` in `chat` by `label` and forgets them. Safe to
/// repeat: an edit to what the message already shows counts as done.
pub(crate) async fn settle(
    sender: &Sender,
    kv: &Store,
    chat: i64,
    conversation: Uuid,
    label: &str,
) -> Result<(), SendError> {
    let key = key(chat, conversation);
    let live = load(kv, &key).await?;
    for message in &live {
        sender.edit_keyboard(chat, *message, Some(status(label, conversation))).await?;
    }
    if !live.is_empty() {
        // Erased from the bucket's stream, marker and all: one per conversation would pile up.
        let subject = format!("{}{key}", kv.prefix);
        kv.stream
            .purge()
            .filter(subject)
            .await
            .map_err(|e| SendError::retryable(format!("forget live buttons: {e}")))?;
    }
    Ok(())
}
