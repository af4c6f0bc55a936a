//! The VK channel under its real runtime, on a real NATS server, against the fake VK API: long
//! polling (`ts` kept after storing, `failed` 1/2/3), the Callback API (secret, confirmation,
//! redelivery), sending (`random_id` de-duplication, split, flood control, a customer who denied
//! messages), files both ways and survey buttons.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_adapter::testkit::{self, TestBus, wait_for};
use switchboard_adapter::{Channel, RuntimeConfig};
use switchboard_channel_vk::{VkChannel, VkConfig, VkMode, ts_key};
use switchboard_core::SurveyKind;
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, headers, streams, subjects};
use switchboard_testkit::FakeVk;

const WAIT: Duration = Duration::from_secs(20);
const GROUP: u64 = 225_000_001;
const TOKEN: &str = "vk1.a.community-token-for-tests";
const SECRET: &str = "callback-secret-42";
const CONFIRMATION: &str = "1a2b3c4d";
const CUSTOMER: i64 = 5_550_001;

fn config(vk: &FakeVk, dir: &tempfile::TempDir, mode: VkMode) -> VkConfig {
    let token = dir.path().join("vk.token");
    std::fs::write(&token, TOKEN).unwrap();
    let secret = dir.path().join("vk.secret");
    std::fs::write(&secret, SECRET).unwrap();
    VkConfig {
        enabled: true,
        mode,
        group_id: GROUP,
        token_file: Some(token),
        api_url: vk.api_url(),
        wait_secs: 1,
        secret_file: (mode == VkMode::Callback).then_some(secret),
        confirmation: (mode == VkMode::Callback).then(|| CONFIRMATION.into()),
        max_body_bytes: 64 * 1024,
        max_file_bytes: 1024,
        max_retry_after_secs: 5,
        ..VkConfig::default()
    }
}

fn runtime() -> RuntimeConfig {
    RuntimeConfig {
        max_attempts: 3,
        backoff: switchboard_bus::Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
        ..RuntimeConfig::default()
    }
}

async fn stored_ts(bus: &TestBus) -> Option<String> {
    let kv = bus.bus.jetstream().get_key_value(buckets::CHANNELS).await.unwrap();
    kv.get(ts_key(GROUP)).await.unwrap().map(|v| String::from_utf8_lossy(&v).into_owned())
}

