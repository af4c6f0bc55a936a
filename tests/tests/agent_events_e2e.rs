//! Agents on the API alone: an agent with no endpoint receives its offers, messages and updates
//! on `GET /v1/agent/events` (Server-Sent Events), resumes after a disconnect with
//! `Last-Event-ID` and gets exactly what it missed, lists its open offers, and accepts and
//! replies through `POST /v1/agent/commands`; an integration token streams any agent's
//! deliveries, an agent token only its own. A reply the customer's channel cannot deliver comes
//! back to the agent as `update/1` `delivery_failed`, on its endpoint and its stream, and the
//! conversation record marks the entry undelivered.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_e2e::{Receiver, TestDaemon};

const WAIT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice-token-for-tests";
const HELPDESK: &str = "helpdesk-integration-token";
const HELPDESK_SECRET: &str = "whsec_ZGF2ZS1oZWxwZGVzay1zZWNyZXQtZm9yLXRlc3Rz";

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<u64>,
    data: Value,
}

/// A client reading `GET /v1/agent/events`, as an `EventSource` would.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// Opens the stream; the status code when refused.
    async fn open(daemon: &TestDaemon, token: &str, query: &str, last_id: Option<u64>) -> Result<EventStream, u16> {
        let mut req = daemon.http.get(format!("{}/v1/agent/events{query}", daemon.base)).bearer_auth(token);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let response = req.send().await.expect("request sent");
        if response.status() != 200 {
            return Err(response.status().as_u16());
        }
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Ok(EventStream { response, buffer: String::new() })
    }

    /// The next event (keep-alive comments skipped), within [`WAIT`].
    async fn next(&mut self) -> Sse {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment
                }
                return Sse { event, id, data: serde_json::from_str(&data).expect("JSON data") };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk()).await.expect("an event in time");
            let chunk = chunk.expect("stream readable").expect("stream still open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event that is a delivery (not `ready`).
    async fn delivery(&mut self) -> Sse {
        loop {
            let e = self.next().await;
            if e.event != "ready" {
                return e;
            }
        }
    }
}

fn config(c: &mut switchboard::Config, dir: &std::path::Path, helpdesk: Option<&str>) {
    let (alice, integration) = (dir.join("alice.token"), dir.join("helpdesk.token"));
    std::fs::write(&alice, ALICE).unwrap();
    std::fs::write(&integration, HELPDESK).unwrap();
    c.router.enabled = true;
    c.routing = serde_json::from_value(json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 300 } },
        "agents": [
            { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" },
            { "id": "bob", "teams": ["support"], "tiers": ["L1"], "status": "away" }
        ]
    }))
    .unwrap();
    c.api.tokens.insert(
        "alice".into(),
        ApiTokenConfig { token_file: Some(alice), agent: Some("alice".into()), ..Default::default() },
    );
    c.api.tokens.insert("helpdesk".into(), ApiTokenConfig { token_file: Some(integration), ..Default::default() });
    if let Some(url) = helpdesk {
        let secret = dir.join("alice.secret");
        std::fs::write(&secret, HELPDESK_SECRET).unwrap();
        c.channels.webhook.agents.insert(
            "alice".into(),
            AgentEndpointConfig { url: url.into(), secret_file: Some(secret), ..Default::default() },
        );
    }
}

fn command(conversation: &str, action: Value) -> String {
    json!({ "conversation_id": conversation, "action": action }).to_string()
}

