//! Switchboard's Telegram channel.
//!
//! A Telegram bot is a customer channel: updates come in by long polling (or webhook), each
//! becomes an envelope of any message kind (edits and blocks become events, what cannot be carried
//! is answered), every one is counted once, and the offset is stored only after that, so a
//! restart neither skips nor repeats an update; replies go out escaped, split at Telegram's limit
//! (a retry resumes at the first unsent part), within its rate limits and honouring `retry_after`
//! (never dead-lettered for it). Customer- and agent-supplied text is always escaped. It never
//! decides routing and never logs message bodies or the bot token.

mod agent;
mod buttons;
mod compose;
mod config;
mod deadletter;
mod files;
pub mod format;
mod inbound;
mod kinds;
mod outbound;
mod outcome;
mod progress;
pub mod replay;
mod survey;
pub mod webhook;

use switchboard_adapter::{AdapterError, Channel, Inbound, SendError, SendReceipt};
use switchboard_bus::BusSlot;
use switchboard_core::OutboundMessage;
use teloxide_core::Bot;
use teloxide_core::types::ReplyMarkup;

use crate::progress::Progress;

pub use agent::{AgentChats, ENDPOINT_KIND, LINK_CODE_TTL, action_for, issue_link_code};
pub use config::{TelegramConfig, TelegramConfigError};
pub use inbound::{DLQ_COMPONENT, Files, Poller, UpdateOutcome, envelope, first_update_id, handle_update, offset_key};
pub use kinds::{CANNOT_READ, KIND_KEY};
pub use outbound::{FileOut, Outgoing, Sender, classify};
pub use survey::parse as survey_answer;
pub use webhook::openapi;

/// The channel name: subjects `sb.in.telegram`, `sb.out.telegram`.
pub const CHANNEL: &str = "telegram";

/// The Telegram channel: one bot.
pub struct TelegramChannel {
    poller: Poller,
    sender: Sender,
    agents: AgentChats,
    files: Files,
    /// `(public URL, secret)` when updates come by webhook.
    webhook: Option<(String, String)>,
    /// For attachments to send.
    bus: BusSlot,
    /// The `sb_channels` bucket (send progress), looked up once.
    kv: tokio::sync::OnceCell<async_nats::jetstream::kv::Store>,
}

/// The bot's sender from the configuration.
fn sender(cfg: &TelegramConfig) -> Result<(String, Sender), TelegramConfigError> {
    cfg.validate()?;
    let token = cfg.token()?;
    let url = reqwest::Url::parse(&cfg.api_url)
        .map_err(|e| TelegramConfigError { key: "api_url".into(), reason: e.to_string() })?;
    let bot = Bot::new(&token).set_api_url(url);
    Ok((token, Sender::new(bot, cfg.per_chat_per_sec, cfg.per_bot_per_sec, cfg.max_retry_after_secs)))
}

/// The deliverer for agents who work from Telegram (`sb.agent.out.telegram`).
pub fn agent_chats(cfg: &TelegramConfig) -> Result<AgentChats, TelegramConfigError> {
    Ok(AgentChats::new(sender(cfg)?.1, cfg.max_file_bytes))
}

impl TelegramChannel {
    /// Builds the channel; reads the token now, so a bad setting stops the start with its key.
    pub fn new(cfg: &TelegramConfig, bus: BusSlot) -> Result<TelegramChannel, TelegramConfigError> {
        let (token, sender) = sender(cfg)?;
        let agents = AgentChats::new(sender.clone(), cfg.max_file_bytes);
        let webhook = match (&cfg.webhook_url, cfg.webhook_secret()?) {
            (Some(url), Some(secret)) => Some((url.clone(), secret)),
            _ => None,
        };
        let greeting = cfg.start_greeting.clone().unwrap_or_else(|| files::DEFAULT_GREETING.into());
        let files = Files { sender: sender.clone(), max_bytes: cfg.max_file_bytes, greeting };
        let poller = Poller::new(&cfg.api_url, &token, cfg.poll_timeout_secs, Some(agents.clone()), files.clone());
        Ok(TelegramChannel { poller, sender, agents, files, webhook, bus, kv: Default::default() })
    }
}

impl TelegramChannel {
    /// Handles one raw update (the JSON of a Bot API `Update`) as the poller and the webhook do,
    /// counting its outcome; for replaying a dead letter of [`DLQ_COMPONENT`].
    pub async fn handle_update(&self, inbound: &Inbound, raw: &str) -> Result<UpdateOutcome, String> {
        inbound::handle_update(inbound, Some(&self.agents), &self.files, raw).await
    }

