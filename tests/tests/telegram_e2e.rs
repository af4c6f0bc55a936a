//! Telegram end to end through the daemon, with the real `teloxide-core` client against a fake Bot
//! API that speaks the real wire format: an agent links their chat with a one-time code, a
//! customer's message is offered there with buttons, Accept pressed (twice: it acts once, and the
//! used buttons then say so without holding up other updates), the agent answers by replying to
//! the offer, and the customer receives the answer in their chat. Three conversations are told
//! apart by code, name and channel (the agent's chat is drawn to
//! `target/test-output/telegram-agent-chat.png`), edits and failed replies are told, files go both
//! ways, the last answer precedes the survey when Telegram asks it to wait, and a bot back from
//! webhook mode polls again.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::config::ApiTokenConfig;
use switchboard_channel_telegram::format::escape;
use switchboard_e2e::TestDaemon;
use switchboard_testkit::{FakeBotApi, SentMessage};

mod telegram_chat;

const WAIT: Duration = Duration::from_secs(20);
const BOT: &str = "424242:e2e-token-for-the-fake-bot-api";
const ALICE: &str = "alice-token-for-tests";
const AGENT_CHAT: i64 = 900;
const CUSTOMER_CHAT: i64 = 501;

/// The callback data of the button labelled `label` in a sent message's inline keyboard.
fn button(markup: &Option<Value>, label: &str) -> Option<String> {
    let rows = markup.as_ref()?["inline_keyboard"].as_array()?.clone();
    rows.iter()
        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        .find_map(|b| (b["text"] == label).then(|| b["callback_data"].as_str().map(str::to_string)).flatten())
}

