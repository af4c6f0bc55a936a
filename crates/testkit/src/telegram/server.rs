//! The HTTP side: routing `/bot<token>/<method>` and `/file/bot<token>/<path>`, and the methods.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request as HttpRequest, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::{Duration, Instant};

use super::markup::plain_text;
use super::params::{MAX_BODY, Params, percent_decode};
use super::{
    AnsweredCallback, ApiError, ApiRequest, EditedMessage, GetUpdatesCall, KnownMessage, NOT_DELIVERED_BY_DEFAULT,
    Queued, SentFile, SentMessage, Shared, State, Webhook, objects,
};

/// Text of a message: 1 to 4096 characters after entity parsing.
const MAX_TEXT: usize = 4096;
/// Caption of a file: up to 1024 characters after entity parsing.
const MAX_CAPTION: usize = 1024;
/// `callback_data` of an inline button: 1 to 64 bytes.
const MAX_CALLBACK_DATA: usize = 64;
/// Bots may download files up to 20 MB.
const MAX_DOWNLOAD: usize = 20 * 1024 * 1024;

/// The methods served, as the Bot API documents them.
const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "sendMessage",
    "sendDocument",
    "sendPhoto",
    "editMessageText",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
    "getFile",
    "sendChatAction",
    "deleteMessage",
    "setMyCommands",
];

/// The bot id of a well-formed token (`<digits>:<letters, digits, _ and ->`), else `None`.
pub(super) fn bot_id(token: &str) -> Option<i64> {
    let (id, secret) = token.split_once(':')?;
    let secret_ok = !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    secret_ok.then(|| id.parse().ok()).flatten().filter(|&id: &i64| id > 0)
}

