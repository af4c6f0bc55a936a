//! What an agent reads: every delivery headed by the conversation's label (its short code
//! `#K4F2`, the customer's name and the channel), updates as sentences, and offers that fit one
//! platform message however long the history (the last entries that fit, each capped, and a line
//! saying how many earlier ones were left out).

use std::fmt::Write as _;

use switchboard_core::agent::{Author, HistoryEntry};
use switchboard_core::envelope::AttachmentRef;
use switchboard_core::{AgentDelivery, ConversationLabel};

use super::Markup;

/// The longest text of the latest history entry in an offer, in characters.
const LATEST_CAP: usize = 2500;
/// The longest text of an earlier history entry in an offer, in characters.
const EARLIER_CAP: usize = 500;
/// The most customer files sent after one delivery (the newest).
const MAX_FILES: usize = 10;

/// The buttons a delivery needs under its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buttons {
    /// None: a message or an update that asks nothing.
    None,
    /// Accept and Decline: an offer awaiting an answer.
    AcceptDecline,
    /// Resolve: a conversation the agent holds (an assignment, an offer of a held conversation).
    Resolve,
}

/// The customer as a sentence's subject: their name, or "The customer".
fn who(label: &ConversationLabel) -> &str {
    label.customer.as_deref().unwrap_or("The customer")
}

/// `#K4F2 Ada Lovelace (telegram)`, the code in bold.
fn heading<M: Markup>(m: &M, label: &ConversationLabel) -> String {
    match label.rest() {
        rest if rest.is_empty() => m.bold(&label.tag),
        rest => format!("{} {}", m.bold(&label.tag), m.escape(&rest)),
    }
}

/// The text (at most `max_len` of the platform's units) and buttons for one delivery; `prefix`
/// starts the platform's commands (`/` on Telegram, `!` on Matrix).
pub fn compose<M: Markup>(m: &M, delivery: &AgentDelivery, max_len: usize, prefix: &str) -> (String, Buttons) {
    let label = delivery.label();
    match delivery {
        AgentDelivery::Offer(o) => {
            let title = if o.reopened { "Reopened" } else { "New conversation" };
            let mut head = m.bold(&format!("{title} {}", label.tag));
            let _ = write!(head, " {}", m.escape(&format!("{} on {}", who(&label), o.channel)));
            let _ = write!(
                head,
                "\n{}",
                m.escape(&format!("Priority {}, first reply due {}", o.priority.0, o.sla_deadline.format("%H:%M UTC")))
            );
            if let Some(subject) = &o.subject {
                let _ = write!(head, "\n{}", m.italic(subject));
            }
            let mut foot = m.italic(&m.offer_hint(prefix));
            if !o.suggested_replies.is_empty() {
                let names: Vec<String> = o.suggested_replies.iter().map(|n| format!("{prefix}t {n}")).collect();
                let _ = write!(foot, "\n{}", m.escape(&format!("Saved replies: {}", names.join(", "))));
            }
            let budget = max_len.saturating_sub(m.len(&head) + m.len(&foot) + 4);
            let text = format!("{head}\n\n{}\n{foot}", fit(m, &o.history, budget));
            let buttons = match o.actions.iter().any(|a| a == "accept") {
                true => Buttons::AcceptDecline,
                false => Buttons::Resolve,
            };
            (text, buttons)
        }
        AgentDelivery::Message(msg) => {
            let mut text = heading(m, &label);
            if msg.entry.from != Author::Customer {
                let _ = write!(text, "\n{}", m.bold(&msg.entry.author_label()));
            }
            let _ = write!(text, "\n{}", m.escape(msg.entry.text.trim()));
            files(m, &mut text, &msg.entry);
            (text, Buttons::None)
        }
        AgentDelivery::Update(u) => {
            let mut text = format!("{}\n", heading(m, &label));
            let note = u.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
            let sentence = match u.change.as_str() {
                "assigned" => m.assigned_hint(),
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
            text.push_str(&m.escape(&sentence));
            if let Some(note) = note.filter(|_| u.change != "delivery_failed") {
                let _ = write!(text, "\n{}", m.italic(&format!("Note: {note}")));
            }
            if !u.history.is_empty() {
                let budget = max_len.saturating_sub(m.len(&text) + 2);
                let _ = write!(text, "\n\n{}", fit(m, &u.history, budget));
            }
            let buttons = if u.change == "assigned" { Buttons::Resolve } else { Buttons::None };
            (text.trim_end().to_string(), buttons)
        }
    }
}

/// The label an update puts on a conversation's used buttons ("✓ Accepted", "Offer withdrawn");
/// `None` when the update leaves them live (a new message, a failed delivery).
pub fn settled_label(change: &str) -> Option<&'static str> {
    Some(match change {
        "assigned" => "✓ Accepted",
        "offer_withdrawn" => "Offer withdrawn",
        "declined" => "✗ Declined",
        "resolved" => "✓ Resolved",
        "transferred" => "Transferred",
        _ => return None,
    })
}

