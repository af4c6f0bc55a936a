//! The Slack crate against the fake Slack and a real NATS: the Web API client's rate-limit
//! handling and error classes, the Events API routes' signature checks (before anything is
//! parsed) and limits, a customer's file uploaded into the conversation's thread, and updates
//! posted in the thread and settling the offer's buttons; Socket Mode's back-off and reconnect.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_adapter::testkit::TestBus;
use switchboard_channel_slack::api::SlackApi;
use switchboard_channel_slack::{Slack, SlackConfig, signature};
use switchboard_core::contract::ATTACHMENTS_STORE;
use switchboard_core::{AgentDelivery, Contract};
use switchboard_testkit::{FakeSlack, SlackSigner};

const BOT: &str = "xoxb-crate-test-bot-token";
const APP: &str = "xapp-1-crate-test-app-token";
const SIGNING: &str = "crate-test-signing-secret-0123456789";

fn client(slack: &FakeSlack, token: &str) -> SlackApi {
    SlackApi::new(&slack.api_base(), token, Duration::from_secs(5), Duration::from_secs(3)).unwrap()
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_long_ones_handed_back() {
    let slack = FakeSlack::start(BOT, APP).await;
    slack.add_channel("C1");
    let api = client(&slack, BOT);
    let post = json!({ "channel": "C1", "text": "hello" });

    // One 429 with Retry-After: 1 is waited out in place: one message, after at least a second.
    slack.rate_limit("chat.postMessage", 1, 1);
    let started = Instant::now();
    let posted = api.call("chat.postMessage", &post).await.expect("posted after the wait");
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    assert!(posted["ts"].is_string());
    let calls = slack.calls_of("chat.postMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].error.as_deref(), Some("ratelimited"));
    assert_eq!(slack.messages_in("C1").len(), 1);

    // A wait beyond the ceiling is handed back as a wait (the consumer waits it, never dead-letters).
    slack.rate_limit("chat.postMessage", 1, 30);
    let e = api.call("chat.postMessage", &post).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(30)), "{e:?}");
    assert!(e.retryable);

    // Other errors: a channel that does not exist or a wrong token will not get better.
    let e = api.call("chat.postMessage", &json!({ "channel": "C404", "text": "x" })).await.unwrap_err();
    assert!(!e.retryable && e.reason.ends_with("channel_not_found"), "{e:?}");
    let e = client(&slack, "xoxb-wrong").call("auth.test", &json!({})).await.unwrap_err();
    assert!(!e.retryable && e.reason.ends_with("invalid_auth"), "{e:?}");
    // The app-level token opens Socket Mode; the bot token does not.
    assert!(client(&slack, APP).call("apps.connections.open", &json!({})).await.unwrap()["url"].is_string());
    assert!(api.call("apps.connections.open", &json!({})).await.is_err());
}

/// A Slack app of `slack` with alice as `U0ALICE`, signing secret [`SIGNING`] in a file in `dir`.
fn app(slack: &FakeSlack, dir: &std::path::Path) -> Slack {
    let (bot, secret) = (dir.join("bot"), dir.join("signing"));
    std::fs::write(&bot, BOT).unwrap();
    std::fs::write(&secret, SIGNING).unwrap();
    let mut config = SlackConfig {
        enabled: true,
        api_base: slack.api_base(),
        bot_token_file: Some(bot),
        signing_secret_file: Some(secret),
        max_body_bytes: 8 * 1024,
        ..SlackConfig::default()
    };
    config.agents.insert("alice".into(), "U0ALICE".into());
    config.validate().unwrap();
    Slack::new(&config).unwrap()
}