/// The whole API, testable without a socket.
pub(super) fn app(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(shared)
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, request: HttpRequest) -> Response {
    let path = request.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/file/bot") {
        return download(&shared, rest);
    }
    let Some((token, method)) = path.strip_prefix("/bot").and_then(|rest| rest.split_once('/')) else {
        return error_response(ApiError::new(404, "Not Found"));
    };
    if let Err(error) = check_token(&shared, token) {
        return error_response(error);
    }
    let at = Instant::now();
    // Records use the documented spelling: the Bot API ignores case and teloxide sends e.g. `SendDocument`.
    let method = METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)).copied().unwrap_or(method);
    let (params, outcome) = match Params::from_request(request).await {
        Ok(params) => {
            let outcome = shared.call(method, &params).await;
            (params.to_json(), outcome)
        }
        Err(error) => (Value::Null, Err(error)),
    };
    let status = outcome.as_ref().map_or_else(|e| e.code, |_| 200);
    shared.lock().requests.push(ApiRequest { method: method.to_owned(), params, status, at });
    shared.changed.send_replace(());
    match outcome {
        Ok(result) => ([(header::CONTENT_TYPE, "application/json")], format!(r#"{{"ok":true,"result":{result}}}"#))
            .into_response(),
        Err(error) => error_response(error),
    }
}

/// Telegram answers 401 to a well-formed token it does not know and 404 to a malformed one.
fn check_token(shared: &Shared, token: &str) -> Result<(), ApiError> {
    let token = percent_decode(token.as_bytes(), false);
    if token == shared.token {
        Ok(())
    } else if bot_id(&token).is_some() {
        Err(ApiError::new(401, "Unauthorized"))
    } else {
        Err(ApiError::new(404, "Not Found"))
    }
}

fn error_response(error: ApiError) -> Response {
    let mut body = json!({ "ok": false, "error_code": error.code, "description": error.description });
    if let Some(parameters) = error.parameters {
        body["parameters"] = parameters;
    }
    let status = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `GET /file/bot<token>/<file_path>`; teloxide sends the path as one segment, `/` as `%2F`.
fn download(shared: &Shared, rest: &str) -> Response {
    let Some((token, path)) = rest.split_once('/') else {
        return error_response(ApiError::new(404, "Not Found"));
    };
    if let Err(error) = check_token(shared, token) {
        return error_response(error);
    }
    let path = percent_decode(path.as_bytes(), false);
    let state = shared.lock();
    match state.files.values().find(|f| f.path == path) {
        Some(file) => ([(header::CONTENT_TYPE, "application/octet-stream")], file.bytes.clone()).into_response(),
        None => error_response(ApiError::new(404, "Not Found")),
    }
}

type Outcome = Result<String, ApiError>;

fn ok(value: Value) -> Outcome {
    Ok(value.to_string())
}

impl Shared {
    /// Runs `method` (case-insensitive, as in the Bot API); `Ok` holds the JSON of `result`.
    async fn call(&self, method: &str, params: &Params) -> Outcome {
        let key = method.to_ascii_lowercase();
        if key == "getupdates" {
            // Recorded before injected failures, so a test sees the offsets of failed polls too.
            let call = GetUpdatesCall {
                offset: params.int("offset").ok().flatten(),
                limit: params.int("limit").ok().flatten(),
                timeout: params.int("timeout").ok().flatten(),
                allowed_updates: string_list(params, "allowed_updates").ok().flatten(),
                at: Instant::now(),
            };
            self.lock().get_updates_calls.push(call);
            self.changed.send_replace(());
        }
        if let Ok(chat) = params.chat_id()
            && let Some(error) = self.lock().chat_failures.get_mut(&(key.clone(), chat)).and_then(VecDeque::pop_front)
        {
            return Err(error.into());
        }
        if let Some(error) = self.lock().failures.get_mut(&key).and_then(|queue| queue.pop_front()).flatten() {
            return Err(error.into());
        }
        let flooded_until = self.lock().floods.get(&key).copied();
        let left = flooded_until.and_then(|until| until.checked_duration_since(Instant::now()));
        if let Some(left) = left.filter(|left| !left.is_zero()) {
            let seconds = left.as_millis().div_ceil(1000).max(1) as u32;
            return Err(super::FakeError::RetryAfter(seconds).into());
        }
        match key.as_str() {
            "getme" => ok(self.me()),
            "getupdates" => self.get_updates(params).await,
            "setwebhook" => self.set_webhook(params),
            "deletewebhook" => {
                let mut state = self.lock();
                state.webhook = None;
                if params.bool("drop_pending_updates") {
                    state.queue.clear();
                }
                ok(json!(true))
            }
            "getwebhookinfo" => {
                let state = self.lock();
                let mut info = json!({
                    "url": state.webhook.as_ref().map_or("", |w| w.url.as_str()),
                    "has_custom_certificate": false,
                    "pending_update_count": state.queue.len(),
                });
                if let Some(allowed) = state.webhook.as_ref().and_then(|w| w.allowed_updates.clone()) {
                    info["allowed_updates"] = json!(allowed);
                }
                ok(info)
            }
            "sendmessage" => self.send_message(method, params),
            "senddocument" => self.send_file(method, params, "document"),
            "sendphoto" => self.send_file(method, params, "photo"),
            "editmessagetext" | "editmessagereplymarkup" => self.edit_message(method, &key, params),
            "answercallbackquery" => self.answer_callback_query(params),
            "getfile" => self.get_file(params),
            "sendchataction" => {
                let chat_id = params.chat_id()?;
                const ACTIONS: &[&str] = &[
                    "typing",
                    "upload_photo",
                    "record_video",
                    "upload_video",
                    "record_voice",
                    "upload_voice",
                    "upload_document",
                    "choose_sticker",
                    "find_location",
                    "record_video_note",
                    "upload_video_note",
                ];
                if !ACTIONS.contains(&params.str("action").unwrap_or_default().as_str()) {
                    return Err(ApiError::bad_request("wrong parameter action in request"));
                }
                self.lock().check_not_blocked(chat_id)?;
                ok(json!(true))
            }
            "deletemessage" => {
                let chat_id = params.chat_id()?;
                let message_id = params.int("message_id")?.unwrap_or(0);
                match self.lock().messages.remove(&(chat_id, message_id)) {
                    Some(_) => ok(json!(true)),
                    None => Err(ApiError::bad_request("message to delete not found")),
                }
            }
            "setmycommands" => ok(json!(true)),
            _ => Err(ApiError::new(404, "Not Found: method not found")),
        }
    }

    fn me(&self) -> Value {
        let mut me = self.bot_user();
        for (key, value) in [
            ("can_join_groups", true),
            ("can_read_all_group_messages", false),
            ("supports_inline_queries", false),
            ("can_connect_to_business", false),
            ("has_main_web_app", false),
        ] {
            me[key] = json!(value);
        }
        me
    }

    /// Long polling: confirms updates below `offset`, then answers at once with what is queued, or
    /// waits up to `timeout` seconds for a push. A newer call ends a waiting one with 409, as Telegram
    /// does when two instances of a bot poll.
    async fn get_updates(&self, params: &Params) -> Outcome {
        let offset = params.int("offset")?;
        let limit = params.int("limit")?.unwrap_or(100).clamp(1, 100) as usize;
        let timeout = Duration::from_secs(params.int("timeout")?.unwrap_or(0).max(0) as u64);
        let allowed = string_list(params, "allowed_updates")?;
        let generation = {
            let mut state = self.lock();
            if state.webhook.is_some() {
                return Err(ApiError::new(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                ));
            }
            match offset {
                Some(offset) if offset < 0 => {
                    // A negative offset keeps only the last -offset updates and forgets the rest.
                    let keep = offset.unsigned_abs() as usize;
                    let drop = state.queue.len().saturating_sub(keep);
                    state.queue.drain(..drop);
                }
                Some(offset) => state.queue.retain(|q| q.id >= offset),
                None => {}
            }
            if allowed.is_some() {
                state.allowed_updates = allowed;
            }
            state.poll_generation += 1;
            state.poll_generation
        };
        // Wakes an older poll still waiting, which then sees it was superseded.
        self.wake_polls.notify_waiters();
        let deadline = Instant::now() + timeout;
        loop {
            let woken = self.wake_polls.notified();
            tokio::pin!(woken);
            // Registered before looking at the queue, so a push in between is not missed.
            woken.as_mut().enable();
            {
                let mut state = self.lock();
                if state.poll_generation != generation {
                    return Err(ApiError::new(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                    ));
                }
                let batch = state.take_batch(limit);
                if !batch.is_empty() || state.closed || Instant::now() >= deadline {
                    return Ok(format!("[{}]", batch.join(",")));
                }
            }
            let _ = tokio::time::timeout_at(deadline, woken).await;
        }
    }

    fn set_webhook(&self, params: &Params) -> Outcome {
        let url = params.str("url").unwrap_or_default();
        let mut state = self.lock();
        if params.bool("drop_pending_updates") {
            state.queue.clear();
        }
        if url.is_empty() {
            // An empty URL removes the webhook.
            state.webhook = None;
            return ok(json!(true));
        }
        if !url.starts_with("https://") {
            return Err(ApiError::bad_request("bad webhook: An HTTPS URL must be provided for webhook"));
        }
        let allowed_updates = string_list(params, "allowed_updates")?;
        state.webhook = Some(Webhook { url, secret_token: params.str("secret_token"), allowed_updates });
        ok(json!(true))
    }

    fn send_message(&self, method: &str, params: &Params) -> Outcome {
        let chat_id = params.chat_id()?;
        let text = params.str("text").unwrap_or_default();
        let parse_mode = params.str("parse_mode");
        let plain = checked_text(&text, parse_mode.as_deref(), MAX_TEXT, "message is too long")?;
        if plain.is_empty() {
            return Err(ApiError::bad_request("message text is empty"));
        }
        let reply_markup = reply_markup(params)?;
        let mut state = self.lock();
        state.check_not_blocked(chat_id)?;
        let reply_to = state.reply_to(chat_id, params)?;
        let message_id = state.next_message_id();
        let mut message = objects::message(message_id, chat_id, self.bot_user());
        message["text"] = json!(plain);
        state.finish_sent(
            message,
            reply_to,
            SentMessage {
                method: method.to_owned(),
                chat_id,
                message_id,
                text: Some(text),
                parse_mode,
                reply_to_message_id: reply_to,
                reply_markup,
                file: None,
                params: params.to_json(),
                at: Instant::now(),
            },
        )
    }

    /// `sendDocument` and `sendPhoto`: the file is a multipart upload (in the `field` part itself,
    /// or in the part `attach://<name>` names, as teloxide sends it), a known `file_id`, or a URL.
    fn send_file(&self, method: &str, params: &Params, field: &str) -> Outcome {
        let chat_id = params.chat_id()?;
        let caption = params.str("caption");
        let parse_mode = params.str("parse_mode");
        let plain_caption = match &caption {
            Some(caption) => checked_text(caption, parse_mode.as_deref(), MAX_CAPTION, "message caption is too long")?,
            None => String::new(),
        };
        let reply_markup = reply_markup(params)?;
        let upload = match params.str(field) {
            Some(value) => match value.strip_prefix("attach://") {
                Some(name) => params.files.get(name).cloned().map(Ok),
                None => Some(Err(value)),
            },
            None => params.files.get(field).cloned().map(Ok),
        };
        let Some(upload) = upload else {
            return Err(ApiError::bad_request(&format!("there is no {field} in the request")));
        };
        let mut state = self.lock();
        let (file, file_id, file_name) = match upload {
            Ok(upload) => {
                if upload.bytes.is_empty() {
                    return Err(ApiError::bad_request("file must be non-empty"));
                }
                let file_id = format!("BQACAgIAAx-fake-{}", state.next_file + 1);
                let name = upload.file_name.clone().unwrap_or_else(|| field.to_owned());
                state.add_file(file_id.clone(), Some(&name), upload.bytes.clone());
                (SentFile::Upload { file_name: upload.file_name, bytes: upload.bytes }, file_id, name)
            }
            Err(url) if url.starts_with("http://") || url.starts_with("https://") => {
                let file_id = format!("BQACAgIAAx-fake-{}", state.next_file + 1);
                let name = url.rsplit('/').next().unwrap_or(field).to_owned();
                state.add_file(file_id.clone(), Some(&name), Vec::new());
                (SentFile::Url(url), file_id, name)
            }
            Err(file_id) if state.files.contains_key(&file_id) => {
                (SentFile::FileId(file_id.clone()), file_id, field.to_owned())
            }
            Err(_) => return Err(ApiError::bad_request("wrong file identifier/HTTP URL specified")),
        };
        state.check_not_blocked(chat_id)?;
        let reply_to = state.reply_to(chat_id, params)?;
        let message_id = state.next_message_id();
        let mut message = objects::message(message_id, chat_id, self.bot_user());
        let (unique_id, size) = state.file_facts(&file_id);
        if field == "photo" {
            message["photo"] = json!([{
                "file_id": file_id, "file_unique_id": unique_id, "file_size": size, "width": 800, "height": 600,
            }]);
        } else {
            message["document"] = json!({
                "file_name": file_name,
                "mime_type": objects::mime_type(&file_name),
                "file_id": file_id,
                "file_unique_id": unique_id,
                "file_size": size,
            });
        }
        if !plain_caption.is_empty() {
            message["caption"] = json!(plain_caption);
        }
        state.finish_sent(
            message,
            reply_to,
            SentMessage {
                method: method.to_owned(),
                chat_id,
                message_id,
                text: caption,
                parse_mode,
                reply_to_message_id: reply_to,
                reply_markup,
                file: Some(file),
                params: params.to_json(),
                at: Instant::now(),
            },
        )
    }

    /// `editMessageText` and `editMessageReplyMarkup` of the bot's own messages by chat and id.
    fn edit_message(&self, method: &str, key: &str, params: &Params) -> Outcome {
        if params.str("inline_message_id").is_some() {
            return Err(ApiError::bad_request("inline messages are not supported by this fake"));
        }
        let chat_id = params.chat_id()?;
        let message_id =
            params.int("message_id")?.ok_or_else(|| ApiError::bad_request("message identifier is not specified"))?;
        let edits_text = key == "editmessagetext";
        let text = params.str("text");
        let parse_mode = params.str("parse_mode");
        let plain = if edits_text {
            let plain =
                checked_text(text.as_deref().unwrap_or(""), parse_mode.as_deref(), MAX_TEXT, "message is too long")?;
            if plain.is_empty() {
                return Err(ApiError::bad_request("message text is empty"));
            }
            Some(plain)
        } else {
            None
        };
        let reply_markup = reply_markup(params)?;
        let inline_markup = reply_markup.clone().filter(|m| m.get("inline_keyboard").is_some());
        let mut state = self.lock();
        let Some(known) = state.messages.get_mut(&(chat_id, message_id)) else {
            return Err(ApiError::bad_request("message to edit not found"));
        };
        if !known.from_bot {
            return Err(ApiError::bad_request("message can't be edited"));
        }
        let same_text = plain.as_ref().is_none_or(|plain| known.json.get("text") == Some(&json!(plain)));
        if same_text && known.json.get("reply_markup") == inline_markup.as_ref() {
            return Err(ApiError::bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same as a \
                 current content and reply markup of the message",
            ));
        }
        if let Some(plain) = plain {
            known.json["text"] = json!(plain);
        }
        let message = known.json.as_object_mut().expect("a known message is an object");
        match inline_markup {
            Some(markup) => message.insert("reply_markup".to_owned(), markup),
            None => message.remove("reply_markup"),
        };
        message.insert("edit_date".to_owned(), json!(objects::now()));
        let result = Value::Object(message.clone());
        state.edits.push(EditedMessage {
            method: method.to_owned(),
            chat_id,
            message_id,
            text: if edits_text { text } else { None },
            parse_mode,
            reply_markup,
            at: Instant::now(),
        });
        ok(result)
    }

    fn answer_callback_query(&self, params: &Params) -> Outcome {
        let id = params.str("callback_query_id").unwrap_or_default();
        let mut state = self.lock();
        // A query can be answered once; Telegram treats a second answer like an expired query.
        if !state.open_callbacks.remove(&id) {
            return Err(ApiError::bad_request("query is too old and response timeout expired or query id is invalid"));
        }
        state.answered.push(AnsweredCallback {
            callback_query_id: id,
            text: params.str("text"),
            show_alert: params.bool("show_alert"),
            url: params.str("url"),
            at: Instant::now(),
        });
        ok(json!(true))
    }

    fn get_file(&self, params: &Params) -> Outcome {
        let file_id = params.str("file_id").unwrap_or_default();
        let state = self.lock();
        let Some(file) = state.files.get(&file_id) else {
            return Err(ApiError::bad_request("invalid file_id"));
        };
        if file.bytes.len() > MAX_DOWNLOAD {
            return Err(ApiError::bad_request("file is too big"));
        }
        ok(json!({
            "file_id": file_id,
            "file_unique_id": file.unique_id,
            "file_size": file.bytes.len(),
            "file_path": file.path,
        }))
    }
}

impl State {
    fn check_not_blocked(&self, chat_id: i64) -> Result<(), ApiError> {
        match self.blocked.contains(&chat_id) {
            true => Err(ApiError::new(403, "Forbidden: bot was blocked by the user")),
            false => Ok(()),
        }
    }

    /// The message replied to, from `reply_parameters` or `reply_to_message_id`; it must exist in
    /// the chat unless `allow_sending_without_reply` says to send anyway.
    fn reply_to(&self, chat_id: i64, params: &Params) -> Result<Option<i64>, ApiError> {
        let (message_id, reply_chat, allow_without) = match params.json("reply_parameters")? {
            Some(reply) => (
                reply.get("message_id").and_then(Value::as_i64),
                reply.get("chat_id").and_then(Value::as_i64).unwrap_or(chat_id),
                reply.get("allow_sending_without_reply").and_then(Value::as_bool).unwrap_or(false),
            ),
            None => (params.int("reply_to_message_id")?, chat_id, params.bool("allow_sending_without_reply")),
        };
        let Some(message_id) = message_id else { return Ok(None) };
        match (self.messages.contains_key(&(reply_chat, message_id)), allow_without) {
            (true, _) => Ok(Some(message_id)),
            (false, true) => Ok(None),
            (false, false) => Err(ApiError::bad_request("message to be replied not found")),
        }
    }

    /// Completes a sent message's JSON, remembers it and records it.
    fn finish_sent(&mut self, mut message: Value, reply_to: Option<i64>, sent: SentMessage) -> Outcome {
        if let Some(reply) = reply_to.and_then(|id| self.messages.get(&(sent.chat_id, id))) {
            message["reply_to_message"] = reply.json.clone();
        }
        // Only inline keyboards belong to the message; reply keyboards belong to the chat.
        if let Some(markup) = sent.reply_markup.as_ref().filter(|m| m.get("inline_keyboard").is_some()) {
            message["reply_markup"] = markup.clone();
        }
        self.messages.insert((sent.chat_id, sent.message_id), KnownMessage { from_bot: true, json: message.clone() });
        self.sent.push(sent);
        ok(message)
    }

    /// The next `limit` deliverable updates, dropping those `allowed_updates` excludes (Telegram
    /// never creates them for the bot).
    fn take_batch(&mut self, limit: usize) -> Vec<String> {
        let allowed = self.allowed_updates.clone();
        let deliverable = |q: &Queued| match (&q.kind, &allowed) {
            (None, _) => true,
            (Some(kind), Some(list)) if !list.is_empty() => list.contains(kind),
            (Some(kind), _) => !NOT_DELIVERED_BY_DEFAULT.contains(&kind.as_str()),
        };
        self.queue.retain(deliverable);
        self.queue.iter().take(limit).map(|q| q.json.clone()).collect()
    }
}

/// `text` under `parse_mode` as plain text, trimmed as Telegram trims it, within `limit` characters.
fn checked_text(text: &str, parse_mode: Option<&str>, limit: usize, too_long: &str) -> Result<String, ApiError> {
    let plain = plain_text(text, parse_mode).map_err(|description| ApiError::new(400, &description))?;
    let plain = plain.trim().to_owned();
    if plain.chars().count() > limit {
        return Err(ApiError::bad_request(too_long));
    }
    Ok(plain)
}

/// `reply_markup`, checking what Telegram checks of inline keyboards.
fn reply_markup(params: &Params) -> Result<Option<Value>, ApiError> {
    let markup = params
        .json("reply_markup")
        .map_err(|_| ApiError::bad_request("can't parse reply keyboard markup JSON object"))?;
    let Some(markup) = markup else { return Ok(None) };
    if let Some(rows) = markup.get("inline_keyboard") {
        let rows = rows.as_array().ok_or_else(|| {
            ApiError::bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array")
        })?;
        for button in rows.iter().flat_map(|row| row.as_array().into_iter().flatten()) {
            if button.get("text").and_then(Value::as_str).is_none() {
                return Err(ApiError::bad_request("can't find field \"text\""));
            }
            if let Some(data) = button.get("callback_data") {
                let len = data.as_str().map_or(0, str::len);
                if !(1..=MAX_CALLBACK_DATA).contains(&len) {
                    return Err(ApiError::bad_request("BUTTON_DATA_INVALID"));
                }
            }
        }
    }
    Ok(Some(markup))
}

/// A list of strings, as a JSON array or, in forms, a JSON-serialized one.
fn string_list(params: &Params, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    match params.json(key)? {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())),
        Some(_) => Err(ApiError::bad_request(&format!("can't parse {key}"))),
    }
}