#[tokio::test]
async fn long_polling_stores_every_kind_keeps_ts_after_storing_and_survives_failed_1_2_3() {
    let bus = TestBus::start().await;
    let vk = FakeVk::start(GROUP, TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let big = vk.add_file("big.jpg", b"the large photo");
    let small = vk.add_file("small.jpg", b"small");
    let pdf = vk.add_file("invoice.pdf", b"%PDF-1.7 invoice");
    let ogg = vk.add_file("voice.ogg", b"OggS voice");
    let huge = vk.add_file("huge.bin", &[7u8; 4096]);
    let channel = VkChannel::new(&config(&vk, &dir, VkMode::LongPoll), bus.slot()).unwrap();
    let lost = channel.lost_counter();
    assert!(channel.exclusive_inbound(), "one poller per community");
    let running = bus.run_channel(channel, runtime());
    wait_for("the first a_check", WAIT, || async {
        vk.a_checks() > 0 || !vk.calls_of("groups.getLongPollServer").is_empty()
    })
    .await;

    vk.push(FakeVk::message_new(CUSTOMER, 1, "Hello!"));
    vk.push(FakeVk::message_with(
        CUSTOMER,
        2,
        "",
        vec![FakeVk::photo(&big, &small), FakeVk::doc(&pdf, "invoice.pdf", 16)],
    ));
    vk.push(FakeVk::message_with(CUSTOMER, 3, "", vec![FakeVk::voice(&ogg, 7), FakeVk::doc(&huge, "huge.bin", 4096)]));
    vk.push(FakeVk::message_with(CUSTOMER, 4, "", vec![FakeVk::sticker()]));
    vk.push(FakeVk::message_geo(CUSTOMER, 5, 59.93428, 30.3351));
    vk.push(FakeVk::message_with(CUSTOMER, 6, "", vec![FakeVk::video()]));
    vk.push(FakeVk::message_edit(CUSTOMER, 1, "Hello again!"));
    vk.push(FakeVk::message_deny(CUSTOMER + 1));
    wait_for("five envelopes", WAIT, || async { bus.envelopes("vk").await.len() == 5 }).await;
    let envelopes = bus.envelopes("vk").await;
    assert_eq!(envelopes[0].text, "Hello!");
    assert_eq!(envelopes[0].provider_message_id, format!("{CUSTOMER}:1"));
    let store = bus.bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.unwrap();
    let read = |name: String| {
        let store = store.clone();
        async move {
            let mut object = store.get(name).await.unwrap();
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes).await.unwrap();
            bytes
        }
    };
    let photo = &envelopes[1].attachments[0];
    assert_eq!(read(photo.object.clone()).await, b"the large photo", "the largest size");
    assert_eq!(read(envelopes[1].attachments[1].object.clone()).await, b"%PDF-1.7 invoice");
    assert_eq!(envelopes[2].text, "[voice message, 0:07]");
    assert_eq!(read(envelopes[2].attachments[0].object.clone()).await, b"OggS voice");
    assert_eq!(envelopes[2].attachments[1].skipped.as_deref(), Some("over the 1024 byte limit"));
    assert_eq!(envelopes[3].text, "[sticker]");
    assert!(envelopes[4].text.starts_with("[location: 59.93428, 30.33510"), "{}", envelopes[4].text);
    // The video alone: the customer is told, nothing routed.
    vk.wait_for_sent("the cannot-read answer", WAIT, |s| s.iter().any(|m| m.text.contains("cannot read"))).await;
    let events = |kind: &'static str| {
        let bus = &bus;
        async move { bus.stored(streams::EVENTS, &subjects::event(kind)).await.len() }
    };
    wait_for("the edit and the denial", WAIT, || async {
        events("message_edited").await == 1 && events("customer_blocked").await == 1
    })
    .await;
    // The position is stored once the batch is: at the end of what VK holds (ts base 100 + 8 events).
    wait_for("ts stored", WAIT, || async { stored_ts(&bus).await.as_deref() == Some("108") }).await;

    // failed: 2, the key expired: a new key, the same ts; nothing lost.
    let servers = vk.calls_of("groups.getLongPollServer").len();
    vk.inject_failed(2);
    vk.push(FakeVk::message_new(CUSTOMER, 7, "after a new key"));
    wait_for("the message after failed 2", WAIT, || async { bus.envelopes("vk").await.len() == 6 }).await;
    assert_eq!(vk.calls_of("groups.getLongPollServer").len(), servers + 1);
    assert_eq!(lost.load(std::sync::atomic::Ordering::Relaxed), 0);
    // failed: 1, events lost: the new ts, counted.
    vk.inject_failed(1);
    wait_for("failed 1 counted", WAIT, || async { lost.load(std::sync::atomic::Ordering::Relaxed) == 1 }).await;
    vk.push(FakeVk::message_new(CUSTOMER, 8, "after failed 1"));
    wait_for("the message after failed 1", WAIT, || async { bus.envelopes("vk").await.len() == 7 }).await;
    // failed: 3: a new key and ts, counted.
    vk.inject_failed(3);
    wait_for("failed 3 counted", WAIT, || async { lost.load(std::sync::atomic::Ordering::Relaxed) == 2 }).await;
    vk.push(FakeVk::message_new(CUSTOMER, 9, "after failed 3"));
    wait_for("the message after failed 3", WAIT, || async { bus.envelopes("vk").await.len() == 8 }).await;
    wait_for("ts at the end", WAIT, || async { stored_ts(&bus).await.as_deref() == Some("111") }).await;
    running.stop().await;

    // A new process goes on from the stored ts: nothing repeated, the next one taken.
    let channel = VkChannel::new(&config(&vk, &dir, VkMode::LongPoll), bus.slot()).unwrap();
    let running = bus.run_channel(channel, runtime());
    vk.push(FakeVk::message_new(CUSTOMER, 10, "after a restart"));
    wait_for("the message after the restart", WAIT, || async { bus.envelopes("vk").await.len() == 9 }).await;
    let texts: Vec<String> = bus.envelopes("vk").await.into_iter().map(|e| e.text).collect();
    assert_eq!(texts.iter().filter(|t| *t == "Hello!").count(), 1, "nothing read twice: {texts:?}");
    running.stop().await;
}