#[tokio::test]
async fn the_events_api_refuses_what_slack_did_not_sign() {
    let slack = FakeSlack::start(BOT, APP).await;
    let bus = TestBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = app(&slack, dir.path()).routes(bus.slot()).expect("events mode serves routes");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    let signer = SlackSigner::new(&base, SIGNING);
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();

    // Signed: the challenge is answered.
    let challenge = json!({ "type": "url_verification", "challenge": "c-123" });
    let answer = signer.event(&challenge, None).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"challenge":"c-123"}"#));

    // Wrong secret, stale timestamp, no signature, a body changed after signing: 401.
    assert_eq!(SlackSigner::new(&base, "another-secret-entirely-000000").event(&challenge, None).await.status, 401);
    let body = challenge.to_string().into_bytes();
    let stale = signer.post_raw("/v1/slack/events", "application/json", body.clone(), Some(now - 301), None).await;
    assert_eq!(stale.status, 401);
    let fresh = signer.post_raw("/v1/slack/events", "application/json", body.clone(), Some(now - 250), None).await;
    assert_eq!(fresh.status, 200, "within five minutes");
    let unsigned = http.post(format!("{base}/v1/slack/events")).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let sig = signature::sign(SIGNING.as_bytes(), &now.to_string(), &body);
    let tampered = http
        .post(format!("{base}/v1/slack/events"))
        .header(signature::TIMESTAMP_HEADER, now.to_string())
        .header(signature::SIGNATURE_HEADER, sig)
        .body(json!({ "type": "url_verification", "challenge": "c-999" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);

    // Signed but not JSON: 400; over max_body_bytes: 413 (never buffered whole).
    let junk = signer.post_raw("/v1/slack/events", "application/json", b"{not json".to_vec(), None, None).await;
    assert_eq!(junk.status, 400);
    let huge = vec![b' '; 9 * 1024];
    assert_eq!(signer.post_raw("/v1/slack/events", "application/json", huge, None, None).await.status, 413);

    // A slash command from a user who is not a mapped agent: refused in words, nothing stored.
    let refused = signer.command(&slack.slash_command("U0MALLORY", "D0MALLORY", "status away")).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("not a Switchboard agent"), "{}", refused.body);
    // Alice's command with an unknown code is answered with the usage.
    let unknown = signer.command(&slack.slash_command("U0ALICE", "D0ALICE", "note ZZZZ hello")).await;
    assert!(unknown.body.contains("No conversation ZZZZ"), "{}", unknown.body);
    use switchboard_core::contract::{streams, subjects};
    assert!(bus.stored(streams::AGENT, subjects::AGENT_IN).await.is_empty(), "nothing reached the bus");
    // Alice's own status command is stored (no router runs here: it is received, not yet done).
    let away = signer.command(&slack.slash_command("U0ALICE", "D0ALICE", "status away")).await;
    assert!(away.body.contains("Received: status set to away"), "{}", away.body);
    assert_eq!(bus.stored(streams::AGENT, subjects::AGENT_IN).await.len(), 1);
    drop(bus);
}

#[tokio::test]
async fn a_customer_file_is_uploaded_into_the_conversations_thread() {
    let slack = FakeSlack::start(BOT, APP).await;
    let bus = TestBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&slack, dir.path());
    let store = bus.bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.unwrap();
    store.put("webhook/receipt", &mut b"receipt bytes".as_slice()).await.unwrap();
    let conversation = uuid::Uuid::now_v7();
    let offer: AgentDelivery = serde_json::from_value(json!({
        "type": "message", "id": uuid::Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation,
        "code": "K4F2", "customer": "Ada", "channel": "webhook",
        "entry": { "at": chrono::Utc::now(), "from": "customer", "author": "Ada", "text": "Here is my receipt",
                   "attachments": [{ "object": "webhook/receipt", "filename": "receipt.txt",
                                     "content_type": "text/plain", "size": 13 }] }
    }))
    .unwrap();
    offer.validate().unwrap();
    app.deliver(&bus.bus, &offer).await.expect("delivered");
    let dm = slack.dm_of("U0ALICE").expect("the DM was opened");
    let messages = slack.messages_in(&dm);
    let root = messages.iter().find(|m| m.thread_ts.is_none()).expect("the message roots the thread");
    assert!(root.rendered().contains("Here is my receipt"), "{}", root.rendered());
    let uploads = slack.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, b"receipt bytes");
    assert_eq!(uploads[0].filename, "receipt.txt");
    assert_eq!(
        (uploads[0].channel.as_deref(), uploads[0].thread_ts.as_deref()),
        (Some(dm.as_str()), Some(root.ts.as_str()))
    );
    // Delivered again (a redelivery after the ack was lost): the progress was dropped once done, so
    // it is sent again, which is what at-least-once means; but a retry after a failure resumes.
    slack.rate_limit("files.completeUploadExternal", 1, 60);
    let again: AgentDelivery = serde_json::from_value({
        let mut v = serde_json::to_value(&offer).unwrap();
        v["id"] = json!(uuid::Uuid::now_v7());
        v
    })
    .unwrap();
    let e = app.deliver(&bus.bus, &again).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(60)));
    let before = slack.messages_in(&dm).len();
    app.deliver(&bus.bus, &again).await.expect("the retry finishes");
    assert_eq!(slack.messages_in(&dm).len(), before + 1, "the text was not posted twice, only the file");
    drop(bus);
}

