//! A fake Slack on a free loopback port, speaking the documented wire formats so the Slack agent
//! endpoint runs unchanged against it: the Web API methods it calls (`auth.test`,
//! `conversations.open`, `chat.postMessage`, `chat.update`, `chat.postEphemeral`,
//! `files.getUploadURLExternal`, the upload URL, `files.completeUploadExternal`,
//! `apps.connections.open`), files served at `url_private_download` to the bot token, and a
//! Socket Mode WebSocket that sends envelopes and records acks. Every call is recorded; a test can
//! make methods answer `429` with `Retry-After` and `{"ok":false,"error":"ratelimited"}`
//! ([`FakeSlack::rate_limit`]). It also builds what Slack sends an app (signed Events API
//! bodies, `block_actions` payloads, slash commands) and posts them signed ([`SlackSigner`]).
//!
//! Rules enforced where cheap: the bearer token of each method (bot or app-level), known channels
//! (DMs opened, channels added), a section's 3,000 characters and 50 blocks per message, a
//! message's 40,000 characters, `chat.update` of an existing bot message only, an upload's length as
//! announced.

mod server;
mod socket;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot, watch};

/// The fake workspace's team id.
pub const FAKE_TEAM_ID: &str = "T0FAKE";
/// The bot user's id, as `auth.test` reports it and as the `user` of the bot's messages.
pub const FAKE_BOT_USER_ID: &str = "U0BOT";
/// The bot's id.
pub const FAKE_BOT_ID: &str = "B0BOT";

/// A running fake Slack for one bot token and one app-level token; it stops serving when dropped.
pub struct FakeSlack {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

/// A Web API call as the fake received it, failed ones included.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// The method (`chat.postMessage`).
    pub method: String,
    /// Its arguments: the JSON body, or the form's fields as strings.
    pub args: Value,
    /// The `ok` of the answer.
    pub ok: bool,
    /// The `error` of the answer, if any (`ratelimited`, `channel_not_found`, ...).
    pub error: Option<String>,
}

/// A message the bot posted, as it stands now (after `chat.update`s).
#[derive(Clone, Debug)]
pub struct Message {
    /// Channel id.
    pub channel: String,
    /// The message's `ts`.
    pub ts: String,
    /// The thread root it was posted under, if any.
    pub thread_ts: Option<String>,
    /// Its current `text`.
    pub text: String,
    /// Its current `blocks`, if any.
    pub blocks: Option<Value>,
    /// Every earlier version as [`Message::rendered`] showed it, oldest first (one per `chat.update`).
    pub earlier: Vec<String>,
    /// The person who wrote it, for messages a test sent as a user ([`FakeSlack::message_event`]);
    /// `None` for the bot's.
    pub user: Option<String>,
    /// Files uploaded into the channel with it (`files.completeUploadExternal`): their names.
    pub files: Vec<String>,
}

impl Message {
    /// The mrkdwn of its first section block (as sent, escapes and all), if it has one.
    pub fn section_text(&self) -> Option<&str> {
        let blocks = self.blocks.as_ref()?.as_array()?;
        blocks.iter().find(|b| b["type"] == "section").and_then(|b| b["text"]["text"].as_str())
    }

    /// The message as a person reads it: its section texts, then its buttons' labels in brackets
    /// (Slack's `&lt;`, `&gt;`, `&amp;` shown as the characters they stand for).
    pub fn rendered(&self) -> String {
        let unescape = |s: &str| s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
        let Some(blocks) = self.blocks.as_ref().and_then(Value::as_array) else { return unescape(&self.text) };
        let mut out = Vec::new();
        for b in blocks {
            match b["type"].as_str() {
                Some("section") => out.push(b["text"]["text"].as_str().unwrap_or_default().to_string()),
                Some("context") => {
                    let parts: Vec<&str> =
                        b["elements"].as_array().into_iter().flatten().filter_map(|e| e["text"].as_str()).collect();
                    out.push(parts.join(" "));
                }
                Some("actions") => {
                    let labels: Vec<String> = b["elements"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| format!("[{}]", e["text"]["text"].as_str().unwrap_or("?")))
                        .collect();
                    out.push(labels.join(" "));
                }
                _ => {}
            }
        }
        unescape(&out.join("\n"))
    }
}

/// A file uploaded through `files.getUploadURLExternal` + upload + `files.completeUploadExternal`.
#[derive(Clone, Debug)]
pub struct Upload {
    /// Slack's file id.
    pub id: String,
    /// The name given to `files.getUploadURLExternal`.
    pub filename: String,
    /// The bytes POSTed to the upload URL.
    pub bytes: Vec<u8>,
    /// Where `files.completeUploadExternal` shared it, if it was completed.
    pub channel: Option<String>,
    /// The thread it was shared into.
    pub thread_ts: Option<String>,
}

