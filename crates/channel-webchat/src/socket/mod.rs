//! One visitor's WebSocket: hello, history replay, then messages both ways until it closes.

mod opening;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use chrono::Utc;
use serde_json::{Value, json};
use switchboard_adapter::InboundError;
use switchboard_bus::{InboundOutcome, outcomes};
use switchboard_core::{AttachmentRef, Customer, Envelope, SurveyKind};
use tracing::{debug, info, warn};

use crate::frames::{
    ClientFrame, Prechat, close, close_with, error_frame, is_too_large, send_entry, send_json, too_large,
};
use crate::hub::{Push, Pushes, Registration};
use crate::server::{IpSlot, Shared};
use crate::transcript::{self, Attachment, Entry, EntryKind};
use crate::{CHANNEL, Profile};
use futures::FutureExt;
use futures::future::OptionFuture;

/// Who is on the other end, and what this socket has seen.
struct Conn {
    shared: Arc<Shared>,
    ip: IpAddr,
    session: String,
    customer: Customer,
    verified: bool,
    page: Option<String>,
    /// Pre-chat answers, boxed: every open socket keeps its `Conn`, and one without answers
    /// then keeps 8 bytes for them, not 72.
    profile: Option<Box<Profile>>,
    /// Sequence of the last entry sent to the widget.
    last_seq: u64,
    // B-tree maps and sets: an empty one is half the size of a hash map with its random state,
    // and a session has at most 1,000 entries to look up.
    /// The visitor's messages in the transcript, by client id, with their sequence.
    sent: BTreeMap<String, u64>,
    /// Resolved conversations of this session with the survey their resolution named, and
    /// those already rated.
    resolved: BTreeMap<String, Option<SurveyKind>>,
    rated: BTreeSet<String>,
    /// The name of the agent last assigned (none after a resolution): "typing" signals that do
    /// not name the agent are shown with it.
    agent_name: Option<String>,
}

/// Runs one socket to its end.
pub(crate) fn run(shared: Arc<Shared>, ws: WebSocket, ip: IpAddr, slot: IpSlot) -> impl Future<Output = ()> + Send {
    // A task is sized for its largest step for its whole life, so the opening (reading the
    // pre-chat answers and the transcript: large futures, needed once) is boxed and freed
    // before the socket idles, and the open socket goes straight to `serve` (an `async fn` would
    // also keep its arguments, the socket among them, beside it).
    Box::pin(opening::open(shared, ws, ip))
        .then(|open| OptionFuture::from(open.map(Open::serve)))
        .map(move |_| drop(slot))
}

/// A socket past its opening: synced with the transcript and registered for live entries.
struct Open {
    ws: WebSocket,
    conn: Conn,
    pushes: Pushes,
    _registration: Registration,
}