#[tokio::test]
async fn updates_land_in_the_thread_and_settle_the_offer() {
    let slack = FakeSlack::start(BOT, APP).await;
    let bus = TestBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&slack, dir.path());
    let conversation = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let offer: AgentDelivery = serde_json::from_value(json!({
        "type": "offer", "id": uuid::Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation,
        "channel": "email", "customer": { "id": "ann@example.com", "name": "Ann <admin>" },
        "subject": "Refund", "priority": 10, "tier": "L1", "sla_deadline": now, "offer_deadline": now,
        "history": [{ "at": now, "from": "customer", "author": "Ann", "text": "Please refund *order* 9 <@U0BOSS>" }],
        "actions": ["accept", "decline"], "code": "R2D2"
    }))
    .unwrap();
    offer.validate().unwrap();
    app.deliver(&bus.bus, &offer).await.unwrap();
    let update = |change: &str, note: Option<&str>| -> AgentDelivery {
        serde_json::from_value(json!({
            "type": "update", "id": uuid::Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation,
            "code": "R2D2", "customer": "Ann", "channel": "email", "change": change, "note": note
        }))
        .unwrap()
    };
    app.deliver(&bus.bus, &update("delivery_failed", Some("mailbox full"))).await.unwrap();
    app.deliver(&bus.bus, &update("offer_withdrawn", None)).await.unwrap();
    let dm = slack.dm_of("U0ALICE").unwrap();
    let messages = slack.messages_in(&dm);
    let root = &messages[0];
    // Escaped: the customer's `<@U0BOSS>` cannot mention anyone.
    assert!(root.section_text().unwrap().contains("&lt;@U0BOSS&gt;"), "{:?}", root.section_text());
    assert!(root.section_text().unwrap().contains("*New conversation #R2D2*"), "{:?}", root.section_text());
    let failed = messages.iter().find(|m| m.rendered().contains("could not be delivered: mailbox full")).expect("told");
    assert_eq!(failed.thread_ts.as_deref(), Some(root.ts.as_str()), "in the conversation's thread");
    let withdrawn = &slack.messages_in(&dm)[0];
    assert!(withdrawn.rendered().contains("Offer withdrawn"), "{}", withdrawn.rendered());
    assert!(!withdrawn.rendered().contains("[Accept]"), "the buttons are gone");
    // `/sb` finds the conversation by its code, with or without `#`, in any case.
    let kv = switchboard_channel_slack::state::kv(&bus.bus).await.unwrap();
    for code in ["R2D2", "#r2d2"] {
        assert_eq!(switchboard_channel_slack::state::by_code(&kv, "alice", code).await.unwrap(), Some(conversation));
    }
    assert_eq!(switchboard_channel_slack::state::by_code(&kv, "bob", "R2D2").await.unwrap(), None);
}

#[tokio::test]
async fn socket_mode_backs_off_while_slack_fails_and_connects_again_when_asked() {
    use switchboard_adapter::{Health, HealthStatus};
    let slack = FakeSlack::start(BOT, APP).await;
    let bus = TestBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (bot, app_token) = (dir.path().join("bot"), dir.path().join("app"));
    std::fs::write(&bot, BOT).unwrap();
    std::fs::write(&app_token, APP).unwrap();
    let config = SlackConfig {
        enabled: true,
        api_base: slack.api_base(),
        bot_token_file: Some(bot),
        app_token_file: Some(app_token),
        mode: switchboard_channel_slack::SlackMode::Socket,
        ..SlackConfig::default()
    };
    config.validate().unwrap();
    let app = Slack::new(&config).unwrap();
    assert!(app.routes(bus.slot()).is_none(), "no HTTP routes in Socket Mode");
    // Slack fails twice: the client waits 0.5 s, then 1 s, then connects.
    slack.fail("apps.connections.open", 2, "internal_error");
    let (stop, health) = (tokio_util::sync::CancellationToken::new(), Health::default());
    let started = Instant::now();
    let task = tokio::spawn(app.run_socket(bus.bus.clone(), stop.clone(), health.clone()));
    slack.wait_for("a connection", Duration::from_secs(10), |s| s.socket_connected().then_some(())).await;
    assert!(started.elapsed() >= Duration::from_millis(1500), "backed off: {:?}", started.elapsed());
    assert_eq!(slack.calls_of("apps.connections.open").len(), 3);
    let ready = Instant::now() + Duration::from_secs(5);
    while health.get() != HealthStatus::Ready {
        assert!(Instant::now() < ready, "ready after hello: {:?}", health.get());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Asked to reconnect: at once, no back-off.
    let asked = Instant::now();
    slack.socket_disconnect();
    slack
        .wait_for("a second connection", Duration::from_secs(5), |s| (s.socket_connections() == 2).then_some(()))
        .await;
    assert!(asked.elapsed() < Duration::from_millis(500), "reconnected at once: {:?}", asked.elapsed());
    // An unreadable envelope is acked and skipped (sending it again would not help).
    slack.wait_for("connected", Duration::from_secs(5), |s| s.socket_connected().then_some(())).await;
    let id = slack.socket_send("interactive", json!({ "type": "block_actions", "actions": [] }));
    slack
        .wait_for("the ack", Duration::from_secs(5), |s| s.socket_acks().into_iter().find(|a| a.envelope_id == id))
        .await;
    stop.cancel();
    task.await.unwrap().unwrap();
}
