//! The WhatsApp channel under the SDK's runtime, against a real NATS server (the SDK's test kit)
//! and the test kit's fake Graph API: the webhook's verification and signature, media fetched
//! within the limit, statuses as events, and replies: split and resumed, threaded, files
//! uploaded, the 24-hour window (template or refusal), rate limits waited, undeliverable ones
//! dead-lettered.

use std::time::Duration;

use serde_json::json;
use switchboard_adapter::testkit::{self, TestBus, wait_for};
use switchboard_adapter::{RateLimitConfig, RuntimeConfig};
use switchboard_bus::Backoff;
use switchboard_channel_whatsapp::{CHANNEL, PATH, TemplateConfig, WhatsAppChannel, WhatsAppConfig};
use switchboard_core::contract::{ATTACHMENTS_STORE, streams, subjects};
use switchboard_core::{Contract, Event};
use switchboard_testkit::{FAKE_GRAPH_VERSION, FakeGraph, GraphFault};

const TOKEN: &str = "EAAG-fake-access-token-for-tests";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const VERIFY: &str = "verify-token-for-tests";
const NUMBER: &str = "106540352242922";
const ADA: &str = "16505551234";
const WAIT: Duration = Duration::from_secs(15);

struct Setup {
    bus: TestBus,
    graph: FakeGraph,
    running: testkit::RunningChannel,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn runtime() -> RuntimeConfig {
    RuntimeConfig {
        max_attempts: 3,
        retry_for_secs: 0,
        backoff: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
        rate_limit: RateLimitConfig { per_minute: 60, burst: 5 },
        ..RuntimeConfig::default()
    }
}

async fn setup(edit: impl FnOnce(&mut WhatsAppConfig)) -> Setup {
    let bus = TestBus::start().await;
    let graph = FakeGraph::start(TOKEN, APP_SECRET, NUMBER).await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, value).unwrap();
        Some(p)
    };
    let mut cfg = WhatsAppConfig {
        enabled: true,
        graph_url: graph.url(),
        api_version: FAKE_GRAPH_VERSION.into(),
        phone_number_id: NUMBER.into(),
        access_token_file: file("token", TOKEN),
        app_secret_file: file("secret", APP_SECRET),
        verify_token_file: file("verify", VERIFY),
        max_retry_after_secs: 10,
        runtime: runtime(),
        ..WhatsAppConfig::default()
    };
    edit(&mut cfg);
    let channel = WhatsAppChannel::new(&cfg, bus.slot()).unwrap();
    let running = bus.run_channel(channel, cfg.runtime.clone());
    let app = running.routes.clone().expect("the webhook route");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Setup { bus, graph, running, url, http: reqwest::Client::new(), _dir: dir }
}

impl Setup {
    async fn events(&self, kind: &str) -> Vec<Event> {
        let stored = self.bus.stored(streams::EVENTS, &subjects::event(kind)).await;
        stored.into_iter().map(|(_, p)| Event::from_json(&p).unwrap()).collect()
    }
}

