//! What agents do in their rooms, read from `/sync` (by one process at a time): reactions on
//! offers, commands and replies in a conversation's thread, files, status anywhere. Each event
//! acts through a command whose id is derived from the event id, so an event synced twice (a
//! restart before the sync position was stored) acts once. Every event from someone else than the
//! bot ends in one counted outcome; the bot's own events are its output and are skipped.

use serde_json::Value;
use switchboard_adapter::agent_chat;
use switchboard_adapter::{Verdict, derived_command_id};
use switchboard_bus::Bus;
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_core::contract::ATTACHMENTS_STORE;
use switchboard_core::envelope::AttachmentRef;
use switchboard_core::{AgentStatus, CommandAction};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::agents::{MatrixAgents, VERDICT_WAIT};
use crate::format::{self, ACCEPT, DECLINE, PREFIX};
use crate::state::{State, h};

/// The name outcomes are counted under (`switchboard_inbound_total{channel="matrix"}`).
pub const OUTCOME_CHANNEL: &str = "matrix";

/// What one event from an agent's or a team's room became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Published as a command (the router's verdict comes apart), or acted on (a room refused).
    Recorded,
    /// Nothing to do: why (an unknown user, a room of no agent, a reaction that is no answer).
    Ignored(&'static str),
    /// Refused, the agent told why (a bad command, a file over the limit, an encrypted room).
    Refused(String),
}

/// The help an agent gets for a message outside any conversation.
const WHERE_TO_ANSWER: &str = "Answer a conversation in its thread (open the thread under its offer), or reply to \
     one of its messages. !online, !away and !offline work anywhere.";

/// Where an agent's message points: the thread root, or the event it replies to.
struct Target {
    root: Option<String>,
    reply_to: Option<String>,
}

fn target(content: &Value) -> Target {
    let rel = &content["m.relates_to"];
    let root = (rel["rel_type"] == "m.thread").then(|| rel["event_id"].as_str().map(str::to_string)).flatten();
    let reply_to = rel["m.in_reply_to"]["event_id"].as_str().map(str::to_string);
    Target { root, reply_to }
}

impl MatrixAgents {
    /// Handles one event of a joined room's timeline; `None` for the bot's own.
    pub(crate) async fn handle_event(&self, bus: &Bus, room: &str, ev: &Value) -> Result<Option<EventOutcome>, String> {
        let sender = ev["sender"].as_str().unwrap_or_default();
        if sender == self.inner.bot {
            return Ok(None);
        }
        let outcome = self.event_outcome(bus, room, ev, sender).await?;
        let counted = match &outcome {
            EventOutcome::Recorded | EventOutcome::Ignored(_) | EventOutcome::Refused(_) => InboundOutcome::NotRouted,
        };
        outcomes::record(OUTCOME_CHANNEL, counted);
        debug!(kind = ev["type"].as_str().unwrap_or_default(), ?outcome, "matrix event handled");
        Ok(Some(outcome))
    }

    async fn event_outcome(&self, bus: &Bus, room: &str, ev: &Value, sender: &str) -> Result<EventOutcome, String> {
        let state = self.state(bus).await?;
        let kind = ev["type"].as_str().unwrap_or_default();
        if let Some((team, _)) = self.inner.team_rooms.iter().find(|(_, r)| r.as_str() == room) {
            if kind == "m.room.encryption" {
                warn!(team = %team, "the team room is encrypted; its queue board is not shown there (end-to-end encryption is not supported)");
            }
            return Ok(EventOutcome::Ignored("a team room's event"));
        }
        let Some(agent) = state.agent_of(room).await? else { return Ok(EventOutcome::Ignored("not an agent's room")) };
        if kind == "m.room.encryption" {
            self.refuse_room(state, &agent, room).await?;
            return Ok(EventOutcome::Refused("the room was encrypted".into()));
        }
        if self.inner.users.get(sender) != Some(&agent) {
            return Ok(EventOutcome::Ignored("not the room's agent"));
        }
        let event_id = ev["event_id"].as_str().unwrap_or_default();
        match kind {
            "m.reaction" => self.reaction(bus, state, room, &agent, event_id, &ev["content"]).await,
            "m.room.message" => self.message(bus, state, room, &agent, event_id, &ev["content"]).await,
            "m.room.member" if matches!(ev["content"]["membership"].as_str(), Some("leave" | "ban")) => {
                info!(agent = %agent, "the agent left their Matrix room; the next delivery opens a new one");
                state.unlink(&agent, room).await?;
                let _ = self.inner.client.leave(room).await;
                Ok(EventOutcome::Recorded)
            }
            _ => Ok(EventOutcome::Ignored("an event kind agents do not act with")),
        }
    }

