//! What happens to one fetched message: a customer's mail becomes an envelope, a bounce becomes a
//! `delivery_failed` event on its conversation, an agent's reply becomes commands, noise and
//! auto-replies are left alone, and what cannot be read becomes a dead letter with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_nats::HeaderMap;
use bytes::Bytes;
use switchboard_adapter::{Inbound, InboundError, conversation_ref, publish_survey, survey_event};
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_bus::{Bus, BusSlot};
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, dlq_kinds, headers, subjects};
use switchboard_core::envelope::AttachmentRef;
use switchboard_core::{Customer, Envelope, Event, EventKind};
use tracing::{debug, info, warn};

use crate::agent::AgentMail;
use crate::error::EmailError;
pub use crate::outcome::Outcome;
use crate::parse::{
    AutoReplyReason, BounceInfo, Classification, NoiseReason, ParseLimits, ParsedMail, SenderSource, classify, parse,
    reply_token, survey_number, thread_root,
};
use crate::token::{Token, csat_key_of, our_message_id, thread_key_of, token_kind};

/// The channel name: subjects `sb.in.email`, `sb.out.email`.
pub const CHANNEL: &str = "email";

/// The dead-letter component of inbound mail: `sb.dlq.email-in`.
pub const DLQ_COMPONENT: &str = "email-in";

/// Largest raw message kept in a dead letter; bigger ones keep their headers only.
const DLQ_MAX_BYTES: usize = 512 * 1024;

/// Shared by every mailbox of the channel.
#[derive(Clone)]
pub struct Handler(Arc<Shared>);

struct Shared {
    bus: BusSlot,
    limits: ParseLimits,
    /// Our support address (`support@example.com`): tokens are read from `support+<token>@...`.
    address: String,
    domain: String,
    /// Every address that is ours: mail from them is a loop.
    ours: Vec<String>,
    agents: Option<AgentMail>,
    /// The `sb_channels` bucket, looked up once (each lookup is a JetStream API request).
    channels: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
}

impl Handler {
    /// A handler publishing through `bus`.
    pub fn new(
        bus: BusSlot,
        limits: ParseLimits,
        address: &str,
        ours: Vec<String>,
        agents: Option<AgentMail>,
    ) -> Handler {
        let domain = address.rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_default();
        Handler(Arc::new(Shared {
            bus,
            limits,
            address: address.to_lowercase(),
            domain,
            ours,
            agents,
            channels: Default::default(),
        }))
    }

    /// The bus, once connected.
    pub fn bus(&self) -> Result<&Bus, EmailError> {
        Ok(self.0.bus.get()?)
    }

    /// The `sb_channels` bucket (thread tokens), looked up once for inbound and outbound alike.
    pub(crate) async fn channels(&self) -> Result<&async_nats::jetstream::kv::Store, EmailError> {
        let bus = self.bus()?;
        self.0
            .channels
            .get_or_try_init(|| bus.jetstream().get_key_value(buckets::CHANNELS))
            .await
            .map_err(|e| EmailError::imap("kv", e))
    }

    /// Handles one raw message fetched from `raw_ref` (mailbox, UIDVALIDITY, UID), and counts its
    /// outcome (`switchboard_inbound_total{channel="email"}`): a duplicate, not routed (bounce,
    /// auto-reply, list mail, our own mail, an agent's commands, a survey answer) or a dead letter.
    /// A published envelope is counted by the router that takes it; a retry is no outcome yet.
    /// The same raw mail handled again is a [`Outcome::Duplicate`].
    pub async fn handle(&self, raw: &[u8], raw_ref: &str, inbound: &Inbound) -> Result<Outcome, EmailError> {
        let outcome = self.decide(raw, raw_ref, inbound).await?;
        count(&outcome, raw_ref);
        Ok(outcome)
    }