impl Open {
    /// The open socket until it ends: live entries and typing out, the visitor's frames in, pings.
    // `self` is boxed: an async fn keeps its arguments beside its locals, so an `Open` taken by
    // value would be held twice for the socket's whole life.
    async fn serve(mut self: Box<Self>) {
        let shared = self.conn.shared.clone();

        let mut ping = tokio::time::interval(Duration::from_secs(shared.cfg.ping_secs));
        ping.reset();
        let mut unanswered_pings = 0u32;
        let shutdown = shared.inbound.shutdown().clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return close_with(self.ws, close::RESTART, "server restarting").await,
                push = self.pushes.recv() => match push {
                    Some(Push::Entry(seq, entry)) => {
                        if self.conn.learn(seq, &entry) && send_entry(&mut self.ws, seq, &entry).await.is_err() {
                            return;
                        }
                    }
                    Some(Push::Typing(agent_name)) => {
                        let agent_name = agent_name.or_else(|| self.conn.agent_name.clone());
                        if send_json(&mut self.ws, &json!({ "type": "typing", "agent_name": agent_name })).await.is_err() {
                            return;
                        }
                    }
                    None => return close_with(self.ws, close::TRY_AGAIN, "fell behind").await,
                },
                _ = ping.tick() => {
                    if unanswered_pings >= 2 {
                        debug!(session = %self.conn.session, "peer stopped answering pings");
                        return;
                    }
                    unanswered_pings += 1;
                    if self.ws.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                frame = self.ws.recv() => {
                    unanswered_pings = 0;
                    let text = match frame {
                        Some(Err(ref e)) if is_too_large(e) => {
                            // Over even the read cap, so not read: its client id is unknown, and the
                            // error refers to the first frame not answered yet (answers keep order).
                            return too_large(self.ws, &shared, &self.conn.session, None, true).await;
                        }
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                        Some(Ok(Message::Text(text))) if text.len() > shared.cfg.max_frame_bytes => {
                            let client_id = serde_json::from_str::<Value>(&text)
                                .ok()
                                .and_then(|v| v["client_id"].as_str().map(str::to_string));
                            return too_large(self.ws, &shared, &self.conn.session, client_id.as_deref(), false).await;
                        }
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => return close_with(self.ws, close::PROTOCOL, "text frames only").await,
                        Some(Ok(_)) => continue,
                    };
                    let reply = match serde_json::from_str::<ClientFrame>(&text) {
                        // Boxed: the handling future is large, and an idle socket should not carry
                        // its space in its own state for its whole life.
                        Ok(frame) => Box::pin(self.conn.handle(frame)).await,
                        Err(e) => {
                            // A message the visitor sent that cannot be read is refused: counted.
                            if serde_json::from_str::<Value>(&text).is_ok_and(|v| v["type"] == "send") {
                                outcomes::record(CHANNEL, InboundOutcome::Rejected);
                            }
                            Some(error_frame(None, "invalid", &format!("unreadable frame: {e}")))
                        }
                    };
                    if let Some(reply) = reply {
                        // The frame says `rate_limited` like a visitor's own limit; `scope` tells them
                        // apart, and an address over its limit is closed with 4429.
                        let too_many = reply["scope"] == "ip";
                        if send_json(&mut self.ws, &reply).await.is_err() {
                            return;
                        }
                        if too_many {
                            return close_with(self.ws, close::TOO_MANY, "too many messages from this address").await;
                        }
                    }
                }
            }
        }
    }
}

impl Conn {
    /// Records what an entry tells about the session; true when the widget has not seen it.
    fn learn(&mut self, seq: u64, entry: &Entry) -> bool {
        match entry.kind {
            EntryKind::Customer => {
                if let Some(id) = &entry.client_id {
                    self.sent.entry(id.clone()).or_insert(seq);
                }
            }
            EntryKind::Resolved => {
                if let Some(c) = &entry.conversation_id {
                    // No `survey`: an entry from before NPS and CES, when every survey was CSAT.
                    let survey = entry.survey.as_deref().map_or(Some(SurveyKind::Csat), SurveyKind::parse);
                    self.resolved.insert(c.clone(), survey);
                }
                self.agent_name = None;
            }
            EntryKind::Assigned => self.agent_name = entry.agent_name.clone(),
            EntryKind::Agent if self.agent_name.is_some() && entry.agent_name.is_some() => {
                self.agent_name = entry.agent_name.clone();
            }
            EntryKind::CsatAnswer | EntryKind::SurveyAnswer => {
                if let Some(c) = &entry.conversation_id {
                    self.rated.insert(c.clone());
                }
            }
            _ => {}
        }
        if seq <= self.last_seq {
            return false;
        }
        self.last_seq = seq;
        true
    }

    /// The team whose availability counts for this visitor.
    fn team(&self) -> String {
        self.profile
            .as_ref()
            .and_then(|p| p.topic.as_ref())
            .and_then(|t| self.shared.cfg.topics.get(t))
            .and_then(|t| t.team.clone())
            .unwrap_or_else(|| self.shared.cfg.team.clone())
    }

