//! WhatsApp end to end through the daemon, against the test kit's fake Graph API (Meta's Cloud API
//! is unreachable from CI): a customer on WhatsApp reaches an agent whose helpdesk is a webhook
//! endpoint, the agent's reply goes back to WhatsApp answering the customer's message, and its
//! statuses come back as events on the conversation; every message type reaches the agent (what
//! cannot be carried is answered and counted); a reply outside the 24-hour window becomes the
//! re-engagement template and the agent is told; one customer's flood is held to their rate while
//! another customer goes through; and a restart loses nothing and repeats nothing (a notification
//! delivered again is a duplicate).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::ApiTokenConfig;
use switchboard_adapter::{RateLimitConfig, RuntimeConfig};
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_channel_whatsapp::{PATH, TemplateConfig};
use switchboard_e2e::{Receiver, SECRET, TestDaemon, stored_on};
use switchboard_testkit::{FAKE_GRAPH_VERSION, FakeGraph, NatsServer};

const WAIT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice-token-for-tests";
const TOKEN: &str = "EAAG-fake-access-token-for-tests";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const VERIFY: &str = "verify-token-for-tests";
const NUMBER: &str = "106540352242922";
const ADA: &str = "16505551234";
const BEN: &str = "4915100000002";

/// Files the daemon's configuration names, kept for the daemon's life.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in [
            ("wa.token", TOKEN),
            ("wa.secret", APP_SECRET),
            ("wa.verify", VERIFY),
            ("alice.token", ALICE),
            ("helpdesk.secret", SECRET),
        ] {
            std::fs::write(dir.path().join(name), value).unwrap();
        }
        Files { dir }
    }
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// Routing to alice (online, her helpdesk at `helpdesk`) and the WhatsApp channel on `graph`,
/// with the re-engagement template and a per-customer inbound rate of 60 a minute, `burst` at once.
fn configure(c: &mut switchboard::Config, files: &Files, graph: &str, helpdesk: &str, burst: u32) {
    c.router.enabled = true;
    c.routing = serde_json::from_value(json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 300 } },
        "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "online", "default_capacity": 10, "max_total": 10 } ]
    }))
    .unwrap();
    c.api.tokens.insert(
        "alice".into(),
        ApiTokenConfig {
            token_file: Some(files.path("alice.token")),
            agent: Some("alice".into()),
            ..Default::default()
        },
    );
    c.channels.webhook.agents.insert(
        "alice".into(),
        AgentEndpointConfig {
            url: helpdesk.into(),
            secret_env: None,
            secret_file: Some(files.path("helpdesk.secret")),
        },
    );
    let wa = &mut c.channels.whatsapp;
    wa.enabled = true;
    wa.graph_url = graph.into();
    wa.api_version = FAKE_GRAPH_VERSION.into();
    wa.phone_number_id = NUMBER.into();
    wa.access_token_file = Some(files.path("wa.token"));
    wa.app_secret_file = Some(files.path("wa.secret"));
    wa.verify_token_file = Some(files.path("wa.verify"));
    wa.reengage_template = Some(TemplateConfig { name: "reengage".into(), language: "en_US".into() });
    wa.runtime = RuntimeConfig { rate_limit: RateLimitConfig { per_minute: 60, burst }, ..RuntimeConfig::default() };
}

fn command(conversation: &str, action: Value) -> String {
    json!({ "conversation_id": conversation, "action": action }).to_string()
}

