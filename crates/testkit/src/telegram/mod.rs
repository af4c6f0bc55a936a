//! A fake Telegram Bot API on a free loopback port, speaking the wire format of
//! <https://core.telegram.org/bots/api>, so a real client (teloxide) pointed at [`FakeBotApi::url`]
//! runs unchanged. Telegram cannot be reached from CI, so this is the server the Telegram channel is
//! tested against: it enforces the rules that catch adapter bugs where that is cheap (text limits,
//! MarkdownV2 and HTML parsing, inline keyboard data size, offsets, one poller at a time, blocked
//! users, edits of unknown or unchanged messages) and lets a test inject Telegram's failures
//! ([`FakeBotApi::fail_next`]). It never pretends to deliver anything: webhooks are only recorded.

mod markup;
mod objects;
mod params;
mod server;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

/// Update types Telegram leaves out unless `allowed_updates` names them.
const NOT_DELIVERED_BY_DEFAULT: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];

/// The fake bot's first name and username, as `getMe` and every sent message's `from` report them.
pub const FAKE_BOT_FIRST_NAME: &str = "Switchboard Test Bot";
/// See [`FAKE_BOT_FIRST_NAME`].
pub const FAKE_BOT_USERNAME: &str = "switchboard_test_bot";

/// A running fake Bot API for one bot token; it stops serving when dropped.
pub struct FakeBotApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

/// A failure [`FakeBotApi::fail_next`] makes a method return, with Telegram's status, code and text.
#[derive(Clone, Debug, PartialEq)]
pub enum FakeError {
    /// 429 "Too Many Requests: retry after N" with `parameters.retry_after` = N seconds.
    RetryAfter(u32),
    /// 403 "Forbidden: bot was blocked by the user".
    BotBlocked,
    /// 400 "Bad Request: chat not found".
    ChatNotFound,
    /// 400 "Bad Request: group chat was upgraded to a supergroup chat" with `parameters.migrate_to_chat_id`.
    MigrateToChatId(i64),
    /// 500 "Internal Server Error" (teloxide sleeps 10 s after any 5xx before returning the error).
    ServerError,
    /// Any other error: HTTP status and `error_code` `code`, and `description`.
    Other {
        /// The HTTP status and `error_code`.
        code: u16,
        /// The `description`, e.g. "Bad Request: message to edit not found".
        description: String,
    },
}

/// A message the bot sent (`sendMessage`, `sendDocument`, `sendPhoto`), as the fake received it.
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// The method as documented (`sendDocument`), whatever case the client used; unknown ones as sent.
    pub method: String,
    /// The target chat.
    pub chat_id: i64,
    /// The id the fake gave the new message.
    pub message_id: i64,
    /// `text` of a message or `caption` of a file, as sent (before entity parsing).
    pub text: Option<String>,
    /// `parse_mode`, if any.
    pub parse_mode: Option<String>,
    /// The message replied to, from `reply_parameters` or the older `reply_to_message_id`.
    pub reply_to_message_id: Option<i64>,
    /// `reply_markup`, parsed from JSON.
    pub reply_markup: Option<Value>,
    /// The document or photo, for file methods.
    pub file: Option<SentFile>,
    /// Every parameter but uploaded files; form values stay strings, as sent.
    pub params: Value,
    /// When the fake received it, on tokio's clock.
    pub at: Instant,
}

/// The file of a `sendDocument` or `sendPhoto`.
#[derive(Clone, Debug, PartialEq)]
pub enum SentFile {
    /// Uploaded in the request's multipart body.
    Upload {
        /// The part's file name, if it had a non-empty one.
        file_name: Option<String>,
        /// The content.
        bytes: Vec<u8>,
    },
    /// A `file_id` known to the fake.
    FileId(String),
    /// An HTTP URL for Telegram to fetch (the fake does not fetch it).
    Url(String),
}

