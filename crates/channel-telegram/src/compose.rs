//! What an agent reads in their Telegram chat: the shared agent-chat text
//! ([`switchboard_adapter::agent_chat::compose`]) in MarkdownV2, fitted to one Telegram message,
//! with its buttons as an inline keyboard.

use switchboard_adapter::agent_chat::{self, Buttons, Markup};
use switchboard_core::AgentDelivery;
use switchboard_core::envelope::AttachmentRef;
use teloxide_core::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use uuid::Uuid;

use crate::format::{MAX_TEXT_CHARS, bold, escape, italic};

/// Telegram's MarkdownV2, counted in UTF-16 units as Telegram counts.
pub(crate) struct MarkdownV2;

impl Markup for MarkdownV2 {
    fn escape(&self, text: &str) -> String {
        escape(text)
    }
    fn bold(&self, text: &str) -> String {
        bold(text)
    }
    fn italic(&self, text: &str) -> String {
        italic(text)
    }
    fn len(&self, text: &str) -> usize {
        text.chars().map(char::len_utf16).sum()
    }
}

/// The text and buttons for one delivery.
pub(crate) fn compose(delivery: &AgentDelivery, conversation: Uuid) -> (String, Option<InlineKeyboardMarkup>) {
    let button =
        |text: &str, verb: &str| InlineKeyboardButton::callback(text, format!("{verb}:{}", conversation.simple()));
    let (text, buttons) = agent_chat::compose(&MarkdownV2, delivery, MAX_TEXT_CHARS, "/");
    let keyboard = match buttons {
        Buttons::None => None,
        Buttons::AcceptDecline => {
            Some(InlineKeyboardMarkup::new([[button("Accept", "acc"), button("Decline", "dec")]]))
        }
        Buttons::Resolve => Some(InlineKeyboardMarkup::new([[button("Resolve", "res")]])),
    };
    (text, keyboard)
}

/// The customer's stored files a delivery brings, oldest first.
pub(crate) fn files_of(delivery: &AgentDelivery) -> Vec<&AttachmentRef> {
    agent_chat::files_of(delivery)
}

/// The caption of a customer's file in the agent's chat: the conversation's label (MarkdownV2,
/// within Telegram's 1,024 characters for captions).
pub(crate) fn caption(delivery: &AgentDelivery) -> String {
    agent_chat::caption(&MarkdownV2, delivery, 1000)
}

/// A size for people: `812 B`, `14 KB`, `3.2 MB`.
pub(crate) fn size(bytes: u64) -> String {
    agent_chat::size(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::agent::{Author, HistoryEntry};

    fn fit(history: &[HistoryEntry], budget: usize) -> String {
        agent_chat::fit(&MarkdownV2, history, budget)
    }
    fn units(s: &str) -> usize {
        MarkdownV2.len(s)
    }

    fn entry(i: usize, len: usize) -> HistoryEntry {
        HistoryEntry::new(chrono::Utc::now(), Author::Customer, Some("Ada".into()), format!("{i}:{}", "x".repeat(len)))
    }

    #[test]
    fn a_long_history_keeps_the_last_entries_that_fit_and_says_how_many_were_left_out() {
        let history: Vec<_> = (0..20).map(|i| entry(i, 900)).collect();
        let text = fit(&history, 3500);
        assert!(units(&text) <= 3500, "{}", units(&text));
        assert!(text.starts_with("_… "), "{text}");
        assert!(text.contains("19:"), "the latest entry is there");
        assert!(!text.contains("\n0:"), "the first is left out");
        let shown = text.matches("*Ada*").count();
        assert!(text.contains(&format!("… {} earlier messages", 20 - shown)), "{text}");
    }

    #[test]
    fn a_reopened_offer_of_twenty_entries_is_one_message_headed_reopened() {
        let now = chrono::Utc::now();
        let history: Vec<_> = (0..20).map(|i| entry(i, 700)).collect();
        let offer = serde_json::json!({
            "type": "offer", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": Uuid::now_v7(),
            "channel": "email", "customer": { "id": "ada@example.com", "name": "Ada Lovelace" },
            "priority": 50, "tier": "L1", "sla_deadline": now, "offer_deadline": now,
            "history": history, "actions": ["accept", "decline"], "code": "K4F2", "reopened": true,
        });
        let delivery: AgentDelivery = serde_json::from_value(offer).unwrap();
        let (text, keyboard) = compose(&delivery, Uuid::now_v7());
        assert!(text.starts_with("*Reopened \\#K4F2* Ada Lovelace on email"), "{text}");
        assert_eq!(crate::format::split(&text, MAX_TEXT_CHARS).len(), 1, "one message");
        assert!(text.contains("earlier messages") && text.contains("19:"), "{text}");
        assert!(keyboard.is_some());
    }

    #[test]
    fn updates_read_as_sentences_with_the_label() {
        let update = serde_json::json!({
            "type": "update", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": Uuid::now_v7(),
            "code": "K4F2", "customer": "Ada", "channel": "telegram", "change": "delivery_failed",
            "note": "bot was blocked", "history": [ { "at": chrono::Utc::now(), "from": "agent", "author": "alice", "text": "Hi" } ],
        });
        let delivery: AgentDelivery = serde_json::from_value(update).unwrap();
        let (text, _) = compose(&delivery, Uuid::now_v7());
        assert!(
            text.starts_with("*\\#K4F2* Ada \\(telegram\\)\nYour reply could not be delivered: bot was blocked\\."),
            "{text}"
        );
        assert!(text.ends_with("*alice*\nHi"), "{text}");
    }

    #[test]
    fn one_huge_entry_is_cut_to_fit() {
        let text = fit(&[entry(0, 20_000)], 3000);
        assert!(units(&text) <= 3000 && text.contains('…'));
        assert!(!text.contains("earlier"));
    }
}