    async fn handle(&mut self, frame: ClientFrame) -> Option<Value> {
        match frame {
            ClientFrame::Hello { .. } => Some(error_frame(None, "invalid", "already said hello")),
            ClientFrame::Typing {} => None,
            ClientFrame::Send { client_id, text, attachments, prechat } => {
                let result = self.send(&client_id, text, attachments, prechat).await;
                if let Some(outcome) = outcome_of(&result) {
                    outcomes::record(CHANNEL, outcome);
                }
                Some(match result {
                    Ok(Sent { seq, .. }) => json!({ "type": "ack", "client_id": client_id, "seq": seq }),
                    Err((code, message)) => error_frame(Some(&client_id), code, &message),
                })
            }
            ClientFrame::Csat { conversation_id, score } => {
                match self.rate(&conversation_id, SurveyKind::Csat, score).await {
                    Ok(()) => None,
                    Err((code, message)) => Some(error_frame(None, code, &message)),
                }
            }
            ClientFrame::Survey { conversation_id, survey, score } => {
                let Some(kind) = SurveyKind::parse(&survey) else {
                    return Some(error_frame(None, "invalid", "survey must be csat, nps or ces"));
                };
                match self.rate(&conversation_id, kind, score).await {
                    Ok(()) => None,
                    Err((code, message)) => Some(error_frame(None, code, &message)),
                }
            }
        }
    }

    async fn send(
        &mut self,
        client_id: &str,
        text: String,
        attachments: Vec<AttachmentRef>,
        prechat: Option<Prechat>,
    ) -> Result<Sent, (&'static str, String)> {
        if client_id.is_empty()
            || client_id.len() > 64
            || !client_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(("invalid", "client_id must be 1-64 letters, digits, `-` or `_`".into()));
        }
        // Sent before (a resend after a reconnect, or from another tab): acknowledge, store nothing.
        if let Some(seq) = self.sent.get(client_id) {
            return Ok(Sent { seq: *seq, duplicate: true });
        }
        let cfg = &self.shared.cfg;
        if text.len() > cfg.max_text_bytes {
            return Err(("too_large", format!("messages are limited to {} bytes", cfg.max_text_bytes)));
        }
        if text.trim().is_empty() && attachments.is_empty() {
            return Err(("invalid", "the message is empty".into()));
        }
        if attachments.len() > 10 {
            return Err(("invalid", "at most 10 attachments per message".into()));
        }
        let prefix = crate::upload::object_prefix(&self.session);
        if attachments.iter().any(|a| !a.object.starts_with(&prefix)) {
            return Err(("invalid", "attachments must be uploaded in this session".into()));
        }
        if !self.shared.check_ip_rate(self.ip) {
            return Err(("rate_limited_ip", "too many messages from this address".into()));
        }
        if let Some(answers) = prechat {
            self.take_prechat(answers).await?;
        }
        // Before the message is stored, so that no stored message names a file the sweep deletes.
        if !attachments.is_empty() {
            let objects: Vec<&str> = attachments.iter().map(|a| a.object.as_str()).collect();
            crate::quota::mark_attached(&self.shared, &self.session, &objects).await.map_err(|e| {
                warn!(session = %self.session, error = %e, "attachments not recorded");
                ("unavailable", "not stored, try again".to_string())
            })?;
        }
        let team = self.team();
        let online = self.shared.online(&team).await;
        let contact_email = self.profile.as_ref().and_then(|p| p.email.clone()).or(self.customer.email.clone());
        if !online && contact_email.is_none() && self.sent.is_empty() {
            return Err(("invalid", "no one is available now: leave your email so we can answer".into()));
        }

