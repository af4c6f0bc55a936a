//! What agents do in Slack, turned into commands (`command/1` on `sb.agent.in`): a button under
//! an offer, a message in a conversation's thread (a reply to the customer, or `!note ...`), a
//! file shared there, and the `/sb` slash command. Only Slack users mapped to an agent act; the
//! command id is derived from Slack's own ids (`event_id`, the press's `action_ts` with its
//! message, the command's `trigger_id`), so a redelivered event acts once. The same handler serves
//! the Events API over HTTP and Socket Mode.

use std::time::Duration;

use async_nats::jetstream::kv::Store;
use serde_json::{Value, json};
use switchboard_adapter::agent_chat::{self, action_for};
use switchboard_adapter::{PublishedCommand, Verdict, derived_command_id};
use switchboard_bus::Bus;
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_core::CommandAction;
use switchboard_core::contract::ATTACHMENTS_STORE;
use switchboard_core::envelope::AttachmentRef;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::deliver::THREAD_PREFIX;
use crate::payload::{Incoming, SharedFile};
use crate::state::{self, Root};
use crate::{CHANNEL, Slack, blocks};

/// How long a button's or a thread message's verdict is awaited (apart from the event) before
/// the agent is told nothing.
const VERDICT_WAIT: Duration = Duration::from_secs(5);

/// How long a slash command waits for its verdict: Slack wants the answer within 3 seconds.
const COMMAND_VERDICT_WAIT: Duration = Duration::from_millis(1800);

/// What the app answers Slack: nothing (`200`, an ack), or a JSON body (a slash command's
/// ephemeral answer, a `url_verification` challenge).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// An empty `200` / a bare ack.
    Empty,
    /// A JSON body / an ack's `payload`.
    Json(Value),
}

/// An ephemeral answer to a slash command.
fn ephemeral(text: &str) -> Answer {
    Answer::Json(json!({ "response_type": "ephemeral", "text": crate::markup::escape(text) }))
}

/// The `/sb` words and what they need.
const USAGE: &str = "Usage: /sb note <code> <text> · /sb resolve <code> · /sb transfer <code> <team> [note] · \
                     /sb escalate <code> [note] · /sb decline <code> [why] · /sb status online|away|offline. \
                     <code> is the conversation's short code (K4F2); in its thread you can also type !note <text>.";

impl Slack {
    /// Handles one thing Slack sent. `Err` means nothing was stored (the bus is unreachable): the
    /// caller answers so that Slack tries again.
    pub async fn handle(&self, bus: &Bus, incoming: Incoming) -> Result<Answer, String> {
        let (answer, outcome) = match incoming {
            Incoming::Ignored(what) => {
                debug!(what, "slack: nothing to act on");
                (Answer::Empty, InboundOutcome::NotRouted)
            }
            Incoming::Message { event_id, user, channel, ts: _, thread_ts, text, files } => {
                let m = ThreadMessage { event_id, user, channel, thread_ts, text, files };
                (self.message(bus, m).await?, InboundOutcome::NotRouted)
            }
            Incoming::Action { user, channel, message_ts, action_id, value, action_ts } => (
                self.action(bus, &user, &channel, &message_ts, &action_id, &value, &action_ts).await?,
                InboundOutcome::NotRouted,
            ),
            Incoming::Command { command, text, user, channel, trigger_id } => {
                (self.command(bus, &command, &text, &user, &channel, &trigger_id).await?, InboundOutcome::NotRouted)
            }
        };
        outcomes::record(CHANNEL, outcome);
        Ok(answer)
    }

    /// The agent a Slack user is, if mapped.
    fn agent_of(&self, user: &str) -> Option<&str> {
        self.inner.users.get(user).map(String::as_str)
    }

