//! End-to-end tests and benchmarks across Switchboard's crates, against real servers.
//!
//! The helpers here run the real daemon in-process on `127.0.0.1:0` against a real NATS server
//! and sign requests the way a webhook source does.

pub mod docs;
pub mod faults;
pub mod mail;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard::Config;
use switchboard_channel_webhook::{SourceConfig, decode_secret, signature};
use switchboard_testkit::NatsServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A fixed development secret for test sources.
pub const SECRET: &str = "whsec_ZTJlLXRlc3Qtc2VjcmV0LWZvci1zd2l0Y2hib2FyZA==";

/// A daemon running in this process, with its own NATS server.
pub struct TestDaemon {
    /// The NATS server it talks to.
    pub nats: NatsServer,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestDaemon {
    /// Starts NATS and the daemon with one webhook source `shop` (secret [`SECRET`]) whose replies
    /// go to `outbound_url`; returns once `/readyz` says ready.
    pub async fn start(outbound_url: Option<String>, edit: impl FnOnce(&mut Config)) -> TestDaemon {
        Self::start_on(NatsServer::start(), outbound_url, edit).await
    }

    /// Like [`TestDaemon::start`], on a NATS server that is already running (e.g. one a stopped
    /// daemon left with its state).
    pub async fn start_on(
        nats: NatsServer,
        outbound_url: Option<String>,
        edit: impl FnOnce(&mut Config),
    ) -> TestDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let secret_file: PathBuf = dir.path().join("shop.secret");
        std::fs::write(&secret_file, SECRET).expect("write secret");
        let mut config = Config::default();
        config.nats.url = nats.url();
        config.channels.webhook.sources.insert(
            "shop".into(),
            SourceConfig { secret_file: Some(secret_file), outbound_url, ..SourceConfig::default() },
        );
        // The router needs a routing configuration; tests that route turn it on and give one.
        config.router.enabled = false;
        edit(&mut config);
        Self::start_with(nats, config, dir).await
    }

