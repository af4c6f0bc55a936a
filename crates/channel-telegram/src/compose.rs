//! What an agent reads in their chat: every delivery headed by the conversation's label (its
//! short code `#K4F2`, the customer's name and the channel), updates as sentences, and offers that
//! fit one Telegram message however long the history (the last entries that fit, each capped,
//! and a line saying how many earlier ones were left out).

use std::fmt::Write as _;

use switchboard_core::agent::{Author, HistoryEntry};
use switchboard_core::envelope::AttachmentRef;
use switchboard_core::{AgentDelivery, ConversationLabel};
use teloxide_core::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use uuid::Uuid;

use crate::format::{MAX_TEXT_CHARS, bold, escape, italic};

/// The longest text of the latest history entry in an offer, in characters.
const LATEST_CAP: usize = 2500;
/// The longest text of an earlier history entry in an offer, in characters.
const EARLIER_CAP: usize = 500;

/// The customer as a sentence's subject: their name, or "The customer".
fn who(label: &ConversationLabel) -> &str {
    label.customer.as_deref().unwrap_or("The customer")
}

/// `*#K4F2* Ada Lovelace (telegram)`, in MarkdownV2.
fn heading(label: &ConversationLabel) -> String {
    match label.rest() {
        rest if rest.is_empty() => bold(&label.tag),
        rest => format!("{} {}", bold(&label.tag), escape(&rest)),
    }
}

/// The text and buttons for one delivery.
pub(crate) fn compose(delivery: &AgentDelivery, conversation: Uuid) -> (String, Option<InlineKeyboardMarkup>) {
    let label = delivery.label();
    let button =
        |text: &str, verb: &str| InlineKeyboardButton::callback(text, format!("{verb}:{}", conversation.simple()));
    let resolve = || Some(InlineKeyboardMarkup::new([[button("Resolve", "res")]]));
    match delivery {
        AgentDelivery::Offer(o) => {
            let title = if o.reopened { "Reopened" } else { "New conversation" };
            let mut head = bold(&format!("{title} {}", label.tag));
            let _ = write!(head, " {}", escape(&format!("{} on {}", who(&label), o.channel)));
            let _ = write!(
                head,
                "\n{}",
                escape(&format!("Priority {}, first reply due {}", o.priority.0, o.sla_deadline.format("%H:%M UTC")))
            );
            if let Some(subject) = &o.subject {
                let _ = write!(head, "\n{}", italic(subject));
            }
            let mut foot = italic(
                "Reply to this message to answer; /resolve /note /escalate /transfer <team> /t <saved reply> as replies.",
            );
            if !o.suggested_replies.is_empty() {
                let names: Vec<String> = o.suggested_replies.iter().map(|n| format!("/t {n}")).collect();
                let _ = write!(
                    foot,
                    "
{}",
                    escape(&format!("Saved replies: {}", names.join(", ")))
                );
            }
            let budget = MAX_TEXT_CHARS.saturating_sub(units(&head) + units(&foot) + 4);
            let text = format!("{head}\n\n{}\n{foot}", fit(&o.history, budget));
            let keyboard = match o.actions.iter().any(|a| a == "accept") {
                true => Some(InlineKeyboardMarkup::new([[button("Accept", "acc"), button("Decline", "dec")]])),
                false => resolve(),
            };
            (text, keyboard)
        }
        AgentDelivery::Message(m) => {
            let mut text = heading(&label);
            if m.entry.from != Author::Customer {
                let _ = write!(text, "\n{}", bold(&m.entry.author_label()));
            }
            let _ = write!(text, "\n{}", escape(m.entry.text.trim()));
            files(&mut text, &m.entry);
            (text, None)
        }
        AgentDelivery::Update(u) => {
            let mut text = format!("{}\n", heading(&label));
            let note = u.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
            let sentence = match u.change.as_str() {
                "assigned" => "You have this conversation now: reply to its messages to answer.".to_string(),
                "offer_withdrawn" => "The offer was withdrawn (it lapsed or went to someone else).".into(),
                "declined" => "You declined this conversation.".into(),
                "resolved" => "Resolved.".into(),
                "transferred" => "Transferred: it is no longer yours.".into(),
                "delivery_failed" => {
                    format!("Your reply could not be delivered: {}.", note.unwrap_or("no reason given"))
                }
                "message_edited" => format!("{} edited a message. It now reads:", who(&label)),
                other => format!("{}.", capitalized(&other.replace('_', " "))),
            };
            text.push_str(&escape(&sentence));
            if let Some(note) = note.filter(|_| u.change != "delivery_failed") {
                let _ = write!(text, "\n{}", italic(&format!("Note: {note}")));
            }
            if !u.history.is_empty() {
                let budget = MAX_TEXT_CHARS.saturating_sub(units(&text) + 2);
                let _ = write!(text, "\n\n{}", fit(&u.history, budget));
            }
            let keyboard = (u.change == "assigned").then(resolve).flatten();
            (text.trim_end().to_string(), keyboard)
        }
    }
}