    /// ✅ or ❌ on an offer accepts or declines it.
    async fn reaction(
        &self,
        bus: &Bus,
        state: &State,
        room: &str,
        agent: &str,
        event_id: &str,
        content: &Value,
    ) -> Result<EventOutcome, String> {
        let rel = &content["m.relates_to"];
        let key = rel["key"].as_str().unwrap_or_default().trim_end_matches('\u{fe0f}');
        let action = match key {
            k if k == ACCEPT || k == "👍" => CommandAction::Accept,
            k if k == DECLINE || k == "👎" => CommandAction::Decline { reason: None },
            _ => return Ok(EventOutcome::Ignored("a reaction that answers nothing")),
        };
        let Some(on) = rel["event_id"].as_str() else { return Ok(EventOutcome::Ignored("a reaction on nothing")) };
        let Some(conversation) = state.conversation_of(on).await? else {
            return Ok(EventOutcome::Ignored("a reaction on a message of no conversation"));
        };
        self.act(bus, state, room, agent, event_id, Some(conversation), action).await
    }

    /// A message: a status anywhere; in a conversation's thread (or replying to one of its
    /// messages) a command, a reply or a file.
    async fn message(
        &self,
        bus: &Bus,
        state: &State,
        room: &str,
        agent: &str,
        event_id: &str,
        content: &Value,
    ) -> Result<EventOutcome, String> {
        let t = target(content);
        let conversation = match t.root.as_ref().or(t.reply_to.as_ref()) {
            Some(e) => state.conversation_of(e).await?,
            None => None,
        };
        let root = match (&t.root, conversation) {
            (Some(root), _) => Some(root.clone()),
            (None, Some(c)) => state.thread(agent, c).await?.map(|t| t.root),
            (None, None) => None,
        };
        let txn = format!("sb.re.{}", h(event_id));
        if content["m.relates_to"]["rel_type"] == "m.replace" {
            self.notice(room, root.as_deref(), &txn, "Edits do not reach the customer: send a new message.").await;
            return Ok(EventOutcome::Ignored("an edit"));
        }
        let msgtype = content["msgtype"].as_str().unwrap_or_default();
        let action = match msgtype {
            "m.text" => {
                let body = content["body"].as_str().unwrap_or_default();
                let body = format::strip_reply_fallback(body, t.reply_to.is_some() && t.root.is_none());
                match agent_chat::action_for(body, PREFIX) {
                    Ok(action) => action,
                    Err(why) => {
                        self.notice(room, root.as_deref(), &txn, &why).await;
                        return Ok(EventOutcome::Refused(why));
                    }
                }
            }
            "m.file" | "m.image" | "m.video" | "m.audio" if conversation.is_some() => {
                match self.file_reply(bus, content).await? {
                    Ok(action) => action,
                    Err(why) => {
                        self.notice(room, root.as_deref(), &txn, &why).await;
                        return Ok(EventOutcome::Refused(why));
                    }
                }
            }
            "m.file" | "m.image" | "m.video" | "m.audio" => {
                self.notice(room, None, &txn, WHERE_TO_ANSWER).await;
                return Ok(EventOutcome::Ignored("a file outside any conversation"));
            }
            _ => return Ok(EventOutcome::Ignored("a message type agents do not act with")),
        };
        if !matches!(action, CommandAction::SetStatus { .. }) && conversation.is_none() {
            self.notice(room, None, &txn, WHERE_TO_ANSWER).await;
            return Ok(EventOutcome::Ignored("a message outside any conversation"));
        }
        let conversation = conversation.filter(|_| !matches!(action, CommandAction::SetStatus { .. }));
        self.act(bus, state, room, agent, event_id, conversation, action).await
    }

