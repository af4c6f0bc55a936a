//! Agents on Telegram (endpoint kind `telegram`): an agent links their chat with a one-time code
//! (`/link <code>`), then offers arrive with Accept/Decline buttons, new customer messages and
//! updates arrive as messages, and the agent answers by replying to a conversation's message.
//! Which conversation a message belongs to is kept per sent message in KV, so several
//! conversations at once stay apart; a button pressed twice is the same command and acts once.
//! A command is confirmed to Telegram once it is stored on the bus; the router's verdict is
//! awaited apart (a bounded number at once), so a slow verdict never holds up the bot's other
//! updates. Used buttons are replaced by what became of them (see [`crate::buttons`]).
//!
//! KV `sb_channels` keys: `telegram.link.<code>` (agent, expiry), `telegram.agent.<agent>` (chat),
//! `telegram.chat.<chat>` (agent), `telegram.msg.<chat>.<message>` (conversation).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::Store;
use sha2::{Digest, Sha256};
use switchboard_adapter::agent_chat;
use switchboard_adapter::{PublishedCommand, SendError, Verdict, derived_command_id};
use switchboard_bus::{Bus, BusError};
use switchboard_core::contract::buckets;
use switchboard_core::{AgentDelivery, AgentStatus, CommandAction};
use teloxide_core::payloads::AnswerCallbackQuerySetters;
use teloxide_core::prelude::Requester;
use teloxide_core::types::{CallbackQuery, Message};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::buttons;
use crate::compose::{self, compose};
use crate::files::{fetch_file, file_ref};
use crate::format::italic;
use crate::kinds::{Content, FileSpec, content};
use crate::outbound::{FileOut, Outgoing, Sender};
use crate::outcome::UpdateOutcome;
use crate::progress::{Progress, progress_key};

/// The endpoint kind this crate serves: subject `sb.agent.out.telegram`.
pub const ENDPOINT_KIND: &str = "telegram";

/// How long a command waits for the router's verdict before the agent is told "received".
const VERDICT_WAIT: Duration = Duration::from_secs(3);

/// How many commands' verdicts are awaited at once; a press beyond that waits for a slot.
const VERDICTS_AT_ONCE: usize = 64;

/// How long a link code stays valid.
pub const LINK_CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// Agents' chats: linking, deliveries, and what agents send back.
#[derive(Clone)]
pub struct AgentChats {
    sender: Sender,
    /// The `sb_channels` bucket, looked up once: every customer message asks it whether its chat
    /// is an agent's, and each lookup of the bucket is a JetStream API request.
    kv: Arc<OnceCell<Store>>,
    /// Commands whose verdict is awaited.
    verdicts: agent_chat::Verdicts,
    /// Largest file an agent may send a customer, in bytes.
    max_file_bytes: u64,
}

fn key_link(code: &str) -> String {
    format!("telegram.link.{code}")
}
fn key_agent(agent: &str) -> String {
    format!("telegram.agent.{agent}")
}
fn key_chat(chat: i64) -> String {
    format!("telegram.chat.{chat}")
}
fn key_msg(chat: i64, message: i32) -> String {
    format!("telegram.msg.{chat}.{message}")
}

/// The file an agent's message carries (a photo, a document, ...), if any.
fn file_of(m: &Message) -> Option<FileSpec> {
    match content(m) {
        Content::Carried { file, .. } => file,
        _ => None,
    }
}

/// Remembers which conversation one of the bot's messages in an agent's chat belongs to.
async fn remember_message(kv: &Store, chat: i64, message: i32, conversation: Uuid) -> Result<(), SendError> {
    kv.put(key_msg(chat, message), conversation.to_string().into())
        .await
        .map_err(|e| SendError::retryable(format!("remember the conversation: {e}")))?;
    Ok(())
}

async fn channels_kv(bus: &Bus) -> Result<Store, String> {
    bus.jetstream().get_key_value(buckets::CHANNELS).await.map_err(|e| format!("channel state bucket: {e}"))
}

