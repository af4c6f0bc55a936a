//! A person's data has a lifecycle, through the real daemon on a real NATS: export gives
//! everything held about them, forget erases it from every stream, bucket and object store (and
//! the router's memory, across a restart) while another customer is untouched, and retention
//! ends what nobody wrote to for the configured time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::{ApiTokenConfig, Config};
use switchboard_channel_webchat::{WebchatConfig, sign_identity};
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_e2e::{ChatSocket, Receiver, SECRET, TestDaemon};
use switchboard_testkit::NatsServer;

const WAIT: Duration = Duration::from_secs(30);
const AGENT_TOKEN: &str = "alice-token-for-customer-tests";
const ADMIN_TOKEN: &str = "admin-token-for-customer-tests";
const SESSION_SECRET: &str = "customers-session-secret-0123456789abcdef";
const IDENTITY_SECRET: &str = "customers-identity-secret-0123";
const ORIGIN: &str = "http://shop.test";
/// Every identifier and text of the erased person contains this (`z` and `q` are not hex
/// digits, so no UUID or hash can contain it by chance).
const ANN: &str = "annzq";
/// The same for the customer who stays.
const BOB: &str = "bobzq";

/// Files the daemon reads its secrets from; kept for a restart.
struct Files {
    _dir: tempfile::TempDir,
    agent_secret: std::path::PathBuf,
    agent_token: std::path::PathBuf,
    admin_token: std::path::PathBuf,
    session: std::path::PathBuf,
    identity: std::path::PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        path
    };
    Files {
        agent_secret: file("agent.secret", SECRET),
        agent_token: file("alice.token", AGENT_TOKEN),
        admin_token: file("admin.token", ADMIN_TOKEN),
        session: file("session.key", SESSION_SECRET),
        identity: file("identity.key", IDENTITY_SECRET),
        _dir: dir,
    }
}

fn configure(c: &mut Config, f: &Files, helpdesk: &str) {
    c.router.enabled = true;
    c.routing = serde_json::from_value(json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 600 } },
        "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online",
                      "capacity": { "webhook": 5, "webchat": 5 } } ]
    }))
    .unwrap();
    c.channels.webhook.agents.insert(
        "alice".into(),
        AgentEndpointConfig { url: helpdesk.into(), secret_env: None, secret_file: Some(f.agent_secret.clone()) },
    );
    c.api.tokens.insert(
        "alice".into(),
        ApiTokenConfig { token_file: Some(f.agent_token.clone()), agent: Some("alice".into()), ..Default::default() },
    );
    c.api.tokens.insert(
        "admin".into(),
        ApiTokenConfig { token_file: Some(f.admin_token.clone()), admin: true, ..Default::default() },
    );
    c.channels.webchat = WebchatConfig {
        enabled: true,
        session_secret_file: Some(f.session.clone()),
        identity_secret_file: Some(f.identity.clone()),
        allowed_origins: vec![ORIGIN.into()],
        prechat: false,
        ..Default::default()
    };
}

/// Every message of every stream on the server (the contract's streams and those behind the
/// KV buckets and object stores), as `(stream, subject, headers and payload, payload)` in text.
async fn everything(nats: &NatsServer) -> Vec<(String, String, String, String)> {
    use futures::TryStreamExt;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
    assert!(names.len() >= 14, "streams, buckets and stores: {names:?}");
    let mut out = Vec::new();
    for name in names {
        let mut stream = js.get_stream(&name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        if state.messages == 0 {
            continue;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                let text = format!("{:?} {}", m.headers, String::from_utf8_lossy(&m.payload));
                out.push((name.clone(), m.subject.to_string(), text, String::from_utf8_lossy(&m.payload).into()));
            }
        }
    }
    out
}

/// What of `marks` is anywhere on the server (streams in `except` are not searched).
async fn left(nats: &NatsServer, marks: &[String], except: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (stream, subject, text, _) in everything(nats).await {
        if except.contains(&stream.as_str()) {
            continue;
        }
        let (subject_l, text_l) = (subject.to_lowercase(), text.to_lowercase());
        for mark in marks {
            let mark_l = mark.to_lowercase();
            if subject_l.contains(&mark_l) || text_l.contains(&mark_l) {
                found.push(format!("{stream} {subject}: {mark}"));
            }
        }
    }
    found
}