async fn serve(routes: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    format!("http://{addr}/v1/vk/callback")
}

#[tokio::test]
async fn callbacks_need_the_secret_confirm_the_server_and_answer_ok_only_once_stored() {
    let bus = TestBus::start().await;
    let vk = FakeVk::start(GROUP, TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let channel = VkChannel::new(&config(&vk, &dir, VkMode::Callback), bus.slot()).unwrap();
    assert!(!channel.exclusive_inbound(), "callbacks reach any process");
    let running = bus.run_channel(channel, runtime());
    let url = serve(running.routes.clone().expect("the callback route")).await;
    let http = reqwest::Client::new();
    let post = |body: Value| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    assert_eq!(post(vk.confirmation()).await, (200, CONFIRMATION.to_string()));
    let message = FakeVk::message_new(CUSTOMER, 1, "Hi by callback");
    let (code, _) = post(vk.callback(message.clone(), Some("wrong"))).await;
    assert_eq!(code, 403);
    let (code, _) = post(vk.callback(message.clone(), None)).await;
    assert_eq!(code, 403, "a missing secret is refused");
    let mut elsewhere = vk.callback(message.clone(), Some(SECRET));
    elsewhere["group_id"] = json!(1);
    assert_eq!(post(elsewhere).await.0, 403, "another community's event");
    let r = http.post(&url).body(vec![b'{'; 70 * 1024]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(http.post(&url).body("not json").send().await.unwrap().status().as_u16(), 400);
    assert!(bus.envelopes("vk").await.is_empty(), "a refused event stores nothing");

    let event = vk.callback(message, Some(SECRET));
    assert_eq!(post(event.clone()).await, (200, "ok".to_string()));
    assert_eq!(bus.envelopes("vk").await.len(), 1);
    // VK sends an event again when it did not hear `ok` in time: a duplicate, still `ok`.
    assert_eq!(post(event).await, (200, "ok".to_string()));
    assert_eq!(bus.envelopes("vk").await.len(), 1);
    let deny = vk.callback(FakeVk::message_deny(CUSTOMER), Some(SECRET));
    assert_eq!(post(deny.clone()).await.0, 200);
    assert_eq!(post(deny).await.0, 200);
    assert_eq!(bus.stored(streams::EVENTS, &subjects::event("customer_blocked")).await.len(), 1, "once");
    running.stop().await;
}

#[tokio::test]
async fn sending_splits_uses_random_ids_waits_out_flood_control_and_dead_letters_a_denied_customer() {
    let bus = TestBus::start().await;
    let vk = FakeVk::start(GROUP, TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&vk, &dir, VkMode::Callback);
    cfg.max_file_bytes = 1024 * 1024;
    let channel = VkChannel::new(&cfg, bus.slot()).unwrap();
    let running = bus.run_channel(channel, runtime());

    // A long answer with a photo and a document; the first try hits "too many requests".
    let store = bus.bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.unwrap();
    store.put("agent/photo.png", &mut &b"\x89PNG photo"[..]).await.unwrap();
    store.put("agent/terms.pdf", &mut &b"%PDF terms"[..]).await.unwrap();
    let mut long = testkit::outbound("vk", &CUSTOMER.to_string(), &"Долгий ответ. ".repeat(700));
    let attach = |object: &str, name: &str, ct: &str| switchboard_core::envelope::AttachmentRef {
        object: object.into(),
        filename: name.into(),
        content_type: ct.into(),
        size: 10,
        skipped: None,
    };
    long.attachments = vec![
        attach("agent/photo.png", "photo.png", "image/png"),
        attach("agent/terms.pdf", "terms.pdf", "application/pdf"),
    ];
    long.reply_to = Some(format!("{CUSTOMER}:1"));
    vk.fail("messages.send", &[6, 9]);
    bus.send_outbound(&long).await;
    let sent = vk.wait_for_sent("three text parts and two files", WAIT, |s| s.len() == 5).await;
    assert_eq!(
        sent[0].forward.as_ref().unwrap()["conversation_message_ids"],
        json!([1]),
        "answers the customer's message"
    );
    assert_eq!(sent.iter().take(3).map(|m| m.text.clone()).collect::<String>(), long.text);
    assert!(sent[3].attachments[0].starts_with("photo-1_"), "{:?}", sent[3].attachments);
    assert!(sent[4].attachments[0].starts_with("doc-1_"), "{:?}", sent[4].attachments);
    assert_eq!(
        vk.uploads().iter().map(|u| u.bytes.clone()).collect::<Vec<_>>(),
        vec![b"\x89PNG photo".to_vec(), b"%PDF terms".to_vec()]
    );
    bus.wait_outbound_drained("vk", WAIT).await;

    // The same message again (a redelivery after a crash): VK's random_id de-duplication and the
    // progress leave the customer with one copy.
    let calls = vk.calls_of("messages.send").len();
    let mut again = long.clone();
    again.attachments.clear();
    bus.bus.publish(&subjects::outbound("vk"), &again, &format!("{}-again", again.id)).await.unwrap();
    wait_for("the redelivery handled", WAIT, || async { vk.calls_of("messages.send").len() >= calls + 3 }).await;
    bus.wait_outbound_drained("vk", WAIT).await;
    assert_eq!(vk.sent().len(), 5, "nothing sent twice");

    // A customer who denied messages: a dead letter and a delivery_failed a person understands.
    vk.note(&FakeVk::message_deny(777));
    let denied = testkit::outbound("vk", "777", "Are you there?");
    bus.send_outbound(&denied).await;
    wait_for("the dead letter", WAIT, || async { !bus.dead_letters("vk").await.is_empty() }).await;
    let (h, _) = &bus.dead_letters("vk").await[0];
    let reason = h.get(headers::DLQ_REASON).unwrap().to_string();
    assert!(reason.contains("not allowed the community to message them"), "{reason}");
    assert_eq!(bus.stored(streams::EVENTS, &subjects::event("delivery_failed")).await.len(), 1);
    assert!(vk.sent_to(777).is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_survey_goes_out_with_buttons_and_a_press_is_the_answer_once() {
    let bus = TestBus::start().await;
    let vk = FakeVk::start(GROUP, TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let channel = VkChannel::new(&config(&vk, &dir, VkMode::LongPoll), bus.slot()).unwrap();
    let running = bus.run_channel(channel, runtime());
    // A community polled for the first time is read from then on: events before it are not.
    wait_for("the long-poll server", WAIT, || async { !vk.calls_of("groups.getLongPollServer").is_empty() }).await;
    let conversation = uuid::Uuid::now_v7();
    bus.store_surveyed(conversation, "vk", &CUSTOMER.to_string(), Some("alice"), SurveyKind::Csat).await;
    bus.send_outbound(&testkit::csat_request("vk", &CUSTOMER.to_string(), conversation, "alice")).await;
    let sent = vk.wait_for_sent("the question", WAIT, |s| !s.is_empty()).await;
    let keyboard = sent[0].keyboard.clone().expect("buttons");
    let button = keyboard["buttons"][0][4]["action"].clone();
    assert_eq!(button["label"], "5");
    let payload = button["payload"].as_str().unwrap().to_string();
    vk.push(FakeVk::button_press(CUSTOMER, 2, "5", &payload));
    vk.push(FakeVk::button_press(CUSTOMER, 3, "5", &payload));
    // Another dialog pressing a copied button is refused.
    vk.push(FakeVk::button_press(999, 1, "1", &payload.replace(":5\"", ":1\"")));
    wait_for("the answer", WAIT, || async { bus.csat_events().await.len() == 1 }).await;
    vk.wait_for_sent("the thanks", WAIT, |s| s.iter().any(|m| m.text == "Thank you!")).await;
    let events = bus.csat_events().await;
    assert_eq!((events[0].data["score"].clone(), events[0].agent_id.clone()), (json!(5), Some("alice".into())));
    assert!(bus.envelopes("vk").await.is_empty(), "a press is not a message to route");
    running.stop().await;
}
