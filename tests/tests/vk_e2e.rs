//! VK end to end through the daemon, against the fake VK API: a customer writes to the community
//! (long polling), the offer reaches a helpdesk (a webhook agent endpoint playing the agent), the
//! agent accepts and answers through the agent API, and the answer reaches the customer's dialog.
//! Every kind of message arrives; a flood from one customer is bounded with nothing lost
//! silently; a restart of the daemon neither loses nor repeats a message (the long-poll `ts` is
//! kept on the bus; a callback VK sends again is a duplicate); and a customer who denied the
//! community messages makes the agent's next answer come back to the agent as undelivered, with
//! a reason a person understands; a community token VK refuses shows on `/readyz` until it works.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::config::ApiTokenConfig;
use switchboard_channel_vk::{VkConfig, VkMode};
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_core::contract::{streams, subjects};
use switchboard_e2e::{Receiver, TestDaemon, stored_on};
use switchboard_testkit::{FakeVk, NatsServer};

const WAIT: Duration = Duration::from_secs(20);
const GROUP: u64 = 225_000_001;
const TOKEN: &str = "vk1.a.community-token-for-e2e";
const SECRET: &str = "vk-callback-secret";
const ALICE: &str = "alice-token-for-tests";
const HELPDESK_SECRET: &str = "whsec_YWxpY2UtaGVscGRlc2stc2VjcmV0LWZvci12aw==";
const ADA: i64 = 5_550_001;

/// The daemon's configuration: a router with alice online at `helpdesk`, VK in `mode` on `vk`.
fn config(c: &mut switchboard::Config, dir: &std::path::Path, vk: &str, helpdesk: &str, mode: VkMode) {
    let (alice, secret, token, cb) =
        (dir.join("alice.token"), dir.join("alice.secret"), dir.join("vk.token"), dir.join("vk.secret"));
    std::fs::write(&alice, ALICE).unwrap();
    std::fs::write(&secret, HELPDESK_SECRET).unwrap();
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::write(&cb, SECRET).unwrap();
    c.router.enabled = true;
    c.routing = serde_json::from_value(json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 300 } },
        "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
    }))
    .unwrap();
    c.api.tokens.insert(
        "alice".into(),
        ApiTokenConfig { token_file: Some(alice), agent: Some("alice".into()), ..Default::default() },
    );
    c.channels.webhook.agents.insert(
        "alice".into(),
        AgentEndpointConfig { url: helpdesk.into(), secret_file: Some(secret), ..Default::default() },
    );
    c.channels.vk = VkConfig {
        enabled: true,
        mode,
        group_id: GROUP,
        token_file: Some(token),
        api_url: vk.into(),
        wait_secs: 1,
        secret_file: (mode == VkMode::Callback).then_some(cb),
        confirmation: (mode == VkMode::Callback).then(|| "c0nf1rm".into()),
        ..VkConfig::default()
    };
}

fn command(conversation: &str, action: Value) -> String {
    json!({ "conversation_id": conversation, "action": action }).to_string()
}