async fn customers_api(daemon: &TestDaemon, token: &str, method: reqwest::Method, id: &str) -> (u16, Value) {
    let path = match method {
        reqwest::Method::DELETE => format!("/v1/customers/{id}"),
        _ => format!("/v1/customers/{id}/export"),
    };
    let resp =
        daemon.http.request(method, format!("{}{path}", daemon.base)).bearer_auth(token).send().await.expect("sent");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn command(daemon: &TestDaemon, conversation: &str, action: Value) {
    let body = json!({ "conversation_id": conversation, "action": action }).to_string();
    let (code, why) = daemon.api(AGENT_TOKEN, "POST", "/v1/agent/commands", Some(&body)).await;
    assert_eq!(code, 200, "{action}: {why}");
}

fn webhook_message(id: &str, customer: Value, text: &str) -> String {
    json!({ "message_id": id, "customer": customer, "text": text }).to_string()
}

#[tokio::test]
async fn export_then_forget_leaves_nothing_of_the_person_anywhere_and_the_others_intact() {
    let helpdesk = Receiver::start("/alice").await;
    let shop = Receiver::start("/replies").await;
    let f = files();
    let url = helpdesk.url.clone();
    let daemon = TestDaemon::start(Some(shop.url.clone()), |c| configure(c, &f, &url)).await;
    let ann_email = format!("{ANN}@example.com");

    // Ann writes by webhook, Bob too; alice takes both and answers.
    let ann_hook = webhook_message(
        "m-ann-1",
        json!({ "id": format!("{ANN}-shop"), "name": "Ann ANNZQ", "email": ann_email }),
        &format!("{ANN}-hook-text: my card was charged twice"),
    );
    assert_eq!(daemon.post_signed("evt_ann_1", &ann_hook).await.0, 202);
    let bob_hook = webhook_message("m-bob-1", json!({ "id": format!("{BOB}-shop") }), &format!("{BOB}-hook-text"));
    assert_eq!(daemon.post_signed("evt_bob_1", &bob_hook).await.0, 202);
    let offer_of = |mark: String| move |v: &Value| v["type"] == "offer" && v["history"].to_string().contains(&mark);
    let ann_conv = helpdesk.wait_for("Ann's offer", WAIT, offer_of(format!("{ANN}-hook"))).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bob_conv = helpdesk.wait_for("Bob's offer", WAIT, offer_of(format!("{BOB}-hook"))).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (conv, reply) in [(&ann_conv, format!("{ANN}-reply")), (&bob_conv, format!("{BOB}-reply"))] {
        command(&daemon, conv, json!({ "type": "accept" })).await;
        command(&daemon, conv, json!({ "type": "reply", "text": reply })).await;
    }
    shop.wait_for("the reply to Ann", WAIT, |v| v["text"] == format!("{ANN}-reply")).await;
    shop.wait_for("the reply to Bob", WAIT, |v| v["text"] == format!("{BOB}-reply")).await;

    // Ann signs in on the web chat with the same address (one person), uploads a file and
    // writes; that conversation stays open (offered).
    let mut chat = ChatSocket::connect(&daemon.base, ORIGIN).await.expect("socket");
    let user = format!("{ANN}-user");
    let identity = json!({ "user_id": user, "hash": sign_identity(IDENTITY_SECRET.as_bytes(), &user),
                           "name": "Ann ANNZQ", "email": ann_email });
    let welcome = chat.hello(json!({ "identity": identity })).await;
    let (token, session) = (welcome["token"].as_str().unwrap(), welcome["session"].as_str().unwrap().to_string());
    let upload = daemon
        .http
        .post(format!("{}/chat/upload?token={token}", daemon.base))
        .header("origin", ORIGIN)
        .header("content-type", "text/plain")
        .header("x-filename", format!("{ANN}-passport.txt"))
        .body(format!("{ANN}-file-bytes"))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    let reference = upload.json::<Value>().await.unwrap()["ref"].clone();
    chat.send(
        json!({ "type": "send", "client_id": "c1", "text": format!("{ANN}-chat-text"), "attachments": [reference] }),
    )
    .await;
    assert_eq!(chat.outcome().await, "ack");
    let chat_offer = helpdesk.wait_for("Ann's web-chat offer", WAIT, offer_of(format!("{ANN}-chat"))).await;
    let chat_conv = chat_offer["conversation_id"].as_str().unwrap().to_string();
    assert!(chat_offer["history"].to_string().contains(&format!("{ANN}-hook")), "linked history: {chat_offer}");
    drop(chat);
    let ann_id = format!("webchat:user:{ANN}-user");

    // Only admin tokens, only <channel>:<id>.
    assert_eq!(customers_api(&daemon, AGENT_TOKEN, reqwest::Method::GET, &ann_id).await.0, 403);
    assert_eq!(customers_api(&daemon, "nobody", reqwest::Method::DELETE, &ann_id).await.0, 403);
    assert_eq!(customers_api(&daemon, ADMIN_TOKEN, reqwest::Method::DELETE, "no-channel").await.0, 400);

    // Export: everything about Ann, over both channels, nothing of Bob.
    let (code, export) = customers_api(&daemon, ADMIN_TOKEN, reqwest::Method::GET, &ann_id).await;
    assert_eq!(code, 200, "{export}");
    let text = export.to_string();
    for mark in ["-hook-text", "-chat-text", "-reply", "-passport.txt"] {
        assert!(text.contains(&format!("{ANN}{mark}")), "export lacks {mark}: {text}");
    }
    assert!(!text.contains(BOB), "Bob in Ann's export");
    let mut records: Vec<&str> =
        export["conversations"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
    records.sort();
    let mut expected = vec![ann_conv.as_str(), chat_conv.as_str()];
    expected.sort();
    assert_eq!(records, expected, "both of her conversation records");
    assert_eq!(export["attachments"].as_array().unwrap().len(), 1, "{}", export["attachments"]);
    let keys = export["identity"]["keys"].to_string();
    assert!(
        keys.contains(&format!("webhook:{ANN}-shop")) && keys.contains(&format!("email:{ANN}@example.com")),
        "{keys}"
    );
    let streams: Vec<&str> =
        export["messages"].as_array().unwrap().iter().filter_map(|m| m["stream"].as_str()).collect();
    for stream in ["SB_INBOUND", "SB_OUTBOUND", "SB_AGENT", "SB_EVENTS", "SB_ROUTER", "SB_WEBCHAT"] {
        assert!(streams.contains(&stream), "nothing of hers in {stream}: {streams:?}");
    }

    // Forget.
    let (code, erasure) = customers_api(&daemon, ADMIN_TOKEN, reqwest::Method::DELETE, &ann_id).await;
    assert_eq!(code, 200, "{erasure}");
    assert_eq!(erasure["conversations"], 2, "{erasure}");
    assert!(erasure["messages"].as_u64().unwrap() > 10 && erasure["objects"] == 1, "{erasure}");
    assert!(erasure["keys"].as_u64().unwrap() >= 2, "{erasure}");

    // Nothing of hers anywhere. KPIs keep per-conversation facts by conversation id only.
    let marks = [ANN.to_string(), session.clone()];
    let ids = [ann_conv.clone(), chat_conv.clone()];
    let check = |stage: &'static str| {
        let (marks, ids, nats) = (marks.clone(), ids.clone(), &daemon.nats);
        async move {
            let found = left(nats, &marks, &[]).await;
            assert!(found.is_empty(), "{stage}: her data is left:\n{}", found.join("\n"));
            let found = left(nats, &ids, &["OBJ_sb_metrics"]).await;
            assert!(found.is_empty(), "{stage}: her conversations are left:\n{}", found.join("\n"));
        }
    };
    check("after forget").await;
    let bob_left = left(&daemon.nats, &[BOB.to_string()], &[]).await;
    for place in ["SB_INBOUND", "SB_OUTBOUND", "KV_sb_conversations", "SB_ROUTER", "OBJ_sb_router_snapshots"] {
        assert!(bob_left.iter().any(|l| l.starts_with(place)), "Bob's data is gone from {place}: {bob_left:?}");
    }
    // The router's events are batches of one step each, maybe both of theirs: erasing hers
    // deleted or rewrote those batches and left his events.
    let bob_events = left(&daemon.nats, std::slice::from_ref(&bob_conv), &[]).await;
    assert!(bob_events.iter().any(|l| l.starts_with("SB_EVENTS")), "Bob's events are gone: {bob_events:?}");

    // One audit event, with counts and who asked, nothing about her (checked above).
    let audit: Vec<Value> = everything(&daemon.nats)
        .await
        .into_iter()
        .filter(|(_, subject, _, _)| subject == "sb.events.customer_forgotten")
        .map(|(_, _, _, payload)| serde_json::from_str(&payload).unwrap())
        .collect();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["data"]["requested_by"], "api:admin");
    assert_eq!(audit[0]["data"]["reference"], erasure["reference"]);
    assert_eq!(audit[0]["data"]["messages"], erasure["messages"]);

    // A second export finds nothing.
    let (code, again) = customers_api(&daemon, ADMIN_TOKEN, reqwest::Method::GET, &ann_id).await;
    assert_eq!(code, 200);
    assert!(
        again["messages"].as_array().unwrap().is_empty() && again["conversations"].as_array().unwrap().is_empty(),
        "{again}"
    );

    // A restart restores the router from its snapshot and journal: she does not come back.
    let nats = daemon.stop_keeping_nats().await;
    let url = helpdesk.url.clone();
    let daemon = TestDaemon::start_on(nats, Some(shop.url.clone()), |c| configure(c, &f, &url)).await;
    let marks2 = [ANN.to_string(), session.clone()];
    let found = left(&daemon.nats, &marks2, &[]).await;
    assert!(found.is_empty(), "after the restart her data is back:\n{}", found.join("\n"));

    // Bob is still routed: his next message goes to alice, who holds his conversation.
    let bob_again = webhook_message("m-bob-2", json!({ "id": format!("{BOB}-shop") }), &format!("{BOB}-again"));
    assert_eq!(daemon.post_signed("evt_bob_2", &bob_again).await.0, 202);
    let delivery = helpdesk
        .wait_for("Bob's next message", WAIT, |v| {
            v["type"] == "message" && v.to_string().contains(&format!("{BOB}-again"))
        })
        .await;
    assert_eq!(delivery["conversation_id"], bob_conv.as_str());

    // Ann writes again: a new conversation with no history of the old ones.
    let ann_back =
        webhook_message("m-ann-2", json!({ "id": format!("{ANN}-shop"), "email": ann_email }), &format!("{ANN}-back"));
    assert_eq!(daemon.post_signed("evt_ann_2", &ann_back).await.0, 202);
    let offer = helpdesk.wait_for("Ann's new offer", WAIT, offer_of(format!("{ANN}-back"))).await;
    assert!(![&ann_conv, &chat_conv].contains(&&offer["conversation_id"].as_str().unwrap().to_string()));
    let history: Vec<&str> = offer["history"].as_array().unwrap().iter().filter_map(|h| h["text"].as_str()).collect();
    assert_eq!(history, [format!("{ANN}-back")], "the router remembered her");
    daemon.stop().await;
}