    /// Starts the daemon on `config` exactly as given (e.g. the repository's
    /// `config/default.toml`, loaded and edited by the caller), on `127.0.0.1:0`; `dir` is kept
    /// until the daemon is dropped (files the config names). Returns once `/readyz` says ready.
    pub async fn start_with(nats: NatsServer, config: Config, dir: tempfile::TempDir) -> TestDaemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchboard::daemon::run(config, listener, shutdown.clone()));
        let daemon = TestDaemon { nats, base, http: reqwest::Client::new(), shutdown, task, _dir: dir };
        daemon.wait_ready(Duration::from_secs(15)).await;
        daemon
    }

    async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.http.get(format!("{}/readyz", self.base)).send().await.map(|r| r.status().as_u16());
            if matches!(status, Ok(200)) {
                return;
            }
            if Instant::now() >= deadline {
                let detail = match self.http.get(format!("{}/readyz", self.base)).send().await {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                let stopped = if self.task.is_finished() { " (the daemon stopped: an error at start-up)" } else { "" };
                panic!("daemon not ready within {timeout:?}{stopped}: {status:?} {detail}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs `body` to `/v1/webhooks/shop`, signed with [`SECRET`]; returns status and JSON body.
    pub async fn post_signed(&self, id: &str, body: &str) -> (u16, serde_json::Value) {
        let key = decode_secret(SECRET).expect("valid secret");
        let ts = chrono::Utc::now().timestamp();
        let resp = self
            .http
            .post(format!("{}/v1/webhooks/shop", self.base))
            .header("content-type", "application/json")
            .header(signature::ID, id)
            .header(signature::TIMESTAMP, ts.to_string())
            .header(signature::SIGNATURE, signature::sign(&key, id, ts, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Calls the agent API with a bearer token; returns status and JSON body.
    pub async fn api(&self, token: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            _ => self.http.get(url),
        };
        let req = req.body(body.unwrap_or_default().to_string());
        let resp =
            req.bearer_auth(token).header("content-type", "application/json").send().await.expect("request sent");
        (resp.status().as_u16(), resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The conversation record `GET /v1/conversations/{id}` shows (with `token`) once `ready`
    /// holds for it; fails the test, saying `what` was awaited, after 20 s.
    pub async fn record_when(
        &self,
        token: &str,
        id: &str,
        what: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, record) = self.api(token, "GET", &format!("/v1/conversations/{id}"), None).await;
            if code == 200 && ready(&record) {
                return record;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {code} {record}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the daemon and waits for it to finish cleanly.
    pub async fn stop(self) {
        self.stop_keeping_nats().await;
    }

    /// Stops the daemon cleanly and hands back its NATS server, still running, with its state.
    pub async fn stop_keeping_nats(self) -> NatsServer {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("daemon stops within 30 s")
            .expect("daemon task")
            .expect("daemon exits cleanly");
        self.nats
    }
}

/// An HTTP endpoint that records every POST it receives (headers and body) and answers `204`:
/// stands in for a shop's reply receiver or an agent's helpdesk.
pub struct Receiver {
    /// The URL to POST to.
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

impl Receiver {
    /// Starts a receiver on a free port at `path`.
    pub async fn start(path: &str) -> Receiver {
        let received: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>> = Default::default();
        let (sink, source) = (received.clone(), received.clone());
        // GET lists the JSON bodies received so far, for test drivers outside this process.
        let list = move || {
            let source = source.clone();
            async move {
                let bodies: Vec<serde_json::Value> = source
                    .lock()
                    .expect("receiver lock")
                    .iter()
                    .filter_map(|(_, body)| serde_json::from_str(body).ok())
                    .collect();
                axum::Json(bodies)
            }
        };
        let app = axum::Router::new().route(
            path,
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("receiver lock").push((headers, body));
                    axum::http::StatusCode::NO_CONTENT
                }
            })
            .get(list),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
        Receiver { url, received }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<(axum::http::HeaderMap, String)> {
        self.received.lock().expect("receiver lock").clone()
    }

    /// Waits until a received body satisfies `matches`, and returns it parsed as JSON.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .received()
                .into_iter()
                .filter_map(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                .find(|v| matches(v));
            if let Some(v) = found {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Asserts that a received POST carries a valid Standard Webhooks signature made with [`SECRET`].
pub fn verify_signed(headers: &axum::http::HeaderMap, body: &str) {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let key = decode_secret(SECRET).expect("valid secret");
    let now = chrono::Utc::now().timestamp();
    signature::verify(
        &key,
        h(signature::ID),
        h(signature::TIMESTAMP),
        h(signature::SIGNATURE),
        body.as_bytes(),
        now,
        300,
    )
    .expect("signed with the shared test secret");
}

/// Signs `body` for source `shop` as a webhook source would at Unix time `ts`: the headers
/// `webhook-id`, `webhook-timestamp` and `webhook-signature`.
pub fn signed_headers(id: &str, ts: i64, body: &str) -> [(&'static str, String); 3] {
    let key = decode_secret(SECRET).expect("valid secret");
    [
        (signature::ID, id.to_string()),
        (signature::TIMESTAMP, ts.to_string()),
        (signature::SIGNATURE, signature::sign(&key, id, ts, body.as_bytes())),
    ]
}

/// How many messages `stream` holds on `subject`.
pub async fn stored_on(nats_url: &str, stream: &str, subject: &str) -> usize {
    let client = async_nats::connect(nats_url).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("stream");
    let info = stream.info().await.expect("stream info");
    let mut n = 0;
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await
            && m.subject.as_str() == subject
        {
            n += 1;
        }
    }
    n
}

/// The events a message of `SB_EVENTS` holds, decoded as every reader does
/// ([`switchboard_core::decode_events`]): one for an `event/1` on `sb.events.<kind>`, several for
/// the router's `events/1` batches on `sb.events.batch`. A message that is neither fails the test.
pub fn events_in(message: &async_nats::jetstream::Message) -> Vec<switchboard_core::Event> {
    let schema = message.headers.as_ref().and_then(|h| h.get(switchboard_core::contract::headers::SCHEMA));
    switchboard_core::decode_events(schema.map(|s| s.as_str()), &message.payload)
        .unwrap_or_else(|e| panic!("a message on {} that is not events: {e}", message.subject))
}

/// A web-chat visitor's WebSocket on a daemon's `/chat/ws`.
pub struct ChatSocket {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl ChatSocket {
    /// Opens a socket as a page of `origin` would; the HTTP status when the upgrade is refused.
    pub async fn connect(base: &str, origin: &str) -> Result<ChatSocket, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/chat/ws", base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert("origin", origin.parse().expect("origin header"));
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(ChatSocket { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("web-chat socket failed: {e}"),
        }
    }

    /// Sends one JSON frame.
    pub async fn send(&mut self, frame: serde_json::Value) {
        use futures::SinkExt;
        let text = tokio_tungstenite::tungstenite::Message::text(frame.to_string());
        self.ws.send(text).await.expect("send frame");
    }

    /// The next JSON frame; panics when the socket closes or nothing comes within 10 s.
    pub async fn next(&mut self) -> serde_json::Value {
        use futures::StreamExt;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next()).await.expect("a frame in 10 s");
            match msg {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                    return serde_json::from_str(&t).expect("JSON frame");
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => panic!("socket closed: {f:?}"),
                Some(Ok(_)) => continue,
                other => panic!("socket failed: {other:?}"),
            }
        }
    }

    /// Says `hello` and reads the history up to `synced`; returns the welcome frame.
    pub async fn hello(&mut self, mut hello: serde_json::Value) -> serde_json::Value {
        hello["type"] = "hello".into();
        self.send(hello).await;
        let mut welcome = None;
        loop {
            let frame = self.next().await;
            match frame["type"].as_str() {
                Some("welcome") => welcome = Some(frame),
                Some("synced") => return welcome.expect("welcome before synced"),
                _ => {}
            }
        }
    }

    /// Reads frames until an `ack` or an `error`; returns `"ack"` or the error's code.
    pub async fn outcome(&mut self) -> String {
        loop {
            let frame = self.next().await;
            match frame["type"].as_str() {
                Some("ack") => return "ack".into(),
                Some("error") => return frame["code"].as_str().unwrap_or("error").to_string(),
                _ => {}
            }
        }
    }
}