/// `switchboard_inbound_total{channel="whatsapp",outcome=...}` from `/metrics` (0 when absent).
async fn counted(daemon: &TestDaemon, outcome: &str) -> u64 {
    let text = daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    let needle = format!("switchboard_inbound_total{{channel=\"whatsapp\",outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&needle)?.trim().parse().ok()).unwrap_or(0)
}

/// The helpdesk's `message` deliveries of `conversation`, their entries' texts.
fn texts_at(helpdesk: &Receiver, conversation: &str) -> Vec<String> {
    helpdesk
        .received()
        .iter()
        .filter_map(|(_, b)| serde_json::from_str::<Value>(b).ok())
        .filter(|v| v["type"] == "message" && v["conversation_id"] == conversation)
        .filter_map(|v| v["entry"]["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_customer_on_whatsapp_reaches_an_agent_and_every_kind_and_a_closed_window_are_handled() {
    let graph = FakeGraph::start(TOKEN, APP_SECRET, NUMBER).await;
    let helpdesk = Receiver::start("/alice").await;
    let files = Files::new();
    let (graph_url, helpdesk_url) = (graph.url(), helpdesk.url.clone());
    let daemon = TestDaemon::start(None, |c| configure(c, &files, &graph_url, &helpdesk_url, 30)).await;
    let hook = format!("{}{PATH}", daemon.base);
    let ready: Value = daemon.http.get(format!("{}/readyz", daemon.base)).send().await.unwrap().json().await.unwrap();
    assert!(ready.to_string().contains("whatsapp"), "/readyz lists the channel: {ready}");
    let challenge = format!("{hook}?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=8472");
    assert_eq!(daemon.http.get(challenge).send().await.unwrap().text().await.unwrap(), "8472");

    // Ada writes; alice's helpdesk gets the offer, she accepts and replies.
    let first = graph.text(ADA, "Hi! My order #17 is late.");
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(graph.deliver(&hook, &graph.notification(vec![first])).await.0, 200);
    let offer = helpdesk.wait_for("the offer", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(offer["history"][0]["text"], "Hi! My order #17 is late.");
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    let accept = command(&conversation, json!({"type": "accept"}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&accept)).await.0, 200);
    let reply = command(&conversation, json!({"type": "reply", "text": "Sorry, Ada: it ships today."}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&reply)).await.0, 200);
    let answer = graph.wait_for("the reply on WhatsApp", WAIT, |g| g.sent_to(ADA).first().cloned()).await;
    assert_eq!((answer.kind.as_str(), answer.text.as_deref()), ("text", Some("Sorry, Ada: it ships today.")));
    assert_eq!(answer.reply_to.as_deref(), Some(first_id.as_str()), "it answers Ada's message");
    assert!(answer.callback.as_deref().unwrap().starts_with(&conversation), "{:?}", answer.callback);

    // Its statuses come back as events on the conversation.
    for status in ["delivered", "read"] {
        assert_eq!(graph.deliver(&hook, &graph.status_for(&answer, status, None)).await.0, 200);
    }
    let nats = daemon.nats.url();
    let deadline = Instant::now() + WAIT;
    while stored_on(&nats, "SB_EVENTS", "sb.events.message_status").await < 2 {
        assert!(Instant::now() < deadline, "the statuses were not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every message type reaches alice; a type WhatsApp cannot show is answered and counted.
    let media = [
        ("image", "5001", "image/jpeg", Some("The box")),
        ("audio", "5002", "audio/ogg; codecs=opus", None),
        ("video", "5003", "video/mp4", None),
        ("document", "5004", "application/pdf", Some("Invoice")),
        ("sticker", "5005", "image/webp", None),
    ];
    let mut kinds = Vec::new();
    for (kind, id, mime, caption) in media {
        graph.add_media(id, mime, format!("bytes of {kind}").into_bytes());
        kinds.push(graph.media(ADA, kind, id, caption));
    }
    kinds.extend(graph.every_other_kind(ADA, &answer.wamid));
    let not_routed = counted(&daemon, "not_routed").await;
    kinds.push(graph.unsupported(ADA));
    assert_eq!(graph.deliver(&hook, &graph.notification(kinds)).await.0, 200);
    let expected = [
        "[image] The box",
        "[voice message]",
        "[video]",
        "[document: document.pdf] Invoice",
        "[sticker]",
        "[location 37.483307, -122.148981] Main Office, 1 Hacker Way, Menlo Park, CA 94025",
        "[contact] Barbara J. Johnson, +1 (940) 555-1234",
        "Yes",
        "Express (Next day)",
        "Talk to a human",
        "[reaction \u{1F44D}]",
    ];
    let deadline = Instant::now() + WAIT;
    while texts_at(&helpdesk, &conversation).len() < expected.len() {
        assert!(Instant::now() < deadline, "not every kind reached alice: {:?}", texts_at(&helpdesk, &conversation));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(texts_at(&helpdesk, &conversation), expected, "in the order written");
    let told = graph.wait_for("the customer told", WAIT, |g| {
        g.sent_to(ADA).into_iter().find(|m| m.text.as_deref().is_some_and(|t| t.contains("cannot be read")))
    });
    told.await;
    assert_eq!(counted(&daemon, "not_routed").await, not_routed + 1, "the unsupported one, counted once");
    let downloads = graph.calls().iter().filter(|c| c.path.starts_with("/download/") && c.status == 200).count();
    assert_eq!(downloads, 5, "every file fetched with the token");

    // Ben wrote 25 hours ago: alice's reply becomes the template, and she is told why.
    let old =
        graph.message_at(BEN, "text", json!({ "body": "Can I change my address?" }), Duration::from_secs(25 * 3600));
    assert_eq!(graph.deliver(&hook, &graph.notification(vec![old])).await.0, 200);
    let offer = helpdesk
        .wait_for("Ben's offer", WAIT, |v| v["type"] == "offer" && v["conversation_id"] != conversation.as_str())
        .await;
    let bens = offer["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(
        daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&command(&bens, json!({"type": "accept"})))).await.0,
        200
    );
    let late = command(&bens, json!({"type": "reply", "text": "Yes, under Settings."}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&late)).await.0, 200);
    let failed = helpdesk
        .wait_for("delivery_failed at the helpdesk", WAIT, |v| {
            v["change"] == "delivery_failed" && v["conversation_id"] == bens.as_str()
        })
        .await;
    let note = failed["note"].as_str().unwrap();
    assert!(
        note.contains("24-hour WhatsApp window is closed") && note.contains("template `reengage` was sent instead"),
        "{note}"
    );
    let to_ben = graph.sent_to(BEN);
    assert_eq!(
        to_ben.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>(),
        ["template"],
        "no free-form text: {to_ben:#?}"
    );
    let record = daemon.record_when(ALICE, &bens, "the reply marked undelivered", |r| {
        r["history"].as_array().is_some_and(|h| h.iter().any(|e| e["undelivered"].is_string()))
    });
    record.await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_flood_is_held_to_its_rate_and_a_restart_loses_nothing_and_repeats_nothing() {
    let graph = FakeGraph::start(TOKEN, APP_SECRET, NUMBER).await;
    let helpdesk = Receiver::start("/alice").await;
    let files = Files::new();
    let (graph_url, helpdesk_url) = (graph.url(), helpdesk.url.clone());
    let daemon = TestDaemon::start(None, |c| configure(c, &files, &graph_url, &helpdesk_url, 10)).await;
    let hook = format!("{}{PATH}", daemon.base);
    let nats = daemon.nats.url();

    // Ada floods 40 messages in four notifications as fast as they go; then Ben writes. (The
    // counters are the process's, shared with the other test: compared before and after.)
    let dead_before = counted(&daemon, "dead_letter").await;
    let started = Instant::now();
    let mut flood = Vec::new();
    for batch in 0..4 {
        let messages: Vec<Value> = (0..10).map(|i| graph.text(ADA, &format!("flood {batch}-{i}"))).collect();
        flood.push(graph.notification(messages));
    }
    let ben = graph.notification(vec![graph.text(BEN, "I have a question too")]);
    for n in &flood {
        assert_eq!(graph.deliver(&hook, n).await.0, 200, "every notification is taken");
    }
    assert_eq!(graph.deliver(&hook, &ben).await.0, 200);
    let elapsed = started.elapsed();
    let stored = stored_on(&nats, "SB_INBOUND", "sb.in.whatsapp").await;
    let letters = stored_on(&nats, "SB_DLQ", "sb.dlq.whatsapp-in").await;
    // Burst 10, then one a second: at most 10 + elapsed seconds + 1 of Ada's, and Ben's one.
    let bound = 10 + elapsed.as_secs() as usize + 1;
    println!("flood: 40 from one customer in {elapsed:?}: {} stored, {letters} dead-lettered", stored - 1);
    assert!(stored - 1 <= bound && stored > 10, "Ada got her rate, Ben his message: {stored} stored, bound {bound}");
    assert_eq!(stored - 1 + letters, 40, "every flooded message stored or dead-lettered, none lost");
    assert_eq!(counted(&daemon, "dead_letter").await, dead_before + letters as u64, "each counted");

    // Alice answers Ben; then the daemon restarts on the same NATS.
    let offer = helpdesk
        .wait_for("Ben's offer", WAIT, |v| v["type"] == "offer" && v["history"][0]["text"] == "I have a question too")
        .await;
    let bens = offer["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(
        daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&command(&bens, json!({"type": "accept"})))).await.0,
        200
    );
    let reply = command(&bens, json!({"type": "reply", "text": "Ask away!"}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&reply)).await.0, 200);
    graph.wait_for("the reply to Ben", WAIT, |g| (!g.sent_to(BEN).is_empty()).then_some(())).await;
    let nats_server: NatsServer = daemon.stop_keeping_nats().await;

    // Meta cannot reach the daemon while it is down, and delivers again once it is back.
    let while_down = graph.notification(vec![graph.text(BEN, "Are you there?")]);
    let down = reqwest::Client::new().post(&hook).body(while_down.to_string()).send().await;
    assert!(down.is_err(), "the daemon is down");
    let (graph_url, helpdesk_url) = (graph.url(), helpdesk.url.clone());
    let daemon = TestDaemon::start_on(nats_server, None, |c| configure(c, &files, &graph_url, &helpdesk_url, 10)).await;
    let hook = format!("{}{PATH}", daemon.base);
    let before = stored_on(&nats, "SB_INBOUND", "sb.in.whatsapp").await;
    let duplicates = counted(&daemon, "duplicate").await;
    assert_eq!(graph.deliver(&hook, &ben).await.0, 200, "a notification stored before");
    assert_eq!(graph.deliver(&hook, &while_down).await.0, 200, "the one Meta kept");
    assert_eq!(stored_on(&nats, "SB_INBOUND", "sb.in.whatsapp").await, before + 1, "the old one is a duplicate");
    assert_eq!(counted(&daemon, "duplicate").await, duplicates + 1);
    let deadline = Instant::now() + WAIT;
    while !texts_at(&helpdesk, &bens).iter().any(|t| t == "Are you there?") {
        assert!(Instant::now() < deadline, "Ben's message after the restart never reached alice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing was sent twice: the reply before the restart is still the only one to Ben.
    let again = command(&bens, json!({"type": "reply", "text": "Yes, here."}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&again)).await.0, 200);
    graph.wait_for("the second reply", WAIT, |g| (g.sent_to(BEN).len() >= 2).then_some(())).await;
    let texts: Vec<Option<String>> = graph.sent_to(BEN).into_iter().map(|m| m.text).collect();
    assert_eq!(texts, [Some("Ask away!".to_string()), Some("Yes, here.".to_string())]);
    daemon.stop().await;
}