/// The most customer files sent after one delivery (the newest).
const MAX_FILES: usize = 10;

/// The customer's stored files a delivery brings, oldest first: those of an offer's history, of a
/// new message, of the entries since the offer in an assignment.
pub(crate) fn files_of(delivery: &AgentDelivery) -> Vec<&AttachmentRef> {
    let entries: &[HistoryEntry] = match delivery {
        AgentDelivery::Offer(o) => &o.history,
        AgentDelivery::Message(m) => std::slice::from_ref(&m.entry),
        AgentDelivery::Update(u) if u.change == "assigned" => &u.history,
        AgentDelivery::Update(_) => &[],
    };
    let stored: Vec<&AttachmentRef> = entries
        .iter()
        .filter(|e| e.from == Author::Customer)
        .flat_map(|e| &e.attachments)
        .filter(|a| a.skipped.is_none() && !a.object.is_empty())
        .collect();
    stored[stored.len().saturating_sub(MAX_FILES)..].to_vec()
}

/// The caption of a customer's file in the agent's chat: the conversation's label (MarkdownV2,
/// within Telegram's 1,024 characters for captions).
pub(crate) fn caption(delivery: &AgentDelivery) -> String {
    let label = delivery.label();
    let heading = heading(&label);
    if units(&heading) <= 1000 { heading } else { bold(&label.tag) }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// UTF-16 units, as Telegram counts.
fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `text` cut to `max` characters, with `…` when cut.
fn capped(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", text[..at].trim_end()),
        None => text.to_string(),
    }
}

/// The files of an entry, one line each.
fn files(out: &mut String, entry: &HistoryEntry) {
    for a in &entry.attachments {
        let state = match &a.skipped {
            Some(why) => format!(", not shown: {why}"),
            None => String::new(),
        };
        let _ = write!(out, "\n{}", italic(&format!("📎 {} ({}{state})", a.filename, size(a.size))));
    }
}

/// A size for people: `812 B`, `14 KB`, `3.2 MB`.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{} KB", bytes / 1024),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

/// One history entry: its author in bold, its text escaped (capped at `cap` characters), its files.
fn entry(e: &HistoryEntry, cap: usize) -> String {
    let mut out = format!("{}\n{}", bold(&e.author_label()), escape(&capped(&e.text, cap)));
    files(&mut out, e);
    out
}

/// The last entries of `history` that fit in `budget` UTF-16 units, oldest first, each capped,
/// after a line saying how many earlier ones were left out.
pub(crate) fn fit(history: &[HistoryEntry], budget: usize) -> String {
    // Room for the "… N earlier messages" line, should one be needed.
    let budget = budget.saturating_sub(40);
    let mut shown: Vec<String> = Vec::new();
    let mut used = 0;
    for (i, e) in history.iter().enumerate().rev() {
        let cap = if i + 1 == history.len() { LATEST_CAP } else { EARLIER_CAP };
        let mut rendered = entry(e, cap);
        if units(&rendered) + 1 > budget.saturating_sub(used) {
            if !shown.is_empty() {
                break;
            }
            // Even the latest alone is too long: shortened further to fit.
            let room = budget.saturating_sub(units(&bold(&e.author_label())) + 8) / 2;
            rendered = format!("{}\n{}", bold(&e.author_label()), escape(&capped(&e.text, room)));
        }
        used += units(&rendered) + 1;
        shown.push(rendered);
    }
    shown.reverse();
    let left_out = history.len() - shown.len();
    let mut out = String::new();
    if left_out > 0 {
        let plural = if left_out == 1 { "" } else { "s" };
        let _ = writeln!(out, "{}", italic(&format!("… {left_out} earlier message{plural}")));
    }
    for s in shown {
        let _ = writeln!(out, "{s}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
