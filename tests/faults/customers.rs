//! The customers' side: shops' reply receivers (customer webhooks), customers writing through a
//! webhook source, and visitors on real web chat WebSockets. Each customer writes a message,
//! waits for the agent's answer to it, and writes the next.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_channel_webhook::{decode_secret, signature};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::checker::{Checker, Outcome};
use super::desk::{tag, tagged};
use crate::SECRET;

/// How a shop's reply receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopMode {
    /// `204`.
    Ok,
    /// Always `500` (retried, then dead-lettered).
    Fail,
    /// Always `410` (dead-lettered at once).
    Gone,
}

/// The shops' reply receivers: source `s` receives at `<url>/s`.
pub struct Shop {
    /// Base URL.
    pub url: String,
    inner: Arc<ShopInner>,
}

struct ShopInner {
    modes: BTreeMap<String, ShopMode>,
    replies: Arc<Checker>,
    attempts: Mutex<BTreeMap<String, u32>>,
}

impl Shop {
    /// Starts the receivers for `sources` (name → how it answers).
    pub async fn start(modes: BTreeMap<String, ShopMode>, replies: Arc<Checker>) -> Shop {
        let inner = Arc::new(ShopInner { modes, replies, attempts: Mutex::new(BTreeMap::new()) });
        let app = axum::Router::new().route("/shop/{source}", axum::routing::post(shop)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the shop");
        let url = format!("http://{}/shop", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("shop serves") });
        Shop { url, inner }
    }

    /// The sources and their reply URLs, for the daemons' configuration.
    pub fn sources(&self) -> BTreeMap<String, String> {
        self.inner.modes.keys().map(|s| (s.clone(), format!("{}/{s}", self.url))).collect()
    }

    /// POSTs received per source, refused ones included.
    pub fn attempts(&self) -> BTreeMap<String, u32> {
        self.inner.attempts.lock().expect("shop lock").clone()
    }
}