#[tokio::test]
async fn a_customer_on_telegram_is_answered_by_an_agent_on_telegram() {
    let api = FakeBotApi::start(BOT).await;
    let dir = tempfile::tempdir().unwrap();
    let (bot_file, alice_file) = (dir.path().join("bot.token"), dir.path().join("alice.token"));
    std::fs::write(&bot_file, BOT).unwrap();
    std::fs::write(&alice_file, ALICE).unwrap();
    let api_url = api.url();
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300 } },
            "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "away" } ]
        }))
        .unwrap();
        let tg = &mut c.channels.telegram;
        (tg.enabled, tg.token_file, tg.api_url, tg.poll_timeout_secs) = (true, Some(bot_file), api_url, 1);
        tg.agents = vec!["alice".into()];
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(alice_file), agent: Some("alice".into()), ..Default::default() },
        );
    })
    .await;

    // Linking: a one-time code from the agent API, sent to the bot from the agent's own chat.
    let (code, body) = daemon.api(ALICE, "POST", "/v1/agent/telegram-link", None).await;
    assert_eq!(code, 200, "{body}");
    let link = body["send"].as_str().unwrap().to_string();
    api.push_update(api.text_message(AGENT_CHAT, AGENT_CHAT, &link));
    let sent = api.wait_for_sent(1, WAIT).await;
    assert!(sent[0].text.as_deref().unwrap_or_default().contains("Linked to agent alice"), "{:?}", sent[0].text);
    let online = r#"{"action":{"type":"set_status","status":"online"}}"#;
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/commands", Some(online)).await.0, 200);

    // The customer writes; the offer arrives in the agent's chat with Accept and Decline.
    api.push_update(api.text_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "Hi! My order #17 is late (again)."));
    let sent = api.wait_for_sent(2, WAIT).await;
    let offer = &sent[1];
    assert_eq!(offer.chat_id, AGENT_CHAT);
    // The text as sent: MarkdownV2, with what the customer wrote escaped.
    let customer_text = escape("Hi! My order #17 is late (again).");
    assert!(offer.text.as_deref().unwrap_or_default().contains(&customer_text), "{:?}", offer.text);
    let accept = button(&offer.reply_markup, "Accept").expect("an Accept button");
    assert!(button(&offer.reply_markup, "Decline").is_some());

    // Accept, pressed twice: acts once.
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
    let answered = api.wait_for_answered_callbacks(1, WAIT).await;
    assert_eq!(answered[0].text.as_deref(), Some("Done."));
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
    api.wait_for_answered_callbacks(2, WAIT).await;

    // The agent answers by replying to the offer.
    let mut reply = api.text_message(AGENT_CHAT, AGENT_CHAT, "Sorry, Ada: it ships today.");
    let mut original = api.text_message(AGENT_CHAT, AGENT_CHAT, "x")["message"].clone();
    original["message_id"] = json!(offer.message_id);
    reply["message"]["reply_to_message"] = original;
    api.push_update(reply);
    let deadline = std::time::Instant::now() + WAIT;
    let answer = loop {
        if let Some(m) = api.sent().into_iter().find(|m| m.chat_id == CUSTOMER_CHAT) {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no answer reached the customer: {:?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer.text.as_deref(), Some(escape("Sorry, Ada: it ships today.").as_str()));
    assert!(answer.reply_to_message_id.is_some(), "it answers the customer's message");
    assert_eq!(api.sent().iter().filter(|m| m.chat_id == CUSTOMER_CHAT).count(), 1, "once");
    daemon.stop().await;
}

#[tokio::test]
async fn an_unanswered_offer_moves_on_and_the_bot_answers_what_a_rule_says() {
    let api = FakeBotApi::start(BOT).await;
    let routing = json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 1, "strategy": "round_robin" } },
        "agents": [
            { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" },
            { "id": "bob", "teams": ["support"], "tiers": ["L1"], "status": "online" }
        ],
        "rules": [ { "name": "hours", "when": "text.contains(\"opening hours\")", "tier": "L0",
                     "auto_reply": "We are open 9:00-18:00 (Mon-Fri)." } ]
    });
    let (daemon, bus, _dir) = with_telegram_agents(&api, routing, &["alice", "bob"]).await;
    // Both agents link their chats (codes issued straight from the channel, as the API does).
    for (agent, chat) in [("alice", 910), ("bob", 920)] {
        let code = switchboard_channel_telegram::issue_link_code(&bus, agent).await.unwrap();
        api.push_update(api.text_message(chat, chat, &format!("/link {code}")));
    }
    api.wait_for_sent(2, WAIT).await;

    // L0: the bot answers from the rule, escaped, in the customer's chat.
    api.push_update(api.text_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "What are your opening hours?"));
    let deadline = std::time::Instant::now() + WAIT;
    let auto = loop {
        if let Some(m) = api.sent().into_iter().find(|m| m.chat_id == CUSTOMER_CHAT) {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no automatic answer: {:?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(auto.text.as_deref(), Some(escape("We are open 9:00-18:00 (Mon-Fri).").as_str()));

    // A question for a human: offered to one agent; unanswered, withdrawn there and offered to the other.
    api.push_update(api.text_message(502, 502, "I need a human about my refund"));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let offers: Vec<i64> =
            api.sent().iter().filter(|m| button(&m.reply_markup, "Accept").is_some()).map(|m| m.chat_id).collect();
        let withdrawn =
            api.sent().iter().any(|m| m.text.as_deref().unwrap_or_default().contains("offer was withdrawn"));
        if offers.len() >= 2 && withdrawn {
            assert_ne!(offers[0], offers[1], "the second offer goes to the other agent: {offers:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the offer did not move on: {:?}", api.sent());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.stop().await;
}

/// The daemon routing by `routing`, with the Telegram channel on `api` serving `agents`, and a bus
/// connection to its NATS (link codes are issued straight from the channel, as the API does);
/// the directory holds the bot token file.
async fn with_telegram_agents(
    api: &FakeBotApi,
    routing: Value,
    agents: &[&str],
) -> (TestDaemon, switchboard_bus::Bus, tempfile::TempDir) {
    with_telegram_agents_and(api, routing, agents, |_| {}).await
}

/// [`with_telegram_agents`], with `edit` applied to the Telegram channel's configuration.
async fn with_telegram_agents_and(
    api: &FakeBotApi,
    routing: Value,
    agents: &[&str],
    edit: impl FnOnce(&mut switchboard_channel_telegram::TelegramConfig) + Send + 'static,
) -> (TestDaemon, switchboard_bus::Bus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let bot_file = dir.path().join("bot.token");
    std::fs::write(&bot_file, BOT).unwrap();
    let (api_url, agents): (_, Vec<String>) = (api.url(), agents.iter().map(|a| a.to_string()).collect());
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(routing).unwrap();
        let tg = &mut c.channels.telegram;
        (tg.enabled, tg.token_file, tg.api_url, tg.poll_timeout_secs) = (true, Some(bot_file), api_url, 1);
        tg.agents = agents;
        edit(tg);
    })
    .await;
    let bus = switchboard_bus::Bus::connect(
        &switchboard_bus::BusConfig::for_url(daemon.nats.url()),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    (daemon, bus, dir)
}

/// Waits until a message containing `needle` was sent to `chat`.
async fn said(api: &FakeBotApi, chat: i64, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !api.sent().iter().any(|m| m.chat_id == chat && m.text.as_deref().unwrap_or_default().contains(needle)) {
        assert!(std::time::Instant::now() < deadline, "chat {chat} was never told `{needle}`: {:?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn relinking_revokes_the_old_chat_and_unlink_stops_deliveries() {
    let api = FakeBotApi::start(BOT).await;
    let routing = json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 300 } },
        "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
    });
    let (daemon, bus, _dir) = with_telegram_agents(&api, routing, &["alice"]).await;
    let kv = bus.jetstream().get_key_value("sb_channels").await.unwrap();
    let (old_chat, new_chat) = (910, 930);
    for chat in [old_chat, new_chat] {
        let code = switchboard_channel_telegram::issue_link_code(&bus, "alice").await.unwrap();
        api.push_update(api.text_message(chat, chat, &format!("/link {code}")));
        said(&api, chat, "Linked to agent alice").await;
    }
    said(&api, old_chat, "no longer linked").await;
    assert_eq!(kv.get("telegram.chat.910").await.unwrap(), None, "the old chat's link is gone");

    // A customer's message is offered in the new chat only; the old chat acts for nobody.
    api.push_update(api.text_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "Where is my parcel?"));
    let deadline = std::time::Instant::now() + WAIT;
    while !api.sent().iter().any(|m| m.chat_id == new_chat && button(&m.reply_markup, "Accept").is_some()) {
        assert!(std::time::Instant::now() < deadline, "no offer in the new chat: {:?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !api.sent().iter().any(|m| m.chat_id == old_chat && button(&m.reply_markup, "Accept").is_some()),
        "nothing is offered in the chat alice left"
    );

    // `/unlink` ends the link both ways.
    api.push_update(api.text_message(new_chat, new_chat, "/unlink"));
    said(&api, new_chat, "Unlinked from agent alice").await;
    assert_eq!(kv.get("telegram.agent.alice").await.unwrap(), None);
    assert_eq!(kv.get("telegram.chat.930").await.unwrap(), None);
    daemon.stop().await;
}

