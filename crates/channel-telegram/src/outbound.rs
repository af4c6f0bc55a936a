//! Sending: escaped MarkdownV2, long texts split (a retry resumes at the first part not sent, see
//! [`Progress`]), Telegram's limits kept (about one message a second to a chat, thirty a second
//! for the bot, one budget per bot shared by every sender of it in the process: the customer
//! channel, agent deliveries, notices, surveys), `retry_after` honoured (waited out here up to `max_retry_after_secs`, longer
//! ones handed back as [`SendError::wait`] so the message is tried again after it and never
//! dead-lettered for it), and errors sorted into permanent (the customer blocked the bot, the
//! chat is gone) and worth retrying.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_adapter::SendError;
use teloxide_core::Bot;
use teloxide_core::errors::{ApiError, RequestError};
use teloxide_core::payloads::SendMessageSetters;
use teloxide_core::prelude::Requester;
use teloxide_core::requests::Request;
use teloxide_core::types::{
    ChatId, InlineKeyboardMarkup, InputFile, Message, MessageId, ParseMode, ReplyMarkup, ReplyParameters,
};
use tracing::warn;

use crate::format;
use crate::progress::Progress;

/// Sends messages to chats within Telegram's limits.
#[derive(Clone)]
pub struct Sender {
    bot: Bot,
    pacer: Arc<Pacer>,
    max_retry_after: Duration,
}

/// Telegram's limits for one bot: about one message a second to a chat and thirty a second in all.
/// Telegram counts per bot, whoever in the process sends, so every [`Sender`] of the same bot
/// (the customer channel and the agents' deliverer are built apart) takes the same one.
struct Pacer {
    per_chat: DefaultKeyedRateLimiter<i64>,
    per_bot: DefaultDirectRateLimiter,
}

/// The bots' pacers in this process, by Bot API URL and bot id (the token's prefix: the secret
/// is not needed to tell bots apart).
static PACERS: Mutex<Option<HashMap<String, Weak<Pacer>>>> = Mutex::new(None);

impl Pacer {
    /// The pacer of `bot`, made with these rates by its first sender.
    fn of(bot: &Bot, per_chat_per_sec: u32, per_bot_per_sec: u32) -> Arc<Pacer> {
        let key = format!("{} {}", bot.api_url(), bot.token().split(':').next().unwrap_or_default());
        let mut pacers = PACERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let pacers = pacers.get_or_insert_with(HashMap::new);
        pacers.retain(|_, p| p.strong_count() > 0);
        if let Some(pacer) = pacers.get(&key).and_then(Weak::upgrade) {
            return pacer;
        }
        let rate = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let pacer = Arc::new(Pacer {
            per_chat: RateLimiter::keyed(Quota::per_second(rate(per_chat_per_sec))),
            per_bot: RateLimiter::direct(Quota::per_second(rate(per_bot_per_sec))),
        });
        pacers.insert(key, Arc::downgrade(&pacer));
        pacer
    }
}

/// What to send: text already in MarkdownV2 (escape what others wrote with [`format::escape`]).
pub struct Outgoing<'a> {
    /// The chat.
    pub chat: i64,
    /// MarkdownV2 text; split when longer than Telegram allows.
    pub markdown: &'a str,
    /// The message to answer, if any (only the first part answers it).
    pub reply_to: Option<i32>,
    /// Buttons under the last part (inline), or a keyboard in place of the customer's (whose
    /// buttons send their label as the customer's message).
    pub keyboard: Option<ReplyMarkup>,
}

impl Sender {
    /// A sender for `bot` with the configured rates, sharing the bot's budget with every other
    /// sender of the same bot in this process.
    pub fn new(bot: Bot, per_chat_per_sec: u32, per_bot_per_sec: u32, max_retry_after_secs: u32) -> Sender {
        let pacer = Pacer::of(&bot, per_chat_per_sec, per_bot_per_sec);
        Sender { bot, pacer, max_retry_after: Duration::from_secs(u64::from(max_retry_after_secs)) }
    }

    /// The bot, for other requests.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Sends every part `progress` does not list as sent, recording each as it goes; returns
    /// Telegram's ids of all the parts. The split is the same on every try, so part numbers stay.
    pub async fn send(&self, out: Outgoing<'_>, progress: &mut Progress) -> Result<Vec<i32>, SendError> {
        let parts = format::split(out.markdown, format::MAX_TEXT_CHARS);
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate().skip(progress.done()) {
            let reply_to = if i == 0 { out.reply_to } else { None };
            let keyboard = if i == last { out.keyboard.clone() } else { None };
            let sent = self.send_one(out.chat, part, reply_to, keyboard).await?;
            progress.record(sent.id.0).await?;
        }
        Ok(progress.sent().iter().take(parts.len()).copied().collect())
    }

