//! Agents' chats against the fake Bot API and a real NATS (no router: deliveries are published
//! as the router would, and commands simply get no verdict): a press waiting for its verdict
//! holds up no other update, used buttons are replaced by what became of the offer, and every
//! sender of the bot keeps Telegram's one message a second per chat and one budget for the bot.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_adapter::testkit::{TestBus, outbound, wait_for};
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_core::AgentDelivery;
use switchboard_core::contract::{buckets, subjects};
use switchboard_testkit::{FakeBotApi, SentMessage};
use uuid::Uuid;

mod common;
use common::{TOKEN, config, start};

const WAIT: Duration = Duration::from_secs(20);
const AGENT_CHAT: i64 = 900;

/// Links agent `alice` to [`AGENT_CHAT`] as `/link` does, and runs the agents' deliverer.
async fn alice(t: &TestBus, cfg: &switchboard_channel_telegram::TelegramConfig) -> tokio_util::sync::CancellationToken {
    let kv = t.bus.jetstream().get_key_value(buckets::CHANNELS).await.unwrap();
    kv.put("telegram.agent.alice", AGENT_CHAT.to_string().into()).await.unwrap();
    kv.put(format!("telegram.chat.{AGENT_CHAT}"), "alice".into()).await.unwrap();
    let agents = switchboard_channel_telegram::agent_chats(cfg).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(agents.run(t.bus.clone(), stop.clone()));
    stop
}

/// A delivery to alice as the router sends it (built from JSON, so fields added later with
/// defaults need no change here).
async fn deliver(t: &TestBus, delivery: Value) {
    let delivery: AgentDelivery = serde_json::from_value(delivery).unwrap();
    let id = Uuid::now_v7().to_string();
    t.bus.publish(&subjects::agent_out("telegram"), &delivery, &id).await.unwrap();
}

fn offer(conversation: Uuid) -> Value {
    let now = chrono::Utc::now();
    json!({
        "type": "offer", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation,
        "channel": "telegram", "customer": { "id": "501", "name": "Ada Lovelace" },
        "priority": 50, "tier": "L1", "sla_deadline": now, "offer_deadline": now,
        "history": [ { "at": now, "from": "customer", "author": "Ada Lovelace", "text": "My parcel is lost." } ],
        "actions": ["accept", "decline"],
    })
}

fn update(conversation: Uuid, change: &str) -> Value {
    json!({ "type": "update", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation, "change": change })
}

/// The buttons' labels and callback data of a keyboard.
fn buttons(markup: &Option<Value>) -> Vec<(String, String)> {
    let rows = markup.as_ref().and_then(|m| m["inline_keyboard"].as_array().cloned()).unwrap_or_default();
    rows.iter()
        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        .map(|b| (b["text"].as_str().unwrap_or("").into(), b["callback_data"].as_str().unwrap_or("").into()))
        .collect()
}

/// Waits for the `n`th message sent to the agent's chat.
async fn nth_in_agent_chat(api: &FakeBotApi, n: usize) -> SentMessage {
    wait_for("messages in the agent's chat", WAIT, || async {
        api.sent().iter().filter(|s| s.chat_id == AGENT_CHAT).count() >= n
    })
    .await;
    api.sent().into_iter().filter(|s| s.chat_id == AGENT_CHAT).nth(n - 1).unwrap()
}

/// Waits until message `message` of the agent's chat shows exactly one button labelled `label`.
async fn shows(api: &FakeBotApi, message: i64, label: &str) -> (String, String) {
    wait_for(&format!("message {message} showing `{label}`"), WAIT, || async {
        api.edits().iter().any(|e| e.message_id == message && buttons(&e.reply_markup).iter().any(|b| b.0 == label))
    })
    .await;
    let edit = api.edits().into_iter().rev().find(|e| e.message_id == message).unwrap();
    let shown = buttons(&edit.reply_markup);
    assert_eq!(shown.len(), 1, "one button saying what became of it: {shown:?}");
    shown[0].clone()
}

#[tokio::test]
async fn a_press_waiting_for_its_verdict_holds_up_no_other_update() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&api, dir.path());
    let stop = alice(&t, &cfg).await;
    let running = start(&t, &cfg);
    let not_routed = outcomes::count("telegram", InboundOutcome::NotRouted);

    // No router runs: the verdict never comes, and each press would wait for it (3 s).
    let data = format!("acc:{}", Uuid::now_v7().simple());
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, 4242, &data));
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, 4242, &data));
    let pushed = tokio::time::Instant::now();
    api.push_update(api.text_message(501, 501, "A customer right after the presses"));
    wait_for("the customer's message", WAIT, || async { t.envelopes("telegram").await.len() == 1 }).await;
    let took = pushed.elapsed();
    assert!(took < Duration::from_millis(1500), "the customer's message waited {took:?} behind the presses");

    // Each press is still answered once its wait is over, and counted once.
    let answered = api.wait_for_answered_callbacks(2, WAIT).await;
    assert!(answered.iter().all(|a| a.text.as_deref() == Some("Received.")), "{answered:?}");
    assert_eq!(outcomes::count("telegram", InboundOutcome::NotRouted), not_routed + 2, "each press counted once");
    let commands =
        t.stored(switchboard_core::contract::streams::AGENT, switchboard_core::contract::subjects::AGENT_IN).await;
    assert_eq!(commands.len(), 1, "the same button twice is one command");
    stop.cancel();
    running.stop().await;
}