/// The customer's stored files a delivery brings, oldest first (the newest ten): those of an
/// offer's history, of a new message, of the entries since the offer in an assignment.
pub fn files_of(delivery: &AgentDelivery) -> Vec<&AttachmentRef> {
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

/// The caption of a customer's file in the agent's chat: the conversation's label, or only its
/// code when the label is longer than `max_len`.
pub fn caption<M: Markup>(m: &M, delivery: &AgentDelivery, max_len: usize) -> String {
    let label = delivery.label();
    let heading = heading(m, &label);
    if m.len(&heading) <= max_len { heading } else { m.bold(&label.tag) }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
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
fn files<M: Markup>(m: &M, out: &mut String, entry: &HistoryEntry) {
    for a in &entry.attachments {
        let state = match &a.skipped {
            Some(why) => format!(", not shown: {why}"),
            None => String::new(),
        };
        let _ = write!(out, "\n{}", m.italic(&format!("📎 {} ({}{state})", a.filename, size(a.size))));
    }
}

/// A size for people: `812 B`, `14 KB`, `3.2 MB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{} KB", bytes / 1024),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

/// One history entry: its author in bold, its text escaped (capped at `cap` characters), its files.
fn entry<M: Markup>(m: &M, e: &HistoryEntry, cap: usize) -> String {
    let mut out = format!("{}\n{}", m.bold(&e.author_label()), m.escape(&capped(&e.text, cap)));
    files(m, &mut out, e);
    out
}

/// The last entries of `history` that fit in `budget` units, oldest first, each capped, after a
/// line saying how many earlier ones were left out.
pub fn fit<M: Markup>(m: &M, history: &[HistoryEntry], budget: usize) -> String {
    // Room for the "… N earlier messages" line, should one be needed.
    let budget = budget.saturating_sub(40);
    let mut shown: Vec<String> = Vec::new();
    let mut used = 0;
    for (i, e) in history.iter().enumerate().rev() {
        let cap = if i + 1 == history.len() { LATEST_CAP } else { EARLIER_CAP };
        let mut rendered = entry(m, e, cap);
        if m.len(&rendered) + 1 > budget.saturating_sub(used) {
            if !shown.is_empty() {
                break;
            }
            // Even the latest alone is too long: shortened further to fit.
            let room = budget.saturating_sub(m.len(&m.bold(&e.author_label())) + 8) / 2;
            rendered = format!("{}\n{}", m.bold(&e.author_label()), m.escape(&capped(&e.text, room)));
        }
        used += m.len(&rendered) + 1;
        shown.push(rendered);
    }
    shown.reverse();
    let left_out = history.len() - shown.len();
    let mut out = String::new();
    if left_out > 0 {
        let plural = if left_out == 1 { "" } else { "s" };
        let _ = writeln!(out, "{}", m.italic(&format!("… {left_out} earlier message{plural}")));
    }
    for s in shown {
        let _ = writeln!(out, "{s}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Plain;
    use super::*;

    fn entry(i: usize, len: usize) -> HistoryEntry {
        HistoryEntry::new(chrono::Utc::now(), Author::Customer, Some("Ada".into()), format!("{i}:{}", "x".repeat(len)))
    }

    #[test]
    fn a_long_history_keeps_the_last_entries_that_fit_and_says_how_many_were_left_out() {
        let history: Vec<_> = (0..20).map(|i| entry(i, 900)).collect();
        let text = fit(&Plain, &history, 3500);
        assert!(Plain.len(&text) <= 3500, "{}", Plain.len(&text));
        assert!(text.starts_with("… "), "{text}");
        assert!(text.contains("19:"), "the latest entry is there");
        assert!(!text.contains("\n0:"), "the first is left out");
        let shown = text.matches("Ada\n").count();
        assert!(text.contains(&format!("… {} earlier messages", 20 - shown)), "{text}");
    }

    #[test]
    fn one_huge_entry_is_cut_to_fit() {
        let text = fit(&Plain, &[entry(0, 20_000)], 3000);
        assert!(Plain.len(&text) <= 3000 && text.contains('…'));
        assert!(!text.contains("earlier"));
    }

    #[test]
    fn an_offer_names_the_commands_with_the_platforms_prefix() {
        let now = chrono::Utc::now();
        let offer = serde_json::json!({
            "type": "offer", "id": uuid::Uuid::now_v7(), "agent_id": "alice", "conversation_id": uuid::Uuid::now_v7(),
            "channel": "webhook", "customer": { "id": "c1", "name": "Ada" }, "priority": 50, "tier": "L1",
            "sla_deadline": now, "offer_deadline": now, "actions": ["accept", "decline"], "code": "K4F2",
            "history": [ { "at": now, "from": "customer", "author": "Ada", "text": "My parcel?" } ],
            "suggested_replies": ["where-is-my-parcel"],
        });
        let delivery: AgentDelivery = serde_json::from_value(offer).unwrap();
        let (text, buttons) = compose(&Plain, &delivery, 4000, "!");
        assert!(text.starts_with("New conversation #K4F2 Ada on webhook\nPriority 50"), "{text}");
        assert!(text.contains("!resolve !note") && text.contains("Saved replies: !t where-is-my-parcel"), "{text}");
        assert_eq!(buttons, Buttons::AcceptDecline);
    }
}