#[tokio::test]
async fn meta_verifies_the_webhook_with_the_verify_token_only() {
    let s = setup(|_| {}).await;
    let get = |query: String| {
        let (http, url) = (s.http.clone(), s.url.clone());
        async move {
            let r = http.get(format!("{url}?{query}")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let ok = get(format!("hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444")).await;
    assert_eq!(ok, (200, "1158201444".into()));
    let wrong = get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1".into()).await;
    assert_eq!(wrong.0, 403);
    let mode = get(format!("hub.mode=unsubscribe&hub.verify_token={VERIFY}&hub.challenge=1")).await;
    assert_eq!(mode.0, 403);
    assert_eq!(get(format!("hub.mode=subscribe&hub.verify_token={VERIFY}")).await.0, 403, "no challenge");
    s.running.stop().await;
}

#[tokio::test]
async fn only_a_rightly_signed_notification_is_stored_and_media_is_fetched_within_the_limit() {
    let s = setup(|c| c.max_media_bytes = 1024).await;
    let text = s.graph.notification(vec![s.graph.text(ADA, "Where is my order?")]);
    let body = text.to_string();
    let post = |signature: Option<String>, body: String| {
        let (http, url) = (s.http.clone(), s.url.clone());
        async move {
            let mut r = http.post(url).header("content-type", "application/json").body(body);
            if let Some(sig) = signature {
                r = r.header("X-Hub-Signature-256", sig);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(post(None, body.clone()).await, 401, "missing");
    let other = FakeGraph::start(TOKEN, "another-app-secret-entirely", NUMBER).await;
    assert_eq!(post(Some(other.sign(body.as_bytes())), body.clone()).await, 401, "wrong secret");
    let changed = body.replace("Where is my order?", "Where is my order!");
    assert_eq!(post(Some(s.graph.sign(body.as_bytes())), changed).await, 401, "body changed after signing");
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    assert_eq!(post(Some(s.graph.sign(huge.as_bytes())), huge).await, 413);
    assert!(s.bus.envelopes(CHANNEL).await.is_empty(), "nothing stored for a refused request");

    assert_eq!(s.graph.deliver(&s.url, &text).await.0, 200);
    assert_eq!(s.graph.deliver(&s.url, &text).await.0, 200, "a redelivery is answered 200 too");
    let stored = s.bus.envelopes(CHANNEL).await;
    assert_eq!(stored.len(), 1, "stored once");
    assert_eq!(stored[0].text, "Where is my order?");
    assert_eq!(stored[0].customer.name.as_deref(), Some(&*format!("Customer {ADA}")));

    // A photo within the limit is fetched with the token; one over it is listed as skipped.
    s.graph.add_media("4001", "image/jpeg", b"\xff\xd8\xff a small photo".to_vec());
    s.graph.add_media("4002", "video/mp4", vec![0u8; 4096]);
    let photo = s.graph.media(ADA, "image", "4001", Some("Crushed box"));
    let video = s.graph.media(ADA, "video", "4002", None);
    assert_eq!(s.graph.deliver(&s.url, &s.graph.notification(vec![photo, video])).await.0, 200);
    let stored = s.bus.envelopes(CHANNEL).await;
    let (photo, video) = (&stored[1], &stored[2]);
    assert_eq!(photo.text, "[image] Crushed box");
    assert_eq!(photo.attachments[0].object, "whatsapp/4001");
    assert_eq!(photo.attachments[0].skipped, None);
    let store = s.bus.bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut store.get("whatsapp/4001").await.unwrap(), &mut bytes).await.unwrap();
    assert_eq!(bytes, b"\xff\xd8\xff a small photo");
    assert_eq!(video.attachments[0].skipped.as_deref(), Some("over the 1024 byte limit"));
    assert_eq!(video.attachments[0].size, 4096);
    assert!(s.graph.calls().iter().any(|c| c.path == "/download/4001" && c.status == 200));
    assert!(!s.graph.calls().iter().any(|c| c.path == "/download/4002"), "not downloaded at all");
    s.running.stop().await;
}

#[tokio::test]
async fn statuses_become_events_on_their_conversation() {
    let s = setup(|_| {}).await;
    assert_eq!(s.graph.deliver(&s.url, &s.graph.notification(vec![s.graph.text(ADA, "Hi")])).await.0, 200);
    let reply = testkit::outbound(CHANNEL, ADA, "Hello Ada");
    s.bus.send_outbound(&reply).await;
    let sent = s.graph.wait_for("the reply", WAIT, |g| g.sent_to(ADA).first().cloned()).await;
    assert_eq!(sent.callback, Some(format!("{}:{}", reply.conversation_id, reply.id)));
    for status in ["sent", "delivered", "read"] {
        assert_eq!(s.graph.deliver(&s.url, &s.graph.status_for(&sent, status, None)).await.0, 200);
    }
    assert_eq!(s.graph.deliver(&s.url, &s.graph.status_for(&sent, "read", None)).await.0, 200, "again");
    let statuses = s.events("message_status").await;
    let seen: Vec<&str> = statuses.iter().map(|e| e.data["status"].as_str().unwrap()).collect();
    assert_eq!(seen, ["sent", "delivered", "read"], "each once");
    assert!(statuses.iter().all(|e| e.conversation_id == Some(reply.conversation_id)));
    assert_eq!(statuses[0].data["outbound_id"], json!(reply.id.to_string()));

    let failed = s.graph.status_for(&sent, "failed", Some((131026, "Message undeliverable")));
    assert_eq!(s.graph.deliver(&s.url, &failed).await.0, 200);
    assert_eq!(s.graph.deliver(&s.url, &failed).await.0, 200, "delivered again: recorded once");
    let failures = s.events("delivery_failed").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].conversation_id, Some(reply.conversation_id));
    let reason = failures[0].data["reason"].as_str().unwrap();
    assert!(reason.contains("131026 Message undeliverable"), "{reason}");
    s.running.stop().await;
}

#[tokio::test]
async fn a_long_reply_is_split_answers_the_customer_and_resumes_at_the_first_unsent_part() {
    let s = setup(|_| {}).await;
    let incoming = s.graph.text(ADA, "Tell me everything");
    let wamid = incoming["id"].as_str().unwrap().to_string();
    assert_eq!(s.graph.deliver(&s.url, &s.graph.notification(vec![incoming])).await.0, 200);
    // Part one goes through; part two is refused once (something went wrong at WhatsApp); the
    // retry sends parts two and three, never part one again.
    s.graph.fail_after(1, 1, GraphFault::internal());
    let text = "word ".repeat(2000);
    let mut reply = testkit::outbound(CHANNEL, ADA, &text);
    reply.reply_to = Some(wamid.clone());
    s.bus.send_outbound(&reply).await;
    s.graph.wait_for("three parts", WAIT, |g| (g.sent_to(ADA).len() >= 3).then_some(())).await;
    s.bus.wait_outbound_drained(CHANNEL, WAIT).await;
    let sent = s.graph.sent_to(ADA);
    let parts: Vec<String> = sent.iter().map(|m| m.text.clone().unwrap()).collect();
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(parts.iter().all(|p| p.chars().count() <= 4096));
    assert_eq!(parts.concat(), text, "every part once, in order");
    assert_eq!(sent[0].reply_to.as_deref(), Some(wamid.as_str()), "the first part answers the message");
    assert!(sent[1].reply_to.is_none());
    assert_eq!(s.graph.calls().iter().filter(|c| c.code == Some(131000)).count(), 1, "refused once");
    let kv = s.bus.bus.jetstream().get_key_value("sb_channels").await.unwrap();
    let progress = switchboard_channel_whatsapp::progress_key(&reply.id);
    assert_eq!(kv.get(&progress).await.unwrap(), None, "progress erased once done");
    s.running.stop().await;
}

#[tokio::test]
async fn outside_the_window_the_template_goes_once_and_the_agent_is_told() {
    let s = setup(|c| c.reengage_template = Some(TemplateConfig { name: "reengage".into(), language: "en_US".into() }))
        .await;
    let old = s.graph.message_at(ADA, "text", json!({ "body": "Hello?" }), Duration::from_secs(25 * 3600));
    assert_eq!(s.graph.deliver(&s.url, &s.graph.notification(vec![old])).await.0, 200);
    let (first, second) =
        (testkit::outbound(CHANNEL, ADA, "Sorry for the wait!"), testkit::outbound(CHANNEL, ADA, "Still there?"));
    s.bus.send_outbound(&first).await;
    s.bus.send_outbound(&second).await;
    s.bus.wait_outbound_drained(CHANNEL, WAIT).await;
    let sent = s.graph.sent_to(ADA);
    assert_eq!(sent.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>(), ["template"], "one template, no free text");
    assert_eq!(sent[0].body["template"]["name"], "reengage");
    let told = s.events("delivery_failed").await;
    assert_eq!(told.len(), 2, "the agent hears of both replies (sent at once, in two conversations)");
    let mut reasons: Vec<&str> = told.iter().map(|e| e.data["reason"].as_str().unwrap()).collect();
    reasons.sort_by_key(|r| !r.contains("sent instead"));
    assert!(reasons[0].contains("24-hour WhatsApp window is closed") && reasons[0].contains("25 h ago"), "{reasons:?}");
    assert!(reasons[0].contains("template `reengage` was sent instead"), "{reasons:?}");
    assert!(reasons[1].contains("template `reengage` was sent 0 h ago"), "{reasons:?}");
    assert!(s.bus.dead_letters(CHANNEL).await.is_empty(), "handled, not dead-lettered");
    // The template itself fails later: the agent hears of that too.
    let failed = s.graph.status_for(&sent[0], "failed", Some((131026, "Message undeliverable")));
    assert_eq!(s.graph.deliver(&s.url, &failed).await.0, 200);
    let told = s.events("delivery_failed").await;
    assert_eq!(told.len(), 3, "{told:#?}");
    assert!(told[2].data["reason"].as_str().unwrap().contains("could not deliver it: 131026"), "{:?}", told[2].data);
    s.running.stop().await;
}

#[tokio::test]
async fn without_a_template_a_closed_window_is_a_failure_the_agent_understands() {
    let s = setup(|_| {}).await;
    let reply = testkit::outbound(CHANNEL, "4915100000001", "Hello!");
    s.bus.send_outbound(&reply).await;
    wait_for("the dead letter", WAIT, || async { !s.bus.dead_letters(CHANNEL).await.is_empty() }).await;
    assert!(s.graph.sent().is_empty(), "nothing sent");
    let told = s.events("delivery_failed").await;
    let reason = told[0].data["reason"].as_str().unwrap();
    assert!(reason.contains("they have not written to this number"), "{reason}");
    assert!(reason.contains("no reengage_template is configured"), "{reason}");
    s.running.stop().await;
}

#[tokio::test]
async fn rate_limits_are_waited_and_undeliverable_messages_dead_lettered() {
    let s = setup(|_| {}).await;
    assert_eq!(s.graph.deliver(&s.url, &s.graph.notification(vec![s.graph.text(ADA, "Hi")])).await.0, 200);
    // 130429 three times (more than max_attempts): waited, never dead-lettered.
    s.graph.fail_next(3, GraphFault::throughput());
    s.bus.send_outbound(&testkit::outbound(CHANNEL, ADA, "Paced")).await;
    s.bus.wait_outbound_drained(CHANNEL, Duration::from_secs(30)).await;
    assert_eq!(s.graph.sent_to(ADA).len(), 1);
    assert!(s.bus.dead_letters(CHANNEL).await.is_empty());
    // 131026: permanent, dead-lettered at once with a delivery_failed.
    s.graph.fail_next(1, GraphFault::undeliverable());
    let doomed = testkit::outbound(CHANNEL, ADA, "Never arrives");
    s.bus.send_outbound(&doomed).await;
    wait_for("the dead letter", WAIT, || async { !s.bus.dead_letters(CHANNEL).await.is_empty() }).await;
    let letters = s.bus.dead_letters(CHANNEL).await;
    let reason = letters[0].0.get("Sb-Dlq-Reason").unwrap().to_string();
    assert!(reason.contains("131026"), "{reason}");
    let refused = s.graph.calls().iter().filter(|c| c.code == Some(131026)).count();
    assert_eq!(refused, 1, "not retried");
    s.running.stop().await;
}

#[tokio::test]
async fn whatsapps_own_re_engagement_refusal_is_a_closed_window_too() {
    // A window longer than WhatsApp's (a misconfiguration, or clocks apart): our check lets the
    // reply through, WhatsApp answers 131047, and the template goes instead.
    let s = setup(|c| {
        c.window_secs = 48 * 3600;
        c.reengage_template = Some(TemplateConfig { name: "reengage".into(), language: "en_US".into() });
    })
    .await;
    let old = s.graph.message_at(ADA, "text", json!({ "body": "Hello?" }), Duration::from_secs(30 * 3600));
    assert_eq!(s.graph.deliver(&s.url, &s.graph.notification(vec![old])).await.0, 200);
    s.bus.send_outbound(&testkit::outbound(CHANNEL, ADA, "Here is your answer")).await;
    s.bus.wait_outbound_drained(CHANNEL, WAIT).await;
    assert_eq!(s.graph.calls().iter().filter(|c| c.code == Some(131047)).count(), 1, "WhatsApp refused the text");
    let sent = s.graph.sent_to(ADA);
    assert_eq!(sent.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>(), ["template"]);
    let told = s.events("delivery_failed").await;
    let reason = told[0].data["reason"].as_str().unwrap();
    assert!(reason.contains("WhatsApp says more than 24 hours have passed"), "{reason}");
    s.running.stop().await;
}

#[tokio::test]
async fn a_refused_access_token_shows_in_the_health_at_once() {
    let bus = TestBus::start().await;
    let graph = FakeGraph::start(TOKEN, APP_SECRET, NUMBER).await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, value).unwrap();
        Some(p)
    };
    let cfg = WhatsAppConfig {
        enabled: true,
        graph_url: graph.url(),
        api_version: FAKE_GRAPH_VERSION.into(),
        phone_number_id: NUMBER.into(),
        access_token_file: file("token", "EAAG-a-revoked-token-here"),
        app_secret_file: file("secret", APP_SECRET),
        verify_token_file: file("verify", VERIFY),
        ..WhatsAppConfig::default()
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let channel = std::sync::Arc::new(WhatsAppChannel::new(&cfg, bus.slot()).unwrap());
    let runtime = switchboard_adapter::ChannelRuntime::new(channel, runtime(), bus.slot(), stop.clone());
    let health = runtime.health();
    let task = runtime.spawn();
    wait_for("the health degraded", WAIT, || {
        let health = health.clone();
        async move { matches!(health.get(), switchboard_adapter::HealthStatus::Degraded(why) if why.contains("access token is refused")) }
    })
    .await;
    assert!(graph.calls().iter().any(|c| c.code == Some(190)));
    stop.cancel();
    task.await.unwrap().unwrap();
}
