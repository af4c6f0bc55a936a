//! An anonymous upload flood against the real daemon on real NATS: it stops at the attachments
//! store's budget (the figures are printed), other visitors keep chatting meanwhile, `/readyz`
//! and `/metrics` show the store nearly full, and the files no message attached are deleted
//! after the grace period, leaving the one a visitor attached.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_channel_webchat::WebchatConfig;
use switchboard_core::contract::ATTACHMENTS_STORE;
use switchboard_e2e::{ChatSocket, TestDaemon};

const ORIGIN: &str = "http://shop.test";
const MIB: usize = 1 << 20;
/// The attachments store's budget.
const BUDGET: usize = 8 * MIB;
/// Sessions the flood opens, each uploading until refused.
const FLOOD_SESSIONS: usize = 16;
/// Seconds an unattached file is kept.
const GRACE_SECS: u64 = 15;

/// Waits until `condition` holds, checking every 200 ms; fails the test after `timeout`.
async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn upload(daemon: &TestDaemon, token: &str, bytes: usize) -> (u16, Value) {
    let response = daemon
        .http
        .post(format!("{}/chat/upload?token={token}", daemon.base))
        .header("origin", ORIGIN)
        .header("x-filename", "f.bin")
        .body(vec![b'x'; bytes])
        .send()
        .await
        .expect("upload sent");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// A visitor's socket after hello, and its session token.
async fn visitor(daemon: &TestDaemon) -> (ChatSocket, String) {
    let mut socket = ChatSocket::connect(&daemon.base, ORIGIN).await.expect("socket");
    let welcome = socket.hello(json!({})).await;
    (socket, welcome["token"].as_str().expect("token").to_string())
}

/// The attachments store's bytes and its object names.
async fn store_state(js: &async_nats::jetstream::Context) -> (u64, Vec<String>) {
    let mut stream = js.get_stream(format!("OBJ_{ATTACHMENTS_STORE}")).await.expect("store stream");
    let bytes = stream.info().await.expect("info").state.bytes;
    let store = js.get_object_store(ATTACHMENTS_STORE).await.expect("store");
    let mut list = store.list().await.expect("list");
    let mut names = Vec::new();
    while let Some(info) = list.next().await {
        names.push(info.expect("object").name);
    }
    (bytes, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_flood_stops_at_the_budget_while_other_visitors_still_chat() {
    let dir = tempfile::tempdir().unwrap();
    let session_key = dir.path().join("session.key");
    std::fs::write(&session_key, "upload-flood-session-key-0123456789abcdef").unwrap();
    let daemon = TestDaemon::start(None, |c| {
        c.nats.store_max_bytes.insert(ATTACHMENTS_STORE.into(), BUDGET as u64);
        c.metrics.enabled = true;
        c.channels.webchat = WebchatConfig {
            enabled: true,
            session_secret_file: Some(session_key),
            allowed_origins: vec![ORIGIN.into()],
            prechat: false,
            max_upload_bytes: MIB,
            // Every request here comes from 127.0.0.1: the per-address upload rate (measured in
            // the channel's tests) would stop the flood first; the store's budget is measured here.
            ip_uploads_per_minute: 100_000,
            uploads_per_minute: 1000,
            uploads_before_message: 3,
            session_upload_bytes: 4 * MIB as u64,
            upload_grace_secs: GRACE_SECS,
            upload_sweep_secs: 1,
            ..Default::default()
        };
    })
    .await;
    let js = async_nats::jetstream::new(async_nats::connect(daemon.nats.url()).await.unwrap());

    // A visitor attaches a file to a message before the flood.
    let (mut alice, alice_token) = visitor(&daemon).await;
    let (status, uploaded) = upload(&daemon, &alice_token, 200 * 1024).await;
    assert_eq!(status, 200, "{uploaded}");
    alice
        .send(json!({ "type": "send", "client_id": "a1", "text": "my invoice", "attachments": [uploaded["ref"]] }))
        .await;
    let alice_url = loop {
        let frame = alice.next().await;
        if frame["type"] == "entry" && frame["entry"]["kind"] == "customer" {
            break frame["entry"]["attachments"][0]["url"].as_str().unwrap().to_string();
        }
    };

    // Other visitors write every 100 ms while the flood runs.
    let mut calm = Vec::new();
    for _ in 0..4 {
        calm.push(visitor(&daemon).await.0);
    }
    let chatting = tokio::spawn(async move {
        let mut outcomes = Vec::new();
        for round in 0..15 {
            for (i, socket) in calm.iter_mut().enumerate() {
                socket.send(json!({ "type": "send", "client_id": format!("c{i}-{round}"), "text": "hello?" })).await;
                outcomes.push(socket.outcome().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        outcomes
    });

    // The flood: fresh sessions that never send a message, each uploading 1 MiB files until refused.
    let mut tokens = Vec::new();
    for _ in 0..FLOOD_SESSIONS {
        tokens.push(visitor(&daemon).await.1);
    }
    let started = Instant::now();
    let answers: Vec<(u16, Value)> = futures::stream::iter(tokens.iter().flat_map(|t| [t, t, t, t]))
        .map(|token| upload(&daemon, token, MIB))
        .buffer_unordered(8)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let outcomes = chatting.await.unwrap();

    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    let full: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 507).map(|(_, b)| b).collect();
    let quota = answers.iter().filter(|(s, _)| *s == 403).count();
    let (stored, _) = store_state(&js).await;
    println!(
        "upload flood: {} uploads of 1 MiB from {FLOOD_SESSIONS} sessions in {:.2} s: {accepted} stored, {} refused \
         as storage full (507), {quota} refused by the per-session quota (403); the store holds {stored} bytes \
         ({:.2} MiB) of its {BUDGET}-byte budget ({} MiB)",
        answers.len(),
        elapsed.as_secs_f64(),
        full.len(),
        stored as f64 / MIB as f64,
        BUDGET / MIB,
    );
    assert!(stored <= BUDGET as u64, "the store never exceeds its budget: {stored}");
    assert!(stored >= (BUDGET - 2 * MIB) as u64, "the flood filled the store up to its budget: {stored}");
    assert!(accepted * MIB <= BUDGET, "at most the budget was accepted: {accepted} MiB");
    assert!(!full.is_empty(), "the flood was refused at the budget");
    assert!(
        full.iter().all(|b| b["code"] == "storage_full" && b["error"] == "upload limit reached: try again later"),
        "{full:?}"
    );
    assert!(
        answers.iter().all(|(s, _)| [200, 403, 507].contains(s)),
        "only stored or refused: {:?}",
        answers.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert!(outcomes.iter().all(|o| o == "ack"), "other visitors kept chatting: {outcomes:?}");

    // While full: a file the size the flood used is refused for everyone; messages still go through.
    assert_eq!(upload(&daemon, &alice_token, MIB).await.0, 507);
    alice.send(json!({ "type": "send", "client_id": "a2", "text": "still there?" })).await;
    assert_eq!(alice.outcome().await, "ack");

    // /readyz stays ready and says the store is nearly full; /metrics has its gauges.
    let ready = daemon.http.get(format!("{}/readyz", daemon.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    let fill = ready["storage"][ATTACHMENTS_STORE].as_str().unwrap_or_default().to_string();
    println!("/readyz storage.{ATTACHMENTS_STORE}: {fill}");
    assert!(fill.starts_with("nearly full: "), "{ready}");
    assert!(ready["storage"]["SB_INBOUND"].as_str().is_some_and(|s| !s.starts_with("nearly")), "{ready}");
    let metrics = daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    let gauge = |name: &str| {
        let prefix = format!("{name}{{stream=\"{ATTACHMENTS_STORE}\",kind=\"object_store\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&prefix)?.parse::<u64>().ok())
    };
    assert_eq!(gauge("switchboard_stream_max_bytes"), Some(BUDGET as u64), "{metrics}");
    assert!(gauge("switchboard_stream_bytes").is_some_and(|b| b * 10 >= BUDGET as u64 * 9), "{metrics}");

    // After the grace period every unattached file (and any chunk a refused file left) is gone;
    // the attached one stays and is served, and uploads work again.
    let attached = uploaded["ref"]["object"].as_str().unwrap().to_string();
    wait_until("the unattached uploads deleted", Duration::from_secs(GRACE_SECS + 45), || {
        let (js, attached) = (js.clone(), attached.clone());
        async move {
            let (bytes, names) = store_state(&js).await;
            names == vec![attached] && bytes < 300 * 1024
        }
    })
    .await;
    let (after, _) = store_state(&js).await;
    println!("after the {GRACE_SECS} s grace: the store holds {after} bytes (the one attached file)");
    let served = daemon.http.get(format!("{}{alice_url}", daemon.base)).send().await.unwrap();
    assert_eq!(served.bytes().await.unwrap().len(), 200 * 1024, "the attached file is still served");
    assert_eq!(upload(&daemon, &alice_token, 1024).await.0, 200, "room again");
    daemon.stop().await;
}