/// The agent linked to `AGENT_CHAT` and online, on a daemon whose offers wait `offer_timeout_secs`.
async fn alice_linked(
    api: &FakeBotApi,
    offer_timeout_secs: u64,
) -> (TestDaemon, switchboard_bus::Bus, tempfile::TempDir) {
    let routing = json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": offer_timeout_secs } },
        "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "online", "default_capacity": 10, "max_total": 10 } ]
    });
    let (daemon, bus, dir) = with_telegram_agents(api, routing, &["alice"]).await;
    let code = switchboard_channel_telegram::issue_link_code(&bus, "alice").await.unwrap();
    api.push_update(api.text_message(AGENT_CHAT, AGENT_CHAT, &format!("/link {code}")));
    said(api, AGENT_CHAT, "Linked to agent alice").await;
    (daemon, bus, dir)
}

/// The first message sent to `chat` with a button labelled `label`, waiting for it.
async fn with_button(api: &FakeBotApi, chat: i64, label: &str) -> switchboard_testkit::SentMessage {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(m) = api.sent().into_iter().find(|m| m.chat_id == chat && button(&m.reply_markup, label).is_some())
        {
            return m;
        }
        assert!(std::time::Instant::now() < deadline, "no message with `{label}` in chat {chat}: {:?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_used_offer_loses_its_buttons_and_a_second_press_holds_nothing_up() {
    let api = FakeBotApi::start(BOT).await;
    let (daemon, _bus, _dir) = alice_linked(&api, 300).await;
    api.push_update(api.text_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "My parcel is lost."));
    let offer = with_button(&api, AGENT_CHAT, "Accept").await;
    let accept = button(&offer.reply_markup, "Accept").unwrap();

    // Pressed twice in a row (the second before the first was answered), then a customer writes.
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
    let pushed = std::time::Instant::now();
    api.push_update(api.text_message(502, 502, "Another customer, right after."));
    let nats = daemon.nats.url();
    while switchboard_e2e::stored_on(&nats, "SB_INBOUND", "sb.in.telegram").await < 2 {
        assert!(pushed.elapsed() < WAIT, "the customer's message was never stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(pushed.elapsed() < Duration::from_millis(1500), "stored only after {:?}", pushed.elapsed());
    let answered = api.wait_for_answered_callbacks(2, WAIT).await;
    assert_eq!(answered[0].text.as_deref(), Some("Done."));

    // The offer's buttons now say what became of it; the assignment (which edits the same
    // message again: Telegram answers "not modified") still arrives, with Resolve.
    let deadline = std::time::Instant::now() + WAIT;
    let used = loop {
        let edit = api.edits().into_iter().rev().find(|e| e.message_id == offer.message_id);
        if let Some(used) = edit.and_then(|e| button(&e.reply_markup, "✓ Accepted")) {
            break used;
        }
        assert!(std::time::Instant::now() < deadline, "the offer's buttons stayed: {:?}", api.edits());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let assigned = with_button(&api, AGENT_CHAT, "Resolve").await;
    assert!(assigned.message_id > offer.message_id);
    let not_modified = api.requests().iter().any(|r| r.method == "editMessageReplyMarkup" && r.status == 400);
    assert!(not_modified, "the second edit of the offer was answered \"not modified\", and nothing failed for it");
    let pressed = std::time::Instant::now();
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &used));
    let answered = api.wait_for_answered_callbacks(3, WAIT).await;
    assert_eq!(answered[2].text.as_deref(), Some("Already handled."));
    assert!(pressed.elapsed() < Duration::from_secs(2), "answered at once");
    daemon.stop().await;
}

#[tokio::test]
async fn back_from_webhook_mode_the_bot_polls_again_and_is_ready() {
    let api = FakeBotApi::start(BOT).await;
    // Left behind by a deployment in webhook mode: Telegram refuses getUpdates (409) until removed.
    api.set_webhook("https://old-deployment.example.test/v1/telegram/updates");
    let routing = json!({ "default_team": "support", "teams": { "support": {} }, "agents": [] });
    let (daemon, _bus, _dir) = with_telegram_agents(&api, routing, &[]).await;
    api.push_update(api.text_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "Anyone there?"));
    let nats = daemon.nats.url();
    let deadline = std::time::Instant::now() + WAIT;
    while switchboard_e2e::stored_on(&nats, "SB_INBOUND", "sb.in.telegram").await < 1 {
        assert!(std::time::Instant::now() < deadline, "never polled: {:?}", api.requests());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.webhook(), None, "the webhook was removed");
    assert!(api.requests().iter().any(|r| r.method == "deleteWebhook" && r.status == 200));
    let ready = loop {
        let status = daemon.http.get(format!("{}/readyz", daemon.base)).send().await.unwrap().status().as_u16();
        if status == 200 || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready, 200, "/readyz recovers");
    daemon.stop().await;
}