    async fn message(&self, bus: &Bus, m: ThreadMessage) -> Result<Answer, String> {
        let Some(agent) = self.agent_of(&m.user).map(str::to_string) else {
            info!("slack: a message from a user who is not a mapped agent refused");
            self.say(
                &m.channel,
                m.thread_ts.as_deref(),
                "You are not a Switchboard agent in this workspace: nothing was done.",
            )
            .await;
            return Ok(Answer::Empty);
        };
        let kv = self.kv(bus).await?.clone();
        let Some(thread) = m.thread_ts.as_deref() else {
            // Outside a thread only a status word means something.
            let text = m.text.trim();
            let status = text.strip_prefix(THREAD_PREFIX).and_then(agent_chat::status_for);
            let Some(status) = status else {
                self.say(&m.channel, None, "Answer a conversation in its thread (under its offer), or use /sb.").await;
                return Ok(Answer::Empty);
            };
            let id = derived_command_id(&format!("slack:event:{}", m.event_id));
            let published = self.publish(bus, &agent, None, id, CommandAction::SetStatus { status }).await?;
            self.tell_rejection(published, m.channel.clone(), None).await;
            return Ok(Answer::Empty);
        };
        let Some(conversation) = state::thread(&kv, &m.channel, thread).await? else {
            self.say(
                &m.channel,
                Some(thread),
                "This thread is not a conversation: answer under a conversation's offer.",
            )
            .await;
            return Ok(Answer::Empty);
        };
        let action =
            if m.files.is_empty() { action_for(&m.text, THREAD_PREFIX) } else { self.file_reply(bus, &m).await? };
        let action = match action {
            Ok(a) => a,
            Err(why) => {
                self.say(&m.channel, Some(thread), &why).await;
                return Ok(Answer::Empty);
            }
        };
        let id = derived_command_id(&format!("slack:event:{}", m.event_id));
        let declines = matches!(action, CommandAction::Decline { .. });
        let published = self.publish(bus, &agent, Some(conversation), id, action).await?;
        let (this, channel, thread) = (self.clone(), m.channel.clone(), thread.to_string());
        let label = agent_chat::settled_label("declined").unwrap_or("Declined");
        self.inner
            .verdicts
            .after(published, VERDICT_WAIT, move |verdict| async move {
                match verdict {
                    Verdict::Rejected(reason) => {
                        this.say(&channel, Some(&thread), &format!("Not done: {reason}.")).await
                    }
                    Verdict::Done if declines => this.settle_conversation(&kv, &agent, conversation, label).await,
                    _ => {}
                }
            })
            .await;
        Ok(Answer::Empty)
    }

    /// An agent's files shared in a conversation's thread: fetched into the object store (within
    /// the limit) and sent to the customer with the message's text; `Ok(Err(why))` when they
    /// cannot be (the agent is told, nothing is sent).
    async fn file_reply(&self, bus: &Bus, m: &ThreadMessage) -> Result<Result<CommandAction, String>, String> {
        if m.text.trim_start().starts_with(THREAD_PREFIX) {
            return Ok(Err("Not sent: send commands on their own, not with a file.".into()));
        }
        let mut attachments = Vec::new();
        for f in &m.files {
            match self.fetch(bus, f).await? {
                Ok(a) => attachments.push(a),
                Err(why) => return Ok(Err(format!("Not sent: {why}. Nothing reached the customer."))),
            }
        }
        Ok(Ok(CommandAction::Reply { text: m.text.trim().to_string(), attachments, template: None }))
    }