async fn get_string(kv: &Store, key: String) -> Result<Option<String>, String> {
    let value = kv.get(key).await.map_err(|e| format!("read channel state: {e}"))?;
    Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// The agent a chat is linked to: only while the agent's own link names this chat too, so a chat
/// the agent re-linked away from (or a half-written link) acts for nobody.
async fn linked_agent(kv: &Store, chat: i64) -> Result<Option<String>, String> {
    let Some(agent) = get_string(kv, key_chat(chat)).await? else { return Ok(None) };
    let current = get_string(kv, key_agent(&agent)).await?;
    Ok((current.as_deref() == Some(chat.to_string().as_str())).then_some(agent))
}

/// Issues a one-time code that links the chat it is sent from (`/link <code>`) to `agent`.
pub async fn issue_link_code(bus: &Bus, agent: &str) -> Result<String, String> {
    let digest = Sha256::digest(Uuid::new_v4().as_bytes());
    let code: String = digest.iter().take(5).map(|b| format!("{b:02X}")).collect();
    let expires = chrono::Utc::now() + chrono::Duration::from_std(LINK_CODE_TTL).unwrap_or_default();
    let value = serde_json::json!({ "agent": agent, "expires_at": expires });
    let kv = channels_kv(bus).await?;
    kv.put(key_link(&code), value.to_string().into()).await.map_err(|e| format!("store link code: {e}"))?;
    Ok(code)
}

impl AgentChats {
    /// Agents' chats, written to with `sender`; agents' files up to `max_file_bytes` are passed on.
    pub fn new(sender: Sender, max_file_bytes: u64) -> AgentChats {
        let verdicts = agent_chat::Verdicts::new(VERDICTS_AT_ONCE);
        AgentChats { sender, kv: Arc::default(), verdicts, max_file_bytes }
    }

    async fn kv(&self, bus: &Bus) -> Result<&Store, String> {
        self.kv.get_or_try_init(|| channels_kv(bus)).await
    }

    /// Consumes `sb.agent.out.telegram` until `shutdown`: acked once Telegram took the message,
    /// tried again after the wait Telegram asked for (never dead-lettered for that), retried or
    /// dead-lettered (`sb.dlq.agent-telegram`) otherwise.
    pub async fn run(self, bus: Bus, shutdown: CancellationToken) -> Result<(), BusError> {
        let runtime = switchboard_adapter::RuntimeConfig::default();
        agent_chat::run_deliveries(bus, ENDPOINT_KIND, &runtime, shutdown, move |bus, delivery| {
            let this = self.clone();
            async move { this.deliver(&bus, &delivery).await }
        })
        .await
    }

    /// Sends one delivery to its agent's linked chat and remembers which conversation it is; a
    /// retry resumes at the first part not sent.
    pub async fn deliver(&self, bus: &Bus, delivery: &AgentDelivery) -> Result<(), SendError> {
        let (id, agent, conversation) = match delivery {
            AgentDelivery::Offer(o) => (o.id, &o.agent_id, o.conversation_id),
            AgentDelivery::Message(m) => (m.id, &m.agent_id, m.conversation_id),
            AgentDelivery::Update(u) => (u.id, &u.agent_id, u.conversation_id),
        };
        let kv = self.kv(bus).await.map_err(SendError::retryable)?;
        let chat = get_string(kv, key_agent(agent))
            .await
            .map_err(SendError::retryable)?
            .and_then(|c| c.parse::<i64>().ok())
            .ok_or_else(|| SendError::permanent(format!("agent {agent} has not linked a Telegram chat")))?;
        // What became of the conversation shows on its earlier buttons before anything new is sent.
        if let AgentDelivery::Update(u) = delivery
            && let Some(label) = buttons::label_for(&u.change)
        {
            buttons::settle(&self.sender, kv, chat, conversation, label).await?;
        }
        let (markdown, keyboard) = compose(delivery, conversation);
        let live = keyboard.is_some();
        let files = compose::files_of(delivery);
        let parts = crate::format::split(&markdown, crate::format::MAX_TEXT_CHARS).len();
        let mut progress = Progress::for_steps(kv.clone(), progress_key(&id), parts + files.len()).await?;
        let keyboard = keyboard.map(teloxide_core::types::ReplyMarkup::InlineKeyboard);
        let sent =
            self.sender.send(Outgoing { chat, markdown: &markdown, reply_to: None, keyboard }, &mut progress).await?;
        for m in &sent {
            remember_message(kv, chat, *m, conversation).await?;
        }
        // The buttons sit under the last part.
        if let (true, Some(last)) = (live, sent.last()) {
            buttons::remember(kv, chat, conversation, *last).await?;
        }
        // The customer's files after the text, as replies to it and captioned with the label, so
        // replying to a file answers the conversation too.
        let caption = compose::caption(delivery);
        for (i, a) in files.iter().enumerate() {
            if parts + i < progress.done() {
                continue;
            }
            let bytes = match switchboard_adapter::read_attachment(bus, &a.object, crate::files::MAX_UPLOAD_BYTES).await
            {
                Ok(bytes) => bytes,
                Err(e) if !e.retryable => {
                    // Gone from the store (its retention ended) or too big to upload: the text names it.
                    warn!(error = %e.reason, "a customer's file cannot be shown to the agent");
                    progress.record(0).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let file = FileOut {
                name: &a.filename,
                content_type: &a.content_type,
                caption: Some(&caption),
                reply_to: sent.last().copied(),
            };
            let m = self.sender.send_file(chat, bytes, file).await?;
            progress.record(m.id.0).await?;
            remember_message(kv, chat, m.id.0, conversation).await?;
        }
        progress.finish().await;
        Ok(())
    }

    /// An update from an agent's chat (or a `/link`), handled here; `None` when it is a customer's.
    pub async fn handle_message(&self, bus: &Bus, m: &Message) -> Result<Option<UpdateOutcome>, String> {
        if !m.chat.is_private() {
            return Ok(None);
        }
        let chat = m.chat.id.0;
        // A file's caption is its text.
        let text = m.text().or(m.caption()).unwrap_or_default().trim();
        let kv = self.kv(bus).await?;
        if let Some(code) = text.strip_prefix("/link") {
            return self.link(kv, chat, code.trim()).await.map(Some);
        }
        let Some(agent) = linked_agent(kv, chat).await? else {
            if text == "/unlink" {
                self.say(chat, "This chat is not linked to an agent.").await;
                return Ok(Some(UpdateOutcome::Ignored));
            }
            return Ok(None);
        };
        if text == "/unlink" {
            return self.unlink(kv, chat, &agent).await.map(Some);
        }
        let status = match text {
            "/online" => Some(AgentStatus::Online),
            "/away" => Some(AgentStatus::Away),
            "/offline" => Some(AgentStatus::Offline),
            _ => None,
        };
        let conversation = match m.reply_to_message() {
            Some(r) => get_string(kv, key_msg(chat, r.id.0)).await?.and_then(|c| c.parse::<Uuid>().ok()),
            None => None,
        };
        let action = match (status, conversation) {
            (Some(status), _) => CommandAction::SetStatus { status },
            (None, Some(_)) if file_of(m).is_some() => match self.file_reply(bus, m, text).await? {
                Ok(a) => a,
                Err(why) => {
                    self.say(chat, &why).await;
                    return Ok(Some(UpdateOutcome::Refused(why)));
                }
            },
            (None, Some(_)) => match action_for(text) {
                Ok(a) => a,
                Err(why) => {
                    self.say(chat, &why).await;
                    return Ok(Some(UpdateOutcome::Refused(why)));
                }
            },
            (None, None) => {
                self.say(chat, "Reply to a conversation's message to answer it, or send /online or /away.").await;
                return Ok(Some(UpdateOutcome::Ignored));
            }
        };
        let id = derived_command_id(&format!("telegram:msg:{chat}:{}", m.id.0));
        let declines = matches!(action, CommandAction::Decline { .. });
        let published = self.command(bus, &agent, conversation, id, action).await?;
        let (this, kv) = (self.clone(), kv.clone());
        self.after_verdict(published, move |verdict| async move {
            match verdict {
                Verdict::Rejected(reason) => this.say(chat, &format!("Not done: {reason}.")).await,
                Verdict::Done if declines => {
                    if let Some(conversation) = conversation
                        && let Err(e) = buttons::settle(&this.sender, &kv, chat, conversation, buttons::DECLINED).await
                    {
                        warn!(error = %e, "cannot mark a declined offer's buttons");
                    }
                }
                _ => {}
            }
        })
        .await;
        Ok(Some(UpdateOutcome::Recorded))
    }

    /// An agent's photo or document (with its caption) in reply to a conversation's message:
    /// fetched into the object store like customers' files and sent as a reply with the file;
    /// over the limit, the agent is told and nothing is sent (`Ok(Err(why))`).
    async fn file_reply(&self, bus: &Bus, m: &Message, caption: &str) -> Result<Result<CommandAction, String>, String> {
        let Some(file) = file_of(m) else { return Ok(Err("No file in the message.".into())) };
        if caption.starts_with('/') {
            // A caption goes to the customer as written; a command there is surely not meant to.
            return Ok(Err("Not sent: send commands on their own, not as a file's caption.".into()));
        }
        let mut attachment = file_ref(&file.meta.id.0, &file.name, &file.mime, file.meta.size);
        let facts = (file.meta.id.0.as_str(), file.meta.unique_id.0.as_str(), u64::from(file.meta.size));
        fetch_file(self.sender.bot(), self.max_file_bytes, bus, facts, &mut attachment).await?;
        if attachment.skipped.is_some() {
            let (size, limit) = (compose::size(attachment.size), compose::size(self.max_file_bytes));
            return Ok(Err(format!(
                "Not sent: {} ({size}) is over the {limit} limit for files. Nothing reached the customer.",
                file.name
            )));
        }
        Ok(Ok(CommandAction::Reply { text: caption.into(), attachments: vec![attachment], template: None }))
    }

    /// A button under one of our messages.
    pub async fn handle_callback(&self, bus: &Bus, q: &CallbackQuery) -> Result<UpdateOutcome, String> {
        let kv = self.kv(bus).await?;
        let chat = q.message.as_ref().map(|m| m.chat().id.0).unwrap_or(q.from.id.0 as i64);
        let answer = |text: String| {
            let bot = self.sender.bot().clone();
            let id = q.id.clone();
            async move {
                if let Err(e) = bot.answer_callback_query(id).text(text).await {
                    warn!(error = %crate::outbound::classify(e), "cannot answer a button press");
                }
            }
        };
        let Some(agent) = linked_agent(kv, chat).await? else {
            answer("This chat is not linked to an agent.".into()).await;
            return Ok(UpdateOutcome::Ignored);
        };
        let data = q.data.as_deref().unwrap_or_default();
        let (verb, conversation) = data.split_once(':').unwrap_or((data, ""));
        if verb == buttons::USED {
            answer(buttons::ALREADY_HANDLED.into()).await;
            return Ok(UpdateOutcome::Ignored);
        }
        let Ok(conversation) = Uuid::try_parse(conversation) else {
            answer("Unknown button.".into()).await;
            return Ok(UpdateOutcome::Ignored);
        };
        let action = match verb {
            "acc" => CommandAction::Accept,
            "dec" => CommandAction::Decline { reason: None },
            "res" => CommandAction::Resolve,
            _ => {
                answer("Unknown button.".into()).await;
                return Ok(UpdateOutcome::Ignored);
            }
        };
        // The same button on the same message is the same command: pressed twice, it acts once.
        let message = q.message.as_ref().map(|m| m.id().0);
        let id = derived_command_id(&format!("telegram:btn:{chat}:{}:{data}", message.unwrap_or_default()));
        let published = self.command(bus, &agent, Some(conversation), id, action).await?;
        // Stored: the press is handled. The answer waits for the verdict without holding up updates.
        let (this, query, label) = (self.clone(), q.id.clone(), buttons::label_for_verb(verb));
        let kv = kv.clone();
        self.after_verdict(published, move |verdict| async move {
            let text = match &verdict {
                Verdict::Done => "Done.".to_string(),
                Verdict::Rejected(reason) => format!("Not done: {reason}."),
                Verdict::Pending => "Received.".to_string(),
            };
            if let Err(e) = this.sender.bot().answer_callback_query(query).text(text).await {
                warn!(error = %crate::outbound::classify(e), "cannot answer a button press");
            }
            let (Verdict::Done, Some(label), Some(message)) = (verdict, label, message) else { return };
            let edited = this.sender.edit_keyboard(chat, message, Some(buttons::status(label, conversation))).await;
            if let Err(e) = edited {
                warn!(error = %e, "cannot mark a used button");
            }
            if label == buttons::DECLINED
                && let Err(e) = buttons::settle(&this.sender, &kv, chat, conversation, label).await
            {
                warn!(error = %e, "cannot mark a declined offer's buttons");
            }
        })
        .await;
        Ok(UpdateOutcome::Recorded)
    }

    async fn link(&self, kv: &Store, chat: i64, code: &str) -> Result<UpdateOutcome, String> {
        let entry = match code.is_empty() {
            true => None,
            false => get_string(kv, key_link(&code.to_ascii_uppercase())).await?,
        };
        let entry: Option<serde_json::Value> = entry.and_then(|e| serde_json::from_str(&e).ok());
        let valid = entry.as_ref().and_then(|e| {
            let expires: chrono::DateTime<chrono::Utc> = serde_json::from_value(e["expires_at"].clone()).ok()?;
            (expires > chrono::Utc::now()).then(|| e["agent"].as_str().map(str::to_string)).flatten()
        });
        let Some(agent) = valid else {
            self.say(chat, "That code is unknown or expired. Ask for a new one.").await;
            return Ok(UpdateOutcome::Refused("bad link code".into()));
        };
        // One-time: gone before anything else can use it.
        kv.purge(key_link(&code.to_ascii_uppercase())).await.map_err(|e| format!("drop link code: {e}"))?;
        // One chat per agent and one agent per chat: the agent's previous chat and this chat's
        // previous agent lose their link (`linked_agent` also checks both directions).
        if let Some(old) = get_string(kv, key_agent(&agent)).await?.and_then(|c| c.parse::<i64>().ok())
            && old != chat
        {
            kv.purge(key_chat(old)).await.map_err(|e| format!("unlink the previous chat: {e}"))?;
            self.say(old, &format!("This chat is no longer linked to agent {agent}: they linked another chat.")).await;
        }
        if let Some(previous) = get_string(kv, key_chat(chat)).await?
            && previous != agent
            && get_string(kv, key_agent(&previous)).await?.as_deref() == Some(chat.to_string().as_str())
        {
            kv.purge(key_agent(&previous)).await.map_err(|e| format!("unlink the previous agent: {e}"))?;
        }
        kv.put(key_agent(&agent), chat.to_string().into()).await.map_err(|e| format!("link: {e}"))?;
        kv.put(key_chat(chat), agent.clone().into()).await.map_err(|e| format!("link: {e}"))?;
        info!(agent = %agent, "agent linked a Telegram chat");
        self.say(chat, &format!("Linked to agent {agent}. Offers will arrive here; /unlink stops them.")).await;
        Ok(UpdateOutcome::Recorded)
    }

    /// `/unlink`: the chat stops acting for the agent and gets no more deliveries.
    async fn unlink(&self, kv: &Store, chat: i64, agent: &str) -> Result<UpdateOutcome, String> {
        kv.purge(key_agent(agent)).await.map_err(|e| format!("unlink: {e}"))?;
        kv.purge(key_chat(chat)).await.map_err(|e| format!("unlink: {e}"))?;
        info!(agent = %agent, "agent unlinked their Telegram chat");
        self.say(chat, &format!("Unlinked from agent {agent}. Nothing more will arrive here.")).await;
        Ok(UpdateOutcome::Recorded)
    }

    async fn command(
        &self,
        bus: &Bus,
        agent: &str,
        conversation: Option<Uuid>,
        id: Uuid,
        action: CommandAction,
    ) -> Result<PublishedCommand, String> {
        agent_chat::publish_action(bus, agent, conversation, id, action).await
    }

    /// Awaits a stored command's verdict apart from the update that caused it (a bounded number
    /// at once), then runs `then` with it: telling the agent, marking buttons.
    async fn after_verdict<F, Fut>(&self, published: PublishedCommand, then: F)
    where
        F: FnOnce(Verdict) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        self.verdicts.after(published, VERDICT_WAIT, then).await;
    }

    /// A short notice to an agent's chat (best effort).
    async fn say(&self, chat: i64, text: &str) {
        let markdown = italic(text);
        let out = Outgoing { chat, markdown: &markdown, reply_to: None, keyboard: None };
        if let Err(e) = self.sender.send(out, &mut Progress::untracked()).await {
            warn!(error = %e, "cannot send a notice to an agent's chat");
        }
    }
}

/// What an agent's reply to a conversation's message asks for: a command (`/resolve`, `/note
/// ...`, see [`agent_chat::action_for`]), or the notice to send back when the text is not one.
pub fn action_for(text: &str) -> Result<CommandAction, String> {
    agent_chat::action_for(text, "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_replies_become_commands() {
        assert_eq!(action_for("Hello there"), Ok(CommandAction::reply("Hello there")));
        assert_eq!(action_for("/resolve"), Ok(CommandAction::Resolve));
        assert_eq!(
            action_for("/transfer billing refund > 100"),
            Ok(CommandAction::Transfer {
                to_agent: None,
                to_team: Some("billing".into()),
                note: Some("refund > 100".into())
            })
        );
        assert!(action_for("/transfer").is_err());
        assert_eq!(
            action_for("/t refund-confirmed-en"),
            Ok(CommandAction::Reply {
                text: String::new(),
                attachments: Vec::new(),
                template: Some("refund-confirmed-en".into())
            })
        );
        assert!(action_for("/t").unwrap_err().contains("saved reply"));
        assert!(action_for("/t two names").is_err());
        assert!(action_for("/frobnicate").unwrap_err().contains("Unknown command"));
    }
}
