//! The harness of the web-chat server tests: a channel on a real NATS server, spoken to over real
//! WebSockets.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_adapter::testkit::{RunningChannel, TestBus};
use switchboard_channel_webchat::{CHANNEL, TopicConfig, WebchatChannel, WebchatConfig};
use switchboard_core::contract::streams;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ORIGIN: &str = "http://shop.test";
pub const WAIT: Duration = Duration::from_secs(10);

/// A running web-chat channel on its own NATS server and HTTP listener.
pub struct Chat {
    pub bus: TestBus,
    pub base: String,
    pub running: Option<RunningChannel>,
    pub _dir: tempfile::TempDir,
}

/// The tests' channel settings: two keys, one allowed origin, 4 sockets per address, a topic.
pub fn config(dir: &std::path::Path) -> WebchatConfig {
    let secret = dir.join("session.key");
    std::fs::write(&secret, "session-key-for-tests-0123456789abcdef").unwrap();
    let identity = dir.join("identity.key");
    std::fs::write(&identity, "identity-key-for-tests").unwrap();
    let mut cfg = WebchatConfig {
        enabled: true,
        session_secret_file: Some(secret),
        identity_secret_file: Some(identity),
        allowed_origins: vec![ORIGIN.into()],
        max_connections_per_ip: 4,
        ..Default::default()
    };
    cfg.topics.insert("billing".into(), TopicConfig { en: "Billing".into(), ru: None, team: Some("billing".into()) });
    cfg
}

impl Chat {
    pub async fn start(edit: impl FnOnce(&mut WebchatConfig)) -> Chat {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        edit(&mut cfg);
        let bus = TestBus::start().await;
        let channel = WebchatChannel::new(&cfg, "main", bus.slot()).expect("channel");
        let running = bus.run_channel(channel, cfg.runtime.clone());
        let app = running.routes.clone().expect("web chat has routes");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        let chat = Chat { bus, base, running: Some(running), _dir: dir };
        // The live feed and the events consumer start with the channel; wait for the consumer.
        let js = chat.bus.bus.jetstream().clone();
        switchboard_adapter::testkit::wait_for("the events consumer", WAIT, || {
            let js = js.clone();
            async move {
                match js.get_stream(streams::EVENTS).await {
                    Ok(s) => s.consumer_info("webchat-events").await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
        chat
    }

    pub async fn connect_from(&self, origin: Option<&str>) -> Result<Ws, WsError> {
        let mut request = format!("ws://{}/chat/ws", self.base).into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws { ws })
    }

    /// A socket that said hello; returns it with the welcome frame.
    pub async fn open(&self, hello: Value) -> (Ws, Value) {
        let mut ws = self.connect_from(Some(ORIGIN)).await.expect("upgrade");
        let mut hello = hello;
        hello["type"] = "hello".into();
        ws.send(hello).await;
        let welcome = ws.next_of("welcome").await;
        (ws, welcome)
    }

    pub async fn envelopes(&self) -> Vec<switchboard_core::Envelope> {
        self.bus.envelopes(CHANNEL).await
    }
}

/// A visitor's socket.
pub struct Ws {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.expect("send frame");
    }

    /// The next text frame, or `None` when the socket closed (with its close code).
    pub async fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame within the wait");
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).expect("JSON frame")),
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next frame of one of `kinds`.
    pub async fn next_of_any(&mut self, kinds: &[&str]) -> Value {
        loop {
            let frame = self.next().await.unwrap_or_else(|code| panic!("closed ({code:?}) waiting for {kinds:?}"));
            if kinds.iter().any(|k| frame["type"] == *k) {
                return frame;
            }
        }
    }

    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await.unwrap_or_else(|code| panic!("closed ({code:?}) waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next entry of `kind`, skipping other frames.
    pub async fn entry_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next_of("entry").await;
            if frame["entry"]["kind"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the socket closes; its close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Err(code) = self.next().await {
                return code;
            }
        }
    }

    /// Entries until `synced`.
    pub async fn history(&mut self) -> Vec<Value> {
        let mut entries = Vec::new();
        loop {
            let frame = self.next().await.expect("history");
            match frame["type"].as_str() {
                Some("entry") => entries.push(frame),
                Some("synced") => return entries,
                _ => {}
            }
        }
    }
}

/// `kind:text` of each entry frame.
pub fn texts(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{}:{}", e["entry"]["kind"].as_str().unwrap(), e["entry"]["text"].as_str().unwrap_or("")))
        .collect()
}