/// The bodies the helpdesk received, parsed.
fn deliveries(helpdesk: &Receiver) -> Vec<Value> {
    helpdesk.received().into_iter().filter_map(|(_, b)| serde_json::from_str(&b).ok()).collect()
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_customer_on_vk_is_answered_every_kind_arrives_and_a_restart_loses_and_repeats_nothing() {
    let vk = FakeVk::start(GROUP, TOKEN).await;
    let helpdesk = Receiver::start("/alice").await;
    let dir = tempfile::tempdir().unwrap();
    let (api, hook, path) = (vk.api_url(), helpdesk.url.clone(), dir.path().to_path_buf());
    let edit = move |c: &mut switchboard::Config| config(c, &path, &api, &hook, VkMode::LongPoll);
    let daemon = TestDaemon::start(None, edit.clone()).await;
    // A community polled for the first time is read from then on: wait until it is.
    wait_until("the long-poll server", || !vk.calls_of("groups.getLongPollServer").is_empty()).await;

    // Ada writes; alice's helpdesk is offered the conversation; she accepts and answers.
    vk.push(FakeVk::message_new(ADA, 1, "Hello! My parcel arrived broken."));
    let offer = helpdesk.wait_for("the offer", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(
        (offer["channel"].clone(), offer["history"][0]["text"].clone()),
        (json!("vk"), json!("Hello! My parcel arrived broken."))
    );
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    let (code, why) =
        daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&command(&conversation, json!({"type": "accept"})))).await;
    assert_eq!(code, 200, "{why}");
    let answer = "Sorry to hear that, Ada: a new one ships today.";
    let (code, why) = daemon
        .api(
            ALICE,
            "POST",
            "/v1/agent/commands",
            Some(&command(&conversation, json!({"type": "reply", "text": answer}))),
        )
        .await;
    assert_eq!(code, 200, "{why}");
    let sent = vk
        .wait_for_sent("the answer in Ada's dialog", WAIT, |s| s.iter().any(|m| m.peer_id == ADA && m.text == answer))
        .await;
    assert_eq!(sent.iter().filter(|m| m.text == answer).count(), 1, "once");

    // Every kind of message reaches alice, files stored and listed.
    let photo = vk.add_file("photo.jpg", b"JPEG bytes of a broken parcel");
    let pdf = vk.add_file("receipt.pdf", b"%PDF receipt");
    let ogg = vk.add_file("voice.ogg", b"OggS voice");
    vk.push(FakeVk::message_with(
        ADA,
        2,
        "Photo and receipt",
        vec![FakeVk::photo(&photo, &photo), FakeVk::doc(&pdf, "receipt.pdf", 12)],
    ));
    vk.push(FakeVk::message_with(ADA, 3, "", vec![FakeVk::voice(&ogg, 65)]));
    vk.push(FakeVk::message_with(ADA, 4, "", vec![FakeVk::sticker()]));
    vk.push(FakeVk::message_geo(ADA, 5, 59.93428, 30.3351));
    vk.push(FakeVk::message_with(ADA, 6, "", vec![FakeVk::video()]));
    vk.push(FakeVk::message_edit(ADA, 1, "Hello! My parcel arrived broken (the box too)."));
    let text_of = |v: &Value| v["entry"]["text"].as_str().unwrap_or_default().to_string();
    for expected in
        ["Photo and receipt", "[voice message, 1:05]", "[sticker]", "[location: 59.93428, 30.33510 (Nevsky prospect)]"]
    {
        helpdesk.wait_for(expected, WAIT, |v| v["type"] == "message" && text_of(v) == expected).await;
    }
    let files = helpdesk.wait_for("the files", WAIT, |v| text_of(v) == "Photo and receipt").await;
    let names: Vec<&str> =
        files["entry"]["attachments"].as_array().unwrap().iter().filter_map(|a| a["filename"].as_str()).collect();
    assert_eq!(names, vec!["photo.jpg", "receipt.pdf"], "{files}");
    vk.wait_for_sent("the cannot-read answer for the video", WAIT, |s| {
        s.iter().any(|m| m.peer_id == ADA && m.text.contains("cannot read"))
    })
    .await;
    helpdesk.wait_for("the edit", WAIT, |v| v["change"] == "message_edited").await;

    // A flood from one customer: the per-sender limit (burst 20) holds, and every message ends
    // stored or dead-lettered, none lost without a trace.
    let flooder = 6_660_001;
    for n in 1..=30 {
        vk.push(FakeVk::message_new(flooder, n, &format!("flood {n}")));
    }
    let url = daemon.nats.url();
    let stored_from = |who: i64| {
        let (url, who) = (url.clone(), who.to_string());
        async move {
            let bus = async_nats::connect(url).await.unwrap();
            let js = async_nats::jetstream::new(bus);
            let mut stream = js.get_stream(streams::INBOUND).await.unwrap();
            let info = stream.info().await.unwrap().state.clone();
            let mut n = 0;
            for seq in info.first_sequence..=info.last_sequence {
                if let Ok(m) = stream.get_raw_message(seq).await
                    && serde_json::from_slice::<Value>(&m.payload).is_ok_and(|e| e["customer"]["id"] == who.as_str())
                {
                    n += 1;
                }
            }
            n
        }
    };
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (stored, dead) =
            (stored_from(flooder).await, stored_on(&daemon.nats.url(), streams::DLQ, &subjects::dlq("vk-in")).await);
        if stored + dead == 30 {
            assert!(
                (20..30).contains(&stored),
                "the burst is taken, the rest refused: {stored} stored, {dead} dead letters"
            );
            // Each one counted once on /metrics: the dead letters by the channel, the rest by the router.
            let metrics =
                daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
            let sample = format!("switchboard_inbound_total{{channel=\"vk\",outcome=\"dead_letter\"}} {dead}");
            assert!(metrics.lines().any(|l| l == sample), "{sample} in {metrics}");
            // A dead letter holds the envelope, so `switchboard dlq replay` can put it back on sb.in.vk.
            let js = async_nats::jetstream::new(async_nats::connect(daemon.nats.url()).await.unwrap());
            let dlq = js.get_stream(streams::DLQ).await.unwrap();
            let last = dlq.get_last_raw_message_by_subject(&subjects::dlq("vk-in")).await.unwrap();
            let envelope: switchboard_core::Envelope = serde_json::from_slice(&last.payload).unwrap();
            assert_eq!(envelope.channel, "vk");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "flood not settled: {stored} stored, {dead} dead letters");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A restart: a message written while the daemon is down arrives once, nothing before it again.
    let before = stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("vk")).await;
    let nats: NatsServer = daemon.stop_keeping_nats().await;
    vk.push(FakeVk::message_new(ADA, 7, "Are you still there?"));
    let daemon = TestDaemon::start_on(nats, None, edit).await;
    helpdesk.wait_for("the message written during the restart", WAIT, |v| text_of(v) == "Are you still there?").await;
    let after = stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("vk")).await;
    assert_eq!(after, before + 1, "exactly the new message was stored");
    let first = |v: &Value| {
        let offered = v["type"] == "offer" && v["history"][0]["text"].as_str().is_some_and(|t| t.starts_with("Hello!"));
        offered || (v["type"] == "message" && text_of(v).starts_with("Hello!"))
    };
    let hello = deliveries(&helpdesk).iter().filter(|v| first(v)).count();
    assert_eq!(hello, 1, "the first message was not offered again");
    daemon.stop().await;
}