/// An `editMessageText` or `editMessageReplyMarkup` the fake accepted.
#[derive(Clone, Debug)]
pub struct EditedMessage {
    /// The method as documented (`sendDocument`), whatever case the client used; unknown ones as sent.
    pub method: String,
    /// The chat of the edited message.
    pub chat_id: i64,
    /// The edited message.
    pub message_id: i64,
    /// The new text (`editMessageText` only).
    pub text: Option<String>,
    /// `parse_mode`, if any.
    pub parse_mode: Option<String>,
    /// The new `reply_markup`, if any (none removes the keyboard).
    pub reply_markup: Option<Value>,
    /// When the fake received it, on tokio's clock.
    pub at: Instant,
}

/// An `answerCallbackQuery` the fake accepted.
#[derive(Clone, Debug)]
pub struct AnsweredCallback {
    /// `callback_query_id`.
    pub callback_query_id: String,
    /// The notification text, if any.
    pub text: Option<String>,
    /// Whether it was an alert rather than a toast.
    pub show_alert: bool,
    /// `url` to open, if any.
    pub url: Option<String>,
    /// When the fake received it, on tokio's clock.
    pub at: Instant,
}

/// The webhook set by `setWebhook`.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// The HTTPS URL Telegram would post updates to.
    pub url: String,
    /// `secret_token`, sent by Telegram in `X-Telegram-Bot-Api-Secret-Token`.
    pub secret_token: Option<String>,
    /// `allowed_updates`, if given.
    pub allowed_updates: Option<Vec<String>>,
}

/// One `getUpdates` call's parameters.
#[derive(Clone, Debug)]
pub struct GetUpdatesCall {
    /// `offset`: updates below it are confirmed.
    pub offset: Option<i64>,
    /// `limit`.
    pub limit: Option<i64>,
    /// `timeout` in seconds of long polling.
    pub timeout: Option<i64>,
    /// `allowed_updates`, if given.
    pub allowed_updates: Option<Vec<String>>,
    /// When the call arrived, on tokio's clock.
    pub at: Instant,
}

/// Any request the fake answered, failed ones included.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// The method as documented (`sendDocument`), whatever case the client used; unknown ones as sent.
    pub method: String,
    /// Every parameter but uploaded files.
    pub params: Value,
    /// The HTTP status of the answer (200, or the `error_code`).
    pub status: u16,
    /// When the request arrived, on tokio's clock.
    pub at: Instant,
}

