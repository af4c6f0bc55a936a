//! Messages that never reached the customer: a channel that gave up on an `outbound/1` (or a
//! mail that bounced) publishes a `delivery_failed` event; the router marks the history entry
//! that message carried and tells the agent holding the conversation, which stays assigned.
//! Messages the customer edited (`message_edited`, naming the thread) are told to that agent.

use switchboard_core::agent::{Author, HistoryEntry};
use switchboard_core::{Event, EventKind};
use uuid::Uuid;

use crate::router::{Fx, Router, time};

/// The `update/1` change an agent gets when one of its replies was not delivered.
pub const DELIVERY_FAILED: &str = "delivery_failed";

/// The `update/1` change an agent gets when the customer edited a message.
pub const MESSAGE_EDITED: &str = "message_edited";

/// Longest edited text passed on to the agent, in bytes.
const EDIT_MAX: usize = 4096;

/// The thread (`<channel>:<thread key>`) and new text of a `message_edited` event, if it names both.
pub(crate) fn edited_message(event: &Event) -> Option<(String, String)> {
    if event.kind != EventKind::MessageEdited {
        return None;
    }
    let channel = event.channel.as_deref()?;
    let thread = event.data.get("thread_key")?.as_str()?;
    let text = event.data.get("text").and_then(|t| t.as_str()).unwrap_or_default();
    Some((format!("{channel}:{thread}"), shorten(text, EDIT_MAX).to_string()))
}

/// Whether the router acts on a channel event at all (the others are acked untouched).
pub(crate) fn acts_on(event: &Event) -> bool {
    failed_message(event).is_some() || edited_message(event).is_some()
}

fn shorten(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Longest reason kept on a history entry and sent to the agent (a provider's diagnostic can be
/// long; the event keeps it whole).
const REASON_MAX: usize = 500;

/// The conversation and outbound message a `delivery_failed` event is about, if it names both.
pub(crate) fn failed_message(event: &Event) -> Option<(Uuid, Uuid)> {
    if event.kind != EventKind::DeliveryFailed {
        return None;
    }
    let conversation = event.conversation_id?;
    let outbound = event.data.get("outbound_id")?.as_str()?.parse().ok()?;
    Some((conversation, outbound))
}

/// The event's reason, shortened to [`REASON_MAX`] bytes on a character boundary.
fn reason_of(event: &Event) -> String {
    let reason = event.data.get("reason").and_then(|r| r.as_str()).unwrap_or("not delivered");
    shorten(reason, REASON_MAX).to_string()
}

impl Router {
    /// Whether a `delivery_failed` event is this router's group's to act on: the group owning
    /// its conversation (events naming none change nothing, so any group may take them).
    pub fn claims_undelivered(&self, event: &Event) -> bool {
        let Some(g) = self.cfg.group.as_ref().filter(|g| g.layout.divided()) else { return true };
        match failed_message(event) {
            Some((conversation, _)) => g.layout.owner_of_conversation(conversation) == g.name,
            // An edit names a thread, not a conversation: every group takes it, and only the
            // one that has the thread's conversation acts.
            None if edited_message(event).is_some() => true,
            None => g.layout.catch_all() == g.name,
        }
    }

    /// Tells the agent holding (or being offered) the thread's conversation that the customer
    /// edited a message: an `update/1` `message_edited` whose one history entry is the new text.
    /// The stored history keeps what was written first, as the customer's channel did.
    pub(crate) fn edited(&mut self, event: &Event, fx: &mut Fx) {
        let Some((thread, text)) = edited_message(event) else { return };
        let Some(conversation) = self.engine.current_conversation(&thread) else { return };
        let Some((_, Some(agent))) = self.engine.where_is(conversation) else { return };
        let agent = agent.to_string();
        let Some(r) = self.st.records.get(&conversation) else { return };
        let name = r.customer.display_name();
        let entry = HistoryEntry::new(time(fx.at), Author::Customer, name, text);
        self.update_with(conversation, &agent, MESSAGE_EDITED, None, vec![entry], fx);
    }

    /// Marks the history entry the failed message carried (once: a second report of the same
    /// message changes nothing) and, for an agent's reply, sends the agent an `update/1`
    /// `delivery_failed` with the reason as its note and the entry as its history.
    pub(crate) fn undelivered(&mut self, event: &Event, fx: &mut Fx) {
        let Some((conversation, outbound)) = failed_message(event) else { return };
        let reason = reason_of(event);
        let Some(r) = self.st.records.get_mut(&conversation) else { return };
        let Some(entry) = r.history.iter_mut().rev().find(|e| e.outbound_id == Some(outbound)) else { return };
        if entry.undelivered.is_some() {
            return;
        }
        entry.undelivered = Some(reason.clone());
        let entry = entry.clone();
        // The agent holding the conversation now, else the one who wrote the reply.
        let agent = r.agent.clone().or_else(|| (entry.from == Author::Agent).then(|| entry.author.clone()).flatten());
        fx.touched.insert(conversation);
        if entry.from != Author::Agent {
            return;
        }
        if let Some(agent) = agent {
            self.update_with(conversation, &agent, DELIVERY_FAILED, Some(reason), vec![entry], fx);
        }
    }
}