    async fn decide(&self, raw: &[u8], raw_ref: &str, inbound: &Inbound) -> Result<Outcome, EmailError> {
        let s = &self.0;
        let mail = match parse(raw, &s.limits) {
            Ok(m) => m,
            Err(e) => return self.dead_letter(raw, raw_ref, &e.to_string(), None).await,
        };
        match classify(&mail, &s.ours) {
            Classification::Customer => {}
            Classification::Bounce(info) => return self.bounce(&mail, &info, raw_ref).await,
            Classification::AutoReply(reason) => return self.not_routed(&mail, raw_ref, auto_reply(&reason)).await,
            Classification::Noise(reason) => return self.not_routed(&mail, raw_ref, noise(&reason)).await,
        }
        if let Err(e) = mail.author() {
            return self.dead_letter(raw, raw_ref, &e.to_string(), Some(&mail)).await;
        }
        let token = reply_token(&mail, std::slice::from_ref(&s.address));
        if let Some(Token::Agent(token)) = token.as_ref().and_then(|t| token_kind(&t.token)) {
            return match &s.agents {
                Some(agents) => agents.handle_reply(self.bus()?, &mail, &token).await,
                None => Ok(Outcome::Ignored("agent token but no agents on email".into())),
            };
        }
        let thread_key = self.thread_key(&mail, token.map(|t| t.token)).await?;
        if let Some(outcome) = self.survey_answer(&mail, &thread_key, raw_ref).await? {
            return Ok(outcome);
        }
        let envelope = match self.envelope(&mail, thread_key, raw_ref).await {
            Ok(e) => e,
            // Attachments could not be stored: what to do is the outcome itself (a retry).
            Err(outcome) => return Ok(outcome),
        };
        match inbound.publish(envelope).await {
            Ok(p) if p.duplicate => Ok(Outcome::Duplicate),
            Ok(_) => Ok(Outcome::Published),
            Err(InboundError::Bus(e)) => Ok(Outcome::Retry(e.to_string())),
            Err(InboundError::NotReady(why)) => Ok(Outcome::Retry(why.into())),
            // A flood from one sender or a message the contract refuses: kept, not routed.
            Err(e) => self.dead_letter(raw, raw_ref, &e.to_string(), Some(&mail)).await,
        }
    }

    /// The conversation a mail concerns, when it answers one of our Message-IDs.
    fn conversation_of(&self, mail: &ParsedMail) -> Option<uuid::Uuid> {
        let referenced = mail.in_reply_to.iter().chain(mail.references.iter().rev());
        referenced.filter_map(|id| our_message_id(id, &self.0.domain)).map(|o| o.conversation).next()
    }

    /// A mail deliberately not routed: recorded on its conversation (`message_not_routed`) when
    /// it concerns one, so an agent sees the customer's auto-reply.
    async fn not_routed(&self, mail: &ParsedMail, raw_ref: &str, reason: String) -> Result<Outcome, EmailError> {
        match self.record_on_conversation(mail, raw_ref, "not_routed", &reason).await {
            Ok(Some(true)) => Ok(Outcome::Duplicate),
            Ok(_) => Ok(Outcome::Ignored(reason)),
            Err(e) => Ok(Outcome::Retry(e)),
        }
    }