/// A Socket Mode acknowledgement the app sent.
#[derive(Clone, Debug)]
pub struct SocketAck {
    /// The `envelope_id` acked.
    pub envelope_id: String,
    /// The `payload` of the ack (a slash command's response), if any.
    pub payload: Option<Value>,
}

pub(crate) struct Shared {
    pub(crate) bot_token: String,
    pub(crate) app_token: String,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: watch::Sender<()>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) calls: Vec<ApiCall>,
    pub(crate) messages: Vec<Message>,
    /// DM channel by user id.
    pub(crate) dms: BTreeMap<String, String>,
    /// Channels the bot may post to besides DMs.
    pub(crate) channels: Vec<String>,
    pub(crate) next: u64,
    /// Method → (calls left to refuse, Retry-After seconds, only calls to this channel).
    pub(crate) limits: HashMap<String, (usize, u64, Option<String>)>,
    /// Method → (calls left to fail, the `error` they answer).
    pub(crate) failures: HashMap<String, (usize, String)>,
    pub(crate) uploads: Vec<Upload>,
    /// Files the agent "shared": id → bytes, served at `/files/<id>`.
    pub(crate) files: HashMap<String, Vec<u8>>,
    /// The connected Socket Mode client's outbox, if one is connected.
    pub(crate) socket: Option<mpsc::UnboundedSender<socket::Out>>,
    pub(crate) socket_connections: usize,
    pub(crate) acks: Vec<SocketAck>,
}

impl State {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn updated(&self) {
        self.changed.send_replace(());
    }
}

impl FakeSlack {
    /// Serves the fake for `bot_token` (`xoxb-...`) and `app_token` (`xapp-...`) on 127.0.0.1.
    pub async fn start(bot_token: &str, app_token: &str) -> FakeSlack {
        assert!(bot_token.starts_with("xoxb-") && app_token.starts_with("xapp-"), "use xoxb- and xapp- tokens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Slack to 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of a bound socket");
        let shared = Arc::new(Shared {
            bot_token: bot_token.into(),
            app_token: app_token.into(),
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(()),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = server::app(shared.clone(), addr);
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            let _ = serve.await;
        });
        FakeSlack { shared, addr, shutdown: Some(shutdown) }
    }

    /// The Web API base URL (`api_base`): `http://127.0.0.1:<port>/api`.
    pub fn api_base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Lets the bot post to channel `id` (a team channel it was invited to).
    pub fn add_channel(&self, id: &str) {
        self.shared.lock().channels.push(id.into());
    }

    /// The DM channel of `user` with the bot, once `conversations.open` opened it.
    pub fn dm_of(&self, user: &str) -> Option<String> {
        self.shared.lock().dms.get(user).cloned()
    }

    /// The next `times` calls of `method` answer HTTP 429 with `Retry-After: retry_after_secs`
    /// and `{"ok":false,"error":"ratelimited"}`, as Slack's rate limiter does.
    pub fn rate_limit(&self, method: &str, times: usize, retry_after_secs: u64) {
        self.shared.lock().limits.insert(method.into(), (times, retry_after_secs, None));
    }

    /// The next `times` calls of `method` answer `{"ok":false,"error":<error>}` (`internal_error`,
    /// `invalid_auth`, ...), as Slack does when something is wrong on its side or with the call.
    pub fn fail(&self, method: &str, times: usize, error: &str) {
        self.shared.lock().failures.insert(method.into(), (times, error.into()));
    }

    /// Like [`FakeSlack::rate_limit`], for calls whose `channel` is `channel` only.
    pub fn rate_limit_in(&self, method: &str, channel: &str, times: usize, retry_after_secs: u64) {
        self.shared.lock().limits.insert(method.into(), (times, retry_after_secs, Some(channel.into())));
    }

    /// The DM channel `conversations.open` gives for `user` (the fake's ids are fixed: `D` and
    /// the user id after its first letter).
    pub fn dm_id_for(user: &str) -> String {
        format!("D{}", &user[1..])
    }