impl FakeBotApi {
    /// Serves the Bot API for `token` (`<bot id>:<secret>`) on 127.0.0.1 and a free port.
    pub async fn start(token: &str) -> FakeBotApi {
        let bot_id = server::bot_id(token).unwrap_or_else(|| {
            panic!("fake Bot API token {token:?}: use the `<bot id>:<secret>` form, e.g. 123456:test")
        });
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Bot API to 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of a bound socket");
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            bot_id,
            state: Mutex::new(State::new()),
            wake_polls: Notify::new(),
            changed: watch::Sender::new(()),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = server::app(shared.clone());
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            // A failing accept loop would show as failing requests in the test that uses it.
            let _ = serve.await;
        });
        FakeBotApi { shared, addr, shutdown: Some(shutdown) }
    }

    /// The base URL for teloxide's `Bot::set_api_url` (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token requests must carry.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The bot's user id (the token's prefix).
    pub fn bot_id(&self) -> i64 {
        self.shared.bot_id
    }

    /// Queues an Update as Telegram would send it; `update_id` is assigned, increasing, when absent.
    /// Returns the update's id. Messages, callback queries and blocks in it become known to the fake.
    pub fn push_update(&self, update: Value) -> i64 {
        assert!(update.is_object(), "an Update is a JSON object, got {update}");
        let id = {
            let mut state = self.shared.lock();
            state.push(update, self.shared.bot_id)
        };
        self.shared.updated();
        id
    }

    /// Queues `raw` verbatim as one element of the `getUpdates` result array, to test that bad input
    /// is skipped. Valid JSON of the wrong shape reaches teloxide as `UpdateKind::Error`; text that is
    /// not JSON makes the whole response unparseable, as a broken proxy would. Its place in the queue
    /// (the returned id) is its `update_id` if one can be read from it, else the next free id; it is
    /// confirmed like any update by an `offset` above that id.
    pub fn push_raw_update(&self, raw: impl Into<String>) -> i64 {
        let raw = raw.into();
        let id = {
            let mut state = self.shared.lock();
            let id = serde_json::from_str::<Value>(&raw)
                .ok()
                .and_then(|v| v.get("update_id").and_then(Value::as_i64))
                .unwrap_or(state.next_update_id);
            state.enqueue(Queued { id, kind: None, json: raw });
            id
        };
        self.shared.updated();
        id
    }

    /// A text message from user `user_id` in chat `chat_id` (the user's private chat when equal),
    /// with a `bot_command` entity when it starts with `/`.
    pub fn text_message(&self, chat_id: i64, user_id: i64, text: &str) -> Value {
        let mut message = objects::message(self.shared.lock().next_message_id(), chat_id, objects::user(user_id));
        message["text"] = json!(text);
        if let Some(entities) = objects::auto_entities(text) {
            message["entities"] = entities;
        }
        json!({ "message": message })
    }

    /// The user's edit of message `message_id` to `text`.
    pub fn edited_message(&self, chat_id: i64, user_id: i64, message_id: i64, text: &str) -> Value {
        let mut message = objects::message(message_id, chat_id, objects::user(user_id));
        message["date"] = json!(objects::now() - 60);
        message["edit_date"] = json!(objects::now());
        message["text"] = json!(text);
        json!({ "edited_message": message })
    }

    /// A press by `user_id` of an inline button with `data` under the bot's message `message_id`.
    /// The query's `message` is the bot's message as the fake knows it, or an inaccessible message
    /// (`date` 0) when the fake never saw it, as Telegram sends for old messages.
    pub fn callback_query(&self, chat_id: i64, user_id: i64, message_id: i64, data: &str) -> Value {
        let mut state = self.shared.lock();
        state.next_callback += 1;
        let id = format!("{}{:06}", user_id.unsigned_abs(), state.next_callback);
        let message = state
            .messages
            .get(&(chat_id, message_id))
            .map(|known| known.json.clone())
            .unwrap_or_else(|| json!({ "message_id": message_id, "chat": objects::chat(chat_id), "date": 0 }));
        json!({
            "callback_query": {
                "id": id,
                "from": objects::user(user_id),
                "message": message,
                "chat_instance": format!("{}", chat_id.wrapping_mul(7919)),
                "data": data,
            }
        })
    }

    /// A photo from the user: `file_id` (registered with [`FakeBotApi::add_file`]) in one size.
    pub fn photo_message(&self, chat_id: i64, user_id: i64, file_id: &str, caption: Option<&str>) -> Value {
        let mut state = self.shared.lock();
        let mut message = objects::message(state.next_message_id(), chat_id, objects::user(user_id));
        let (unique, size) = state.file_facts(file_id);
        message["photo"] =
            json!([{ "file_id": file_id, "file_unique_id": unique, "file_size": size, "width": 800, "height": 600 }]);
        if let Some(caption) = caption {
            message["caption"] = json!(caption);
        }
        json!({ "message": message })
    }

    /// A document from the user: `file_id` (registered with [`FakeBotApi::add_file`]) named `file_name`.
    pub fn document_message(
        &self,
        chat_id: i64,
        user_id: i64,
        file_id: &str,
        file_name: &str,
        caption: Option<&str>,
    ) -> Value {
        let mut state = self.shared.lock();
        let mut message = objects::message(state.next_message_id(), chat_id, objects::user(user_id));
        let (unique, size) = state.file_facts(file_id);
        message["document"] = json!({
            "file_name": file_name,
            "mime_type": objects::mime_type(file_name),
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": size,
        });
        if let Some(caption) = caption {
            message["caption"] = json!(caption);
        }
        json!({ "message": message })
    }

    /// A message from user `user_id` in chat `chat_id` with the content `fields` (e.g.
    /// `{"voice": {...}, "caption": "..."}`, `{"location": {...}}`), for kinds without a helper
    /// of their own; build file objects with [`FakeBotApi::file_fields`].
    pub fn message_with(&self, chat_id: i64, user_id: i64, fields: Value) -> Value {
        let mut message = objects::message(self.shared.lock().next_message_id(), chat_id, objects::user(user_id));
        if let (Some(message), Some(fields)) = (message.as_object_mut(), fields.as_object()) {
            message.extend(fields.clone());
        }
        json!({ "message": message })
    }

    /// The `file_id`, `file_unique_id` and `file_size` of a file registered with
    /// [`FakeBotApi::add_file`], as every Bot API file object (Voice, Audio, Sticker, ...) starts;
    /// add the kind's own fields (`duration`, `emoji`, ...) to it.
    pub fn file_fields(&self, file_id: &str) -> Value {
        let (unique, size) = self.shared.lock().file_facts(file_id);
        json!({ "file_id": file_id, "file_unique_id": unique, "file_size": size })
    }

    /// User `user_id` blocked the bot in their private chat; once pushed, sends there fail with 403.
    pub fn my_chat_member_blocked(&self, chat_id: i64, user_id: i64) -> Value {
        self.my_chat_member(chat_id, user_id, "member", "kicked")
    }

    /// User `user_id` unblocked (restarted) the bot; once pushed, sends there succeed again.
    pub fn my_chat_member_unblocked(&self, chat_id: i64, user_id: i64) -> Value {
        self.my_chat_member(chat_id, user_id, "kicked", "member")
    }

    fn my_chat_member(&self, chat_id: i64, user_id: i64, old: &str, new: &str) -> Value {
        let member = |status: &str| {
            let mut member = json!({ "user": self.shared.bot_user(), "status": status });
            if status == "kicked" {
                member["until_date"] = json!(0);
            }
            member
        };
        json!({
            "my_chat_member": {
                "chat": objects::chat(chat_id),
                "from": objects::user(user_id),
                "date": objects::now(),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            }
        })
    }

    /// Registers a file for `getFile` and download, returning its `file_path`.
    pub fn add_file(&self, file_id: &str, bytes: impl Into<Vec<u8>>) -> String {
        self.shared.lock().add_file(file_id.to_owned(), None, bytes.into())
    }

    /// Makes the next `times` calls of `method` (any spelling, as the Bot API ignores case) fail with
    /// `error` before anything else is checked; queued failures of one method apply in order.
    pub fn fail_next(&self, method: &str, times: usize, error: FakeError) {
        let mut state = self.shared.lock();
        let queue = state.failures.entry(method.to_ascii_lowercase()).or_default();
        queue.extend(std::iter::repeat_n(Some(error), times));
    }

    /// Like [`FakeBotApi::fail_next`], for calls of `method` to chat `chat_id` only (e.g. the
    /// customer's reply fails while the agent's chat goes on); checked before other failures.
    pub fn fail_next_in_chat(&self, method: &str, chat_id: i64, times: usize, error: FakeError) {
        let mut state = self.shared.lock();
        let queue = state.chat_failures.entry((method.to_ascii_lowercase(), chat_id)).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    /// Like [`FakeBotApi::fail_next`], after letting the next `succeed` calls of `method` through:
    /// e.g. the second part of a split message fails while the first goes out.
    pub fn fail_after(&self, method: &str, succeed: usize, times: usize, error: FakeError) {
        let mut state = self.shared.lock();
        let queue = state.failures.entry(method.to_ascii_lowercase()).or_default();
        queue.extend(std::iter::repeat_n(None, succeed));
        queue.extend(std::iter::repeat_n(Some(error), times));
    }

    /// Flood control as Telegram applies it: for `period` from now, every call of `method` is
    /// answered 429 with `retry_after` = the seconds left (rounded up), whatever the client does.
    pub fn flood(&self, method: &str, period: Duration) {
        self.shared.lock().floods.insert(method.to_ascii_lowercase(), Instant::now() + period);
    }

    /// Every message sent, in the order received.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// When each message (text or file) sent to `chat_id` was received, in order.
    pub fn send_times(&self, chat_id: i64) -> Vec<Instant> {
        self.shared.lock().sent.iter().filter(|s| s.chat_id == chat_id).map(|s| s.at).collect()
    }

    /// The shortest time between two messages sent one after the other to `chat_id` (Telegram
    /// allows about one a second to a chat), or `None` before the second.
    pub fn min_gap(&self, chat_id: i64) -> Option<Duration> {
        self.send_times(chat_id).windows(2).map(|w| w[1] - w[0]).min()
    }

    /// Sets a webhook as an earlier `setWebhook` would have (e.g. left by running in webhook
    /// mode): until `deleteWebhook`, every `getUpdates` is refused with 409, as Telegram does.
    pub fn set_webhook(&self, url: &str) {
        self.shared.lock().webhook = Some(Webhook { url: url.to_owned(), secret_token: None, allowed_updates: None });
        self.shared.updated();
    }

    /// Every accepted edit, in the order received.
    pub fn edits(&self) -> Vec<EditedMessage> {
        self.shared.lock().edits.clone()
    }

    /// Every accepted `answerCallbackQuery`, in the order received.
    pub fn answered_callbacks(&self) -> Vec<AnsweredCallback> {
        self.shared.lock().answered.clone()
    }

    /// The current webhook, if one is set.
    pub fn webhook(&self) -> Option<Webhook> {
        self.shared.lock().webhook.clone()
    }

    /// Every `getUpdates` call's parameters, failed ones included, in the order received.
    pub fn get_updates_calls(&self) -> Vec<GetUpdatesCall> {
        self.shared.lock().get_updates_calls.clone()
    }

    /// Every request answered, failed ones included, in the order answered.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.shared.lock().requests.clone()
    }

    /// Updates queued and not yet confirmed by an `offset`.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Waits until at least `n` messages were sent and returns them all; panics after `timeout`.
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        self.wait_for(&format!("{n} sent messages"), timeout, |s| (s.sent.len() >= n).then(|| s.sent.clone())).await
    }

    /// Waits until at least `n` edits were accepted and returns them all; panics after `timeout`.
    pub async fn wait_for_edits(&self, n: usize, timeout: Duration) -> Vec<EditedMessage> {
        self.wait_for(&format!("{n} edits"), timeout, |s| (s.edits.len() >= n).then(|| s.edits.clone())).await
    }

    /// Waits until at least `n` callback queries were answered and returns them all; panics after `timeout`.
    pub async fn wait_for_answered_callbacks(&self, n: usize, timeout: Duration) -> Vec<AnsweredCallback> {
        self.wait_for(&format!("{n} answered callback queries"), timeout, |s| {
            (s.answered.len() >= n).then(|| s.answered.clone())
        })
        .await
    }

    /// Waits until at least `n` `getUpdates` calls arrived and returns them all; panics after `timeout`.
    pub async fn wait_for_get_updates_calls(&self, n: usize, timeout: Duration) -> Vec<GetUpdatesCall> {
        self.wait_for(&format!("{n} getUpdates calls"), timeout, |s| {
            (s.get_updates_calls.len() >= n).then(|| s.get_updates_calls.clone())
        })
        .await
    }

    /// Waits, without polling, until `check` returns a value; the fake signals every change.
    async fn wait_for<T>(&self, what: &str, timeout: Duration, mut check: impl FnMut(&State) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            // Marked seen before checking, so a change during the check still wakes the wait below.
            changed.borrow_and_update();
            if let Some(value) = check(&self.shared.lock()) {
                return value;
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                let state = self.shared.lock();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; requests so far: {:?}",
                    state.requests.iter().map(|r| format!("{} -> {}", r.method, r.status)).collect::<Vec<_>>()
                );
            }
        }
    }
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        // Waiting long polls return at once, so the graceful shutdown does not wait out their timeouts.
        self.shared.lock().closed = true;
        self.shared.wake_polls.notify_waiters();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What the server task and the test's handle share.
