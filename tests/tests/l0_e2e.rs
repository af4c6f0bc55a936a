//! The L0 bot through the real daemon (`docs/kb.md`), with the example knowledge base of
//! `config/kb` loaded by `[kb]`: a webhook customer whose question an article answers gets the
//! article and "Did this answer your question?" with the reply words; "yes" resolves it at L0
//! (the record says `helped`) and no agent ever sees it; "no" hands it to the agent at once with
//! the whole exchange; a question no article answers goes straight to the agent, nothing sent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_e2e::{Receiver, SECRET, TestDaemon};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "integration-token-for-the-l0-bot";

/// The conversation's record once `ready` holds for it.
async fn record_when(daemon: &TestDaemon, id: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, record) = daemon.api(TOKEN, "GET", &format!("/v1/conversations/{id}"), None).await;
        if code == 200 && ready(&record) {
            return record;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {code} {record}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The example knowledge base in the repository.
pub fn example_kb() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/kb")
}

async fn say(daemon: &TestDaemon, n: usize, who: &str, text: &str) {
    let body = json!({ "message_id": format!("m-{n}"), "customer": { "id": who }, "thread_id": format!("t-{who}"), "text": text });
    let (status, answer) = daemon.post_signed(&format!("evt_{n}"), &body.to_string()).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn the_bot_answers_from_the_knowledge_base_yes_resolves_it_and_no_reaches_the_agent_at_once() {
    let customer = Receiver::start("/replies").await;
    let helpdesk = Receiver::start("/agent").await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, secret_file) = (dir.path().join("integration.token"), dir.path().join("helpdesk.secret"));
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::write(&secret_file, SECRET).unwrap();
    let helpdesk_url = helpdesk.url.clone();
    let daemon = TestDaemon::start(Some(customer.url.clone()), move |c| {
        c.router.enabled = true;
        c.kb.enabled = true;
        c.kb.path = Some(example_kb());
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 120, "kb_first": true } },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online", "max_total": 5 } ]
        }))
        .unwrap();
        c.api
            .tokens
            .insert("integration".into(), ApiTokenConfig { token_file: Some(token_file), ..Default::default() });
        c.channels.webhook.agents.insert(
            "alice".into(),
            AgentEndpointConfig { url: helpdesk_url, secret_env: None, secret_file: Some(secret_file) },
        );
    })
    .await;

    // Answered, and yes: resolved by the bot.
    say(&daemon, 1, "u-1", "How do I return an item?").await;
    let answer = customer.wait_for("the bot's answer", WAIT, |v| v["thread_id"] == "t-u-1").await;
    assert_eq!(answer["kind"], "auto_reply", "{answer}");
    let text = answer["text"].as_str().unwrap();
    assert!(text.starts_with("How to return an item\n"), "{text}");
    assert!(text.ends_with("Reply \"yes\" if it did, or \"no\" to reach a person."), "{text}");
    assert_eq!(answer["metadata"]["l0.question"], "helpful");
    let c1 = answer["conversation_id"].as_str().unwrap().to_string();
    let record = record_when(&daemon, &c1, "the bot holding it", |r| r["state"] == "bot").await;
    assert_eq!(record["l0"]["outcome"], "pending", "{record}");
    assert_eq!(record["l0"]["articles"][0]["id"], "returns-en");
    say(&daemon, 2, "u-1", "Yes, thanks!").await;
    let record = record_when(&daemon, &c1, "resolution at L0", |r| r["state"] == "resolved").await;
    assert_eq!((record["l0"]["outcome"].clone(), record["tier"].clone()), (json!("helped"), json!("L0")), "{record}");
    assert!(record.get("agent").is_none(), "no agent was involved: {record}");

    // Answered, and no: to alice at once, with the question, the answer and the no.
    say(&daemon, 3, "u-2", "I was charged twice for my order").await;
    let answer = customer.wait_for("the second answer", WAIT, |v| v["thread_id"] == "t-u-2").await;
    let c2 = answer["conversation_id"].as_str().unwrap().to_string();
    say(&daemon, 4, "u-2", "no").await;
    let offer = helpdesk.wait_for("the offer to alice", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(offer["conversation_id"], c2.as_str(), "the first offer is the handed-off one: {offer}");
    let record = record_when(&daemon, &c2, "the offer to alice", |r| r["state"] == "offered").await;
    assert_eq!(record["l0"]["outcome"], "handed_off");
    let said: Vec<(&str, &str)> = offer["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].as_str().unwrap(), h["text"].as_str().unwrap()))
        .collect();
    assert_eq!(said.len(), 3, "{said:?}");
    assert_eq!(said[0], ("customer", "I was charged twice for my order"));
    assert_eq!(said[1].0, "system");
    assert!(said[1].1.starts_with("I was charged twice for one order"), "{said:?}");
    assert_eq!(said[2], ("customer", "no"));

    // No article good enough: nothing is sent, alice is offered it at once.
    say(&daemon, 5, "u-3", "what is the weather like on mars").await;
    let offer = helpdesk
        .wait_for("the offer of the third", WAIT, |v| v["type"] == "offer" && v["conversation_id"] != c2.as_str())
        .await;
    assert_eq!(offer["history"][0]["text"], "what is the weather like on mars");
    assert_eq!(offer["history"].as_array().unwrap().len(), 1, "the bot said nothing: {offer}");
    let record =
        record_when(&daemon, offer["conversation_id"].as_str().unwrap(), "the third", |r| r["state"] == "offered")
            .await;
    assert!(record.get("l0").is_none(), "{record}");
    assert!(
        customer.received().iter().all(|(_, body)| !body.contains("t-u-3")),
        "nothing was sent to the customer the bot could not answer"
    );
    assert_eq!(
        helpdesk.received().iter().filter(|(_, b)| b.contains(&c1)).count(),
        0,
        "alice never saw the conversation the bot resolved"
    );
    daemon.stop().await;
}