    /// Every Web API call so far.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.lock().calls.clone()
    }

    /// The calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<ApiCall> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Every message the bot posted, in order, as it stands now.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.lock().messages.clone()
    }

    /// The messages in `channel` (roots and thread replies), in order.
    pub fn messages_in(&self, channel: &str) -> Vec<Message> {
        self.messages().into_iter().filter(|m| m.channel == channel).collect()
    }

    /// Completed and pending uploads.
    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.lock().uploads.clone()
    }

    /// Stores a file the agent shares, served at its `url_private_download` to the bot token;
    /// returns the file object a `message` event's `files[]` carries.
    pub fn add_file(&self, id: &str, name: &str, mimetype: &str, bytes: impl Into<Vec<u8>>) -> Value {
        let bytes = bytes.into();
        let size = bytes.len();
        self.shared.lock().files.insert(id.into(), bytes);
        let url = format!("http://{}/files/{id}/{name}", self.addr);
        json!({ "id": id, "name": name, "title": name, "mimetype": mimetype, "size": size,
                "url_private": url, "url_private_download": url })
    }

    /// Waits until `condition` holds over the fake's state (checked on every change), panicking
    /// with `what` after `timeout`.
    pub async fn wait_for<T>(&self, what: &str, timeout: Duration, condition: impl Fn(&FakeSlack) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changed.mark_unchanged();
            if let Some(v) = condition(self) {
                return v;
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                panic!("timed out after {timeout:?} waiting for {what}; calls: {:#?}", self.calls());
            }
        }
    }

    /// Sends a Socket Mode envelope of `kind` (`events_api`, `interactive`, `slash_commands`) with
    /// `payload` to the connected client; returns its `envelope_id`. Panics when no client is
    /// connected (wait for [`FakeSlack::socket_connections`] first).
    pub fn socket_send(&self, kind: &str, payload: Value) -> String {
        let mut state = self.shared.lock();
        let id = format!("env-{}", state.next_id());
        let envelope = json!({ "envelope_id": id, "type": kind, "payload": payload,
                               "accepts_response_payload": kind != "events_api", "retry_attempt": 0 });
        let socket = state.socket.as_ref().expect("no Socket Mode client is connected");
        socket.send(socket::Out::Text(envelope.to_string())).expect("the Socket Mode client is gone");
        id
    }

    /// Sends the same envelope again (what Slack does when an ack did not come in time).
    pub fn socket_resend(&self, envelope_id: &str, kind: &str, payload: Value) {
        let envelope = json!({ "envelope_id": envelope_id, "type": kind, "payload": payload,
                               "accepts_response_payload": kind != "events_api", "retry_attempt": 1 });
        let state = self.shared.lock();
        let socket = state.socket.as_ref().expect("no Socket Mode client is connected");
        socket.send(socket::Out::Text(envelope.to_string())).expect("the Socket Mode client is gone");
    }

    /// Sends `disconnect` (reason `refresh_requested`) and closes the socket, as Slack does every
    /// few hours; the client is expected to connect again.
    pub fn socket_disconnect(&self) {
        let state = self.shared.lock();
        if let Some(socket) = &state.socket {
            let frame = json!({ "type": "disconnect", "reason": "refresh_requested",
                                "debug_info": { "host": "fake-slack" } });
            let _ = socket.send(socket::Out::Text(frame.to_string()));
            let _ = socket.send(socket::Out::Close);
        }
    }

    /// How many Socket Mode connections were opened so far.
    pub fn socket_connections(&self) -> usize {
        self.shared.lock().socket_connections
    }

    /// Whether a Socket Mode client is connected now.
    pub fn socket_connected(&self) -> bool {
        self.shared.lock().socket.is_some()
    }

    /// Every Socket Mode ack received.
    pub fn socket_acks(&self) -> Vec<SocketAck> {
        self.shared.lock().acks.clone()
    }

    /// A `message` event (an `event_callback` body) by `user` in `channel`, in thread `thread_ts`
    /// when given, with a fresh `event_id`.
    pub fn message_event(&self, user: &str, channel: &str, text: &str, thread_ts: Option<&str>) -> Value {
        self.message_event_with(user, channel, text, thread_ts, Vec::new())
    }

    /// A `message` event sharing `files` (objects from [`FakeSlack::add_file`]).
    pub fn message_event_with(
        &self,
        user: &str,
        channel: &str,
        text: &str,
        thread_ts: Option<&str>,
        files: Vec<Value>,
    ) -> Value {
        let (n, ts) = {
            let mut state = self.shared.lock();
            let n = state.next_id();
            let ts = server::ts(n);
            // Slack keeps what the user wrote in the channel's history, as it keeps the bot's.
            state.messages.push(Message {
                channel: channel.into(),
                ts: ts.clone(),
                thread_ts: thread_ts.map(str::to_string),
                text: text.into(),
                blocks: None,
                earlier: Vec::new(),
                user: Some(user.into()),
                files: files.iter().filter_map(|f| f["name"].as_str().map(str::to_string)).collect(),
            });
            (n, ts)
        };
        let mut event = json!({ "type": "message", "user": user, "channel": channel, "channel_type": "im",
                                "text": text, "ts": ts, "event_ts": ts });
        if let Some(t) = thread_ts {
            event["thread_ts"] = json!(t);
        }
        if !files.is_empty() {
            event["subtype"] = json!("file_share");
            event["files"] = json!(files);
        }
        json!({ "token": "deprecated-verification-token", "team_id": FAKE_TEAM_ID, "api_app_id": "A0FAKE",
                "type": "event_callback", "event_id": format!("Ev{n:08}"), "event_time": n,
                "authorizations": [{ "user_id": FAKE_BOT_USER_ID, "is_bot": true }], "event": event })
    }

    /// A `block_actions` payload: `user` pressed the button `action_id` (with `value`) on the
    /// message `message_ts` in `channel`.
    pub fn block_actions(&self, user: &str, channel: &str, message_ts: &str, action_id: &str, value: &str) -> Value {
        let (n, message) = {
            let mut state = self.shared.lock();
            let n = state.next_id();
            let message = state.messages.iter().find(|m| m.channel == channel && m.ts == message_ts).cloned();
            (n, message)
        };
        let message = message.map_or(
            json!({ "ts": message_ts }),
            |m| json!({ "type": "message", "ts": m.ts, "text": m.text, "blocks": m.blocks, "user": FAKE_BOT_USER_ID }),
        );
        json!({
            "type": "block_actions", "team": { "id": FAKE_TEAM_ID }, "user": { "id": user },
            "api_app_id": "A0FAKE", "trigger_id": format!("{n}.trigger"),
            "container": { "type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false },
            "channel": { "id": channel }, "message": message,
            "response_url": "https://hooks.slack.com/actions/fake",
            "actions": [{ "type": "button", "action_id": action_id, "block_id": "offer", "value": value,
                          "action_ts": server::ts(n) }]
        })
    }

    /// A slash command's fields (`/sb <text>` by `user` in `channel`) with a fresh `trigger_id`.
    pub fn slash_command(&self, user: &str, channel: &str, text: &str) -> BTreeMap<String, String> {
        let n = self.shared.lock().next_id();
        [
            ("token", "deprecated-verification-token".to_string()),
            ("team_id", FAKE_TEAM_ID.into()),
            ("channel_id", channel.into()),
            ("user_id", user.into()),
            ("command", "/sb".into()),
            ("text", text.into()),
            ("api_app_id", "A0FAKE".into()),
            ("response_url", "https://hooks.slack.com/commands/fake".into()),
            ("trigger_id", format!("{n}.trigger")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// Posts what Slack posts to an app, signed `v0` with the app's signing secret, to the daemon's
/// `/v1/slack/events`, `/v1/slack/interactions` and `/v1/slack/commands`.
pub struct SlackSigner {
    base: String,
    secret: String,
    http: reqwest::Client,
}

/// The daemon's answer to a signed request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body, as text.
    pub body: String,
}

impl SlackSigner {
    /// A signer for the daemon at `base` (`http://127.0.0.1:<port>`) with `secret`.
    pub fn new(base: &str, secret: &str) -> SlackSigner {
        SlackSigner { base: base.trim_end_matches('/').into(), secret: secret.into(), http: reqwest::Client::new() }
    }

    /// `v0=<hex HMAC-SHA256>` of `v0:<timestamp>:<body>`.
    pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("v0:{timestamp}:").as_bytes());
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!("v0={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// POSTs `body` to `path` with `content_type`, signed at `timestamp` (now when `None`), with
    /// `X-Slack-Retry-Num` when `retry` is given.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        timestamp: Option<i64>,
        retry: Option<u32>,
    ) -> Answer {
        let ts = timestamp.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
        });
        let signature = Self::sign(&self.secret, ts, &body);
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type)
            .header("X-Slack-Request-Timestamp", ts.to_string())
            .header("X-Slack-Signature", signature)
            .body(body);
        if let Some(n) = retry {
            request = request.header("X-Slack-Retry-Num", n.to_string()).header("X-Slack-Retry-Reason", "http_timeout");
        }
        let response = request.send().await.expect("the daemon answers");
        let status = response.status().as_u16();
        Answer { status, body: response.text().await.unwrap_or_default() }
    }

    /// An Events API body to `/v1/slack/events`; `retry` as Slack's `X-Slack-Retry-Num`.
    pub async fn event(&self, body: &Value, retry: Option<u32>) -> Answer {
        self.post_raw("/v1/slack/events", "application/json", body.to_string().into_bytes(), None, retry).await
    }

    /// An interaction payload to `/v1/slack/interactions`, form-encoded as `payload=<json>`.
    pub async fn interaction(&self, payload: &Value) -> Answer {
        let body = form(&[("payload".to_string(), payload.to_string())]);
        self.post_raw("/v1/slack/interactions", "application/x-www-form-urlencoded", body, None, None).await
    }

    /// A slash command to `/v1/slack/commands`, form-encoded.
    pub async fn command(&self, fields: &BTreeMap<String, String>) -> Answer {
        let pairs: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        self.post_raw("/v1/slack/commands", "application/x-www-form-urlencoded", form(&pairs), None, None).await
    }
}

/// `k=v&...`, percent-encoded as a browser's form.
fn form(pairs: &[(String, String)]) -> Vec<u8> {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&").into_bytes()
}
