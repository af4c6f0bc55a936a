//! Customer updates by long polling: every update becomes an envelope, an event or nothing, and
//! the offset that confirms them to Telegram is stored (KV `sb_channels`, `telegram.offset.<bot>`)
//! only after that, so a restart neither skips nor repeats an update.
//!
//! `getUpdates` is read element by element: one update Switchboard cannot read is logged, counted
//! and confirmed, never a reason to stall the bot or crash. Every update taken ends in exactly one
//! counted outcome ([`UpdateOutcome::counted`]): an envelope stored (the router counts it), a
//! duplicate, not routed (an edit, a block, an agent's chat, a kind that cannot be carried, an
//! update of a kind not handled here) or a dead letter.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use switchboard_adapter::{HealthStatus, Inbound, InboundError};
use switchboard_bus::Bus;
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_core::contract::{buckets, subjects};
use switchboard_core::{Customer, Envelope, Event, EventKind};
use teloxide_core::prelude::Requester;
use teloxide_core::types::{ChatMemberKind, Message, Update, UpdateKind};
use tracing::{debug, info, warn};

use crate::CHANNEL;
use crate::agent::AgentChats;
pub use crate::deadletter::DLQ_COMPONENT;
pub use crate::files::Files;
use crate::files::file_ref;
use crate::kinds::{CANNOT_READ, Content, KIND_KEY, content, raw_kind};
pub use crate::outcome::UpdateOutcome;

/// Polls one bot's updates.
pub struct Poller {
    /// `<api>/bot<token>/getUpdates`; never logged (it holds the token).
    url: String,
    http: reqwest::Client,
    timeout: u32,
    bot_id: String,
    agents: Option<AgentChats>,
    files: Files,
    /// The `sb_channels` bucket (the offset), looked up once rather than every poll.
    kv: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
}

/// The `sb_channels` key of a bot's update offset.
pub fn offset_key(bot_id: &str) -> String {
    format!("telegram.offset.{bot_id}")
}

