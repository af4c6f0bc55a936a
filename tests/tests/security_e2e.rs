//! Credentials and replays through the real daemon on real NATS: every API route refuses a
//! request without its token, `/metrics` takes an optional bearer token while the probes stay
//! open, and a signed webhook request replayed later is never stored twice.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_bus::async_nats;
use switchboard_core::contract::{streams, subjects};
use switchboard_e2e::{TestDaemon, signed_headers, stored_on};

const TOKEN: &str = "ops-token-for-security-tests";
const METRICS_TOKEN: &str = "metrics-token-for-security-tests";

#[tokio::test]
async fn every_api_route_needs_its_token_and_metrics_its_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let (token_file, metrics_file) = (dir.path().join("ops.token"), dir.path().join("metrics.token"));
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::write(&metrics_file, format!("{METRICS_TOKEN}\n")).unwrap();
    let daemon = TestDaemon::start(None, |c| {
        c.api
            .tokens
            .insert("ops".into(), ApiTokenConfig { token_file: Some(token_file), admin: true, ..Default::default() });
        c.metrics.token_file = Some(metrics_file);
    })
    .await;
    let conversation = uuid::Uuid::now_v7();
    let routes = [
        ("POST", "/v1/agent/commands".to_string()),
        ("GET", format!("/v1/conversations/{conversation}")),
        ("GET", "/v1/queue".to_string()),
        ("PUT", "/v1/agents/dave".to_string()),
        ("POST", "/v1/agent/telegram-link".to_string()),
        ("POST", "/v1/agent/typing".to_string()),
    ];
    for (method, path) in &routes {
        let url = format!("{}{path}", daemon.base);
        let request = |token: Option<&str>| {
            let req = match *method {
                "POST" => daemon.http.post(&url),
                "PUT" => daemon.http.put(&url),
                _ => daemon.http.get(&url),
            };
            let req = req.header("content-type", "application/json").body("{}");
            match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        };
        for token in [None, Some("wrong"), Some(&TOKEN[..TOKEN.len() - 1]), Some(METRICS_TOKEN)] {
            let status = request(token).send().await.unwrap().status().as_u16();
            assert_eq!(status, 401, "{method} {path} with {token:?}");
        }
        // With the token, the request gets past authentication (whatever it then answers).
        let status = request(Some(TOKEN)).send().await.unwrap().status().as_u16();
        assert_ne!(status, 401, "{method} {path} with the right token");
    }

    let metrics = format!("{}/metrics", daemon.base);
    for token in [None, Some("wrong"), Some(TOKEN)] {
        let req = daemon.http.get(&metrics);
        let req = if let Some(t) = token { req.bearer_auth(t) } else { req };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "/metrics with {token:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    }
    let resp = daemon.http.get(&metrics).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("switchboard_metrics_events_sequence"));
    for probe in ["/healthz", "/readyz"] {
        let status = daemon.http.get(format!("{}{probe}", daemon.base)).send().await.unwrap().status();
        assert_eq!(status, 200, "{probe} stays open for probes");
    }
    daemon.stop().await;

    // A token that is configured but missing locks /metrics rather than opening it.
    let daemon = TestDaemon::start(None, |c| c.metrics.token_env = Some("SB_TEST_UNSET_METRICS_TOKEN".into())).await;
    let status = daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().status();
    assert_eq!(status, 401);
    daemon.stop().await;
}