struct Shared {
    token: String,
    bot_id: i64,
    state: Mutex<State>,
    /// Wakes waiting long polls: an update arrived, a newer poll took over, or the fake is closing.
    wake_polls: Notify,
    /// Signalled on every change a `wait_for_*` might be waiting for.
    changed: watch::Sender<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the other tests' assertions.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn updated(&self) {
        self.wake_polls.notify_waiters();
        self.changed.send_replace(());
    }

    fn bot_user(&self) -> Value {
        json!({ "id": self.bot_id, "is_bot": true, "first_name": FAKE_BOT_FIRST_NAME, "username": FAKE_BOT_USERNAME })
    }
}

/// An update waiting for confirmation.
struct Queued {
    id: i64,
    /// The update's type (`message`, `callback_query`, ...); `None` for raw elements.
    kind: Option<String>,
    /// The element exactly as `getUpdates` will return it.
    json: String,
}

/// A message the fake knows, for replies, edits and callback queries.
struct KnownMessage {
    from_bot: bool,
    json: Value,
}

/// A file for `getFile` and downloads.
struct StoredFile {
    unique_id: String,
    path: String,
    bytes: Vec<u8>,
}

struct State {
    closed: bool,
    queue: VecDeque<Queued>,
    next_update_id: i64,
    /// Shared by users' and the bot's messages, so ids never collide across chats.
    last_message_id: i64,
    next_callback: u64,
    next_file: u64,
    /// The last `allowed_updates` given; the Bot API keeps it between calls.
    allowed_updates: Option<Vec<String>>,
    /// Bumped by each `getUpdates`, so an older waiting poll knows it was superseded.
    poll_generation: u64,
    webhook: Option<Webhook>,
    /// Injected answers per method, in order: an error, or `None` to let a call through.
    failures: HashMap<String, VecDeque<Option<FakeError>>>,
    /// Injected failures per method and chat.
    chat_failures: HashMap<(String, i64), VecDeque<FakeError>>,
    /// Methods under flood control until the instant given.
    floods: HashMap<String, Instant>,
    sent: Vec<SentMessage>,
    edits: Vec<EditedMessage>,
    answered: Vec<AnsweredCallback>,
    /// Callback queries pushed and not yet answered.
    open_callbacks: HashSet<String>,
    messages: HashMap<(i64, i64), KnownMessage>,
    files: HashMap<String, StoredFile>,
    /// Private chats whose user blocked the bot.
    blocked: HashSet<i64>,
    get_updates_calls: Vec<GetUpdatesCall>,
    requests: Vec<ApiRequest>,
}