    /// Fetches one shared file into `sb_attachments` under `slack/<file id>` (a redelivery
    /// overwrites it); `Ok(Err(why))` when it is over the limit or cannot be fetched.
    async fn fetch(&self, bus: &Bus, f: &SharedFile) -> Result<Result<AttachmentRef, String>, String> {
        let limit = self.inner.max_file_bytes;
        let over = || {
            format!("{} ({}) is over the {} limit for files", f.name, agent_chat::size(f.size), agent_chat::size(limit))
        };
        if f.size > limit {
            return Ok(Err(over()));
        }
        let Some(url) = f.url.as_deref() else { return Ok(Err(format!("{} cannot be fetched from Slack", f.name))) };
        let bytes = match self.inner.api.download(url, limit).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Err(over())),
            Err(e) => {
                warn!(error = %e, "cannot fetch an agent's file from Slack");
                return Ok(Err(format!("{} could not be fetched from Slack", f.name)));
            }
        };
        let id: String = f.id.chars().filter(char::is_ascii_alphanumeric).collect();
        let object = format!("slack/{}", if id.is_empty() { Uuid::new_v4().simple().to_string() } else { id });
        let store =
            bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.map_err(|e| format!("attachment store: {e}"))?;
        store.put(object.as_str(), &mut bytes.as_slice()).await.map_err(|e| format!("store a file: {e}"))?;
        Ok(Ok(AttachmentRef {
            object,
            filename: f.name.clone(),
            content_type: f.mimetype.clone(),
            size: bytes.len() as u64,
            skipped: None,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn action(
        &self,
        bus: &Bus,
        user: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
        action_ts: &str,
    ) -> Result<Answer, String> {
        let Some(agent) = self.agent_of(user).map(str::to_string) else {
            info!("slack: a button pressed by a user who is not a mapped agent refused");
            return Ok(Answer::Empty);
        };
        let action = match action_id {
            blocks::ACCEPT => CommandAction::Accept,
            blocks::DECLINE => CommandAction::Decline { reason: None },
            blocks::RESOLVE => CommandAction::Resolve,
            _ => return Ok(Answer::Empty),
        };
        let Ok(conversation) = Uuid::try_parse(value) else { return Ok(Answer::Empty) };
        // The same press on the same message is the same command: redelivered, it acts once.
        let id = derived_command_id(&format!("slack:btn:{channel}:{message_ts}:{action_id}:{action_ts}"));
        let published = self.publish(bus, &agent, Some(conversation), id, action).await?;
        let kv = self.kv(bus).await?.clone();
        let label = blocks::label_for_action(action_id);
        let (this, channel, message_ts) = (self.clone(), channel.to_string(), message_ts.to_string());
        self.inner
            .verdicts
            .after(published, VERDICT_WAIT, move |verdict| async move {
                match (verdict, label) {
                    (Verdict::Done, Some(label)) => {
                        // The pressed message is the thread's root (an offer) or a Resolve under it.
                        let mut text = None;
                        for key in [state::key_root(&agent, conversation), state::key_live(&agent, conversation)] {
                            let known: Option<Root> = state::get_json(&kv, key).await.ok().flatten();
                            if let Some(r) = known.filter(|r| r.ts == message_ts) {
                                text = Some(r.text);
                            }
                        }
                        let Some(text) = text else { return };
                        if let Err(e) = this.settle_message(&channel, &message_ts, &text, label).await {
                            warn!(error = %e, "cannot mark a used button");
                        }
                    }
                    (Verdict::Rejected(reason), _) => {
                        this.say(&channel, Some(&message_ts), &format!("Not done: {reason}.")).await
                    }
                    _ => {}
                }
            })
            .await;
        Ok(Answer::Empty)
    }

    async fn command(
        &self,
        bus: &Bus,
        command: &str,
        text: &str,
        user: &str,
        _channel: &str,
        trigger_id: &str,
    ) -> Result<Answer, String> {
        let Some(agent) = self.agent_of(user).map(str::to_string) else {
            info!(command, "slack: a slash command from a user who is not a mapped agent refused");
            return Ok(ephemeral("You are not a Switchboard agent in this workspace: nothing was done."));
        };
        let kv = self.kv(bus).await?.clone();
        let text = text.trim();
        let (verb, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        let (conversation, line) = match verb {
            "status" => (None, format!("{THREAD_PREFIX}{rest}")),
            "note" | "resolve" | "transfer" | "escalate" | "decline" | "accept" => {
                let (code, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                match state::by_code(&kv, &agent, code).await? {
                    Some(c) => (Some(c), format!("{THREAD_PREFIX}{verb} {after}")),
                    None if code.is_empty() => return Ok(ephemeral(USAGE)),
                    None => return Ok(ephemeral(&format!("No conversation {code} of yours. {USAGE}"))),
                }
            }
            _ => return Ok(ephemeral(USAGE)),
        };
        let action = match action_for(&line, THREAD_PREFIX) {
            Ok(CommandAction::Reply { .. }) | Err(_) if verb == "status" => return Ok(ephemeral(USAGE)),
            Ok(a) => a,
            Err(why) => return Ok(ephemeral(&why.replace(THREAD_PREFIX, "/sb "))),
        };
        if verb == "status" && !matches!(action, CommandAction::SetStatus { .. }) {
            return Ok(ephemeral(USAGE));
        }
        let what = describe(&action);
        let id = derived_command_id(&format!("slack:cmd:{trigger_id}"));
        let mut published = self.publish(bus, &agent, conversation, id, action).await?;
        let answer = match published.verdict(COMMAND_VERDICT_WAIT).await {
            Verdict::Done => format!("Done: {what}."),
            Verdict::Rejected(reason) => format!("Not done: {reason}."),
            Verdict::Pending => format!("Received: {what}; it applies as soon as the router takes it."),
        };
        Ok(ephemeral(&answer))
    }

    async fn publish(
        &self,
        bus: &Bus,
        agent: &str,
        conversation: Option<Uuid>,
        id: Uuid,
        action: CommandAction,
    ) -> Result<PublishedCommand, String> {
        agent_chat::publish_action(bus, agent, conversation, id, action).await
    }

    /// Tells the agent (in `channel`, thread `thread`) when the router refused a command.
    async fn tell_rejection(&self, published: PublishedCommand, channel: String, thread: Option<String>) {
        let this = self.clone();
        self.inner
            .verdicts
            .after(published, VERDICT_WAIT, move |verdict| async move {
                if let Verdict::Rejected(reason) = verdict {
                    this.say(&channel, thread.as_deref(), &format!("Not done: {reason}.")).await;
                }
            })
            .await;
    }

    /// Replaces the buttons of `agent`'s thread root of `conversation` with `label`.
    async fn settle_conversation(&self, kv: &Store, agent: &str, conversation: Uuid, label: &str) {
        let root: Option<Root> = state::get_json(kv, state::key_root(agent, conversation)).await.ok().flatten();
        if let Some(root) = root
            && let Err(e) = self.settle(&root, label).await
        {
            warn!(error = %e, "cannot mark a declined offer's buttons");
        }
    }

    /// A short notice in a channel or thread (best effort).
    pub(crate) async fn say(&self, channel: &str, thread: Option<&str>, text: &str) {
        let mut body = json!({ "channel": channel, "text": format!("_{}_", crate::markup::escape(text)) });
        if let Some(t) = thread {
            body["thread_ts"] = json!(t);
        }
        if let Err(e) = self.inner.api.call("chat.postMessage", &body).await {
            warn!(error = %e, "cannot post a notice to an agent");
        }
    }
}

/// A message in a DM with the bot.
struct ThreadMessage {
    event_id: String,
    user: String,
    channel: String,
    thread_ts: Option<String>,
    text: String,
    files: Vec<SharedFile>,
}

/// What a command does, in words, for the answer to `/sb`.
fn describe(action: &CommandAction) -> String {
    match action {
        CommandAction::Note { .. } => "note added (only agents see it)".into(),
        CommandAction::Resolve => "resolved".into(),
        CommandAction::Transfer { to_team: Some(team), .. } => format!("transferred to {team}"),
        CommandAction::Escalate { .. } => "escalated".into(),
        CommandAction::Decline { .. } => "declined".into(),
        CommandAction::Accept => "accepted".into(),
        CommandAction::SetStatus { status } => format!("status set to {status:?}").to_lowercase(),
        _ => "command stored".into(),
    }
}