    /// The `sb_channels` bucket, for send progress.
    async fn kv(&self) -> Result<async_nats::jetstream::kv::Store, SendError> {
        let bus = self.bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
        let kv = self
            .kv
            .get_or_try_init(|| bus.jetstream().get_key_value(switchboard_core::contract::buckets::CHANNELS))
            .await
            .map_err(|e| SendError::retryable(format!("channel state bucket: {e}")))?;
        Ok(kv.clone())
    }
}

impl Channel for TelegramChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    /// Long polling runs in one process at a time: Telegram refuses a second `getUpdates` for
    /// the same bot (409 Conflict). Updates by webhook arrive at any process.
    fn exclusive_inbound(&self) -> bool {
        self.webhook.is_none()
    }

    async fn run_inbound(&self, inbound: Inbound) -> Result<(), AdapterError> {
        // Replayed dead letters are updates too: handled by whoever runs the inbound side.
        let replays = tokio::spawn(replay::run(inbound.clone(), Some(self.agents.clone()), self.files.clone()));
        match &self.webhook {
            // Updates arrive on the route; registering tells Telegram where (retried until it works).
            Some((url, secret)) => {
                let mut attempt = 0;
                while let Err(e) = webhook::register(&self.sender, url, secret).await {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "cannot register the telegram webhook; retrying");
                    tokio::select! {
                        _ = inbound.shutdown().cancelled() => return Ok(()),
                        _ = tokio::time::sleep(std::time::Duration::from_secs(attempt.min(30))) => {}
                    }
                }
                inbound.shutdown().cancelled().await;
            }
            None => self.poller.run(inbound).await,
        }
        match replays.await {
            Ok(outcome) => Ok(outcome?),
            Err(e) => Err(AdapterError::Other(format!("update replays: {e}"))),
        }
    }

    fn routes(&self, inbound: Inbound) -> Option<axum::Router> {
        let (_, secret) = self.webhook.as_ref()?;
        Some(webhook::router(inbound, Some(self.agents.clone()), self.files.clone(), secret))
    }

    /// Sends the text (split into parts) and then each file, resuming after the parts a previous
    /// try sent (kept in KV under `telegram.sent.<message id>`).
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let chat: i64 = message
            .to
            .thread_key
            .parse()
            .map_err(|_| SendError::permanent(format!("`{}` is not a Telegram chat id", message.to.thread_key)))?;
        // Replies answer the customer's message: provider ids are `<chat>:<message>`.
        let reply_to = message.reply_to.as_deref().and_then(|r| r.rsplit_once(':')).and_then(|(_, m)| m.parse().ok());
        let markdown = (!message.text.trim().is_empty()).then(|| format::escape(&message.text));
        let files: Vec<_> =
            message.attachments.iter().filter(|a| a.skipped.is_none() && !a.object.is_empty()).collect();
        let steps = markdown.as_deref().map_or(0, |m| format::split(m, format::MAX_TEXT_CHARS).len()) + files.len();
        let mut progress = Progress::for_steps(self.kv().await?, progress::progress_key(&message.id), steps).await?;
        let mut parts = 0;
        if let Some(markdown) = &markdown {
            let keyboard = survey::request(message)
                .map(|kind| ReplyMarkup::InlineKeyboard(survey::keyboard(kind, message.conversation_id)))
                .or_else(|| l0_keyboard(message));
            let out = Outgoing { chat, markdown, reply_to, keyboard };
            parts = self.sender.send(out, &mut progress).await?.len();
        }
        for (i, a) in files.into_iter().enumerate() {
            if parts + i < progress.done() {
                continue;
            }
            let bytes = files::read_object(&self.bus, &a.object).await?;
            let file = FileOut { name: &a.filename, content_type: &a.content_type, caption: None, reply_to: None };
            let sent = self.sender.send_file(chat, bytes, file).await?;
            progress.record(sent.id.0).await?;
        }
        let first = progress.sent().first().copied();
        progress.finish().await;
        Ok(SendReceipt { provider_message_id: first.map(|m| format!("{chat}:{m}")) })
    }
}

/// The L0 bot's "Did this answer your question?" as two buttons in place of the customer's
/// keyboard: a press sends the label as the customer's message, which the router reads as yes
/// or no, like a typed answer. Shown once (`one_time_keyboard`).
fn l0_keyboard(message: &OutboundMessage) -> Option<ReplyMarkup> {
    use switchboard_core::contract::metadata;
    use teloxide_core::types::{KeyboardButton, KeyboardMarkup};
    if message.metadata.get(metadata::L0_QUESTION).map(String::as_str) != Some(metadata::L0_HELPFUL) {
        return None;
    }
    let yes = message.metadata.get(metadata::L0_YES)?;
    let no = message.metadata.get(metadata::L0_NO)?;
    let keyboard = KeyboardMarkup::new([[KeyboardButton::new(yes.clone()), KeyboardButton::new(no.clone())]])
        .resize_keyboard()
        .one_time_keyboard();
    Some(ReplyMarkup::Keyboard(keyboard))
}
