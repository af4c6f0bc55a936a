//! A waiting customer's place in line through the real daemon (`docs/queue.md`): the webhook
//! customer is told it (a `system` message with the figures), `GET /v1/conversations/{id}`
//! shows `queue` while it waits, the place moves when the one ahead is taken, and the figures
//! are gone once an agent has it.

use std::time::Duration;

use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_e2e::{Receiver, TestDaemon};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "integration-token-for-the-queue";
const ALICE: &str = "alice-token-for-the-queue-test";

#[tokio::test]
async fn a_waiting_customer_is_told_their_place_and_the_api_shows_it_until_an_agent_has_it() {
    let customer = Receiver::start("/replies").await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, alice_file) = (dir.path().join("integration.token"), dir.path().join("alice.token"));
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::write(&alice_file, ALICE).unwrap();
    let daemon = TestDaemon::start(Some(customer.url.clone()), move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "queue_notice": { "check_secs": 1, "default_handle_secs": 300 },
            "teams": { "support": { "offer_timeout_secs": 0 } },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "away", "max_total": 1 } ]
        }))
        .unwrap();
        c.api
            .tokens
            .insert("integration".into(), ApiTokenConfig { token_file: Some(token_file), ..Default::default() });
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(alice_file), agent: Some("alice".into()), ..Default::default() },
        );
    })
    .await;

    for (i, who) in ["u-1", "u-2"].iter().enumerate() {
        let body = format!(
            r#"{{"message_id":"m-{i}","customer":{{"id":"{who}"}},"thread_id":"t-{who}","text":"Where is my order?"}}"#
        );
        let (status, answer) = daemon.post_signed(&format!("evt_{i}"), &body).await;
        assert_eq!(status, 202, "{answer}");
    }
    // Nobody online: each is told their place and that no agent is online (in English: the
    // webhook source does not give the customer's language), with the figures in metadata.
    let second = customer
        .wait_for("the second customer's notice", WAIT, |v| v["kind"] == "system" && v["thread_id"] == "t-u-2")
        .await;
    assert_eq!(second["text"], "You are 2nd in line. No agent is online right now.", "{second}");
    assert_eq!(
        (second["metadata"]["queue.position"].clone(), second["metadata"]["queue.agents_online"].clone()),
        (json!("2"), json!("0"))
    );
    let first = customer
        .wait_for("the first customer's notice", WAIT, |v| v["kind"] == "system" && v["thread_id"] == "t-u-1")
        .await;
    let (c1, c2) = (
        first["conversation_id"].as_str().unwrap().to_string(),
        second["conversation_id"].as_str().unwrap().to_string(),
    );

    let record = daemon.record_when(TOKEN, &c2, "the queue figures", |r| r["queue"].is_object()).await;
    assert_eq!(record["queue"]["position"], 2, "{record}");
    assert_eq!(record["queue"]["agents_online"], 0);
    assert!(record["queue"].get("estimate_secs").is_none(), "no estimate with nobody online: {record}");

    // Alice comes online and takes the first: the second is next, with an estimate (one slot,
    // 300 s assumed per conversation); the first has no place any more.
    let online = r#"{"action":{"type":"set_status","status":"online"}}"#;
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(online)).await.0, 200);
    let record = daemon.record_when(TOKEN, &c2, "the second moving up", |r| r["queue"]["position"] == 1).await;
    assert_eq!(
        (record["queue"]["agents_online"].clone(), record["queue"]["estimate_secs"].clone()),
        (json!(1), json!(300))
    );
    let taken = daemon.record_when(TOKEN, &c1, "the first taken", |r| r["state"] == "assigned").await;
    assert!(taken.get("queue").is_none(), "an assigned conversation shows no place: {taken}");
    daemon.stop().await;
}
