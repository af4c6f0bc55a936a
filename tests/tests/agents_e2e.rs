//! Agents added at runtime through the agent API: an administrator defines an agent with a
//! webhook endpoint, waiting work is offered to it at once, signed with its own secret, and the
//! definition survives a restart of the daemon; bad definitions get clear 4xx and change nothing.

use std::time::Duration;

use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webhook::{decode_secret, signature};
use switchboard_e2e::{Receiver, TestDaemon};

const WAIT: Duration = Duration::from_secs(20);
const ADMIN: &str = "admin-token-for-tests";
const ALICE: &str = "alice-token-for-tests";
const DAVE_SECRET: &str = "whsec_ZGF2ZS1oZWxwZGVzay1zZWNyZXQtZm9yLXRlc3Rz";

fn verify_with(secret: &str, headers: &axum::http::HeaderMap, body: &str) {
    let key = decode_secret(secret).unwrap();
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let ts: i64 = h(signature::TIMESTAMP).parse().unwrap();
    let expected = signature::sign(&key, &h(signature::ID), ts, body.as_bytes());
    assert_eq!(h(signature::SIGNATURE), expected, "signed with the registered secret");
}

#[tokio::test]
async fn an_agent_defined_through_the_api_gets_waiting_work_and_survives_a_restart() {
    let helpdesk = Receiver::start("/dave").await;
    let dir = tempfile::tempdir().unwrap();
    let (admin_file, alice_file) = (dir.path().join("admin.token"), dir.path().join("alice.token"));
    std::fs::write(&admin_file, ADMIN).unwrap();
    std::fs::write(&alice_file, ALICE).unwrap();
    let edit = |c: &mut switchboard::Config| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 120 } },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "away" } ]
        }))
        .unwrap();
        // The helpdesk listens on loopback, which runtime endpoints may reach only when allowed.
        c.channels.webhook.allowed_networks = vec!["127.0.0.1/32".into()];
        c.api
            .tokens
            .insert("ops".into(), ApiTokenConfig { token_file: Some(admin_file), admin: true, ..Default::default() });
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(alice_file), agent: Some("alice".into()), ..Default::default() },
        );
    };
    let daemon = TestDaemon::start(None, edit.clone()).await;
    let body = r#"{"message_id":"m1","customer":{"id":"u-1"},"text":"Is anyone there?"}"#;
    assert_eq!(daemon.post_signed("evt_1", body).await.0, 202);
    // Wait until it is queued (nobody is online).
    let deadline = std::time::Instant::now() + WAIT;
    while daemon.api(ADMIN, "GET", "/v1/queue", None).await.1["queue"].as_array().map_or(0, Vec::len) == 0 {
        assert!(std::time::Instant::now() < deadline, "the message never queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dave = json!({
        "name": "Dave", "teams": ["support"], "tiers": ["L1"], "status": "online",
        "endpoints": { "webhook": { "url": helpdesk.url, "secret": DAVE_SECRET } }
    });
    // Refusals first: each changes nothing.
    let put = |token: &'static str, path: &'static str, body: String| {
        let daemon = &daemon;
        async move { daemon.api(token, "PUT", path, Some(&body)).await }
    };
    assert_eq!(put(ALICE, "/v1/agents/dave", dave.to_string()).await.0, 403, "an agent token cannot define agents");
    assert_eq!(put("nope", "/v1/agents/dave", dave.to_string()).await.0, 401);
    assert_eq!(put(ADMIN, "/v1/agents/dave", "{".into()).await.0, 400);
    let mut bad_secret = dave.clone();
    bad_secret["endpoints"]["webhook"]["secret"] = json!("not-a-secret");
    let (code, why) = put(ADMIN, "/v1/agents/dave", bad_secret.to_string()).await;
    assert_eq!(code, 422, "{why}");
    assert!(why["error"].as_str().unwrap().contains("endpoints.webhook: secret"), "{why}");
    let mut bad_team = dave.clone();
    bad_team["teams"] = json!(["nowhere"]);
    let (code, why) = put(ADMIN, "/v1/agents/dave", bad_team.to_string()).await;
    assert_eq!((code, why["error"].clone()), (409, json!("invalid agent: teams: unknown team `nowhere`")));
    let (code, why) = put(ADMIN, "/v1/agents/alice", dave.to_string()).await;
    assert_eq!(code, 409, "alice is defined in the file: {why}");
    let nats = async_nats::connect(daemon.nats.url()).await.unwrap();
    let registry = async_nats::jetstream::new(nats).get_key_value("sb_agents").await.unwrap();
    assert_eq!(registry.get("endpoint.webhook.alice").await.unwrap(), None, "a refused PUT stores no endpoint");
    assert_eq!(registry.get("endpoint.webhook.dave").await.unwrap(), None, "nor did the refused ones for dave");
    assert_eq!(put(ADMIN, "/v1/agents/Bad%20Id", dave.to_string()).await.0, 422);
    assert!(helpdesk.received().is_empty(), "no refused definition delivered anything");

    let (code, why) = put(ADMIN, "/v1/agents/dave", dave.to_string()).await;
    assert_eq!(code, 200, "{why}");
    let offer = helpdesk.wait_for("the offer to dave", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(
        (offer["agent_id"].clone(), offer["history"][0]["text"].clone()),
        (json!("dave"), json!("Is anyone there?"))
    );
    let (headers, raw) = helpdesk.received().into_iter().next().unwrap();
    verify_with(DAVE_SECRET, &headers, &raw);
    // A refused redefinition leaves dave's endpoint as it was: the next offer still goes to his
    // helpdesk, not to the address the refused request named.
    let elsewhere = Receiver::start("/elsewhere").await;
    let mut moved = bad_team.clone();
    moved["endpoints"]["webhook"]["url"] = json!(elsewhere.url);
    let (code, why) = put(ADMIN, "/v1/agents/dave", moved.to_string()).await;
    assert_eq!(code, 409, "{why}");
    let stored = registry.get("endpoint.webhook.dave").await.unwrap().expect("dave's endpoint");
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["url"], json!(helpdesk.url), "the refused PUT did not change the endpoint");
    let nats = daemon.stop_keeping_nats().await;

    // A new daemon on the same NATS state still knows dave and where he works.
    let nats_store_daemon = TestDaemon::start_on(nats, None, edit).await;
    let body = r#"{"message_id":"m2","customer":{"id":"u-2"},"text":"Second customer"}"#;
    assert_eq!(nats_store_daemon.post_signed("evt_2", body).await.0, 202);
    helpdesk
        .wait_for("the second offer to dave", WAIT, |v| {
            v["type"] == "offer" && v["history"][0]["text"] == "Second customer"
        })
        .await;
    assert!(elsewhere.received().is_empty(), "nothing went to the address of the refused PUT");
    nats_store_daemon.stop().await;
}