/// Polls `check` until it holds or `WAIT` passes.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn retention_ends_records_messages_and_last_agent_memory() {
    let helpdesk = Receiver::start("/alice").await;
    let f = files();
    let url = helpdesk.url.clone();
    let daemon = TestDaemon::start(None, |c| {
        configure(c, &f, &url);
        // Short, so that a second contact is a new conversation, remembered by its agent.
        c.routing.reopen_window_secs = 1;
        c.privacy.test_retention_secs = Some(8);
        c.privacy.sweep_every_secs = 1;
    })
    .await;
    let js = async_nats::jetstream::new(async_nats::connect(daemon.nats.url()).await.unwrap());
    let records = js.get_key_value("sb_conversations").await.unwrap();
    let cara = json!({ "id": "cara-shop" });
    let contact = async |n: u32| -> String {
        let body = webhook_message(&format!("m-cara-{n}"), cara.clone(), &format!("cara-{n}"));
        assert_eq!(daemon.post_signed(&format!("evt_cara_{n}"), &body).await.0, 202);
        let offer = helpdesk
            .wait_for("Cara's offer", WAIT, |v| {
                v["type"] == "offer" && v["history"].to_string().contains(&format!("cara-{n}"))
            })
            .await;
        let conv = offer["conversation_id"].as_str().unwrap().to_string();
        command(&daemon, &conv, json!({ "type": "accept" })).await;
        command(&daemon, &conv, json!({ "type": "resolve" })).await;
        conv
    };
    let repeat = async |conv: &str| -> bool {
        let record = records.get(conv).await.unwrap().expect("the record");
        serde_json::from_slice::<Value>(&record).unwrap()["repeat"].as_bool().unwrap()
    };
    // Within the retention she is remembered: her second contact is a repeat one.
    let first = contact(1).await;
    // The reopen window is a span of time: it has to pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = contact(2).await;
    assert_ne!(first, second);
    assert!(repeat(&second).await, "remembered within the retention");

    // Past it: records of resolved conversations and her messages are gone, and so is the
    // router's memory of her agent.
    until("the records swept", async || {
        records.get(&first).await.unwrap().is_none() && records.get(&second).await.unwrap().is_none()
    })
    .await;
    until("her messages aged out", async || {
        switchboard_e2e::stored_on(&daemon.nats.url(), "SB_INBOUND", "sb.in.webhook").await == 0
    })
    .await;
    let third = contact(3).await;
    assert!(!repeat(&third).await, "the router still remembered her");
    daemon.stop().await;
}