/// A message from a customer with a first and last name, as Telegram's clients send them.
fn from_customer(api: &FakeBotApi, chat: i64, (first, last): (&str, &str), text: &str) -> Value {
    let mut update = api.text_message(chat, chat, text);
    update["message"]["from"]["first_name"] = json!(first);
    update["message"]["from"]["last_name"] = json!(last);
    update
}

/// The agent's reply to the bot's message `to`, kept for drawing the chat.
fn agent_reply(api: &FakeBotApi, own: &mut Vec<telegram_chat::Own>, to: i64, text: &str) {
    let mut reply = api.text_message(AGENT_CHAT, AGENT_CHAT, text);
    let mut original = api.text_message(AGENT_CHAT, AGENT_CHAT, "x")["message"].clone();
    original["message_id"] = json!(to);
    original["from"] = json!({ "id": 424242, "is_bot": true, "first_name": "Switchboard" });
    reply["message"]["reply_to_message"] = original;
    let id = reply["message"]["message_id"].as_i64().unwrap();
    own.push(telegram_chat::Own { id, text: text.into(), reply_to: Some(to) });
    api.push_update(reply);
}

/// Waits for the first message to `chat` whose text (as sent, MarkdownV2) contains every needle.
async fn sent_with(api: &FakeBotApi, chat: i64, needles: &[&str]) -> SentMessage {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = api
            .sent()
            .into_iter()
            .find(|m| m.chat_id == chat && needles.iter().all(|n| m.text.as_deref().unwrap_or_default().contains(n)));
        if let Some(m) = found {
            return m;
        }
        assert!(std::time::Instant::now() < deadline, "chat {chat} never got {needles:?}: {:#?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The short code (`K4F2`) an agent's message is headed with (`\#K4F2` in MarkdownV2).
fn code_of(m: &SentMessage) -> String {
    let text = m.text.clone().unwrap_or_default();
    let at = text.find("\\#").unwrap_or_else(|| panic!("no #code in {text}"));
    text[at + 2..].chars().take_while(char::is_ascii_alphanumeric).collect()
}

#[tokio::test]
async fn an_agent_tells_three_conversations_apart_and_hears_of_edits_and_failed_replies() {
    let api = FakeBotApi::start(BOT).await;
    let (daemon, _bus, _dir) = alice_linked(&api, 300).await;
    let mut own = Vec::new();
    let customers = [
        (501, ("Ada", "Lovelace"), "My parcel never arrived."),
        (502, ("Grace", "Hopper"), "I was charged twice for order 17."),
        (503, ("Alan", "Turing"), "How do I change my address?"),
    ];
    // Three offers, each naming its customer, the channel and a code of its own.
    let mut offers = Vec::new();
    for (chat, name, text) in customers {
        api.push_update(from_customer(&api, chat, name, text));
        let offer = sent_with(&api, AGENT_CHAT, &["New conversation", &format!("{} {}", name.0, name.1)]).await;
        assert!(offer.text.as_deref().unwrap().contains("on telegram"), "{:?}", offer.text);
        offers.push(offer);
    }
    let codes: Vec<String> = offers.iter().map(code_of).collect();
    assert!(codes.iter().all(|c| c.len() >= 4), "{codes:?}");
    assert_eq!(codes.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "distinct codes: {codes:?}");

    // Accepted: each assignment names the conversation and says what it means.
    let mut assigned = Vec::new();
    for (offer, code) in offers.iter().zip(&codes) {
        let accept = button(&offer.reply_markup, "Accept").unwrap();
        api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
        assigned.push(sent_with(&api, AGENT_CHAT, &[&format!("\\#{code}"), "You have this conversation now"]).await);
    }

    // A follow-up names the customer (not "Customer"), and so does the news of its edit.
    let follow_up = from_customer(&api, 501, ("Ada", "Lovelace"), "Any news?");
    let follow_up_id = follow_up["message"]["message_id"].as_i64().unwrap();
    api.push_update(follow_up);
    let news = sent_with(&api, AGENT_CHAT, &["Any news?"]).await;
    let news_text = news.text.clone().unwrap();
    assert!(news_text.contains(&format!("\\#{}", codes[0])) && news_text.contains("Ada Lovelace"), "{news_text}");
    assert!(!news_text.contains("Customer"), "{news_text}");
    let mut edit = api.edited_message(501, 501, follow_up_id, "Any news about my parcel?");
    edit["edited_message"]["from"]["first_name"] = json!("Ada");
    api.push_update(edit);
    let edited = sent_with(&api, AGENT_CHAT, &["edited a message", "Any news about my parcel?"]).await;
    assert!(edited.text.as_deref().unwrap().contains(&format!("\\#{}", codes[0])), "{:?}", edited.text);

    // Alan blocked the bot: the agent's answer cannot be delivered, and the agent is told.
    api.push_update(api.my_chat_member_blocked(503, 503));
    agent_reply(&api, &mut own, assigned[2].message_id, "You can change it under Settings.");
    let failed = sent_with(&api, AGENT_CHAT, &["could not be delivered"]).await;
    let failed_text = failed.text.clone().unwrap();
    assert!(failed_text.contains(&format!("\\#{}", codes[2])) && failed_text.contains("Alan Turing"), "{failed_text}");
    assert!(failed_text.contains("You can change it under Settings"), "the reply is quoted: {failed_text}");

    // Grace is answered; Ada's conversation is resolved, and its Resolve button says so.
    agent_reply(&api, &mut own, assigned[1].message_id, "Refunded: sorry for the double charge!");
    sent_with(&api, 502, &["Refunded"]).await;
    agent_reply(&api, &mut own, news.message_id, "/resolve");
    sent_with(&api, AGENT_CHAT, &[&format!("\\#{}", codes[0]), "Resolved"]).await;
    let deadline = std::time::Instant::now() + WAIT;
    while !api
        .edits()
        .iter()
        .any(|e| e.message_id == assigned[0].message_id && button(&e.reply_markup, "✓ Resolved").is_some())
    {
        assert!(std::time::Instant::now() < deadline, "the Resolve button stayed: {:?}", api.edits());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The agent's chat as they see it, drawn from what the fake Bot API recorded.
    let html = telegram_chat::page(&api, AGENT_CHAT, "Switchboard bot — Alice's chat", &own);
    let output = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
    let messages = api.sent().iter().filter(|m| m.chat_id == AGENT_CHAT).count() + own.len();
    let bytes = telegram_chat::screenshot(&html, &output, "telegram-agent-chat", 520, 140 + 120 * messages as u32);
    println!("telegram-agent-chat.png: {messages} messages, {bytes} bytes");
    daemon.stop().await;
}

/// Waits for the first file (`sendPhoto`/`sendDocument`) sent to `chat`.
async fn file_to(api: &FakeBotApi, chat: i64, method: &str) -> SentMessage {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(m) = api.sent().into_iter().find(|m| m.chat_id == chat && m.method == method) {
            return m;
        }
        assert!(std::time::Instant::now() < deadline, "no {method} to chat {chat}: {:#?}", api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn uploaded(m: &SentMessage) -> (Option<String>, Vec<u8>) {
    match m.file.clone() {
        Some(switchboard_testkit::SentFile::Upload { file_name, bytes }) => (file_name, bytes),
        other => panic!("not an upload: {other:?}"),
    }
}

#[tokio::test]
async fn files_go_both_ways_between_a_customer_and_an_agent_on_telegram() {
    let api = FakeBotApi::start(BOT).await;
    let (daemon, _bus, _dir) = alice_linked(&api, 300).await;
    let picture = b"\x89PNG\r\n\x1a\n a crushed box".to_vec();
    api.add_file("customer-photo", picture.clone());
    let mut photo = api.photo_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "customer-photo", Some("The box arrived crushed."));
    photo["message"]["from"]["first_name"] = json!("Ada");
    api.push_update(photo);

    // The offer, then the photo itself as a reply to it, captioned with the conversation's label.
    let offer = sent_with(&api, AGENT_CHAT, &["New conversation", "The box arrived crushed"]).await;
    let code = code_of(&offer);
    let shown = file_to(&api, AGENT_CHAT, "sendPhoto").await;
    assert_eq!(shown.reply_to_message_id, Some(offer.message_id));
    assert!(shown.text.as_deref().unwrap_or_default().contains(&format!("\\#{code}")), "{:?}", shown.text);
    assert_eq!(uploaded(&shown).1, picture, "the customer's photo, byte for byte");
    let accept = button(&offer.reply_markup, "Accept").unwrap();
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
    sent_with(&api, AGENT_CHAT, &["You have this conversation now"]).await;

    // The agent answers the photo with a document: the customer gets the caption and the file.
    let label = b"%PDF-1.4 return label".to_vec();
    api.add_file("agent-label", label.clone());
    let mut reply = api.document_message(
        AGENT_CHAT,
        AGENT_CHAT,
        "agent-label",
        "return-label.pdf",
        Some("Here is your return label."),
    );
    let mut original = api.text_message(AGENT_CHAT, AGENT_CHAT, "x")["message"].clone();
    original["message_id"] = json!(shown.message_id);
    reply["message"]["reply_to_message"] = original.clone();
    api.push_update(reply);
    sent_with(&api, CUSTOMER_CHAT, &["Here is your return label"]).await;
    let document = file_to(&api, CUSTOMER_CHAT, "sendDocument").await;
    assert_eq!(uploaded(&document), (Some("return-label.pdf".into()), label));

    // Over the limit (10 MB by default): the agent is told, and nothing reaches the customer.
    api.add_file("agent-huge", vec![0u8; 11 * 1024 * 1024]);
    let to_customer = api.sent().iter().filter(|m| m.chat_id == CUSTOMER_CHAT).count();
    let mut huge = api.document_message(AGENT_CHAT, AGENT_CHAT, "agent-huge", "scan.tiff", None);
    huge["message"]["reply_to_message"] = original;
    api.push_update(huge);
    sent_with(&api, AGENT_CHAT, &["Not sent: scan", "over the 10\\.0 MB limit"]).await;
    api.push_update(api.text_message(AGENT_CHAT, AGENT_CHAT, "/online"));
    api.wait_for_get_updates_calls(api.get_updates_calls().len() + 2, WAIT).await;
    assert_eq!(api.sent().iter().filter(|m| m.chat_id == CUSTOMER_CHAT).count(), to_customer, "nothing sent");
    daemon.stop().await;
}

#[tokio::test]
async fn the_last_answer_reaches_the_customer_before_the_survey_even_when_telegram_says_wait() {
    let api = FakeBotApi::start(BOT).await;
    let routing = json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 300 } },
        "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
    });
    // Every wait Telegram asks for goes back to the bus (none is waited out inside a send), where
    // the conversation's next message could overtake the one that must wait.
    let (daemon, bus, _dir) =
        with_telegram_agents_and(&api, routing, &["alice"], |tg| tg.max_retry_after_secs = 0).await;
    let code = switchboard_channel_telegram::issue_link_code(&bus, "alice").await.unwrap();
    api.push_update(api.text_message(AGENT_CHAT, AGENT_CHAT, &format!("/link {code}")));
    said(&api, AGENT_CHAT, "Linked to agent alice").await;
    api.push_update(api.text_message(CUSTOMER_CHAT, CUSTOMER_CHAT, "Is my refund through?"));
    let offer = with_button(&api, AGENT_CHAT, "Accept").await;
    let accept = button(&offer.reply_markup, "Accept").unwrap();
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offer.message_id, &accept));
    let assigned = with_button(&api, AGENT_CHAT, "Resolve").await;

    // The last answer and /resolve at once; Telegram asks the answer to wait a second.
    api.fail_next_in_chat("sendMessage", CUSTOMER_CHAT, 1, switchboard_testkit::FakeError::RetryAfter(1));
    let mut own = Vec::new();
    agent_reply(&api, &mut own, assigned.message_id, "Yes: it reached your bank today.");
    agent_reply(&api, &mut own, assigned.message_id, "/resolve");
    let deadline = std::time::Instant::now() + WAIT;
    let to_customer = loop {
        let sent: Vec<SentMessage> = api.sent().into_iter().filter(|m| m.chat_id == CUSTOMER_CHAT).collect();
        if sent.len() >= 2 {
            break sent;
        }
        assert!(std::time::Instant::now() < deadline, "the customer did not get both: {sent:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let refused = api.requests().iter().filter(|r| r.method == "sendMessage" && r.status == 429).count();
    assert_eq!(refused, 1, "the answer was asked to wait once");
    assert!(to_customer[0].text.as_deref().unwrap_or_default().contains("it reached your bank"), "{to_customer:#?}");
    assert!(to_customer[1].reply_markup.is_some(), "then the survey with its buttons: {to_customer:#?}");
    daemon.stop().await;
}