    /// Publishes `message_not_routed` on the mail's conversation, when it has one: `Some(duplicate)`
    /// when published, `None` without a conversation, the error when the bus failed.
    async fn record_on_conversation(
        &self,
        mail: &ParsedMail,
        raw_ref: &str,
        outcome: &str,
        reason: &str,
    ) -> Result<Option<bool>, String> {
        let Some(conversation) = self.conversation_of(mail) else { return Ok(None) };
        let mut data = serde_json::Map::new();
        data.insert("outcome".into(), outcome.into());
        data.insert("reason".into(), reason.into());
        data.insert("raw_ref".into(), raw_ref.into());
        data.insert("provider_message_id".into(), mail.dedupe_id().into());
        let event = Event {
            id: uuid::Uuid::now_v7(),
            at: chrono::Utc::now(),
            kind: EventKind::MessageNotRouted,
            conversation_id: Some(conversation),
            agent_id: None,
            channel: Some(CHANNEL.into()),
            data,
        };
        let msg_id = format!("not_routed:{}", mail.dedupe_id());
        let bus = self.bus().map_err(|e| e.to_string())?;
        match bus.publish(&subjects::event(EventKind::MessageNotRouted.as_str()), &event, &msg_id).await {
            Ok(p) => Ok(Some(p.duplicate)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The conversation thread: one of our Message-IDs it answers, else a thread token in the
    /// reply address or subject, else the thread's first Message-ID.
    async fn thread_key(&self, mail: &ParsedMail, token: Option<String>) -> Result<String, EmailError> {
        let s = &self.0;
        let referenced = mail.in_reply_to.iter().chain(mail.references.iter().rev());
        let ours = referenced.filter_map(|id| our_message_id(id, &s.domain)).map(|o| o.token).next();
        let candidates: Vec<String> =
            ours.into_iter().chain(token.filter(|t| matches!(token_kind(t), Some(Token::Thread(_))))).collect();
        if candidates.is_empty() {
            return Ok(thread_root(mail));
        }
        let kv = self.channels().await?;
        for token in candidates {
            if let Ok(Some(key)) = kv.get(thread_key_of(&token)).await {
                return Ok(String::from_utf8_lossy(&key).into_owned());
            }
        }
        Ok(thread_root(mail))
    }

    /// A reply to our survey mail (its direct parent) whose new text is only a number: the
    /// conversation's answer to the survey it was asked (CSAT, NPS or CES, from its record) rather
    /// than a new message, so it does not reopen the conversation. A number off that survey's
    /// scale is refused: not routed, recorded on the conversation, nothing else changes.
    async fn survey_answer(
        &self,
        mail: &ParsedMail,
        thread_key: &str,
        raw_ref: &str,
    ) -> Result<Option<Outcome>, EmailError> {
        let Some(number) = survey_number(&mail.new_text) else { return Ok(None) };
        let Some(parent) = mail.in_reply_to.iter().find_map(|id| our_message_id(id, &self.0.domain)) else {
            return Ok(None);
        };
        let marked = self.channels().await?.get(csat_key_of(parent.outbound)).await;
        match marked {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(e) => return Ok(Some(Outcome::Retry(format!("survey marker: {e}")))),
        }
        let bus = self.bus()?;
        let record = match conversation_ref(bus, parent.conversation).await {
            Ok(r) => r,
            Err(e) => return Ok(Some(Outcome::Retry(e.to_string()))),
        };
        // The answer counts for the conversation of this thread only.
        let Some(record) = record.filter(|r| r.channel == CHANNEL && r.thread_key == thread_key) else {
            return Ok(None);
        };
        let kind = record.asked();
        let score = match record.check_answer(kind, i64::from(number)) {
            Ok(score) => score,
            Err(refused) => {
                let reason = format!("survey answer refused: {refused}");
                return self.not_routed(mail, raw_ref, reason).await.map(Some);
            }
        };
        let event = survey_event(kind, parent.conversation, record.agent, CHANNEL, score);
        match publish_survey(bus, &event).await {
            Ok(p) => {
                info!(conversation = %parent.conversation, survey = %kind, duplicate = p.duplicate, "survey answered");
                Ok(Some(Outcome::SurveyAnswer))
            }
            Err(e) => Ok(Some(Outcome::Retry(e.to_string()))),
        }
    }

    async fn envelope(&self, mail: &ParsedMail, thread_key: String, raw_ref: &str) -> Result<Envelope, Outcome> {
        let address = mail.from.address.trim().to_lowercase();
        let mut metadata = BTreeMap::new();
        let (text, text_source) = mail.routable_text();
        if let Some(source) = text_source {
            metadata.insert("email.text_source".into(), source.as_str().into());
        }
        if let Some(source) = mail.from_source.filter(|s| *s != SenderSource::From) {
            // The customer's address is a fallback: an agent may want to check it.
            metadata.insert("email.sender_from".into(), source.as_str().into());
        }
        if mail.forwarded > 0 {
            metadata.insert("email.forwarded".into(), mail.forwarded.to_string());
        }
        if mail.text_truncated {
            metadata.insert("email.text_truncated".into(), "true".into());
        }
        if mail.attachments_omitted > 0 {
            metadata.insert("email.attachments_omitted".into(), mail.attachments_omitted.to_string());
        }
        let attachments = self.store_attachments(mail).await?;
        Ok(Envelope {
            id: uuid::Uuid::now_v7(),
            channel: CHANNEL.into(),
            provider_message_id: mail.dedupe_id(),
            received_at: chrono::Utc::now(),
            customer: Customer {
                id: address.clone(),
                name: mail.from.name.clone(),
                email: Some(address),
                phone: None,
                language: None,
            },
            thread_key,
            text,
            subject: mail.subject.clone(),
            html: mail.html.clone(),
            attachments,
            metadata,
            raw_ref: Some(raw_ref.into()),
        })
    }

    /// Stores attachment bytes in the object store under names derived from the message, so a
    /// retry overwrites rather than duplicates.
    async fn store_attachments(&self, mail: &ParsedMail) -> Result<Vec<AttachmentRef>, Outcome> {
        if mail.attachments.is_empty() {
            return Ok(Vec::new());
        }
        let bus = self.bus().map_err(|e| Outcome::Retry(e.to_string()))?;
        let store = bus
            .jetstream()
            .get_object_store(ATTACHMENTS_STORE)
            .await
            .map_err(|e| Outcome::Retry(format!("attachment store: {e}")))?;
        let mut refs = Vec::new();
        for (i, a) in mail.attachments.iter().enumerate() {
            let mut object = String::new();
            if a.skipped.is_none() {
                object = format!("email/{}/{i}", mail.raw_sha256);
                let mut bytes = a.bytes.as_slice();
                store
                    .put(object.as_str(), &mut bytes)
                    .await
                    .map_err(|e| Outcome::Retry(format!("store attachment: {e}")))?;
            }
            refs.push(AttachmentRef {
                object,
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: a.size,
                skipped: a.skipped.clone(),
            });
        }
        Ok(refs)
    }

    /// A bounce of something we sent: a `delivery_failed` event on its conversation.
    async fn bounce(&self, mail: &ParsedMail, info: &BounceInfo, raw_ref: &str) -> Result<Outcome, EmailError> {
        let ours = info.original_message_id.as_deref().and_then(|id| our_message_id(id, &self.0.domain));
        let mut data = serde_json::Map::new();
        data.insert(
            "reason".into(),
            format!("bounced: {}", info.diagnostic.as_deref().unwrap_or("no diagnostic")).into(),
        );
        data.insert("recipient".into(), info.recipient.clone().into());
        data.insert("status".into(), info.status.clone().into());
        data.insert("permanent".into(), info.is_permanent().into());
        if let Some(o) = &ours {
            data.insert("outbound_id".into(), o.outbound.to_string().into());
        }
        let event = Event {
            id: uuid::Uuid::now_v7(),
            at: chrono::Utc::now(),
            kind: EventKind::DeliveryFailed,
            conversation_id: ours.as_ref().map(|o| o.conversation),
            agent_id: None,
            channel: Some(CHANNEL.into()),
            data,
        };
        let msg_id = format!("bounce:{}", mail.dedupe_id());
        match self.bus()?.publish(&subjects::event(EventKind::DeliveryFailed.as_str()), &event, &msg_id).await {
            Ok(p) if p.duplicate => Ok(Outcome::Duplicate),
            Ok(_) => {
                debug!(raw_ref, conversation = ?event.conversation_id, status = ?info.status, "bounce recorded");
                Ok(Outcome::Bounce)
            }
            Err(e) => Ok(Outcome::Retry(e.to_string())),
        }
    }

    /// Keeps a message that cannot be routed on `sb.dlq.email-in`, with the reason, and records
    /// that on its conversation when it concerns one.
    async fn dead_letter(
        &self,
        raw: &[u8],
        raw_ref: &str,
        reason: &str,
        mail: Option<&ParsedMail>,
    ) -> Result<Outcome, EmailError> {
        let mut h = HeaderMap::new();
        h.insert("Sb-Raw-Ref", raw_ref);
        h.insert(headers::DLQ_KIND, dlq_kinds::RAW_MAIL);
        let payload = if raw.len() <= DLQ_MAX_BYTES {
            Bytes::copy_from_slice(raw)
        } else {
            h.insert(headers::DLQ_KIND, dlq_kinds::RAW_MAIL_HEADERS);
            // The headers are what an operator needs to find it in the mailbox.
            let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(DLQ_MAX_BYTES.min(raw.len()));
            Bytes::copy_from_slice(&raw[..end.min(DLQ_MAX_BYTES)])
        };
        let msg_id = format!("dlq:email:{raw_ref}");
        let subject = subjects::inbound(CHANNEL);
        if let Err(e) = self.bus()?.publish_dead_letter(DLQ_COMPONENT, &subject, reason, h, payload, &msg_id).await {
            return Ok(Outcome::Retry(e.to_string()));
        }
        if let Some(mail) = mail
            && let Err(e) = self.record_on_conversation(mail, raw_ref, "dead_letter", reason).await
        {
            // Handled again, the dead letter is de-duplicated by its id and the event follows.
            return Ok(Outcome::Retry(e));
        }
        Ok(Outcome::DeadLettered(reason.into()))
    }
}

/// Counts and logs one outcome: every mail not routed or dead-lettered leaves a line with its
/// `raw_ref` and the reason (never the body).
fn count(outcome: &Outcome, raw_ref: &str) {
    let (counted, reason) = match outcome {
        // The router counts what it takes; a retry is not an outcome yet.
        Outcome::Published | Outcome::Retry(_) => return,
        Outcome::Duplicate => (InboundOutcome::Duplicate, "a copy of a mail handled before"),
        Outcome::Bounce => (InboundOutcome::NotRouted, "bounce, recorded as delivery_failed"),
        Outcome::AgentCommands => (InboundOutcome::NotRouted, "an agent's reply, turned into commands"),
        Outcome::SurveyAnswer => (InboundOutcome::NotRouted, "a survey answer, recorded as <survey>_received"),
        Outcome::Ignored(reason) => (InboundOutcome::NotRouted, reason.as_str()),
        Outcome::DeadLettered(reason) => (InboundOutcome::DeadLetter, reason.as_str()),
    };
    outcomes::record(CHANNEL, counted);
    match counted {
        InboundOutcome::DeadLetter => warn!(raw_ref, reason, "mail dead-lettered"),
        _ => info!(raw_ref, outcome = counted.as_str(), reason, "mail not routed"),
    }
}

/// An auto-reply's reason as an operator reads it.
fn auto_reply(reason: &AutoReplyReason) -> String {
    match reason {
        AutoReplyReason::AutoSubmitted(v) => format!("auto-reply (Auto-Submitted: {v})"),
        AutoReplyReason::Autoresponder => "auto-reply (X-Autoreply/X-Autorespond)".into(),
        AutoReplyReason::AutoResponseSuppress(v) => format!("auto-reply (X-Auto-Response-Suppress: {v})"),
        AutoReplyReason::NullReturnPath => "auto-reply (Return-Path: <>)".into(),
        AutoReplyReason::Subject => "auto-reply (out-of-office subject)".into(),
    }
}

/// Why mail nobody needs to see is not routed, as an operator reads it.
fn noise(reason: &NoiseReason) -> String {
    match reason {
        NoiseReason::Loop => "our own mail (From is one of our addresses)".into(),
        NoiseReason::SystemSender(a) => format!("from a system mailbox ({a})"),
        NoiseReason::MailingList => "list mail (List-Id/List-Unsubscribe)".into(),
        NoiseReason::Bulk(p) => format!("bulk mail (Precedence: {p})"),
        NoiseReason::ReadReceipt => "read receipt".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_is_counted_once_and_publishing_is_left_to_the_router() {
        // The counters are process-wide: compare before and after, nothing else counts `email` here.
        let snapshot = || InboundOutcome::ALL.map(|o| outcomes::count(CHANNEL, o));
        for (outcome, expected) in [
            (Outcome::Published, None),
            (Outcome::Retry("bus down".into()), None),
            (Outcome::Duplicate, Some(InboundOutcome::Duplicate)),
            (Outcome::Bounce, Some(InboundOutcome::NotRouted)),
            (Outcome::AgentCommands, Some(InboundOutcome::NotRouted)),
            (Outcome::SurveyAnswer, Some(InboundOutcome::NotRouted)),
            (Outcome::Ignored("list mail".into()), Some(InboundOutcome::NotRouted)),
            (Outcome::DeadLettered("not an email".into()), Some(InboundOutcome::DeadLetter)),
        ] {
            let before = snapshot();
            count(&outcome, "imap:support:1:7");
            let after = snapshot();
            let changed: Vec<(InboundOutcome, u64)> = InboundOutcome::ALL
                .iter()
                .zip(before.iter().zip(after.iter()))
                .filter(|(_, (b, a))| a != b)
                .map(|(o, (b, a))| (*o, a - b))
                .collect();
            assert_eq!(changed, expected.map(|o| (o, 1)).into_iter().collect::<Vec<_>>(), "{outcome:?}");
        }
    }
}