/// Answers every POST with `307` to `to`, counting them: a receiver that tries to bounce a signed
/// delivery elsewhere.
async fn redirector(to: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (counted, to) = (counted.clone(), to.clone());
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, to)])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

#[tokio::test]
async fn endpoints_that_point_inward_or_redirect_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let admin_file = dir.path().join("admin.token");
    std::fs::write(&admin_file, ADMIN).unwrap();
    let daemon = TestDaemon::start(None, |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support", "teams": { "support": {} }, "agents": []
        }))
        .unwrap();
        // Only this one loopback address is allowed (where the test's servers listen).
        c.channels.webhook.allowed_networks = vec!["127.0.0.1/32".into()];
        c.channels.webhook.runtime.max_attempts = 1;
        c.channels.webhook.runtime.retry_for_secs = 0;
        c.api
            .tokens
            .insert("ops".into(), ApiTokenConfig { token_file: Some(admin_file), admin: true, ..Default::default() });
    })
    .await;
    let define = |url: &str| {
        json!({
            "name": "Dave", "teams": ["support"], "tiers": ["L1"], "status": "online",
            "endpoints": { "webhook": { "url": url, "secret": DAVE_SECRET } }
        })
        .to_string()
    };
    for (url, what) in [
        ("http://127.0.0.2:8080/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://[::1]:8080/", "loopback"),
        ("http://[::ffff:10.0.0.7]/", "private"),
        ("http://192.168.1.10/", "private"),
    ] {
        let (code, why) = daemon.api(ADMIN, "PUT", "/v1/agents/dave", Some(&define(url))).await;
        assert_eq!(code, 422, "{url}: {why}");
        assert!(why["error"].as_str().unwrap().contains(what), "{url}: {why}");
    }

    // Allowed address, but the receiver redirects: the signed offer is not re-sent there; the
    // delivery fails (a dead letter saying why) and the redirect target sees nothing.
    let elsewhere = Receiver::start("/elsewhere").await;
    let (bouncer, hits) = redirector(elsewhere.url.clone()).await;
    let (code, why) = daemon.api(ADMIN, "PUT", "/v1/agents/dave", Some(&define(&bouncer))).await;
    assert_eq!(code, 200, "{why}");
    let body = r#"{"message_id":"m1","customer":{"id":"u-1"},"text":"Hello?"}"#;
    assert_eq!(daemon.post_signed("evt_1", body).await.0, 202);
    let nats = daemon.nats.url();
    let deadline = std::time::Instant::now() + WAIT;
    while switchboard_e2e::stored_on(&nats, "SB_DLQ", "sb.dlq.agent-webhook").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the redirected offer never became a dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap());
    let mut dlq = js.get_stream("SB_DLQ").await.unwrap();
    let last = dlq.info().await.unwrap().state.last_sequence;
    let letter = dlq.get_raw_message(last).await.unwrap();
    let reason = letter.headers.get("Sb-Dlq-Reason").map(|v| v.as_str().to_string()).unwrap_or_default();
    assert!(reason.contains("HTTP 307") && reason.contains("redirects are not followed"), "{reason}");
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the bouncer was asked");
    assert!(elsewhere.received().is_empty(), "nothing reached the redirect target");
    daemon.stop().await;
}