#[tokio::test]
async fn an_agent_on_the_api_alone_gets_offers_on_the_stream_replies_and_resumes_without_loss_or_repeats() {
    let shop = Receiver::start("/replies").await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start(Some(shop.url.clone()), |c| config(c, dir.path(), None)).await;

    // Refusals first.
    assert_eq!(EventStream::open(&daemon, "nope", "", None).await.err(), Some(401));
    assert_eq!(EventStream::open(&daemon, ALICE, "?agent_id=bob", None).await.err(), Some(403), "not alice's");
    assert_eq!(daemon.api(ALICE, "GET", "/v1/agent/offers?agent_id=bob", None).await.0, 403);
    let bad_resume = daemon.http.get(format!("{}/v1/agent/events", daemon.base)).bearer_auth(ALICE);
    assert_eq!(bad_resume.header("Last-Event-ID", "yesterday").send().await.unwrap().status(), 400);

    // Alice opens her stream: `ready` carries the position it starts after.
    let mut alice = EventStream::open(&daemon, ALICE, "", None).await.expect("alice's stream");
    let ready = alice.next().await;
    assert_eq!(ready.event, "ready");
    let start = ready.id.expect("ready has a position");
    // The helpdesk (an integration token) streams alice's deliveries too, from the same position.
    let mut helpdesk =
        EventStream::open(&daemon, HELPDESK, "?agent_id=alice", Some(start)).await.expect("integration stream");

    let body = r#"{"message_id":"m1","customer":{"id":"u-1"},"thread_id":"t-1","text":"Where is order 17?"}"#;
    assert_eq!(daemon.post_signed("evt_1", body).await.0, 202);
    let offer = alice.delivery().await;
    assert_eq!((offer.event.as_str(), &offer.data["agent_id"]), ("offer", &json!("alice")), "{offer:?}");
    assert_eq!(offer.data["history"][0]["text"], "Where is order 17?");
    assert_eq!(helpdesk.delivery().await, offer, "the same event, same id, on the integration stream");
    let conversation = offer.data["conversation_id"].as_str().unwrap().to_string();

    let (code, offers) = daemon.api(ALICE, "GET", "/v1/agent/offers", None).await;
    assert_eq!(code, 200, "{offers}");
    assert_eq!(offers["offers"].as_array().map(Vec::len), Some(1), "{offers}");
    assert_eq!(offers["offers"][0]["conversation_id"], json!(conversation));
    assert_eq!(offers["offers"][0]["offer_deadline"], offer.data["offer_deadline"]);
    assert_eq!(
        daemon.api(HELPDESK, "GET", "/v1/agent/offers", None).await.1["offers"],
        offers["offers"],
        "every agent's"
    );

    // Alice drops off right after the offer; meanwhile she is assigned, replies, and the
    // customer writes again.
    drop(alice);
    let (code, why) =
        daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&command(&conversation, json!({"type": "accept"})))).await;
    assert_eq!(code, 200, "{why}");
    let reply = command(&conversation, json!({"type": "reply", "text": "It left this morning."}));
    let (code, why) = daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&reply)).await;
    assert_eq!(code, 200, "{why}");
    let delivered = shop.wait_for("the reply at the shop", WAIT, |v| v["text"] == "It left this morning.").await;
    assert_eq!(delivered["customer_id"], "u-1");
    let (code, offers) = daemon.api(ALICE, "GET", "/v1/agent/offers", None).await;
    assert_eq!((code, offers["offers"].clone()), (200, json!([])), "accepted: no longer open");
    let body = r#"{"message_id":"m2","customer":{"id":"u-1"},"thread_id":"t-1","text":"Thanks!"}"#;
    assert_eq!(daemon.post_signed("evt_2", body).await.0, 202);
    let missed = [helpdesk.delivery().await, helpdesk.delivery().await];
    assert_eq!((missed[0].event.as_str(), &missed[0].data["change"]), ("update", &json!("assigned")));
    assert_eq!((missed[1].event.as_str(), &missed[1].data["entry"]["text"]), ("message", &json!("Thanks!")));

    // Back with the last id she saw: exactly what she missed, in order, not the offer again...
    let mut alice = EventStream::open(&daemon, ALICE, "", offer.id).await.expect("resumed stream");
    let ready = alice.next().await;
    assert_eq!((ready.event.as_str(), ready.id), ("ready", offer.id));
    assert_eq!([alice.delivery().await, alice.delivery().await], missed);
    // ...and nothing else before the next delivery (the resolution).
    let (code, why) = daemon
        .api(ALICE, "POST", "/v1/agent/commands", Some(&command(&conversation, json!({"type": "resolve"}))))
        .await;
    assert_eq!(code, 200, "{why}");
    let next = alice.delivery().await;
    assert_eq!((next.event.as_str(), &next.data["change"]), ("update", &json!("resolved")), "{next:?}");
    assert_eq!(helpdesk.delivery().await, next);

    // A position the stream never reached is said so, and the stream goes on from now.
    let mut lost = EventStream::open(&daemon, ALICE, "", Some(1_000_000)).await.expect("stream");
    assert_eq!(lost.next().await.event, "ready");
    let truncated = lost.next().await;
    assert_eq!(truncated.event, "truncated", "{truncated:?}");
    assert_eq!(truncated.data["requested_after"], 1_000_000);
    // Four streams per token and agent at most (alice holds two now).
    let _third = EventStream::open(&daemon, ALICE, "", None).await.expect("third");
    let _fourth = EventStream::open(&daemon, ALICE, "", None).await.expect("fourth");
    assert_eq!(EventStream::open(&daemon, ALICE, "", None).await.err(), Some(429));
    drop(lost);
    let deadline = Instant::now() + WAIT;
    // The slot is given back once the server notices the client left.
    while EventStream::open(&daemon, ALICE, "", None).await.is_err() {
        assert!(Instant::now() < deadline, "a closed stream's slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((alice, helpdesk));
    daemon.stop().await;
}

/// A shop endpoint that refuses every reply for good (`410 Gone`).
async fn gone_shop() -> String {
    let app = axum::Router::new()
        .route("/replies", axum::routing::post(|| async { (axum::http::StatusCode::GONE, "customer deleted") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/replies", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_reply_the_customer_never_gets_comes_back_to_the_agent_and_is_marked_undelivered() {
    let shop = gone_shop().await;
    let helpdesk = Receiver::start("/alice").await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start(Some(shop), |c| config(c, dir.path(), Some(&helpdesk.url))).await;
    let mut alice = EventStream::open(&daemon, ALICE, "", None).await.expect("alice's stream");

    let body = r#"{"message_id":"m1","customer":{"id":"u-9"},"thread_id":"t-9","text":"Hello?"}"#;
    assert_eq!(daemon.post_signed("evt_1", body).await.0, 202);
    let offer = alice.delivery().await;
    let conversation = offer.data["conversation_id"].as_str().unwrap().to_string();
    let (code, why) =
        daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&command(&conversation, json!({"type": "accept"})))).await;
    assert_eq!(code, 200, "{why}");
    let reply = command(&conversation, json!({"type": "reply", "text": "We are on it."}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&reply)).await.0, 200);

    // On her stream...
    let failed = loop {
        let e = alice.delivery().await;
        if e.data["change"] == "delivery_failed" {
            break e;
        }
    };
    let reason = failed.data["note"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("410"), "the reason names the refusal: {reason}");
    assert_eq!(failed.data["history"][0]["text"], "We are on it.", "with the reply that failed");
    // ...and on her helpdesk.
    let hooked = helpdesk.wait_for("delivery_failed at the helpdesk", WAIT, |v| v["change"] == "delivery_failed").await;
    assert_eq!(hooked["note"], json!(reason));

    // The record marks the reply undelivered; the conversation stays hers.
    let (code, record) = daemon.api(ALICE, "GET", &format!("/v1/conversations/{conversation}"), None).await;
    assert_eq!(code, 200, "{record}");
    let entry = record["history"].as_array().unwrap().iter().find(|e| e["text"] == "We are on it.").cloned();
    let entry = entry.expect("the reply in the history");
    assert_eq!(entry["undelivered"], json!(reason), "{record}");
    assert!(entry["outbound_id"].is_string(), "{entry}");
    assert_eq!((record["state"].clone(), record["agent"].clone()), (json!("assigned"), json!("alice")));
    drop(alice);
    daemon.stop().await;
}

/// `switchboard_http_connections_idle_closed_total` from `/metrics`, on a connection of its own
/// (closed at once, so never idle itself).
async fn idle_closed(daemon: &TestDaemon) -> u64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let metrics = client.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_http_connections_idle_closed_total ")?.trim().parse().ok())
        .expect("the idle-closed counter")
}

#[tokio::test]
async fn an_open_stream_outlives_the_idle_timeout_and_still_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start(None, |c| {
        config(c, dir.path(), None);
        c.http.idle_timeout_ms = 600;
    })
    .await;
    // The test client's pooled connection (from waiting for readiness) goes silent and is
    // closed as idle first: wait until that is counted, so the count moves for nothing else.
    let deadline = Instant::now() + WAIT;
    while idle_closed(&daemon).await == 0 {
        assert!(Instant::now() < deadline, "the silent pooled connection was never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = idle_closed(&daemon).await;
    let mut alice = EventStream::open(&daemon, ALICE, "", None).await.expect("alice's stream");
    assert_eq!(alice.next().await.event, "ready");
    // Quiet for more than three idle timeouts: keep-alive comments keep the stream open.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(idle_closed(&daemon).await, before, "the open stream was not closed as idle");
    let body = r#"{"message_id":"m1","customer":{"id":"u-3"},"text":"Still there?"}"#;
    assert_eq!(daemon.post_signed("evt_1", body).await.0, 202);
    assert_eq!(alice.delivery().await.event, "offer", "the stream still delivers");
    drop(alice);
    daemon.stop().await;
}