#[tokio::test]
async fn callbacks_are_stored_once_across_a_restart_and_a_customer_who_denied_messages_comes_back_to_the_agent() {
    let vk = FakeVk::start(GROUP, TOKEN).await;
    let helpdesk = Receiver::start("/alice").await;
    let dir = tempfile::tempdir().unwrap();
    let (api, hook, path) = (vk.api_url(), helpdesk.url.clone(), dir.path().to_path_buf());
    let edit = move |c: &mut switchboard::Config| config(c, &path, &api, &hook, VkMode::Callback);
    let daemon = TestDaemon::start(None, edit.clone()).await;
    let http = reqwest::Client::new();
    let post = |base: String, body: Value| {
        let http = http.clone();
        async move {
            let r = http.post(format!("{base}/v1/vk/callback")).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(post(daemon.base.clone(), vk.confirmation()).await, (200, "c0nf1rm".to_string()));
    assert_eq!(
        post(daemon.base.clone(), vk.callback(FakeVk::message_new(ADA, 1, "forged"), Some("nope"))).await.0,
        403
    );
    let event = vk.callback(FakeVk::message_new(ADA, 1, "Hi, by callback"), Some(SECRET));
    assert_eq!(post(daemon.base.clone(), event.clone()).await, (200, "ok".to_string()));
    let offer = helpdesk.wait_for("the offer", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(offer["history"][0]["text"], "Hi, by callback");
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();

    // VK sends the event again after a restart (it never heard `ok` in time): a duplicate.
    let nats = daemon.stop_keeping_nats().await;
    let daemon = TestDaemon::start_on(nats, None, edit).await;
    assert_eq!(post(daemon.base.clone(), event).await, (200, "ok".to_string()));
    assert_eq!(stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("vk")).await, 1, "stored once");

    // Ada denies the community messages; alice's answer cannot reach her, and alice is told why.
    let deny = vk.callback(FakeVk::message_deny(ADA), Some(SECRET));
    vk.note(&deny);
    assert_eq!(post(daemon.base.clone(), deny).await.0, 200);
    assert_eq!(stored_on(&daemon.nats.url(), streams::EVENTS, &subjects::event("customer_blocked")).await, 1);
    let (code, why) =
        daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&command(&conversation, json!({"type": "accept"})))).await;
    assert_eq!(code, 200, "{why}");
    let reply = command(&conversation, json!({"type": "reply", "text": "We will send a new one."}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&reply)).await.0, 200);
    let failed = helpdesk.wait_for("delivery_failed at the helpdesk", WAIT, |v| v["change"] == "delivery_failed").await;
    let note = failed["note"].as_str().unwrap_or_default();
    assert!(note.contains("has not allowed the community to message them"), "{failed}");
    assert!(vk.sent_to(ADA).is_empty(), "nothing reached a customer who denied messages");
    assert_eq!(
        stored_on(&daemon.nats.url(), streams::DLQ, &subjects::dlq("vk")).await,
        1,
        "the reply is a dead letter"
    );
    wait_until("nothing else sent", || vk.calls_of("messages.send").iter().all(|c| c.error == Some(901))).await;
    daemon.stop().await;
}

#[tokio::test]
async fn a_refused_community_token_shows_on_readyz_until_vk_takes_it_again() {
    let vk = FakeVk::start(GROUP, TOKEN).await;
    let helpdesk = Receiver::start("/alice").await;
    let dir = tempfile::tempdir().unwrap();
    let (api, hook, path) = (vk.api_url(), helpdesk.url.clone(), dir.path().to_path_buf());
    let daemon = TestDaemon::start(None, move |c| config(c, &path, &api, &hook, VkMode::LongPoll)).await;
    let readyz = || async {
        let r = daemon.http.get(format!("{}/readyz", daemon.base)).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    // The key expires while the token is revoked: getLongPollServer answers error 5.
    vk.revoke_token(true);
    vk.inject_failed(2);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (code, body) = readyz().await;
        if body["components"]["vk"].as_str().is_some_and(|s| s.contains("VK refused the community token")) {
            assert_eq!(code, 503, "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the refused token never showed: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    vk.revoke_token(false);
    let deadline = std::time::Instant::now() + WAIT;
    while readyz().await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "not ready again: {:?}", readyz().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    vk.push(FakeVk::message_new(ADA, 1, "Back again"));
    helpdesk.wait_for("the offer after the token works again", WAIT, |v| v["type"] == "offer").await;
    daemon.stop().await;
}