impl Poller {
    /// A poller for the bot `token` at `api_url`.
    pub fn new(api_url: &str, token: &str, timeout: u32, agents: Option<AgentChats>, files: Files) -> Poller {
        let bot_id = token.split(':').next().unwrap_or_default().to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(u64::from(timeout) + 15))
            .build()
            .unwrap_or_default();
        let url = format!("{}/bot{token}/getUpdates", api_url.trim_end_matches('/'));
        Poller { url, http, timeout, bot_id, agents, files, kv: Default::default() }
    }

    /// Polls until shutdown; errors are retried with back-off and shown in the health.
    pub async fn run(&self, inbound: Inbound) {
        let shutdown = inbound.shutdown().clone();
        let backoff = switchboard_bus::Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(30) };
        let mut failures = 0;
        let mut state = PollState::default();
        // A webhook left from running in webhook mode makes Telegram refuse every getUpdates (409).
        self.delete_webhook().await;
        while !shutdown.is_cancelled() {
            let round = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.round(&inbound, &mut state) => r,
            };
            match round {
                Ok(()) => {
                    failures = 0;
                    inbound.health().set(HealthStatus::Ready);
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff.delay(failures);
                    warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "telegram polling failed");
                    inbound.health().set(HealthStatus::Degraded(format!("telegram polling: {e}")));
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Removes the bot's webhook, keeping the updates Telegram holds (best effort: polling shows
    /// the failure in the health and tries again).
    async fn delete_webhook(&self) {
        match self.files.bot().delete_webhook().await {
            Ok(_) => info!("telegram webhook removed (if one was set): updates come by long polling"),
            Err(e) => warn!(error = %crate::outbound::classify(e), "cannot remove the telegram webhook"),
        }
    }

    /// One long poll and what it brought.
    async fn round(&self, inbound: &Inbound, state: &mut PollState) -> Result<(), String> {
        let offset = &mut state.offset;
        let bus = inbound_bus(inbound)?;
        let kv = self
            .kv
            .get_or_try_init(|| bus.jetstream().get_key_value(buckets::CHANNELS))
            .await
            .map_err(|e| format!("offset bucket: {e}"))?;
        let key = offset_key(&self.bot_id);
        if offset.is_none() {
            let stored = kv.get(&key).await.map_err(|e| format!("read offset: {e}"))?;
            *offset = stored.and_then(|v| String::from_utf8_lossy(&v).parse().ok());
            info!(offset = ?offset, "telegram polling starts");
        }
        let mut body = serde_json::json!({ "timeout": self.timeout, "allowed_updates": ALLOWED });
        if let Some(o) = offset {
            body["offset"] = (*o).into();
        }
        if state.isolate {
            body["limit"] = 1.into();
            body["timeout"] = 0.into();
        }
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("getUpdates: {}", e.without_url()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("getUpdates body: {}", e.without_url()))?;
        let updates = match serde_json::from_str::<Value>(&text) {
            Ok(v) if v["ok"] == true => v["result"].as_array().cloned().unwrap_or_default(),
            Ok(v) => {
                let description = v["description"].as_str().unwrap_or("no description");
                if status == reqwest::StatusCode::CONFLICT && description.contains("webhook") {
                    // Set since the start (another process in webhook mode): removed again.
                    self.delete_webhook().await;
                }
                return Err(format!("getUpdates: HTTP {status}: {description}"));
            }
            Err(e) if !state.isolate => {
                // Not even JSON: ask for one update at a time until the broken one is alone.
                warn!(error = %e, "unreadable getUpdates answer; isolating the update that breaks it");
                state.isolate = true;
                return Ok(());
            }
            Err(e) => {
                // The broken update alone: skip it by the id its text names, or it comes back forever.
                let Some(id) = first_update_id(&text) else {
                    return Err(format!("getUpdates: unreadable answer: {e}"));
                };
                warn!(update_id = id, error = %e, "unreadable telegram update dead-lettered");
                let reason = format!("unreadable update {id}: {e}");
                crate::deadletter::dead_letter_raw_update(bus, text.as_bytes(), &id.to_string(), &reason).await?;
                outcomes::record(CHANNEL, InboundOutcome::DeadLetter);
                state.isolate = false;
                *offset = Some(id + 1);
                kv.put(&key, (id + 1).to_string().into()).await.map_err(|e| format!("store offset: {e}"))?;
                return Ok(());
            }
        };
        // One readable update past the broken one's turn: back to whole batches.
        state.isolate = false;
        if updates.is_empty() {
            return Ok(());
        }
        let mut next = offset.unwrap_or(0);
        for raw in updates {
            let id = raw["update_id"].as_i64();
            if let Err(e) = handle_update(inbound, self.agents.as_ref(), &self.files, &raw.to_string()).await {
                // Confirm those before it: they were handled and counted, and must not be again.
                if next > offset.unwrap_or(0) && kv.put(&key, next.to_string().into()).await.is_ok() {
                    *offset = Some(next);
                }
                return Err(e);
            }
            if let Some(id) = id {
                next = next.max(id + 1);
            }
        }
        *offset = Some(next);
        kv.put(&key, next.to_string().into()).await.map_err(|e| format!("store offset: {e}"))?;
        Ok(())
    }
}

/// Where polling stands.
#[derive(Debug, Default)]
struct PollState {
    /// The next `offset` (confirms every update below it); read from KV at the first round.
    offset: Option<i64>,
    /// Ask for one update at a time: the last answer could not be read at all.
    isolate: bool,
}

/// Update kinds the channel asks for.
const ALLOWED: &[&str] = &["message", "edited_message", "callback_query", "my_chat_member"];

fn inbound_bus(inbound: &Inbound) -> Result<&Bus, String> {
    inbound.bus().map_err(|e| e.to_string())
}

