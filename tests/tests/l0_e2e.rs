//! The L0 bot through the real daemon (`docs/kb.md`), with the example knowledge base of
//! `config/kb` loaded by `[kb]`: a webhook customer whose question an article answers gets the
//! article and "Did this answer your question?" with the reply words; "yes" resolves it at L0
//! (the record says `helped`) and no agent ever sees it; "no" hands it to the agent at once with
//! the whole exchange; a question no article answers goes straight to the agent, nothing sent.
//! On Telegram the question comes with a yes/no keyboard, by email a quoted yes or no is read
//! (the web chat's buttons are in `webchat_browser.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_e2e::{Receiver, SECRET, TestDaemon};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "integration-token-for-the-l0-bot";

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
    let record = daemon.record_when(TOKEN, &c1, "the bot holding it", |r| r["state"] == "bot").await;
    assert_eq!(record["l0"]["outcome"], "pending", "{record}");
    assert_eq!(record["l0"]["articles"][0]["id"], "returns-en");
    say(&daemon, 2, "u-1", "Yes, thanks!").await;
    let record = daemon.record_when(TOKEN, &c1, "resolution at L0", |r| r["state"] == "resolved").await;
    assert_eq!((record["l0"]["outcome"].clone(), record["tier"].clone()), (json!("helped"), json!("L0")), "{record}");
    assert!(record.get("agent").is_none(), "no agent was involved: {record}");

    // Answered, and no: to alice at once, with the question, the answer and the no.
    say(&daemon, 3, "u-2", "I was charged twice for my order").await;
    let answer = customer.wait_for("the second answer", WAIT, |v| v["thread_id"] == "t-u-2").await;
    let c2 = answer["conversation_id"].as_str().unwrap().to_string();
    say(&daemon, 4, "u-2", "no").await;
    let offer = helpdesk.wait_for("the offer to alice", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(offer["conversation_id"], c2.as_str(), "the first offer is the handed-off one: {offer}");
    let record = daemon.record_when(TOKEN, &c2, "the offer to alice", |r| r["state"] == "offered").await;
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
    let record = daemon
        .record_when(TOKEN, offer["conversation_id"].as_str().unwrap(), "the third", |r| r["state"] == "offered")
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

/// The conversation records in KV whose channel is `channel`.
async fn records_on(nats_url: &str, channel: &str) -> Vec<Value> {
    let client = switchboard_bus::async_nats::connect(nats_url).await.unwrap();
    let js = switchboard_bus::async_nats::jetstream::new(client);
    let kv = js.get_key_value(switchboard_core::contract::buckets::CONVERSATIONS).await.unwrap();
    let mut keys = kv.keys().await.unwrap();
    let mut out = Vec::new();
    while let Some(Ok(key)) = futures::StreamExt::next(&mut keys).await {
        if let Ok(Some(bytes)) = kv.get(&key).await {
            let record: Value = serde_json::from_slice(&bytes).unwrap();
            if record["channel"] == channel {
                out.push(record);
            }
        }
    }
    out
}

#[tokio::test]
async fn on_telegram_the_question_comes_with_yes_and_no_buttons_and_a_press_answers_it() {
    const BOT: &str = "424242:e2e-token-for-the-l0-telegram-bot";
    const CHAT: i64 = 777;
    let api = switchboard_testkit::FakeBotApi::start(BOT).await;
    let dir = tempfile::tempdir().unwrap();
    let bot_file = dir.path().join("bot.token");
    std::fs::write(&bot_file, BOT).unwrap();
    let api_url = api.url();
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.kb.enabled = true;
        c.kb.path = Some(example_kb());
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "kb_first": true } },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
        }))
        .unwrap();
        let tg = &mut c.channels.telegram;
        (tg.enabled, tg.token_file, tg.api_url, tg.poll_timeout_secs) = (true, Some(bot_file), api_url, 1);
    })
    .await;

    api.push_update(api.text_message(CHAT, CHAT, "как вернуть товар"));
    let answer = api.wait_for_sent(1, WAIT).await.remove(0);
    assert_eq!(answer.chat_id, CHAT);
    assert!(answer.text.as_deref().unwrap_or_default().contains("Это ответ на ваш вопрос?"), "{answer:?}");
    let keyboard = answer.reply_markup.as_ref().expect("buttons under the answer");
    let labels: Vec<&str> =
        keyboard["keyboard"][0].as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Да", "Нет, нужен оператор"], "{keyboard}");
    assert_eq!(keyboard["one_time_keyboard"], true);

    // A press of "Да" sends its label as the customer's message.
    api.push_update(api.text_message(CHAT, CHAT, "Да"));
    let record = record_on_when(&daemon, "telegram", "the resolution at L0", |r| r["state"] == "resolved").await;
    assert_eq!(record["l0"]["outcome"], "helped", "{record}");
    assert_eq!(record["l0"]["articles"][0]["id"], "returns-ru");
    assert_eq!(api.sent().len(), 1, "no survey, nothing else: {:?}", api.sent());

    // Another customer presses "No": a person is asked at once (alice has no endpoint here, so
    // the conversation waits offered to her), with the exchange in the record.
    const OTHER: i64 = 778;
    api.push_update(api.text_message(OTHER, OTHER, "I was charged twice for my order"));
    let answer = api.wait_for_sent(2, WAIT).await.remove(1);
    assert_eq!(answer.reply_markup.as_ref().unwrap()["keyboard"][0][1]["text"], "No, I need a person");
    api.push_update(api.text_message(OTHER, OTHER, "No, I need a person"));
    let record = record_on_when(&daemon, "telegram", "the hand-off", |r| r["l0"]["outcome"] == "handed_off").await;
    assert_eq!(record["state"], "offered", "{record}");
    assert_eq!(record["agent"], "alice");
    assert_eq!(record["tier"], "L1");
    assert_eq!(record["history"].as_array().unwrap().len(), 3, "{record}");
    daemon.stop().await;
}

