//! Saved replies through the daemon: a customer's question that matches a saved reply puts it in
//! the offer (`suggested_replies`, on the agent's webhook endpoint); the agent sends it by name
//! through `POST /v1/agent/commands` (`"template"`), the customer gets it rendered with their
//! name, the agent's and the conversation's code, `/metrics` counts it per name, and an unknown
//! name is refused with a clear reason and sends nothing. On Telegram the offer lists the
//! suggestions and `/t name` in reply to it sends the saved reply; by email, the offer mail lists
//! them and a reply mail whose first line is `#t name` sends it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::ApiTokenConfig;
use switchboard_channel_telegram::format::escape;
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_e2e::mail::{MailSetup, mails};
use switchboard_e2e::{Receiver, TestDaemon};
use switchboard_testkit::{FakeBotApi, MailServer};

const WAIT: Duration = Duration::from_secs(20);
const ALICE: &str = "alice-token-for-saved-replies";
const HELPDESK_SECRET: &str = "whsec_ZGF2ZS1oZWxwZGVzay1zZWNyZXQtZm9yLXRlc3Rz";

/// A knowledge base folder with one article and one saved reply.
fn folder(dir: &std::path::Path) -> std::path::PathBuf {
    let kb = dir.join("kb");
    std::fs::create_dir_all(&kb).unwrap();
    std::fs::write(
        kb.join("refund-done.md"),
        "---\nid: refund-done\ntitle: \"Refund confirmed\"\nlanguage: en\nkind: reply\n---\n\n\
         Hi {customer.name}, {agent.name} here: your refund is confirmed. Quote {conversation.code} if you write again.\n",
    )
    .unwrap();
    std::fs::write(
        kb.join("opening-hours.md"),
        "---\nid: opening-hours\ntitle: \"Opening hours\"\nlanguage: en\n---\n\nWe answer from 9 to 18.\n",
    )
    .unwrap();
    kb
}

fn config(c: &mut switchboard::Config, dir: &std::path::Path, helpdesk: &str) {
    let token = dir.join("alice.token");
    std::fs::write(&token, ALICE).unwrap();
    c.router.enabled = true;
    c.routing = serde_json::from_value(json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 300 } },
        "agents": [{ "id": "alice", "name": "Alice Smith", "teams": ["support"], "tiers": ["L1"], "status": "online" }]
    }))
    .unwrap();
    c.api.tokens.insert(
        "alice".into(),
        ApiTokenConfig { token_file: Some(token), agent: Some("alice".into()), ..Default::default() },
    );
    let secret = dir.join("alice.secret");
    std::fs::write(&secret, HELPDESK_SECRET).unwrap();
    c.channels.webhook.agents.insert(
        "alice".into(),
        AgentEndpointConfig { url: helpdesk.into(), secret_file: Some(secret), ..Default::default() },
    );
    c.kb.enabled = true;
    c.kb.path = Some(folder(dir));
    c.kb.min_score = 1.0;
}

fn command(conversation: &str, action: Value) -> String {
    json!({ "conversation_id": conversation, "action": action }).to_string()
}

