//! A fake VK API on a free loopback port, speaking the documented wire formats so the VK channel
//! runs unchanged against it: `groups.getLongPollServer` and the Long Poll server's `a_check`
//! (events numbered by `ts`, held until one comes or `wait` passes, `failed` 1/2/3 on demand),
//! `messages.send` with VK's `random_id` de-duplication (the same `random_id` for the same peer
//! answers the first message's id and sends nothing), the upload servers and save methods for
//! photos and documents, files served at URLs, and errors in VK's documented body
//! `{"error":{"error_code","error_msg","request_params"}}`. It also builds the events VK sends a
//! community (long poll and Callback API, with `secret`).
//!
//! Rules enforced: the community token (error 5), `random_id` present (error 100), a customer
//! who denied messages cannot be messaged (error 901), a message's 4,096 characters (error 914),
//! an inline keyboard's 5 buttons a row, 6 rows and 255-byte payloads (error 911), an upload
//! server's file saved once (error 100 on a second save).

mod server;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

/// The API version events are stamped with.
pub const FAKE_VK_VERSION: &str = "5.199";

/// A message the community sent (one `messages.send` that made a message).
#[derive(Clone, Debug)]
pub struct VkSent {
    /// VK's message id.
    pub id: i64,
    /// The dialog.
    pub peer_id: i64,
    /// The `random_id` it was sent with.
    pub random_id: i64,
    /// Its `message`.
    pub text: String,
    /// Its `attachment`s (`photo-1_2_key`, `doc-1_3`).
    pub attachments: Vec<String>,
    /// Its `keyboard`, parsed.
    pub keyboard: Option<Value>,
    /// Its `forward` (a reply to a customer's message), parsed.
    pub forward: Option<Value>,
}

/// An API call as the fake received it, failed ones included.
#[derive(Clone, Debug)]
pub struct VkCall {
    /// The method (`messages.send`).
    pub method: String,
    /// Its form fields, `access_token` left out.
    pub params: HashMap<String, String>,
    /// The `error_code` answered, if any.
    pub error: Option<i64>,
}

/// A file uploaded to an upload server and saved.
#[derive(Clone, Debug)]
pub struct VkUpload {
    /// `photo` or `doc`.
    pub kind: String,
    /// The file name of the multipart part.
    pub filename: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The attachment string it is sent as, once saved.
    pub attachment: Option<String>,
}

pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) group_id: u64,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: watch::Sender<()>,
}

#[derive(Default)]
pub(crate) struct State {
    /// Every event pushed; event `n` (0-based) is read by a `ts` of at most `n + 1`.
    pub(crate) events: Vec<Value>,
    /// The current long-poll key's number.
    pub(crate) key: u64,
    /// `failed` codes the next `a_check`s answer.
    pub(crate) inject: VecDeque<i64>,
    pub(crate) calls: Vec<VkCall>,
    pub(crate) sent: Vec<VkSent>,
    /// (peer, random_id) → message id.
    pub(crate) random_ids: HashMap<(i64, i64), i64>,
    /// Users who denied the community messages.
    pub(crate) denied: HashSet<i64>,
    /// Method → error codes its next calls answer.
    pub(crate) failures: HashMap<String, VecDeque<i64>>,
    pub(crate) next: i64,
    pub(crate) uploads: Vec<VkUpload>,
    /// Files served at `/files/<name>`.
    pub(crate) files: HashMap<String, Vec<u8>>,
    pub(crate) a_checks: usize,
    pub(crate) token_revoked: bool,
}