#[tokio::test]
async fn used_buttons_are_replaced_by_what_became_of_the_offer() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&api, dir.path());
    let stop = alice(&t, &cfg).await;
    let running = start(&t, &cfg);

    // Accepted: the offer's Accept/Decline become "✓ Accepted"; the assignment brings Resolve.
    let (taken, lapsed) = (Uuid::now_v7(), Uuid::now_v7());
    deliver(&t, offer(taken)).await;
    let offered = nth_in_agent_chat(&api, 1).await;
    let labels: Vec<String> = buttons(&offered.reply_markup).into_iter().map(|b| b.0).collect();
    assert_eq!(labels, ["Accept", "Decline"]);
    deliver(&t, update(taken, "assigned")).await;
    let (_, used) = shows(&api, offered.message_id, "✓ Accepted").await;
    let assigned = nth_in_agent_chat(&api, 2).await;
    assert_eq!(buttons(&assigned.reply_markup)[0].0, "Resolve");

    // A press of the used button is answered at once, and nothing is sent to the router.
    let pressed = tokio::time::Instant::now();
    api.push_update(api.callback_query(AGENT_CHAT, AGENT_CHAT, offered.message_id, &used));
    let answered = api.wait_for_answered_callbacks(1, WAIT).await;
    assert_eq!(answered[0].text.as_deref(), Some("Already handled."));
    assert!(answered[0].at - pressed < Duration::from_secs(2), "answered without waiting for a verdict");
    assert!(t.stored(switchboard_core::contract::streams::AGENT, subjects::AGENT_IN).await.is_empty());

    // Resolved: the Resolve button says so.
    deliver(&t, update(taken, "resolved")).await;
    shows(&api, assigned.message_id, "✓ Resolved").await;

    // An offer that lapsed or was withdrawn says so instead of offering Accept.
    deliver(&t, offer(lapsed)).await;
    let offers = || api.sent().into_iter().filter(|s| buttons(&s.reply_markup).iter().any(|b| b.0 == "Accept"));
    wait_for("the second offer", WAIT, || async { offers().count() == 2 }).await;
    let second = offers().next_back().unwrap();
    deliver(&t, update(lapsed, "offer_withdrawn")).await;
    shows(&api, second.message_id, "Offer withdrawn").await;
    stop.cancel();
    running.stop().await;
}

#[tokio::test]
async fn every_sender_of_the_bot_keeps_one_message_a_second_per_chat() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&api, dir.path());
    let stop = alice(&t, &cfg).await;
    let running = start(&t, &cfg);

    // A burst into one chat from both senders: agent deliveries and the customer channel (the
    // agent is also a customer of the bot here, as in a team that tests its own bot).
    let conversation = Uuid::now_v7();
    for i in 0..3 {
        let mut reply = outbound("telegram", &AGENT_CHAT.to_string(), &format!("customer reply {i}"));
        reply.to.thread_key = AGENT_CHAT.to_string();
        t.send_outbound(&reply).await;
        let now = chrono::Utc::now();
        deliver(
            &t,
            json!({
                "type": "message", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation,
                "entry": { "at": now, "from": "customer", "author": "Ada", "text": format!("agent delivery {i}") },
            }),
        )
        .await;
    }
    nth_in_agent_chat(&api, 6).await;
    let gap = api.min_gap(AGENT_CHAT).unwrap();
    assert!(
        gap >= Duration::from_millis(900),
        "two messages {gap:?} apart in one chat: {:?}",
        api.send_times(AGENT_CHAT)
    );
    stop.cancel();
    running.stop().await;
}

#[tokio::test]
async fn the_bots_budget_is_one_for_every_sender_not_one_each() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    cfg.per_bot_per_sec = 2;
    let stop = alice(&t, &cfg).await;
    let running = start(&t, &cfg);

    // Two customer replies and two agent deliveries, each to a chat of its own: within a budget
    // of two a second for the bot, the last goes out about a second after the first.
    let kv = t.bus.jetstream().get_key_value(buckets::CHANNELS).await.unwrap();
    kv.put("telegram.agent.bob", "901".into()).await.unwrap();
    for (agent, customer) in [("alice", 601), ("bob", 602)] {
        let mut reply = outbound("telegram", &customer.to_string(), "a reply");
        reply.to.thread_key = customer.to_string();
        t.send_outbound(&reply).await;
        let now = chrono::Utc::now();
        deliver(
            &t,
            json!({
                "type": "message", "id": Uuid::now_v7(), "agent_id": agent, "conversation_id": Uuid::now_v7(),
                "entry": { "at": now, "from": "customer", "author": "Ada", "text": "a delivery" },
            }),
        )
        .await;
    }
    let sent = api.wait_for_sent(4, WAIT).await;
    let span = sent[3].at - sent[0].at;
    assert!(span >= Duration::from_millis(800), "four messages within {span:?}: the budget was spent twice");
    stop.cancel();
    running.stop().await;
}
