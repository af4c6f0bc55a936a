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
    nats_store_daemon.stop().await;
}