/// POSTs `body` to `/v1/webhooks/shop` with the given Standard Webhooks headers.
async fn post(daemon: &TestDaemon, headers: &[(&'static str, String); 3], body: &str) -> (u16, serde_json::Value) {
    let mut req =
        daemon.http.post(format!("{}/v1/webhooks/shop", daemon.base)).header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or_default())
}

/// Publishes a probe with a fixed `Nats-Msg-Id` to `SB_INBOUND` until JetStream no longer calls
/// it a duplicate: proof that the stream's duplicate window has passed since the first probe.
async fn wait_for_the_window_to_pass(js: &async_nats::jetstream::Context, since: Instant, timeout: Duration) {
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "replay-probe");
        let ack = js.publish_with_headers("sb.in.replay-probe", headers, "probe".into()).await.unwrap().await.unwrap();
        if !ack.duplicate {
            return;
        }
        assert!(since.elapsed() < timeout, "the duplicate window never passed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a daemon with the given tolerance and duplicate window, stores one signed message,
/// waits until the window has passed and replays the captured request; returns the replay's
/// answer and how many copies `SB_INBOUND` holds.
async fn replay_after_the_window(tolerance: u64, window: u64) -> ((u16, serde_json::Value), usize, Duration) {
    let daemon = TestDaemon::start(None, |c| {
        c.channels.webhook.timestamp_tolerance_secs = tolerance;
        c.nats.duplicate_window_secs = window;
    })
    .await;
    let client = async_nats::connect(daemon.nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let body = r#"{"message_id":"pay-1","customer":{"id":"u-1"},"text":"Refund order 9"}"#;
    let captured = signed_headers("evt_replay", chrono::Utc::now().timestamp(), body);
    let started = Instant::now();
    let (status, first) = post(&daemon, &captured, body).await;
    assert_eq!((status, first["duplicate"].clone()), (202, json!(false)), "{first}");
    let mut probe = async_nats::HeaderMap::new();
    probe.insert("Nats-Msg-Id", "replay-probe");
    js.publish_with_headers("sb.in.replay-probe", probe, "probe".into()).await.unwrap().await.unwrap();

    // Replayed at once: JetStream's duplicate window drops it, and the sender is told, with the
    // original's id and sequence.
    let (status, again) = post(&daemon, &captured, body).await;
    let answer = (status, again["duplicate"].clone(), again["id"].clone(), again["sequence"].clone());
    assert_eq!(answer, (202, json!(true), first["id"].clone(), first["sequence"].clone()), "{again}");

    wait_for_the_window_to_pass(&js, started, Duration::from_secs(3 * window + 5)).await;
    let waited = started.elapsed();
    let replay = post(&daemon, &captured, body).await;
    let stored = stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("webhook")).await;
    daemon.stop().await;
    (replay, stored, waited)
}

#[tokio::test]
async fn a_captured_webhook_is_refused_after_the_duplicate_window_and_never_stored_twice() {
    // As Config::load allows it: the window covers twice the tolerance.
    let ((status, answer), stored, waited) = replay_after_the_window(2, 4).await;
    println!(
        "replay after the duplicate window (tolerance 2 s, window 4 s, replayed {:.1} s after the original): \
         {status} {answer}; copies stored: {stored}",
        waited.as_secs_f64()
    );
    assert_eq!(status, 401, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("outside the tolerance"), "{answer}");
    assert_eq!(stored, 1, "stored once");

    // The gap the configuration check closes: with a window shorter than the tolerance (which
    // Config::load refuses), the same replay is stored a second time.
    let ((status, answer), stored, waited) = replay_after_the_window(30, 2).await;
    println!(
        "the same replay with a window shorter than the tolerance (tolerance 30 s, window 2 s, replayed {:.1} s \
         after): {status} {answer}; copies stored: {stored}",
        waited.as_secs_f64()
    );
    assert_eq!((status, answer["duplicate"].clone(), stored), (202, json!(false), 2), "{answer}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    let toml = "[nats]\nduplicate_window_secs = 2\n[channels.webhook]\ntimestamp_tolerance_secs = 30\n\
                [channels.webhook.sources.shop]\nsecret_env = \"X\"\n";
    std::fs::write(&path, toml).unwrap();
    let err = switchboard::Config::load(&path).unwrap_err();
    assert_eq!(err.key, "nats.duplicate_window_secs", "{err}");
}

#[tokio::test]
async fn stale_timestamps_and_bad_signatures_are_refused_and_store_nothing() {
    let daemon = TestDaemon::start(None, |_| {}).await;
    let body = r#"{"message_id":"m-1","customer":{"id":"u-1"},"text":"hello"}"#;
    let now = chrono::Utc::now().timestamp();

    let stale = signed_headers("evt_1", now - 301, body);
    let (status, answer) = post(&daemon, &stale, body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("outside the tolerance"), "{answer}");
    let future = signed_headers("evt_2", now + 301, body);
    assert_eq!(post(&daemon, &future, body).await.0, 401, "a timestamp far ahead is refused too");

    // Signed for another body, another id or another time: no match.
    let signed = signed_headers("evt_3", now, body);
    let tampered = body.replace("hello", "hellp");
    let (status, answer) = post(&daemon, &signed, &tampered).await;
    assert_eq!((status, answer["reason"].clone()), (401, json!("signature does not match")));
    let mut other_id = signed.clone();
    other_id[0].1 = "evt_4".into();
    assert_eq!(post(&daemon, &other_id, body).await.0, 401);
    let mut other_time = signed.clone();
    other_time[1].1 = (now - 1).to_string();
    assert_eq!(post(&daemon, &other_time, body).await.0, 401);
    let mut unsigned = signed.clone();
    unsigned[2].1 = "v1,".into();
    assert_eq!(post(&daemon, &unsigned, body).await.0, 401);

    assert_eq!(stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("webhook")).await, 0);
    // The genuine request still goes through afterwards.
    assert_eq!(post(&daemon, &signed, body).await.0, 202);
    assert_eq!(stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("webhook")).await, 1);
    daemon.stop().await;
}
