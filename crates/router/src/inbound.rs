//! A customer's message: threaded into a conversation (new, continued or reopened), linked to the
//! person's other conversations, and handed to the engine.

use switchboard_core::agent::{Author, HistoryEntry};
use switchboard_core::{Envelope, EventKind, Priority, Tier};
use switchboard_routing::{Input, MessageInfo, Ms};
use uuid::Uuid;

use crate::effect::Effect;
use crate::kb::KbHit;
use crate::record::ConversationRecord;
use crate::router::{Fx, PERSON_KEEP, Router, time};

/// The key that threads a customer's messages into one conversation: channel plus thread.
pub(crate) fn thread_of(envelope: &Envelope) -> String {
    format!("{}:{}", envelope.channel, envelope.thread_key)
}

/// The key that links a customer's identities: an e-mail address when known (the same address
/// on e-mail and web chat is one person), else the channel's own customer id.
pub(crate) fn person_of(envelope: &Envelope) -> String {
    match envelope.customer.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => format!("email:{}", email.to_lowercase()),
        None => format!("{}:{}", envelope.channel, envelope.customer.id),
    }
}

pub(crate) fn message_info(envelope: &Envelope) -> MessageInfo {
    let tags = envelope
        .metadata
        .get("customer.tags")
        .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    MessageInfo {
        channel: envelope.channel.clone(),
        text: envelope.text.clone(),
        subject: envelope.subject.clone(),
        tags,
        language: envelope.customer.language.clone(),
        vip: envelope.metadata.get("customer.vip").is_some_and(|v| v == "true"),
        metadata: envelope.metadata.clone(),
        kb_answers: Vec::new(),
    }
}

impl Router {
    pub(crate) fn inbound(
        &mut self,
        at: Ms,
        envelope: &Envelope,
        new_id: Uuid,
        kb: &[KbHit],
        replies: &[String],
        fx: &mut Fx,
    ) {
        let thread = thread_of(envelope);
        // Whether the message opens or reopens a conversation, as the leader judged when it
        // looked up `replies`: then they replace the suggestions of an earlier question.
        let opens = self
            .engine
            .current_conversation(&thread)
            .and_then(|c| self.engine.where_is(c))
            .is_none_or(|(state, _)| state == "resolved");
        let yes = self.engine.current_conversation(&thread).filter(|c| self.l0_yes(*c, &envelope.text));
        let decisions = match yes {
            // The bot's answer helped: resolved at L0, no person needed.
            Some(conversation) => {
                fx.l0_yes = true;
                self.engine.handle(Input::Resolve { at, agent: String::new(), conversation })
            }
            None => {
                let mut message = message_info(envelope);
                message.kb_answers = kb.iter().map(|h| h.team.clone()).collect();
                fx.kb = kb.to_vec();
                self.engine.handle(Input::CustomerMessage {
                    at,
                    customer: thread.clone(),
                    new_id,
                    message,
                    written_at: Some(envelope.received_at.timestamp_millis()),
                })
            }
        };
        let Some(conversation) = self.engine.current_conversation(&thread) else { return };
        if !self.st.records.contains_key(&conversation) {
            let person = person_of(envelope);
            let ids = self.st.persons.entry(person.clone()).or_default();
            ids.push_back(conversation);
            if ids.len() > PERSON_KEEP {
                ids.pop_front();
            }
            let record = ConversationRecord {
                id: conversation,
                channel: envelope.channel.clone(),
                customer: envelope.customer.clone(),
                person,
                thread_key: envelope.thread_key.clone(),
                subject: envelope.subject.clone(),
                last_provider_message_id: None,
                state: "queued".into(),
                agent: None,
                team: self.cfg.routing.default_team.clone(),
                tier: Tier::L1,
                priority: Priority::P3,
                sla_deadline: at,
                opened_at: at,
                repeat: false,
                reopens: 0,
                offered_at: None,
                survey: None,
                history: Vec::new(),
                queue: None,
                l0: None,
            };
            self.st.records.insert(conversation, record);
        }
        if let Some(r) = self.st.records.get_mut(&conversation) {
            r.last_provider_message_id = Some(envelope.provider_message_id.clone());
            r.customer = envelope.customer.clone();
            let name = envelope.customer.display_name();
            r.push(HistoryEntry {
                attachments: envelope.attachments.iter().filter(|a| a.skipped.is_none()).cloned().collect(),
                ..HistoryEntry::new(time(at), Author::Customer, name, envelope.text.clone())
            });
        }
        if opens && !replies.is_empty() {
            self.st.suggested.insert(conversation, replies.to_vec());
        } else if opens {
            self.st.suggested.remove(&conversation);
        }
        fx.touched.insert(conversation);
        let data = serde_json::json!({
            "envelope_id": envelope.id,
            "provider_message_id": envelope.provider_message_id,
        });
        fx.event(EventKind::MessageReceived, Some(conversation), None, data);
        if let Some(Effect::Event(e)) = fx.out.last_mut() {
            e.channel = Some(envelope.channel.clone());
        }
        self.decisions(decisions, fx);
    }
}