        let mut metadata = BTreeMap::new();
        metadata.insert("verified".into(), self.verified.to_string());
        if !online {
            metadata.insert("offline".into(), "true".into());
        }
        if let Some(email) = contact_email {
            metadata.insert("contact_email".into(), email);
        }
        if let Some(p) = &self.profile {
            if let Some(topic) = &p.topic {
                metadata.insert("topic".into(), topic.clone());
            }
            if let Some(name) = &p.name {
                metadata.insert("prechat_name".into(), name.clone());
            }
        }
        if let Some(page) = &self.page {
            metadata.insert("page_url".into(), page.clone());
        }
        let mut customer = self.customer.clone();
        if customer.name.is_none() {
            customer.name = self.profile.as_ref().and_then(|p| p.name.clone());
        }
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            channel: CHANNEL.into(),
            provider_message_id: format!("{}:{client_id}", self.session),
            received_at: Utc::now(),
            customer,
            thread_key: self.session.clone(),
            text: text.clone(),
            subject: None,
            html: None,
            attachments: attachments.clone(),
            metadata,
            raw_ref: None,
        };
        // Another socket of the session (another tab) may have stored the same client id since
        // this one learnt the transcript: JetStream's de-duplication on the message id says so.
        let duplicate = match self.shared.inbound.publish(envelope.clone()).await {
            Ok(published) => published.duplicate,
            Err(InboundError::RateLimited { retry_after }) => {
                return Err((
                    "rate_limited",
                    format!("too many messages; try again in {} s", retry_after.as_secs() + 1),
                ));
            }
            Err(InboundError::Invalid(e)) => return Err(("invalid", e.to_string())),
            Err(e) => {
                warn!(session = %self.session, error = %e, "web-chat message not stored");
                return Err(("unavailable", "not stored, try again".into()));
            }
        };
        let entry = Entry {
            id: envelope.id.to_string(),
            kind: EntryKind::Customer,
            at: envelope.received_at,
            text,
            client_id: Some(client_id.to_string()),
            agent_name: None,
            conversation_id: None,
            attachments: attachments.iter().map(|a| crate::upload::entry_attachment(&self.shared, a)).collect(),
            score: None,
            survey: None,
            queue: None,
            choices: Vec::new(),
        };
        let bus = self.shared.bus().map_err(|_| ("unavailable", "not stored, try again".to_string()))?;
        let msg_id = format!("c:{}:{client_id}", self.session);
        match transcript::append(bus, &self.session, &entry, &msg_id).await {
            Ok(stored) => {
                self.sent.insert(client_id.to_string(), stored.seq);
                info!(session = %self.session, seq = stored.seq, duplicate, "web-chat message stored");
                Ok(Sent { seq: stored.seq, duplicate })
            }
            Err(e) => {
                // The envelope is stored; a resend finds it de-duplicated and appends the entry.
                warn!(session = %self.session, error = %e, "transcript entry not stored");
                Err(("unavailable", "not stored, try again".into()))
            }
        }
    }

    async fn take_prechat(&mut self, answers: Prechat) -> Result<(), (&'static str, String)> {
        let name = answers.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        let email = answers.email.map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
        let topic = answers.topic.filter(|t| !t.is_empty());
        if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
            return Err(("invalid", "the name is longer than 100 characters".into()));
        }
        if let Some(e) = &email
            && (e.len() > 254
                || !e.contains('@')
                || e.starts_with('@')
                || e.ends_with('@')
                || e.contains(char::is_whitespace))
        {
            return Err(("invalid", "that is not an email address".into()));
        }
        if let Some(t) = &topic
            && !self.shared.cfg.topics.contains_key(t)
        {
            return Err(("invalid", format!("unknown topic `{t}`")));
        }
        let old = self.profile.as_deref().cloned().unwrap_or_default();
        let profile = Profile { name: name.or(old.name), email: email.or(old.email), topic: topic.or(old.topic) };
        if self.profile.as_deref() != Some(&profile) {
            self.shared.store_profile(&self.session, &profile).await.map_err(|e| {
                warn!(session = %self.session, error = %e, "pre-chat answers not stored");
                ("unavailable", "not stored, try again".to_string())
            })?;
            self.profile = Some(Box::new(profile));
        }
        Ok(())
    }

    /// The visitor's answer to the survey of a resolved conversation of this chat: checked
    /// against the survey asked (the conversation's record, else what its resolution named) and
    /// its scale, stored once per conversation and recorded in the transcript.
    async fn rate(
        &mut self,
        conversation_id: &str,
        kind: SurveyKind,
        score: i64,
    ) -> Result<(), (&'static str, String)> {
        let score = kind.check(score).map_err(|reason| ("invalid", reason))?;
        let Some(named) = self.resolved.get(conversation_id).copied() else {
            return Err(("invalid", "no resolved conversation with that id in this chat".into()));
        };
        if self.rated.contains(conversation_id) {
            return Ok(());
        }
        let unavailable = |e: &dyn std::fmt::Display| {
            warn!(error = %e, "survey answer not stored");
            ("unavailable", "not stored, try again".to_string())
        };
        let bus = self.shared.bus().map_err(|e| unavailable(&e))?;
        let conversation = uuid::Uuid::parse_str(conversation_id).map_err(|e| unavailable(&e))?;
        let record = self.shared.conversation(conversation).await.ok().flatten();
        // The record says which survey was asked; once it is gone (past the reopen window), what
        // the resolution named.
        let asked = record.as_ref().and_then(|r| r.survey).or(named);
        if asked != Some(kind) {
            let asked = asked.map_or("none", SurveyKind::as_str);
            return Err(("invalid", format!("this conversation was asked {asked}, not {kind}")));
        }
        let agent = record.and_then(|r| r.agent);
        // One answer per conversation: the id is the conversation's, so a second is dropped.
        let event = switchboard_adapter::survey_event(kind, conversation, agent, CHANNEL, score);
        switchboard_adapter::publish_survey(bus, &event).await.map_err(|e| unavailable(&e))?;
        let msg_id = switchboard_adapter::survey_msg_id(kind, conversation);
        let entry = Entry {
            id: event.id.to_string(),
            // CSAT answers keep the entry kind they had before NPS and CES.
            kind: if kind == SurveyKind::Csat { EntryKind::CsatAnswer } else { EntryKind::SurveyAnswer },
            at: event.at,
            text: String::new(),
            client_id: None,
            agent_name: None,
            conversation_id: Some(conversation_id.to_string()),
            attachments: Vec::<Attachment>::new(),
            score: Some(score),
            survey: Some(kind.as_str().to_string()),
            queue: None,
            choices: Vec::new(),
        };
        transcript::append(bus, &self.session, &entry, &msg_id).await.map_err(|e| unavailable(&e))?;
        self.rated.insert(conversation_id.to_string());
        Ok(())
    }
}

