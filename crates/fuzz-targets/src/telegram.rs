//! `telegram_update`: bytes as a Bot API `Update` (as teloxide reads it) and the channel's pure
//! mapping of an update to an envelope or an agent command.

use switchboard_channel_telegram::{action_for, envelope, first_update_id, survey_answer};
use switchboard_core::{CommandAction, Contract, Envelope};
use teloxide_core::types::{Update, UpdateKind};

/// Reads `data` as the poller reads a `getUpdates` answer and each update in it: a customer's
/// message becomes a valid envelope or nothing, an agent's text a command or a notice.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = first_update_id(text);
    // The poller reads an update from its own text (teloxide borrows update kinds as keys).
    if let Ok(update) = serde_json::from_str::<Update>(text) {
        map(&update);
    }
    if let Ok(answer) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(updates) = answer["result"].as_array()
    {
        for raw in updates {
            if let Ok(update) = serde_json::from_str::<Update>(&raw.to_string()) {
                map(&update);
            }
        }
    }
}

fn map(update: &Update) {
    match &update.kind {
        UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => {
            if let Some(e) = envelope(m, update.id.0) {
                if let Err(why) = e.validate() {
                    panic!("the envelope of a customer's message is refused: {why}");
                }
                let again = Envelope::from_json(&serde_json::to_vec(&e).unwrap_or_default());
                assert_eq!(again.as_ref(), Ok(&e), "the envelope does not survive its JSON");
            }
            let text = m.text().unwrap_or_default().trim();
            if let Ok(action) = action_for(text) {
                assert!(
                    !matches!(&action, CommandAction::Reply { text, .. } if text.trim().is_empty()),
                    "an empty reply"
                );
            }
        }
        UpdateKind::CallbackQuery(q) => {
            if let Some((kind, _, score)) = q.data.as_deref().and_then(survey_answer) {
                assert!(kind.scale().contains(&score), "{kind} score {score}");
            }
        }
        _ => {}
    }
}