    /// Publishes the command of event `event_id` and handles its verdict apart: a refusal is told
    /// in the conversation's thread, a decline marks the offer, a status is confirmed.
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        bus: &Bus,
        state: &State,
        room: &str,
        agent: &str,
        event_id: &str,
        conversation: Option<Uuid>,
        action: CommandAction,
    ) -> Result<EventOutcome, String> {
        let id = derived_command_id(&format!("matrix:{event_id}"));
        let status = match &action {
            CommandAction::SetStatus { status } => Some(*status),
            _ => None,
        };
        let declines = matches!(action, CommandAction::Decline { .. });
        let published = self.command(bus, agent, conversation, id, action).await?;
        let root = match conversation {
            Some(c) => state.thread(agent, c).await?.filter(|t| t.room == room).map(|t| t.root),
            None => None,
        };
        let (this, state, room, agent, txn) =
            (self.clone(), state.clone(), room.to_string(), agent.to_string(), format!("sb.verdict.{}", h(event_id)));
        self.inner
            .verdicts
            .after(published, VERDICT_WAIT, move |verdict| async move {
                match (verdict, status, conversation) {
                    (Verdict::Rejected(reason), _, _) => {
                        this.notice(&room, root.as_deref(), &txn, &format!("Not done: {reason}.")).await;
                    }
                    (Verdict::Done, Some(status), _) => {
                        this.notice(&room, None, &txn, &format!("You are {}.", status_word(status))).await;
                    }
                    (Verdict::Done, None, Some(conversation)) if declines => {
                        let label = agent_chat::settled_label("declined").unwrap_or("Declined");
                        match state.thread(&agent, conversation).await {
                            Ok(Some(mut t)) => {
                                if let Err(e) = this.settle(&state, &agent, conversation, &mut t, label).await {
                                    warn!(error = %e.reason, "cannot mark a declined offer");
                                }
                            }
                            Ok(None) => {}
                            Err(e) => warn!(error = %e, "cannot mark a declined offer"),
                        }
                    }
                    _ => {}
                }
            })
            .await;
        Ok(EventOutcome::Recorded)
    }

    /// An agent's file in a conversation's thread: downloaded into the object store (within the
    /// limit) and sent to the customer as a reply with the file; `Ok(Err(why))` when it cannot be.
    async fn file_reply(&self, bus: &Bus, content: &Value) -> Result<Result<CommandAction, String>, String> {
        let Some(url) = content["url"].as_str() else {
            return Ok(Err("Not sent: encrypted files cannot be read by Switchboard.".into()));
        };
        let body = content["body"].as_str().unwrap_or("file");
        let name = content["filename"].as_str().unwrap_or(body);
        // With `filename` set, `body` is a caption (spec 1.10 media captions).
        let caption = if content["filename"].is_string() && body != name { body } else { "" };
        let mime = content["info"]["mimetype"].as_str().unwrap_or("application/octet-stream");
        let max = self.inner.max_file_bytes;
        let over = || format!("Not sent: {name} is over the {max} byte limit for files. Nothing reached the customer.");
        if content["info"]["size"].as_u64().is_some_and(|s| s > max) {
            return Ok(Err(over()));
        }
        let bytes = match self.inner.client.download(url, max).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Err(over())),
            Err(e) if e.retryable() => return Err(format!("download an agent's file: {e}")),
            Err(e) => return Ok(Err(format!("Not sent: the file could not be downloaded ({}).", e.errcode))),
        };
        let store =
            bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.map_err(|e| format!("attachment store: {e}"))?;
        let object = format!("matrix/{}", h(url));
        store.put(object.as_str(), &mut bytes.as_slice()).await.map_err(|e| format!("store a file: {e}"))?;
        let attachment = AttachmentRef {
            object,
            filename: name.into(),
            content_type: mime.into(),
            size: bytes.len() as u64,
            skipped: None,
        };
        Ok(Ok(CommandAction::Reply { text: caption.into(), attachments: vec![attachment], template: None }))
    }
}

fn status_word(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Online => "online",
        AgentStatus::Away => "away",
        AgentStatus::Offline => "offline",
    }
}