/// A visitor's message the server took: its transcript sequence, and whether it was stored before.
struct Sent {
    seq: u64,
    duplicate: bool,
}

/// The outcome this socket counts for a visitor's message; `None` when another place counts it
/// (a stored envelope: the router) or it is not settled yet (`unavailable`: the widget sends it
/// again).
fn outcome_of(result: &Result<Sent, (&'static str, String)>) -> Option<InboundOutcome> {
    match result {
        Ok(Sent { duplicate: true, .. }) => Some(InboundOutcome::Duplicate),
        Ok(Sent { duplicate: false, .. }) => None,
        Err(("unavailable", _)) => None,
        Err(_) => Some(InboundOutcome::Rejected),
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future an `async` function (or one returning `impl Future`) makes.
    fn future_size<A, B, C, D, F>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn method_future_size<A, F>(_: impl FnOnce(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle socket's task holds this future for its whole life (5,000 sockets per process
    /// is the benchmark's load): it once held the opening's steps and its own arguments twice,
    /// 4.7 KiB a socket. The bound leaves room for a dependency's growth, not for that again.
    #[test]
    fn an_idle_sockets_task_stays_small() {
        let run = future_size(super::run);
        let serve = method_future_size(super::Open::serve);
        assert!(run <= 1024, "a socket's task future is {run} bytes");
        assert!(serve <= 1024, "the open socket's future is {serve} bytes");
        assert!(std::mem::size_of::<super::Open>() <= 1024, "an open socket's state");
    }
}