    async fn send_one(
        &self,
        chat: i64,
        text: &str,
        reply_to: Option<i32>,
        keyboard: Option<ReplyMarkup>,
    ) -> Result<Message, SendError> {
        self.paced(chat, || {
            let mut request = self.bot.send_message(ChatId(chat), text).parse_mode(ParseMode::MarkdownV2);
            if let Some(id) = reply_to {
                request = request.reply_parameters(ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
            }
            if let Some(k) = keyboard.clone() {
                request = request.reply_markup(k);
            }
            request.send()
        })
        .await
    }

    /// Sends plain text (no formatting) as one message, within the limits.
    pub async fn send_plain(&self, chat: i64, text: &str) -> Result<Message, SendError> {
        self.paced(chat, || self.bot.send_message(ChatId(chat), text).send()).await
    }

    /// Replaces the buttons under one of the bot's messages (`None` removes them), within the
    /// bot's budget. Telegram's "message is not modified" (already so) counts as done, and a
    /// message that is gone or can no longer be edited (older than 48 hours) is left as it is.
    pub async fn edit_keyboard(
        &self,
        chat: i64,
        message: i32,
        keyboard: Option<InlineKeyboardMarkup>,
    ) -> Result<(), SendError> {
        use teloxide_core::payloads::EditMessageReplyMarkupSetters;
        self.pacer.per_bot.until_ready().await;
        let mut request = self.bot.edit_message_reply_markup(ChatId(chat), MessageId(message));
        if let Some(k) = keyboard {
            request = request.reply_markup(k);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(RequestError::Api(
                ApiError::MessageNotModified | ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited,
            )) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    /// Sends a file: an image (`image/*` other than SVG, within Telegram's 10 MB for photos) as a
    /// photo, anything else as a document; `caption` is MarkdownV2 (at most 1,024 characters),
    /// `reply_to` the message it answers.
    pub async fn send_file(&self, chat: i64, bytes: Vec<u8>, file: FileOut<'_>) -> Result<Message, SendError> {
        use teloxide_core::payloads::{SendDocumentSetters, SendPhotoSetters};
        let photo = is_photo(file.content_type, bytes.len());
        let bytes = bytes::Bytes::from(bytes);
        let reply = file.reply_to.map(|id| ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
        type Sending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Message, RequestError>> + Send>>;
        self.paced(chat, || -> Sending {
            let input = InputFile::memory(bytes.clone()).file_name(file.name.to_string());
            if photo {
                let mut request = self.bot.send_photo(ChatId(chat), input);
                if let Some(caption) = file.caption {
                    request = request.caption(caption).parse_mode(ParseMode::MarkdownV2);
                }
                if let Some(reply) = reply.clone() {
                    request = request.reply_parameters(reply);
                }
                Box::pin(request.send())
            } else {
                let mut request = self.bot.send_document(ChatId(chat), input);
                if let Some(caption) = file.caption {
                    request = request.caption(caption).parse_mode(ParseMode::MarkdownV2);
                }
                if let Some(reply) = reply.clone() {
                    request = request.reply_parameters(reply);
                }
                Box::pin(request.send())
            }
        })
        .await
    }

    /// Runs one request within the per-chat and per-bot limits, waiting out `retry_after` up to
    /// the configured maximum; a longer wait is handed back to the caller as a wait.
    async fn paced<F, Fut>(&self, chat: i64, mut request: F) -> Result<Message, SendError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Message, RequestError>>,
    {
        let mut waited = Duration::ZERO;
        loop {
            self.pacer.per_chat.until_key_ready(&chat).await;
            self.pacer.per_bot.until_ready().await;
            match request().await {
                Ok(m) => return Ok(m),
                Err(RequestError::RetryAfter(secs)) => {
                    let wait = secs.duration();
                    if waited + wait > self.max_retry_after {
                        // Not a failure: the message is tried again once the wait is over.
                        return Err(SendError::wait(format!("Telegram asked to wait {}s", wait.as_secs()), wait));
                    }
                    warn!(chat, retry_after_secs = wait.as_secs(), "Telegram flood control; waiting as asked");
                    waited += wait;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(classify(e)),
            }
        }
    }
}

/// A file to send with [`Sender::send_file`].
pub struct FileOut<'a> {
    /// The file name shown.
    pub name: &'a str,
    /// Its MIME type: images go as photos.
    pub content_type: &'a str,
    /// A MarkdownV2 caption, if any.
    pub caption: Option<&'a str>,
    /// The message it answers, if any.
    pub reply_to: Option<i32>,
}

/// Telegram's limit on a photo upload.
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

/// Whether a file goes as a photo (shown inline) rather than a document.
fn is_photo(content_type: &str, size: usize) -> bool {
    let image =
        ["image/jpeg", "image/png", "image/webp", "image/gif"].contains(&content_type.to_ascii_lowercase().as_str());
    image && size <= MAX_PHOTO_BYTES
}

/// Sorts a failed request: what will never work is permanent, the rest is retried.
pub fn classify(e: RequestError) -> SendError {
    match e {
        RequestError::Api(api) => {
            let permanent = matches!(
                api,
                ApiError::BotBlocked
                    | ApiError::ChatNotFound
                    | ApiError::UserDeactivated
                    | ApiError::BotKicked
                    | ApiError::BotKickedFromSupergroup
                    | ApiError::CantInitiateConversation
                    | ApiError::CantTalkWithBots
                    | ApiError::MessageIsTooLong
                    | ApiError::CantParseEntities(_)
                    | ApiError::MessageTextIsEmpty
            );
            if permanent {
                SendError::permanent(format!("Telegram refused: {api}"))
            } else {
                SendError::retryable(format!("Telegram: {api}"))
            }
        }
        RequestError::MigrateToChatId(id) => SendError::permanent(format!("the group moved to chat {}", id.0)),
        RequestError::Network(e) => SendError::retryable(format!("network: {}", strip_url(&e.to_string()))),
        other => SendError::retryable(strip_url(&other.to_string())),
    }
}

/// Error texts from the HTTP client may carry the request URL, which holds the bot token.
fn strip_url(text: &str) -> String {
    match text.find("/bot") {
        Some(at) => format!("{}/bot<token>…", &text[..at]),
        None => text.to_string(),
    }
}