impl State {
    fn new() -> State {
        State {
            closed: false,
            queue: VecDeque::new(),
            next_update_id: 1,
            last_message_id: 0,
            next_callback: 0,
            next_file: 0,
            allowed_updates: None,
            poll_generation: 0,
            webhook: None,
            failures: HashMap::new(),
            chat_failures: HashMap::new(),
            floods: HashMap::new(),
            sent: Vec::new(),
            edits: Vec::new(),
            answered: Vec::new(),
            open_callbacks: HashSet::new(),
            messages: HashMap::new(),
            files: HashMap::new(),
            blocked: HashSet::new(),
            get_updates_calls: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn next_message_id(&mut self) -> i64 {
        self.last_message_id += 1;
        self.last_message_id
    }

    /// Queues `update`, learning the messages, callback queries and blocks in it.
    fn push(&mut self, mut update: Value, bot_id: i64) -> i64 {
        let id = update.get("update_id").and_then(Value::as_i64).unwrap_or(self.next_update_id);
        update["update_id"] = json!(id);
        let kind = update.as_object().and_then(|o| o.keys().find(|k| *k != "update_id").cloned());
        for key in ["message", "edited_message", "channel_post", "edited_channel_post", "business_message"] {
            if let Some(message) = update.get(key) {
                self.learn_message(message, bot_id);
            }
        }
        if let Some(id) = update.pointer("/callback_query/id").and_then(Value::as_str) {
            self.open_callbacks.insert(id.to_owned());
        }
        if let Some(member) = update.get("my_chat_member") {
            let chat = member.pointer("/chat/id").and_then(Value::as_i64);
            let private = member.pointer("/chat/type").and_then(Value::as_str) == Some("private");
            match (chat, member.pointer("/new_chat_member/status").and_then(Value::as_str)) {
                (Some(chat), Some("kicked")) if private => self.blocked.insert(chat),
                (Some(chat), Some(_)) => self.blocked.remove(&chat),
                _ => false,
            };
        }
        self.enqueue(Queued { id, kind, json: update.to_string() });
        id
    }

    fn learn_message(&mut self, message: &Value, bot_id: i64) {
        let (Some(chat), Some(id)) =
            (message.pointer("/chat/id").and_then(Value::as_i64), message.get("message_id").and_then(Value::as_i64))
        else {
            return;
        };
        self.last_message_id = self.last_message_id.max(id);
        let from_bot = message.pointer("/from/id").and_then(Value::as_i64) == Some(bot_id);
        self.messages.insert((chat, id), KnownMessage { from_bot, json: message.clone() });
    }

    /// Inserts in `update_id` order, keeping the next assigned id above every queued one.
    fn enqueue(&mut self, queued: Queued) {
        self.next_update_id = self.next_update_id.max(queued.id + 1);
        let at = self.queue.partition_point(|q| q.id <= queued.id);
        self.queue.insert(at, queued);
    }

    /// A registered file's `file_unique_id` and size, or made-up ones for an unregistered id.
    fn file_facts(&self, file_id: &str) -> (String, usize) {
        match self.files.get(file_id) {
            Some(file) => (file.unique_id.clone(), file.bytes.len()),
            None => (format!("unregistered-{file_id}"), 0),
        }
    }

    fn add_file(&mut self, file_id: String, file_name: Option<&str>, bytes: Vec<u8>) -> String {
        self.next_file += 1;
        let extension = file_name.and_then(|n| n.rsplit_once('.')).map(|(_, e)| format!(".{e}")).unwrap_or_default();
        let path = format!("documents/file_{}{extension}", self.next_file);
        let unique_id = format!("AgADfake{}", self.next_file);
        self.files.insert(file_id, StoredFile { unique_id, path: path.clone(), bytes });
        path
    }
}

/// An error answer, as the Bot API sends it: HTTP status = `error_code`.
#[derive(Debug)]
struct ApiError {
    code: u16,
    description: String,
    parameters: Option<Value>,
}

impl ApiError {
    fn new(code: u16, description: &str) -> ApiError {
        ApiError { code, description: description.to_owned(), parameters: None }
    }

    fn bad_request(detail: &str) -> ApiError {
        ApiError::new(400, &format!("Bad Request: {detail}"))
    }
}

impl From<FakeError> for ApiError {
    fn from(error: FakeError) -> ApiError {
        match error {
            FakeError::RetryAfter(seconds) => ApiError {
                code: 429,
                description: format!("Too Many Requests: retry after {seconds}"),
                parameters: Some(json!({ "retry_after": seconds })),
            },
            FakeError::BotBlocked => ApiError::new(403, "Forbidden: bot was blocked by the user"),
            FakeError::ChatNotFound => ApiError::bad_request("chat not found"),
            FakeError::MigrateToChatId(chat_id) => ApiError {
                code: 400,
                description: "Bad Request: group chat was upgraded to a supergroup chat".to_owned(),
                parameters: Some(json!({ "migrate_to_chat_id": chat_id })),
            },
            FakeError::ServerError => ApiError::new(500, "Internal Server Error"),
            FakeError::Other { code, description } => ApiError::new(code, &description),
        }
    }
}