/// Handles one update exactly as Telegram sent it (the JSON of one `Update`), the same way
/// whether it came by long polling, by webhook or from a replay of a dead letter: it becomes an
/// envelope, an event, an answer to the customer or nothing, and its outcome is logged and
/// counted (`switchboard_inbound_total{channel="telegram"}`), except a stored envelope, which the
/// router counts. An `Err` means nothing was decided (the bus is down, a file could not be
/// fetched): the update must be tried again, and nothing was counted.
pub async fn handle_update(
    inbound: &Inbound,
    agents: Option<&AgentChats>,
    files: &Files,
    raw: &str,
) -> Result<UpdateOutcome, String> {
    let bus = inbound_bus(inbound)?;
    let value: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let kind = raw_kind(&value);
    let update_id = value["update_id"].as_i64();
    // teloxide reads an update it cannot understand (a newer kind, a broken message) as
    // `UpdateKind::Error` without its content, so those are looked at in the raw JSON.
    let outcome = match serde_json::from_str::<Update>(raw) {
        Ok(update) if !matches!(update.kind, UpdateKind::Error(_)) => {
            handle(bus, inbound, agents, files, &update, raw).await?
        }
        _ => unreadable(files, &value).await,
    };
    match outcome.counted() {
        None => debug!(update_id, kind, "telegram update stored"),
        Some(counted) => {
            info!(update_id, kind, outcome = counted.as_str(), detail = ?outcome, "telegram update settled");
            outcomes::record(CHANNEL, counted);
        }
    }
    Ok(outcome)
}

/// An update teloxide could not read: a customer's message of a kind newer than the client is
/// answered "cannot be read"; anything else (no chat, an unknown update kind) is only counted.
async fn unreadable(files: &Files, value: &Value) -> UpdateOutcome {
    let message = &value["message"];
    let chat = message["chat"]["id"].as_i64();
    let human = message["from"]["is_bot"] == false;
    match chat {
        Some(chat) if human => {
            answer_cannot_read(files, chat).await;
            UpdateOutcome::Unsupported(raw_kind(value))
        }
        _ => UpdateOutcome::Ignored,
    }
}

/// Tells the customer their message cannot be read (best effort: a failure is logged, and the
/// message stays counted).
async fn answer_cannot_read(files: &Files, chat: i64) {
    if let Err(e) = files.sender.send_plain(chat, CANNOT_READ).await {
        warn!(chat, error = %e, "cannot tell a customer their message cannot be read");
    }
}

/// Whether a customer's message is a bare `/start` (Telegram sends it when a chat with the bot
/// is opened): not a question, so it is greeted rather than offered as a conversation. A deep
/// link's `/start <payload>` is kept as a message, its payload in `telegram.start`.
fn is_bare_start(m: &Message) -> bool {
    let text = m.text().unwrap_or_default().trim();
    let bare = text == "/start" || text.strip_prefix("/start@").is_some_and(|bot| !bot.contains(char::is_whitespace));
    bare && m.from.as_ref().is_some_and(|f| !f.is_bot)
}