/// The first record on `channel` once `ready` holds for it.
async fn record_on_when(daemon: &TestDaemon, channel: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(r) = records_on(&daemon.nats.url(), channel).await.into_iter().find(&ready) {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn by_email_the_answer_says_how_to_reply_and_a_quoted_yes_or_no_is_understood() {
    use switchboard_e2e::mail::{MailSetup, header, mails};
    let server = switchboard_testkit::MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mail = MailSetup::new(&server, dir.path());
    let (support, customer) = (server.address("support"), server.address("customer"));
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.kb.enabled = true;
        c.kb.path = Some(example_kb());
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300, "kb_first": true } },
            "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
        }))
        .unwrap();
        mail.apply(c);
    })
    .await;

    let question = format!(
        "From: Ada <{customer}>\r\nTo: {support}\r\nSubject: Returns\r\nMessage-ID: <q1@customer.test>\r\n\r\nHow do I return an item?\r\n"
    );
    server.deliver_raw(&support, question.as_bytes());
    let answer = mails(&server, "customer", 1).await.remove(0);
    assert!(answer.contains("How to return an item"), "{answer}");
    assert!(answer.contains("Reply \"yes\" if it did, or \"no\" to reach a person."), "{answer}");
    assert_eq!(header(&answer, "In-Reply-To"), "<q1@customer.test>");
    let answer_id = header(&answer, "Message-ID");

    // "Yes" on top of the quoted answer, as mail clients write it.
    let yes = format!(
        "From: Ada <{customer}>\r\nTo: {support}\r\nSubject: Re: Returns\r\nMessage-ID: <q2@customer.test>\r\nIn-Reply-To: {answer_id}\r\nReferences: <q1@customer.test> {answer_id}\r\n\r\nYes, thank you!\r\n\r\nOn Mon, Support wrote:\r\n> How to return an item\r\n> Did this answer your question?\r\n"
    );
    server.deliver_raw(&support, yes.as_bytes());
    let record = record_on_when(&daemon, "email", "the mail resolved at L0", |r| r["state"] == "resolved").await;
    assert_eq!(record["l0"]["outcome"], "helped", "{record}");

    // A new question (a new thread): "no" reaches alice's mailbox with the question and the
    // bot's answer.
    let other = customer.clone();
    let question = format!(
        "From: Ada <{other}>\r\nTo: {support}\r\nSubject: Billing\r\nMessage-ID: <b1@customer.test>\r\n\r\nI was charged twice for my order\r\n"
    );
    server.deliver_raw(&support, question.as_bytes());
    let answer = mails(&server, "customer", 2).await.remove(1);
    assert!(answer.contains("I was charged twice for one order"), "{answer}");
    let answer_id = header(&answer, "Message-ID");
    let no = format!(
        "From: Ada <{other}>\r\nTo: {support}\r\nSubject: Re: Billing\r\nMessage-ID: <b2@customer.test>\r\nIn-Reply-To: {answer_id}\r\n\r\nNo, the second charge is still there.\r\n\r\n> Did this answer your question?\r\n"
    );
    server.deliver_raw(&support, no.as_bytes());
    let offer = mails(&server, "agent1", 1).await.remove(0);
    assert!(offer.contains("I was charged twice for my order"), "the question: {offer}");
    assert!(offer.contains("I was charged twice for one order"), "the bot's answer: {offer}");
    assert!(offer.contains("No, the second charge is still there."), "the no: {offer}");
    assert_eq!(server.messages("agent1").len(), 1, "alice was never offered Ada's conversation");
    daemon.stop().await;
}