async fn shop(
    State(shop): State<Arc<ShopInner>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    *shop.attempts.lock().expect("shop lock").entry(source.clone()).or_default() += 1;
    match shop.modes.get(&source) {
        Some(ShopMode::Ok) => {}
        Some(ShopMode::Fail) => return StatusCode::INTERNAL_SERVER_ERROR,
        Some(ShopMode::Gone) => return StatusCode::GONE,
        None => return StatusCode::NOT_FOUND,
    }
    let webhook_id = headers.get(signature::ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Ok(body) = serde_json::from_str::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    if body["kind"] == "agent_reply"
        && let Some(id) = body["text"].as_str().and_then(tagged)
    {
        shop.replies.delivered(id, webhook_id);
    }
    StatusCode::NO_CONTENT
}

/// What every customer shares.
#[derive(Clone)]
pub struct Env {
    /// Processes that take webhooks and web chats (tried in turn).
    pub entry_points: Arc<Mutex<Vec<String>>>,
    /// Customer messages (to agents).
    pub inbound: Arc<Checker>,
    /// Agents' replies (to customers).
    pub replies: Arc<Checker>,
    /// Give up waiting after this.
    pub deadline: Instant,
    /// Seconds added to the signing timestamp (the daemon's clock may be faked).
    pub clock_offset_secs: Arc<Mutex<i64>>,
    /// A client for the webhook.
    pub http: reqwest::Client,
}

impl Env {
    fn base(&self, n: usize) -> String {
        let bases = self.entry_points.lock().expect("env lock");
        bases[n % bases.len()].clone()
    }
}

/// A customer of webhook source `source` writing `count` messages in thread `customer`, each
/// after the previous one's answer; `wait_answers: false` writes them without waiting.
pub async fn webhook_customer(env: Env, source: String, customer: String, count: usize, wait_answers: bool) {
    let key = decode_secret(SECRET).expect("valid secret");
    let mut n = customer.bytes().map(usize::from).sum::<usize>();
    for k in 0..count {
        let id = format!("{customer}-{k}");
        let body = json!({
            "message_id": id, "customer": {"id": customer}, "thread_id": customer,
            "text": format!("Question {k} {}", tag(&id)),
        })
        .to_string();
        let outcome = loop {
            n += 1;
            let ts = chrono::Utc::now().timestamp() + *env.clock_offset_secs.lock().expect("env lock");
            env.inbound.invoke(&id);
            let resp = env
                .http
                .post(format!("{}/v1/webhooks/{source}", env.base(n)))
                .header("content-type", "application/json")
                .header(signature::ID, format!("evt-{id}"))
                .header(signature::TIMESTAMP, ts.to_string())
                .header(signature::SIGNATURE, signature::sign(&key, &format!("evt-{id}"), ts, body.as_bytes()))
                .body(body.clone())
                .send()
                .await
                .map(|r| r.status().as_u16());
            let outcome = match resp {
                Ok(202) => Outcome::Acked,
                Ok(408 | 429 | 500..) | Err(_) => Outcome::Indeterminate,
                Ok(_) => Outcome::Failed,
            };
            env.inbound.record(&id, outcome);
            if outcome != Outcome::Indeterminate || Instant::now() > env.deadline {
                break outcome;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if outcome != Outcome::Acked || !wait_answers {
            continue;
        }
        while !env.replies.is_delivered(&id) && Instant::now() < env.deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A web chat visitor: one session, reconnecting (to any entry point) with its token and the
/// last `seq` it saw, resending an unacknowledged message with the same `client_id`.
struct Visitor {
    env: Env,
    token: Option<String>,
    after: u64,
    socket: Option<Socket>,
    tries: usize,
}

impl Visitor {
    async fn connect(&mut self) -> bool {
        self.tries += 1;
        let url = format!("{}/chat/ws", self.env.base(self.tries).replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("a WebSocket request");
        request.headers_mut().insert("origin", "http://127.0.0.1".parse().expect("origin"));
        let connected = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(request)).await;
        let Ok(Ok((mut socket, _))) = connected else { return false };
        let hello = json!({"type": "hello", "token": self.token, "after": self.after, "lang": "en"});
        if socket.send(Frame::text(hello.to_string())).await.is_err() {
            return false;
        }
        self.socket = Some(socket);
        // History first, then `synced`.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.next(Duration::from_secs(5)).await {
                Some(v) if v["type"] == "synced" => return true,
                Some(_) => {}
                None => break,
            }
        }
        self.socket = None;
        false
    }

    /// The next frame (entries are recorded on the way); `None` when the socket closed or
    /// nothing came within `wait` (the socket is then dropped if it closed).
    async fn next(&mut self, wait: Duration) -> Option<Value> {
        let socket = self.socket.as_mut()?;
        match tokio::time::timeout(wait, socket.next()).await {
            Err(_) => None,
            Ok(Some(Ok(Frame::Text(text)))) => {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                match v["type"].as_str() {
                    Some("welcome") => self.token = v["token"].as_str().map(str::to_string),
                    Some("entry") => {
                        self.after = self.after.max(v["seq"].as_u64().unwrap_or(0));
                        let entry = &v["entry"];
                        if entry["kind"] == "agent"
                            && let (Some(id), Some(entry_id)) =
                                (entry["text"].as_str().and_then(tagged), entry["id"].as_str())
                        {
                            self.env.replies.delivered(id, entry_id);
                        }
                    }
                    _ => {}
                }
                Some(v)
            }
            Ok(Some(Ok(_))) => Some(Value::Null),
            Ok(Some(Err(_)) | None) => {
                self.socket = None;
                None
            }
        }
    }

    async fn send(&mut self, id: &str, text: &str) -> Outcome {
        loop {
            if Instant::now() > self.env.deadline {
                return Outcome::Indeterminate;
            }
            if self.socket.is_none() && !self.connect().await {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let frame = json!({"type": "send", "client_id": id, "text": text}).to_string();
            self.env.inbound.invoke(id);
            let sent = self.socket.as_mut().expect("connected").send(Frame::text(frame)).await;
            let outcome = if sent.is_err() {
                self.socket = None;
                Outcome::Indeterminate
            } else {
                self.answer(id).await
            };
            self.env.inbound.record(id, outcome);
            if outcome != Outcome::Indeterminate {
                return outcome;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reads until the `ack` or `error` for `client_id`.
    async fn answer(&mut self, client_id: &str) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Some(v) = self.next(Duration::from_secs(10)).await else {
                self.socket = None;
                return Outcome::Indeterminate;
            };
            if v["client_id"] != client_id {
                continue;
            }
            return match (v["type"].as_str(), v["code"].as_str()) {
                (Some("ack"), _) => Outcome::Acked,
                (Some("error"), Some(code)) if code == "unavailable" || code.starts_with("rate_limited") => {
                    Outcome::Indeterminate
                }
                _ => Outcome::Failed,
            };
        }
        self.socket = None;
        Outcome::Indeterminate
    }
}

/// A web chat visitor writing `count` messages, each after the previous one's answer; returns
/// its session token and the last `seq` it saw, for [`webchat_sweep`].
pub async fn webchat_customer(env: Env, name: String, count: usize) -> (Option<String>, u64) {
    let mut visitor = Visitor { env: env.clone(), token: None, after: 0, socket: None, tries: name.len() };
    for k in 0..count {
        let id = format!("{name}-{k}");
        if visitor.send(&id, &format!("Chat question {k} {}", tag(&id))).await != Outcome::Acked {
            continue;
        }
        while !env.replies.is_delivered(&id) && Instant::now() < env.deadline {
            if visitor.socket.is_none() && !visitor.connect().await {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            visitor.next(Duration::from_millis(500)).await;
        }
    }
    (visitor.token, visitor.after)
}

/// Reconnects a finished visitor once the bus is quiet and reads what its transcript gained
/// since `after`: a late second entry for an answer shows up as a duplicate.
pub async fn webchat_sweep(env: Env, token: Option<String>, after: u64) {
    let mut visitor = Visitor { env: env.clone(), token, after, socket: None, tries: 0 };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !visitor.connect().await {
        assert!(Instant::now() < deadline, "no entry point takes web chats for the final sweep");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