impl State {
    pub(crate) fn next_id(&mut self) -> i64 {
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

/// A running fake VK API for one community and its token; it stops serving when dropped.
pub struct FakeVk {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for FakeVk {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

impl FakeVk {
    /// Serves the fake for community `group_id` with `token` on 127.0.0.1.
    pub async fn start(group_id: u64, token: &str) -> FakeVk {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake VK to 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of a bound socket");
        let shared = Arc::new(Shared {
            token: token.into(),
            group_id,
            state: Mutex::new(State { next: 1000, ..State::default() }),
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
        FakeVk { shared, addr, shutdown: Some(shutdown) }
    }

    /// The API base URL (`api_url`): `http://127.0.0.1:<port>/method`.
    pub fn api_url(&self) -> String {
        format!("http://{}/method", self.addr)
    }

    /// Serves `bytes` at a URL, as VK serves photos, documents and voice messages; returns it.
    pub fn add_file(&self, name: &str, bytes: &[u8]) -> String {
        self.shared.lock().files.insert(name.into(), bytes.to_vec());
        format!("http://{}/files/{name}", self.addr)
    }

    /// Queues an event for the long poll (events get an `event_id`, `group_id` and `v` if they
    /// lack them); a `message_deny`/`message_allow` also changes whether the user may be messaged.
    pub fn push(&self, event: Value) -> Value {
        let event = self.stamp(event);
        let mut s = self.shared.lock();
        apply_permission(&mut s, &event);
        s.events.push(event.clone());
        drop(s);
        self.shared.updated();
        event
    }

    /// Applies what a Callback API event says about permissions (a `message_deny` sent by
    /// callback rather than pushed to the long poll) without queueing it.
    pub fn note(&self, event: &Value) {
        apply_permission(&mut self.shared.lock(), event);
    }

    fn stamp(&self, mut event: Value) -> Value {
        let n = self.shared.lock().next_id();
        if event.get("event_id").is_none() {
            event["event_id"] = json!(format!("{n:040x}"));
        }
        if event.get("group_id").is_none() {
            event["group_id"] = json!(self.shared.group_id);
        }
        if event.get("v").is_none() {
            event["v"] = json!(FAKE_VK_VERSION);
        }
        event
    }

    /// The event as the Callback API POSTs it: stamped, with `secret`.
    pub fn callback(&self, event: Value, secret: Option<&str>) -> Value {
        let mut event = self.stamp(event);
        if let Some(secret) = secret {
            event["secret"] = json!(secret);
        }
        event
    }

    /// The Callback API's `confirmation` request.
    pub fn confirmation(&self) -> Value {
        json!({ "type": "confirmation", "group_id": self.shared.group_id })
    }

    /// The next `a_check` answers `{"failed": code}` (1 with the current `ts`; 2 and 3 also
    /// expire the key, as VK does).
    pub fn inject_failed(&self, code: i64) {
        self.shared.lock().inject.push_back(code);
        self.shared.updated();
    }

    /// The next calls of `method` answer `{"error": {"error_code": code, ...}}`, one per code.
    pub fn fail(&self, method: &str, codes: &[i64]) {
        self.shared.lock().failures.entry(method.into()).or_default().extend(codes);
    }

    /// The token stops working (every call answers error 5) or works again.
    pub fn revoke_token(&self, revoked: bool) {
        self.shared.lock().token_revoked = revoked;
    }

    /// Whether `user` denied the community messages.
    pub fn is_denied(&self, user: i64) -> bool {
        self.shared.lock().denied.contains(&user)
    }

    /// Messages the community sent, in order.
    pub fn sent(&self) -> Vec<VkSent> {
        self.shared.lock().sent.clone()
    }

    /// Messages sent to `peer`.
    pub fn sent_to(&self, peer: i64) -> Vec<VkSent> {
        self.sent().into_iter().filter(|m| m.peer_id == peer).collect()
    }

    /// Every API call so far.
    pub fn calls(&self) -> Vec<VkCall> {
        self.shared.lock().calls.clone()
    }

    /// The calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<VkCall> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// How many `a_check`s were answered.
    pub fn a_checks(&self) -> usize {
        self.shared.lock().a_checks
    }

    /// Files uploaded to the upload servers.
    pub fn uploads(&self) -> Vec<VkUpload> {
        self.shared.lock().uploads.clone()
    }

    /// Waits until `condition` holds for the messages sent; panics naming `what` after `timeout`.
    pub async fn wait_for_sent(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&[VkSent]) -> bool,
    ) -> Vec<VkSent> {
        let mut changed = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent = self.sent();
            if condition(&sent) {
                return sent;
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                panic!("timed out after {timeout:?} waiting for {what}; sent: {sent:#?}");
            }
        }
    }

    /// A customer's text message (`message_new`, API 5.199 shape) in their private dialog.
    pub fn message_new(user: i64, cmid: i64, text: &str) -> Value {
        Self::message_with(user, cmid, text, vec![])
    }

    /// A customer's message with attachments (from [`FakeVk::photo`], [`FakeVk::doc`], ...).
    pub fn message_with(user: i64, cmid: i64, text: &str, attachments: Vec<Value>) -> Value {
        json!({
            "type": "message_new",
            "object": {
                "message": {
                    "date": 1_765_000_000 + cmid, "from_id": user, "id": 0, "out": 0, "version": 10_000 + cmid,
                    "attachments": attachments, "conversation_message_id": cmid, "fwd_messages": [],
                    "important": false, "is_hidden": false, "peer_id": user, "random_id": 0, "text": text
                },
                "client_info": {
                    "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback", "intent_subscribe", "intent_unsubscribe"],
                    "keyboard": true, "inline_keyboard": true, "carousel": true, "lang_id": 0
                }
            }
        })
    }

    /// A photo attachment with three sizes, the largest at `big_url`.
    pub fn photo(big_url: &str, small_url: &str) -> Value {
        json!({ "type": "photo", "photo": {
            "album_id": -3, "date": 1_765_000_000, "id": 457_239_017, "owner_id": 1234, "access_key": "ak1",
            "sizes": [
                { "height": 75, "width": 56, "type": "s", "url": small_url },
                { "height": 1280, "width": 960, "type": "z", "url": big_url },
                { "height": 604, "width": 453, "type": "x", "url": small_url }
            ],
            "text": "", "has_tags": false
        }})
    }

    /// A document attachment.
    pub fn doc(url: &str, title: &str, size: u64) -> Value {
        let ext = title.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        json!({ "type": "doc", "doc": { "id": 654_321, "owner_id": 1234, "title": title, "size": size, "ext": ext,
                 "date": 1_765_000_000, "type": 1, "url": url, "access_key": "dk1" } })
    }

    /// A voice message attachment.
    pub fn voice(ogg_url: &str, duration: u64) -> Value {
        json!({ "type": "audio_message", "audio_message": { "id": 777, "owner_id": 1234, "duration": duration,
                 "waveform": [0, 3, 9, 31, 12], "link_ogg": ogg_url, "link_mp3": format!("{ogg_url}.mp3"), "access_key": "vk1" } })
    }

    /// A sticker attachment.
    pub fn sticker() -> Value {
        json!({ "type": "sticker", "sticker": { "product_id": 1, "sticker_id": 9,
                 "images": [ { "url": "https://vk.com/sticker/1-9-128", "width": 128, "height": 128 } ] } })
    }

    /// A video attachment (a kind the channel cannot carry).
    pub fn video() -> Value {
        json!({ "type": "video", "video": { "id": 456_239_017, "owner_id": 1234, "title": "clip", "duration": 12 } })
    }

    /// A customer's message with a place (`geo`).
    pub fn message_geo(user: i64, cmid: i64, lat: f64, lon: f64) -> Value {
        let mut m = Self::message_new(user, cmid, "");
        m["object"]["message"]["geo"] = json!({ "type": "point", "coordinates": { "latitude": lat, "longitude": lon }, "place": { "title": "Nevsky prospect" } });
        m
    }

    /// A press of a text keyboard button: its label as the text and its payload.
    pub fn button_press(user: i64, cmid: i64, label: &str, payload: &str) -> Value {
        let mut m = Self::message_new(user, cmid, label);
        m["object"]["message"]["payload"] = json!(payload);
        m
    }

    /// `message_edit`: the customer changed message `cmid`.
    pub fn message_edit(user: i64, cmid: i64, text: &str) -> Value {
        json!({ "type": "message_edit", "object": {
            "date": 1_765_000_000 + cmid, "from_id": user, "id": 0, "out": 0, "peer_id": user, "text": text,
            "conversation_message_id": cmid, "update_time": 1_765_000_100 + cmid, "attachments": [], "version": 20_000 + cmid
        }})
    }

    /// `message_deny`: the customer forbade the community to message them.
    pub fn message_deny(user: i64) -> Value {
        json!({ "type": "message_deny", "object": { "user_id": user } })
    }

    /// `message_allow`: the customer allowed the community to message them.
    pub fn message_allow(user: i64) -> Value {
        json!({ "type": "message_allow", "object": { "user_id": user, "key": "deeplink" } })
    }
}

fn apply_permission(s: &mut State, event: &Value) {
    let user = event["object"]["user_id"].as_i64();
    match (event["type"].as_str(), user) {
        (Some("message_deny"), Some(u)) => {
            s.denied.insert(u);
        }
        (Some("message_allow"), Some(u)) => {
            s.denied.remove(&u);
        }
        _ => {}
    }
}