/// The first `"update_id": <n>` in a `getUpdates` answer that is not JSON, so the broken update
/// can be skipped.
pub fn first_update_id(text: &str) -> Option<i64> {
    let at = text.find("\"update_id\"")?;
    let rest = text[at + 11..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What one update means for Switchboard; `raw` is its JSON, kept as the dead letter.
async fn handle(
    bus: &Bus,
    inbound: &Inbound,
    agents: Option<&AgentChats>,
    files: &Files,
    update: &Update,
    raw: &str,
) -> Result<UpdateOutcome, String> {
    if let (Some(agents), UpdateKind::Message(m)) = (agents, &update.kind)
        && let Some(outcome) = agents.handle_message(bus, m).await?
    {
        return Ok(outcome);
    }
    match &update.kind {
        UpdateKind::CallbackQuery(q) if crate::survey::is_answer(q) => crate::survey::handle(bus, files.bot(), q).await,
        UpdateKind::Message(m) if is_bare_start(m) => {
            let markdown = crate::format::escape(&files.greeting);
            let out =
                crate::outbound::Outgoing { chat: m.chat.id.0, markdown: &markdown, reply_to: None, keyboard: None };
            if let Err(e) = files.sender.send(out, &mut crate::progress::Progress::untracked()).await {
                warn!(error = %e, "cannot greet a customer");
            }
            Ok(UpdateOutcome::NotOffered("a bare /start, greeted".into()))
        }
        UpdateKind::CallbackQuery(q) => match agents {
            Some(agents) => agents.handle_callback(bus, q).await,
            None => Ok(UpdateOutcome::Ignored),
        },
        UpdateKind::Message(m) => match envelope(m, update.id.0) {
            Some(mut e) => {
                files.fetch(bus, m, &mut e).await?;
                publish(inbound, bus, e, raw).await
            }
            None => match content(m) {
                Content::Unsupported(kind) if m.from.as_ref().is_some_and(|f| !f.is_bot) => {
                    answer_cannot_read(files, m.chat.id.0).await;
                    Ok(UpdateOutcome::Unsupported(kind.into()))
                }
                _ => Ok(UpdateOutcome::Ignored),
            },
        },
        UpdateKind::EditedMessage(m) => {
            let mut data = serde_json::Map::new();
            data.insert("chat_id".into(), m.chat.id.0.into());
            // The thread key the chat's envelopes carry, by which the router finds the conversation.
            data.insert("thread_key".into(), m.chat.id.0.to_string().into());
            data.insert("message_id".into(), m.id.0.into());
            data.insert("text".into(), m.text().or(m.caption()).unwrap_or_default().into());
            record(bus, EventKind::MessageEdited, &format!("tg-edit:{}:{}:{}", m.chat.id.0, m.id.0, update.id.0), data)
                .await
        }
        UpdateKind::MyChatMember(change) if change.chat.is_private() => {
            let blocked = matches!(change.new_chat_member.kind, ChatMemberKind::Banned(_) | ChatMemberKind::Left);
            let mut data = serde_json::Map::new();
            data.insert("chat_id".into(), change.chat.id.0.into());
            data.insert("blocked".into(), blocked.into());
            record(bus, EventKind::CustomerBlocked, &format!("tg-member:{}", update.id.0), data).await
        }
        _ => Ok(UpdateOutcome::Ignored),
    }
}

async fn publish(inbound: &Inbound, bus: &Bus, envelope: Envelope, raw: &str) -> Result<UpdateOutcome, String> {
    match inbound.publish(envelope.clone()).await {
        Ok(p) if p.duplicate => Ok(UpdateOutcome::Duplicate),
        Ok(_) => Ok(UpdateOutcome::Published),
        // Nothing stored: the update is not confirmed and comes again.
        Err(InboundError::Bus(e)) => Err(e.to_string()),
        Err(InboundError::NotReady(why)) => Err(why.into()),
        // A flood from one chat or a message the contract refuses: kept as a dead letter, not routed.
        Err(e) => {
            warn!(reason = %e, "telegram message refused");
            crate::deadletter::dead_letter_raw_update(
                bus,
                raw.as_bytes(),
                &envelope.provider_message_id,
                &e.to_string(),
            )
            .await?;
            Ok(UpdateOutcome::DeadLettered(e.to_string()))
        }
    }
}

async fn record(
    bus: &Bus,
    kind: EventKind,
    msg_id: &str,
    data: serde_json::Map<String, Value>,
) -> Result<UpdateOutcome, String> {
    let event = Event {
        id: uuid::Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind,
        conversation_id: None,
        agent_id: None,
        channel: Some(CHANNEL.into()),
        data,
    };
    bus.publish(&subjects::event(kind.as_str()), &event, msg_id).await.map_err(|e| e.to_string())?;
    Ok(UpdateOutcome::Recorded)
}

/// A customer's message as an envelope: its text, or for other kinds a rendering an agent
/// understands (`[voice message, 0:07]`) with the kind in `telegram.kind` and the file listed
/// (fetched later by [`Files`]); `None` for what is not a customer writing (service messages,
/// bots) or cannot be carried.
pub fn envelope(m: &Message, update_id: u32) -> Option<Envelope> {
    let from = m.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let Content::Carried { kind, mut text, file } = content(m) else { return None };
    let mut metadata = BTreeMap::new();
    if let Some(rest) = text.strip_prefix("/start") {
        let payload = rest.trim();
        if rest.is_empty() || rest.starts_with(' ') {
            if !payload.is_empty() {
                metadata.insert("telegram.start".into(), payload.chars().take(64).collect());
            }
            text = "/start".into();
        }
    }
    let attachments: Vec<_> = file.iter().map(|f| file_ref(&f.meta.id.0, &f.name, &f.mime, f.meta.size)).collect();
    if text.trim().is_empty() && attachments.is_empty() {
        return None;
    }
    metadata.insert("telegram.message_id".into(), m.id.0.to_string());
    metadata.insert(KIND_KEY.into(), kind.into());
    let name = [from.first_name.as_str(), from.last_name.as_deref().unwrap_or_default()].join(" ").trim().to_string();
    Some(Envelope {
        id: uuid::Uuid::now_v7(),
        channel: CHANNEL.into(),
        provider_message_id: format!("{}:{}", m.chat.id.0, m.id.0),
        received_at: chrono::Utc::now(),
        customer: Customer {
            id: from.id.0.to_string(),
            name: (!name.is_empty()).then_some(name),
            email: None,
            phone: None,
            language: from.language_code.clone(),
        },
        thread_key: m.chat.id.0.to_string(),
        text,
        subject: None,
        html: None,
        attachments,
        metadata,
        raw_ref: Some(format!("update:{update_id}")),
    })
}

#[cfg(test)]
mod tests {
    use super::{envelope, first_update_id};
    use teloxide_core::types::Message;

    /// Found while writing the `telegram_update` fuzz target: width times height overflowed a u32.
    #[test]
    fn huge_photo_sizes_pick_the_largest_without_overflow() {
        let size = |id: &str, side: u32| serde_json::json!({ "file_id": id, "file_unique_id": id, "file_size": 1, "width": side, "height": side });
        let m: Message = serde_json::from_value(serde_json::json!({
            "message_id": 9, "date": 1772440200,
            "from": { "id": 1234, "is_bot": false, "first_name": "U" },
            "chat": { "id": 1234, "first_name": "U", "type": "private" },
            "photo": [size("small", 90), size("huge", 70_000), size("big", 800)],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let e = envelope(&m, 1).unwrap_or_else(|| panic!("a photo is a message"));
        assert_eq!(e.attachments.len(), 1);
        assert_eq!(e.attachments[0].skipped.as_deref(), Some("telegram file huge, not fetched"));
    }

    /// Found with the `telegram_update` fuzz target's envelope check: a blank file name made the
    /// envelope invalid, so the customer's message was dead-lettered instead of routed.
    #[test]
    fn a_document_with_a_blank_name_is_still_a_valid_envelope() {
        use switchboard_core::Contract;
        let m: Message = serde_json::from_value(serde_json::json!({
            "message_id": 10, "date": 1772440200,
            "from": { "id": 1234, "is_bot": false, "first_name": "U" },
            "chat": { "id": 1234, "first_name": "U", "type": "private" },
            "document": { "file_name": " ", "file_id": "doc-1", "file_unique_id": "u-doc-1", "file_size": 1 },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let e = envelope(&m, 1).unwrap_or_else(|| panic!("a document is a message"));
        assert_eq!(e.attachments[0].filename, "document");
        assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn the_first_update_id_of_a_broken_body_is_found() {
        assert_eq!(first_update_id(r#"{"ok":true,"result":[{"update_id": 42, "message": {oops"#), Some(42));
        assert_eq!(first_update_id("garbage"), None);
    }
}