/// The value of `series` on `/metrics` once it appears.
async fn metric(daemon: &TestDaemon, series: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
        if let Some(line) = text.lines().find(|l| l.starts_with(series)) {
            return line[series.len()..].trim().to_string();
        }
        assert!(Instant::now() < deadline, "{series} never appeared:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_saved_reply_is_suggested_in_the_offer_sent_by_name_rendered_and_counted() {
    let shop = Receiver::start("/replies").await;
    let helpdesk = Receiver::start("/agent").await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start(Some(shop.url.clone()), |c| config(c, dir.path(), &helpdesk.url)).await;

    let body = r#"{"message_id":"m1","customer":{"id":"u-1","name":"Anna Petrova"},"thread_id":"t-1","text":"Where is my refund? It was confirmed last week"}"#;
    assert_eq!(daemon.post_signed("evt_1", body).await.0, 202);
    let offer = helpdesk.wait_for("the offer", WAIT, |v| v["type"] == "offer").await;
    assert_eq!(offer["suggested_replies"], json!(["refund-done"]), "{offer}");
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    let code = offer["code"].as_str().unwrap().to_string();
    let accept = command(&conversation, json!({"type": "accept"}));
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&accept)).await.0, 200);

    // An unknown name: refused, said why, nothing reaches the customer.
    let unknown = command(&conversation, json!({"type": "reply", "template": "refund-typo"}));
    let (status, why) = daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&unknown)).await;
    assert_eq!((status, why["error"].as_str()), (409, Some("no saved reply named `refund-typo`")), "{why}");

    let reply = command(&conversation, json!({"type": "reply", "template": "refund-done"}));
    let (status, why) = daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&reply)).await;
    assert_eq!(status, 200, "{why}");
    let expected =
        format!("Hi Anna Petrova, Alice Smith here: your refund is confirmed. Quote {code} if you write again.");
    let delivered = shop.wait_for("the saved reply at the shop", WAIT, |v| v["text"] == json!(expected)).await;
    assert_eq!(delivered["customer_id"], "u-1");
    assert_eq!(metric(&daemon, "switchboard_saved_reply_used_total{template=\"refund-done\"}").await, "1");
    let empty: Vec<_> = shop.received().into_iter().filter(|(_, b)| b.contains("\"text\":\"\"")).collect();
    assert!(empty.is_empty(), "the refused reply sent nothing: {empty:?}");
    daemon.stop().await;
}

const BOT: &str = "424242:e2e-token-for-the-fake-bot-api";
const AGENT_CHAT: i64 = 900;
const CUSTOMER_CHAT: i64 = 501;

/// The agent's Telegram message `text` in reply to the bot's message `to`.
fn agent_reply(api: &FakeBotApi, to: i64, text: &str) -> Value {
    let mut reply = api.text_message(AGENT_CHAT, AGENT_CHAT, text);
    let mut original = api.text_message(AGENT_CHAT, AGENT_CHAT, "x")["message"].clone();
    original["message_id"] = json!(to);
    reply["message"]["reply_to_message"] = original;
    reply
}

