//! A fake WhatsApp Cloud API (Graph API) on a free loopback port, speaking the documented wire
//! formats so the WhatsApp channel runs unchanged against it: `POST /{version}/{phone-number-id}/messages`
//! (text, media by id or link, templates, `context`), `POST /{version}/{phone-number-id}/media`
//! (multipart upload), `GET /{version}/{media-id}` (the media's URL) and the media download,
//! `GET /{version}/{phone-number-id}` (the number, for a token check),
//! each with the bearer token checked. It records what was sent, and builds what Meta sends a
//! webhook: the notification JSON for every message type and status ([`notification`],
//! [`FakeGraph::message`], [`FakeGraph::status_for`]), signed with the app secret
//! ([`FakeGraph::sign`]).
//!
//! Rules enforced: the token (code 190), the phone number id (code 100), `messaging_product`,
//! a known `type` and its object, a text body of 1 to 4,096 characters, media ids that were
//! uploaded, approved template names (132001), and the 24-hour customer service window (131047)
//! from the time of the last message built for that customer. Errors use the documented body
//! `{"error":{"message","type","code","error_data","error_subcode","fbtrace_id"}}`; a test can
//! make the next sends fail with any of them ([`FakeGraph::fail_next`]).

mod server;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{oneshot, watch};

/// The Graph API version the fake serves (any `v<digits>.<digits>` is accepted).
pub const FAKE_GRAPH_VERSION: &str = "v21.0";

/// A message the business sent, as the fake received it.
#[derive(Clone, Debug)]
pub struct SentWhatsApp {
    /// The customer (`to`).
    pub to: String,
    /// `text`, `image`, `document`, `template`, ...
    pub kind: String,
    /// The `wamid` the fake gave it.
    pub wamid: String,
    /// The text body (for `text`).
    pub text: Option<String>,
    /// `context.message_id`: the message it answers.
    pub reply_to: Option<String>,
    /// `biz_opaque_callback_data`.
    pub callback: Option<String>,
    /// The whole request body.
    pub body: Value,
}

/// A file uploaded with `POST /{phone-number-id}/media`.
#[derive(Clone, Debug)]
pub struct WhatsAppUpload {
    /// The media id given.
    pub id: String,
    /// The `type` field (MIME type).
    pub mime_type: String,
    /// The file part's name.
    pub filename: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One Graph API call: method, path (without the query) and the status answered.
#[derive(Clone, Debug)]
pub struct GraphCall {
    /// `GET`, `POST`.
    pub method: String,
    /// The path.
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The `error.code` answered, if any.
    pub code: Option<i64>,
}

/// An error the Graph API answers, in its documented shape.
#[derive(Clone, Debug)]
pub struct GraphFault {
    /// The HTTP status.
    pub status: u16,
    /// `error.code`.
    pub code: i64,
    /// `error.error_subcode`, if any.
    pub subcode: Option<i64>,
    /// `error.message` (the title).
    pub message: String,
    /// `error.error_data.details`.
    pub details: String,
}

impl GraphFault {
    /// An error with this status, code and title.
    pub fn new(status: u16, code: i64, message: &str) -> GraphFault {
        GraphFault { status, code, subcode: None, message: message.into(), details: message.into() }
    }
    /// 130429: the number's throughput was reached.
    pub fn throughput() -> GraphFault {
        GraphFault::new(400, 130429, "Rate limit hit")
    }
    /// 131056: too many messages to one customer (the pair rate limit).
    pub fn pair_rate() -> GraphFault {
        GraphFault::new(400, 131056, "(Business Account, Consumer Account) pair rate limit hit")
    }
    /// 131026: the message cannot be delivered to this customer.
    pub fn undeliverable() -> GraphFault {
        GraphFault::new(400, 131026, "Message undeliverable")
    }
    /// 131000: something went wrong (retryable).
    pub fn internal() -> GraphFault {
        GraphFault::new(500, 131000, "Something went wrong")
    }
    /// The documented body.
    pub fn body(&self, trace: u64) -> Value {
        let mut error = json!({
            "message": format!("(#{}) {}", self.code, self.message),
            "type": "OAuthException",
            "code": self.code,
            "error_data": { "messaging_product": "whatsapp", "details": self.details },
            "fbtrace_id": format!("AFake{trace:08}"),
        });
        if let Some(s) = self.subcode {
            error["error_subcode"] = s.into();
        }
        json!({ "error": error })
    }
}

pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) app_secret: String,
    pub(crate) phone_number_id: String,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: watch::Sender<()>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) sent: Vec<SentWhatsApp>,
    pub(crate) calls: Vec<GraphCall>,
    pub(crate) uploads: Vec<WhatsAppUpload>,
    /// Media id → (MIME type, bytes), served to the token.
    pub(crate) media: HashMap<String, (String, Vec<u8>)>,
    /// Approved template names.
    pub(crate) templates: Vec<String>,
    /// Customer → when they last wrote (Unix seconds), from the messages built.
    pub(crate) last_inbound: BTreeMap<String, i64>,
    /// Faults for sends: (sends to let through first, sends left to fail, the fault).
    pub(crate) faults: Vec<(usize, usize, GraphFault)>,
    pub(crate) next: u64,
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

