//! The whole loop through the real daemon: a signed webhook message is routed, offered to the
//! agent's helpdesk (a signed webhook), accepted and answered through the agent API, and the
//! answer reaches the customer's side signed; bad commands get clear 4xx and change nothing.

use std::time::Duration;

use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_e2e::{Receiver, SECRET, TestDaemon, verify_signed};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "alice-token-for-tests";
const BOB: &str = "bob-token-for-the-tests";

#[tokio::test]
async fn a_customer_message_reaches_the_agents_helpdesk_and_the_answer_reaches_the_customer() {
    let customer = Receiver::start("/replies").await;
    let helpdesk = Receiver::start("/agent").await;
    let dir = tempfile::tempdir().unwrap();
    let (secret_file, token_file) = (dir.path().join("agent.secret"), dir.path().join("alice.token"));
    std::fs::write(&secret_file, SECRET).unwrap();
    std::fs::write(&token_file, TOKEN).unwrap();
    let bob_file = dir.path().join("bob.token");
    std::fs::write(&bob_file, BOB).unwrap();
    let helpdesk_url = helpdesk.url.clone();
    let daemon = TestDaemon::start(Some(customer.url.clone()), move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 120 } },
            "agents": [
                { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" },
                { "id": "bob", "teams": ["support"], "tiers": ["L1"], "status": "away" }
            ],
            "rules": [ { "name": "orders", "when": "has(metadata.order)", "priority": "P2" } ]
        }))
        .unwrap();
        c.channels.webhook.agents.insert(
            "alice".into(),
            AgentEndpointConfig { url: helpdesk_url, secret_env: None, secret_file: Some(secret_file) },
        );
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(token_file), agent: Some("alice".into()), ..Default::default() },
        );
        c.api.tokens.insert(
            "bob".into(),
            ApiTokenConfig { token_file: Some(bob_file), agent: Some("bob".into()), ..Default::default() },
        );
    })
    .await;

    let body = r#"{"message_id":"order-17-q1","customer":{"id":"u-17","name":"Ada"},"thread_id":"order-17","subject":"Order 17","text":"Where is order 17?","metadata":{"order":"17"}}"#;
    let (status, answer) = daemon.post_signed("evt_1", body).await;
    assert_eq!(status, 202, "{answer}");

    // The offer reaches the helpdesk, signed, with the history and the actions.
    let offer = helpdesk.wait_for("the offer", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(offer["agent_id"], "alice");
    assert_eq!(offer["history"][0]["text"], "Where is order 17?");
    assert_eq!(offer["priority"], 25, "the rule set P2");
    assert_eq!(offer["actions"], json!(["accept", "decline"]));
    let (headers, raw) = helpdesk.received().into_iter().next().unwrap();
    verify_signed(&headers, &raw);
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();

    // Bad commands: clear 4xx, nothing changes.
    let accept = format!(r#"{{"conversation_id":"{conversation}","action":{{"type":"accept"}}}}"#);
    assert_eq!(daemon.api("wrong-token", "POST", "/v1/agent/commands", Some(&accept)).await.0, 401);
    assert_eq!(daemon.api(TOKEN, "POST", "/v1/agent/commands", Some("{not json")).await.0, 400);
    let as_bob = format!(r#"{{"agent_id":"bob","conversation_id":"{conversation}","action":{{"type":"accept"}}}}"#);
    assert_eq!(daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&as_bob)).await.0, 403);
    let unknown = r#"{"conversation_id":"0190a5f0-0000-7000-8000-000000000000","action":{"type":"reply","text":"hi"}}"#;
    let (code, why) = daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(unknown)).await;
    assert_eq!(code, 404, "{why}");
    let early_reply = format!(
        r#"{{"id":"0190a5f0-0000-7000-8000-0000000000e1","conversation_id":"{conversation}","action":{{"type":"reply","text":"too early"}}}}"#
    );
    let (code, why) = daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&early_reply)).await;
    assert_eq!(code, 409, "replying before accepting: {why}");
    // A retry of the same command id is answered with the first verdict (JetStream drops the
    // repeat, so the router never sees it), not left to wait for a verdict that never comes.
    let (code, again) = daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&early_reply)).await;
    assert_eq!((code, &again), (409, &why), "the retried refusal");

    let accept_once = format!(
        r#"{{"id":"0190a5f0-0000-7000-8000-0000000000a1","conversation_id":"{conversation}","action":{{"type":"accept"}}}}"#
    );
    let (code, why) = daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&accept_once)).await;
    assert_eq!(code, 200, "{why}");
    let (code, again) = daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&accept_once)).await;
    assert_eq!((code, &again["status"]), (200, &json!("done")), "the retried accept: {again}");
    helpdesk.wait_for("the assignment update", WAIT, |v| v["type"] == "update" && v["change"] == "assigned").await;

    let reply = format!(
        r#"{{"conversation_id":"{conversation}","action":{{"type":"reply","text":"It left the warehouse today."}}}}"#
    );
    let (code, why) = daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&reply)).await;
    assert_eq!(code, 200, "{why}");
    let delivered = customer.wait_for("the reply at the shop", WAIT, |v| v["kind"] == "agent_reply").await;
    assert_eq!(delivered["text"], "It left the warehouse today.");
    assert_eq!(delivered["thread_id"], "order-17");
    assert_eq!(delivered["in_reply_to"], "order-17-q1");
    assert_eq!(delivered["agent_id"], "alice");
    let (headers, raw) = customer.received().into_iter().next().unwrap();
    verify_signed(&headers, &raw);
    assert_eq!(customer.received().len(), 1, "the early reply never reached the customer");

    let (code, record) = daemon.api(TOKEN, "GET", &format!("/v1/conversations/{conversation}"), None).await;
    assert_eq!(code, 200);
    assert_eq!(record["state"], "assigned");
    let texts: Vec<_> = record["history"].as_array().unwrap().iter().map(|h| h["text"].clone()).collect();
    assert_eq!(texts, [json!("Where is order 17?"), json!("It left the warehouse today.")]);
    assert_eq!(daemon.api("wrong-token", "GET", &format!("/v1/conversations/{conversation}"), None).await.0, 401);

    // Another agent's token cannot read it, write a note on it or show typing in it.
    let path = format!("/v1/conversations/{conversation}");
    assert_eq!(daemon.api(BOB, "GET", &path, None).await.0, 403, "bob reads only his own conversations");
    let note = format!(r#"{{"conversation_id":"{conversation}","action":{{"type":"note","text":"bob was here"}}}}"#);
    let (code, why) = daemon.api(BOB, "POST", "/v1/agent/commands", Some(&note)).await;
    assert_eq!(code, 409, "bob's note on alice's conversation: {why}");
    let typing = format!(r#"{{"conversation_id":"{conversation}"}}"#);
    assert_eq!(daemon.api(BOB, "POST", "/v1/agent/typing", Some(&typing)).await.0, 403);
    assert_eq!(daemon.api(TOKEN, "POST", "/v1/agent/typing", Some(&typing)).await.0, 204, "alice's own");
    let own_note =
        format!(r#"{{"conversation_id":"{conversation}","action":{{"type":"note","text":"called the warehouse"}}}}"#);
    assert_eq!(daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&own_note)).await.0, 200);
    let (_, record) = daemon.api(TOKEN, "GET", &path, None).await;
    let notes: Vec<_> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["from"] == "note")
        .map(|h| h["text"].clone())
        .collect();
    assert_eq!(notes, [json!("called the warehouse")], "only alice's note is in the history");

    // `switchboard explain` asks the leading router why.
    let mut cli = switchboard::Config::default();
    cli.nats.url = daemon.nats.url();
    let why = switchboard::explain::fetch(&cli, &conversation).await.expect("explained");
    assert_eq!(why["explanation"]["state"], "assigned");
    assert_eq!(why["explanation"]["matched_rules"], json!(["orders"]));
    let text = switchboard::explain::render(&why);
    assert!(text.contains("rules matched: orders") && text.contains("alice"), "{text}");
    let unknown = switchboard::explain::fetch(&cli, "0190a5f0-0000-7000-8000-000000000000").await.unwrap_err();
    assert!(unknown.to_string().contains("unknown conversation"), "{unknown}");

    let (code, queue) = daemon.api(TOKEN, "GET", "/v1/queue", None).await;
    assert_eq!((code, queue["queue"].clone()), (200, json!([])), "nothing waits");
    daemon.stop().await;
}