#[tokio::test]
async fn on_telegram_the_offer_suggests_saved_replies_and_slash_t_sends_one_rendered() {
    let api = FakeBotApi::start(BOT).await;
    let dir = tempfile::tempdir().unwrap();
    let (bot_file, token) = (dir.path().join("bot.token"), dir.path().join("alice.token"));
    std::fs::write(&bot_file, BOT).unwrap();
    std::fs::write(&token, ALICE).unwrap();
    let (api_url, kb) = (api.url(), folder(dir.path()));
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300 } },
            "agents": [{ "id": "alice", "name": "Alice Smith", "teams": ["support"], "tiers": ["L1"], "status": "away" }]
        }))
        .unwrap();
        let tg = &mut c.channels.telegram;
        (tg.enabled, tg.token_file, tg.api_url, tg.poll_timeout_secs) = (true, Some(bot_file), api_url, 1);
        tg.agents = vec!["alice".into()];
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(token), agent: Some("alice".into()), ..Default::default() },
        );
        (c.kb.enabled, c.kb.path, c.kb.min_score) = (true, Some(kb), 1.0);
    })
    .await;
    let (status, body) = daemon.api(ALICE, "POST", "/v1/agent/telegram-link", None).await;
    assert_eq!(status, 200, "{body}");
    api.push_update(api.text_message(AGENT_CHAT, AGENT_CHAT, body["send"].as_str().unwrap()));
    api.wait_for_sent(1, WAIT).await;
    let online = r#"{"action":{"type":"set_status","status":"online"}}"#;
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(online)).await.0, 200);

    let mut question = api.text_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "Where is my refund? It was confirmed last week");
    question["message"]["from"]["first_name"] = json!("Anna");
    question["message"]["from"]["last_name"] = json!("Petrova");
    api.push_update(question);
    let offer = api.wait_for_sent(2, WAIT).await[1].clone();
    let offer_text = offer.text.clone().unwrap_or_default();
    assert!(offer_text.contains(&escape("Saved replies: /t refund-done")), "{offer_text}");
    let rows = offer.reply_markup.as_ref().unwrap()["inline_keyboard"].as_array().unwrap().clone();
    let accept = rows
        .iter()
        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        .find_map(|b| (b["text"] == "Accept").then(|| b["callback_data"].as_str().unwrap().to_string()))
        .expect("an Accept button");
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
    api.wait_for_answered_callbacks(1, WAIT).await;

    api.push_update(agent_reply(&api, offer.message_id, "/t refund-done"));
    let deadline = Instant::now() + WAIT;
    let answer = loop {
        if let Some(m) = api.sent().into_iter().find(|m| m.chat_id == CUSTOMER_CHAT) {
            break m;
        }
        assert!(Instant::now() < deadline, "no saved reply reached the customer: {:?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let text = answer.text.unwrap_or_default();
    assert!(text.starts_with(&escape("Hi Anna Petrova, Alice Smith here: your refund is confirmed. Quote ")), "{text}");
    assert!(!text.contains("{conversation.code}"), "{text}");
    daemon.stop().await;
}

fn reply_to(mail: &str) -> String {
    let value = mail
        .lines()
        .find_map(|l| l.strip_prefix("Reply-To:").or_else(|| l.strip_prefix("reply-to:")))
        .unwrap_or_default()
        .trim();
    value.split(['<', '>']).nth(1).unwrap_or(value).to_string()
}

#[tokio::test]
async fn by_email_the_offer_suggests_saved_replies_and_hash_t_sends_one_rendered() {
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mail = MailSetup::new(&server, dir.path());
    let (support, agent, customer) = (server.address("support"), server.address("agent1"), server.address("customer"));
    let kb = folder(dir.path());
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300 } },
            "agents": [{ "id": "alice", "name": "Alice Smith", "teams": ["support"], "tiers": ["L1"], "status": "online" }]
        }))
        .unwrap();
        mail.apply(c);
        (c.kb.enabled, c.kb.path, c.kb.min_score) = (true, Some(kb), 1.0);
    })
    .await;

    let question = format!(
        "From: Ada Lovelace <{customer}>\r\nTo: {support}\r\nSubject: Refund\r\nMessage-ID: <q1@customer.test>\r\n\r\nWhere is my refund? It was confirmed last week.\r\n"
    );
    server.deliver_raw(&support, question.as_bytes());
    let offer = mails(&server, "agent1", 1).await.remove(0);
    assert!(offer.contains("#t refund-done"), "the offer suggests the saved reply: {offer}");
    let to = reply_to(&offer);
    let accept = format!(
        "From: Alice <{agent}>\r\nTo: {to}\r\nSubject: Re: offer\r\nMessage-ID: <a1@agent.test>\r\n\r\n#accept\r\n"
    );
    server.deliver_raw(&support, accept.as_bytes());
    mails(&server, "agent1", 2).await; // "assigned to you"
    let saved = format!(
        "From: Alice <{agent}>\r\nTo: {to}\r\nSubject: Re: offer\r\nMessage-ID: <a2@agent.test>\r\n\r\n#t refund-done\r\n\r\nOn Mon, Switchboard wrote:\r\n> Where is my refund?\r\n"
    );
    server.deliver_raw(&support, saved.as_bytes());
    let reply = mails(&server, "customer", 1).await.remove(0);
    assert!(reply.contains("Hi Ada Lovelace, Alice Smith here: your refund is"), "{reply}");
    assert!(!reply.contains("{conversation.code}") && !reply.contains("#t refund"), "{reply}");
    daemon.stop().await;
}