/// A running fake Graph API for one number; it stops serving when dropped.
pub struct FakeGraph {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// A notification as Meta POSTs it to the webhook: one entry, one change of field `messages`,
/// with `messages` (and a `contacts` profile per sender) and `statuses`.
pub fn notification(phone_number_id: &str, messages: Vec<Value>, statuses: Vec<Value>) -> Value {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": phone_number_id },
    });
    if !messages.is_empty() {
        let mut senders: Vec<&str> = messages.iter().filter_map(|m| m["from"].as_str()).collect();
        senders.dedup();
        let contacts: Vec<Value> =
            senders.iter().map(|s| json!({ "profile": { "name": format!("Customer {s}") }, "wa_id": s })).collect();
        value["contacts"] = contacts.into();
        value["messages"] = messages.into();
    }
    if !statuses.is_empty() {
        value["statuses"] = statuses.into();
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "value": value, "field": "messages" }] }]
    })
}

impl FakeGraph {
    /// Serves the fake for `token`, signing webhooks with `app_secret`, for the number
    /// `phone_number_id`, on 127.0.0.1. The template `reengage` is approved.
    pub async fn start(token: &str, app_secret: &str, phone_number_id: &str) -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Graph API");
        let addr = listener.local_addr().expect("local address of a bound socket");
        let state = State { templates: vec!["reengage".into()], ..State::default() };
        let shared = Arc::new(Shared {
            token: token.into(),
            app_secret: app_secret.into(),
            phone_number_id: phone_number_id.into(),
            state: Mutex::new(state),
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
        FakeGraph { shared, addr, shutdown: Some(shutdown) }
    }

    /// The Graph API's base URL (`graph_url`): `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every message sent so far, in order.
    pub fn sent(&self) -> Vec<SentWhatsApp> {
        self.shared.lock().sent.clone()
    }

    /// The messages sent to `to`.
    pub fn sent_to(&self, to: &str) -> Vec<SentWhatsApp> {
        self.sent().into_iter().filter(|m| m.to == to).collect()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<GraphCall> {
        self.shared.lock().calls.clone()
    }

    /// Every upload so far.
    pub fn uploads(&self) -> Vec<WhatsAppUpload> {
        self.shared.lock().uploads.clone()
    }

    /// Serves a customer's media file under `id` (to the token only).
    pub fn add_media(&self, id: &str, mime_type: &str, bytes: impl Into<Vec<u8>>) {
        self.shared.lock().media.insert(id.into(), (mime_type.into(), bytes.into()));
    }

    /// Approves another template name.
    pub fn add_template(&self, name: &str) {
        self.shared.lock().templates.push(name.into());
    }

    /// The next `times` sends (`/messages`) answer `fault`.
    pub fn fail_next(&self, times: usize, fault: GraphFault) {
        self.fail_after(0, times, fault);
    }

    /// After `skip` more sends succeed, the `times` sends after them answer `fault` (a failure
    /// between the parts of a split reply).
    pub fn fail_after(&self, skip: usize, times: usize, fault: GraphFault) {
        self.shared.lock().faults.push((skip, times, fault));
    }

    /// Waits until `condition` holds over the fake (checked on every change), panicking with
    /// `what` after `timeout`.
    pub async fn wait_for<T>(&self, what: &str, timeout: Duration, condition: impl Fn(&FakeGraph) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changed.mark_unchanged();
            if let Some(v) = condition(self) {
                return v;
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                panic!("timed out after {timeout:?} waiting for {what}; sent: {:#?}", self.sent());
            }
        }
    }

    /// `sha256=<hex>` of `body` with the app secret: the `X-Hub-Signature-256` Meta sends.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.shared.app_secret.as_bytes()).expect("any key length");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// POSTs `notification` to `url` signed, as Meta does; the status and body answered.
    pub async fn deliver(&self, url: &str, notification: &Value) -> (u16, String) {
        let body = notification.to_string();
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", self.sign(body.as_bytes()))
            .body(body)
            .send()
            .await
            .expect("webhook POST");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// A new `wamid` for a customer's message.
    pub fn wamid(&self) -> String {
        let n = self.shared.lock().next_id();
        format!("wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUZBS0U{n:012}AA==")
    }

    /// A customer's message of `kind` with its `body` object, sent `ago` before now; the customer's
    /// window opens at that time.
    pub fn message_at(&self, from: &str, kind: &str, body: Value, ago: Duration) -> Value {
        let at = now() - ago.as_secs() as i64;
        {
            let mut state = self.shared.lock();
            let last = state.last_inbound.entry(from.into()).or_insert(at);
            *last = (*last).max(at);
        }
        let mut m = json!({ "from": from, "id": self.wamid(), "timestamp": at.to_string(), "type": kind });
        if kind == "contacts" {
            m["contacts"] = body;
        } else {
            m[kind] = body;
        }
        m
    }

    /// A customer's message of `kind` with its `body` object, sent now.
    pub fn message(&self, from: &str, kind: &str, body: Value) -> Value {
        self.message_at(from, kind, body, Duration::ZERO)
    }

    /// A notification of these messages for this fake's number.
    pub fn notification(&self, messages: Vec<Value>) -> Value {
        notification(&self.shared.phone_number_id, messages, vec![])
    }

    /// A text message.
    pub fn text(&self, from: &str, text: &str) -> Value {
        self.message(from, "text", json!({ "body": text }))
    }

    /// A media message (`image`, `video`, `audio`, `document`, `sticker`) of a file served by
    /// [`FakeGraph::add_media`] under `media_id`.
    pub fn media(&self, from: &str, kind: &str, media_id: &str, caption: Option<&str>) -> Value {
        let mime = self.shared.lock().media.get(media_id).map(|m| m.0.clone()).unwrap_or_else(|| "image/jpeg".into());
        let mut body = json!({ "mime_type": mime, "sha256": "bm90IGNoZWNrZWQ=", "id": media_id });
        if let Some(c) = caption {
            body["caption"] = c.into();
        }
        match kind {
            "audio" => body["voice"] = true.into(),
            "document" => body["filename"] = "document.pdf".into(),
            "sticker" => body["animated"] = false.into(),
            _ => {}
        }
        self.message(from, kind, body)
    }

    /// One message of every type the Cloud API documents that carries no media: location,
    /// contacts, a button reply, a list reply, a template's quick-reply button, a reaction to
    /// `reacted_to`.
    pub fn every_other_kind(&self, from: &str, reacted_to: &str) -> Vec<Value> {
        vec![
            self.message(
                from,
                "location",
                json!({ "latitude": 37.483307, "longitude": -122.148981, "name": "Main Office", "address": "1 Hacker Way, Menlo Park, CA 94025" }),
            ),
            self.message(
                from,
                "contacts",
                json!([{ "name": { "formatted_name": "Barbara J. Johnson", "first_name": "Barbara" },
                         "phones": [{ "phone": "+1 (940) 555-1234", "wa_id": "19405551234", "type": "HOME" }] }]),
            ),
            self.message(from, "interactive", json!({ "type": "button_reply", "button_reply": { "id": "yes", "title": "Yes" } })),
            self.message(
                from,
                "interactive",
                json!({ "type": "list_reply", "list_reply": { "id": "express", "title": "Express", "description": "Next day" } }),
            ),
            self.message(from, "button", json!({ "payload": "TALK_TO_A_HUMAN", "text": "Talk to a human" })),
            self.message(from, "reaction", json!({ "message_id": reacted_to, "emoji": "\u{1F44D}" })),
        ]
    }

    /// A message of a type WhatsApp itself cannot show the business (`unsupported`, with its error).
    pub fn unsupported(&self, from: &str) -> Value {
        let mut m = self.message(from, "unsupported", Value::Null);
        m.as_object_mut().map(|o| o.remove("unsupported"));
        m["errors"] = json!([{ "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                               "error_data": { "details": "Message type is currently not supported." } }]);
        m
    }

    /// A status notification for a message the fake took: `sent`, `delivered`, `read`, or
    /// `failed` with `error` (code, title).
    pub fn status_for(&self, sent: &SentWhatsApp, status: &str, error: Option<(i64, &str)>) -> Value {
        let mut s = json!({
            "id": sent.wamid, "status": status, "timestamp": now().to_string(), "recipient_id": sent.to,
            "conversation": { "id": "CONVERSATION_ID", "origin": { "type": "service" } },
            "pricing": { "billable": true, "pricing_model": "PMP", "category": "service" },
        });
        if let Some(c) = &sent.callback {
            s["biz_opaque_callback_data"] = c.clone().into();
        }
        if let Some((code, title)) = error {
            s["errors"] =
                json!([{ "code": code, "title": title, "message": title, "error_data": { "details": title } }]);
        }
        notification(&self.shared.phone_number_id, vec![], vec![s])
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}
