//! The router's events go to `SB_EVENTS` as `events/1` batches (issue 28): one write per
//! customer message instead of one per event, and a journal message published again (a replay
//! after a crash) is stored once.

use std::time::Duration;

use switchboard_adapter::testkit::{TestBus, envelope, wait_for};
use switchboard_core::contract::{ROUTER_SNAPSHOTS_STORE, headers, streams, subjects};
use switchboard_core::{Contract, EventBatch, EventKind};
use switchboard_router::RouterConfig;
use uuid::Uuid;

mod support;
use support::{WAIT, deliveries};

const ROUTING: &str = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 300
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
default_capacity = 50
max_total = 50
status = "online"
"#;

fn config() -> RouterConfig {
    support::config(ROUTING, &["alice"])
}

/// Every message of `SB_EVENTS` as `(subject, Sb-Schema, Nats-Msg-Id, batch)`, oldest first; a
/// message that is not a valid `events/1` fails the test.
async fn stored_batches(t: &TestBus) -> Vec<(String, String, String, EventBatch)> {
    let stream = t.bus.jetstream().get_stream(streams::EVENTS).await.unwrap();
    let state = stream.get_info().await.unwrap().state;
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else { continue };
        let header = |name: &str| m.headers.get(name).map(|v| v.as_str().to_string()).unwrap_or_default();
        let batch = EventBatch::from_json(&m.payload).unwrap_or_else(|e| panic!("message {seq}: {e}"));
        out.push((m.subject.to_string(), header(headers::SCHEMA), header(headers::MSG_ID), batch));
    }
    out
}

/// Writes to `SB_EVENTS` so far: its last sequence (every write, whatever was deleted since).
async fn event_writes(t: &TestBus) -> u64 {
    t.bus.jetstream().get_stream(streams::EVENTS).await.unwrap().get_info().await.unwrap().state.last_sequence
}

/// Waits until the leading router answers a queue request: it has replayed its journal.
async fn leading(t: &TestBus) {
    wait_for("a leading router", WAIT, || async {
        let ask = t.bus.client().request(subjects::router_queue("default"), "".into());
        matches!(tokio::time::timeout(Duration::from_secs(1), ask).await, Ok(Ok(_)))
    })
    .await;
}

#[tokio::test]
async fn a_customer_message_is_one_write_to_the_event_stream_holding_its_three_events() {
    let t = TestBus::start().await;
    let router = support::start(&t, "r1", config()).await;
    leading(&t).await;
    // What starting wrote (the agents' statuses of the configuration, if anything).
    let before = event_writes(&t).await;
    let e = envelope("webhook", "p1", "cust-1", "where is my order?");
    t.bus.publish(&subjects::inbound("webhook"), &e, "webhook:p1").await.unwrap();
    wait_for("the offer", WAIT, || async { !deliveries(&t).await.is_empty() }).await;
    wait_for("the events", WAIT, || async { event_writes(&t).await > before }).await;

    assert_eq!(event_writes(&t).await - before, 1, "one write for the message, its conversation and the offer");
    let stored = stored_batches(&t).await;
    let (subject, schema, msg_id, batch) = stored.last().unwrap();
    assert_eq!((subject.as_str(), schema.as_str()), (subjects::EVENT_BATCH, EventBatch::SCHEMA));
    let kinds: Vec<EventKind> = batch.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::MessageReceived, EventKind::ConversationOpened, EventKind::Offered]);
    assert_eq!(msg_id, &format!("events:{}", batch.events[0].id), "a stable id, derived from the events'");
    // The readers' view (the test kit decodes as they do) is the events one by one.
    assert_eq!(t.events("offered").await, vec![batch.events[2].clone()]);
    router.stop().await;
}

#[tokio::test]
async fn a_journal_message_published_again_after_a_crash_is_stored_once() {
    let t = TestBus::start().await;
    let router = support::start(&t, "r1", config()).await;
    leading(&t).await;
    let e = envelope("webhook", "p1", "cust-1", "help");
    t.bus.publish(&subjects::inbound("webhook"), &e, "webhook:p1").await.unwrap();
    wait_for("the offer", WAIT, || async { !deliveries(&t).await.is_empty() }).await;
    wait_for("the events", WAIT, || async {
        stored_batches(&t).await.iter().any(|(_, _, _, b)| b.events[0].kind == EventKind::MessageReceived)
    })
    .await;
    let (writes, before) = (event_writes(&t).await, stored_batches(&t).await);

    // Killed: no final snapshot, so the next leader applies and publishes the journal message
    // again (one entry, below `snapshot_every`: none was saved on the way either).
    router.kill();
    let snapshots = t.bus.jetstream().get_object_store(ROUTER_SNAPSHOTS_STORE).await.unwrap();
    assert!(snapshots.get("default").await.is_err(), "no snapshot: the next leader replays from the start");
    let router = support::start(&t, "r2", config()).await;
    leading(&t).await;

    assert_eq!(event_writes(&t).await, writes, "the replayed batches were de-duplicated");
    assert_eq!(stored_batches(&t).await, before);
    assert_eq!(deliveries(&t).await.len(), 1, "the offer too");
    router.stop().await;
}

#[tokio::test]
async fn a_journal_message_of_two_customers_publishes_one_batch_for_both() {
    let t = TestBus::start().await;
    // A leader journaled two messages as one group and died before publishing anything.
    let now = chrono::Utc::now().timestamp_millis();
    let messages = [envelope("webhook", "g1", "cust-1", "help"), envelope("webhook", "g2", "cust-2", "help")];
    for e in &messages {
        t.bus.publish(&subjects::inbound("webhook"), e, &format!("webhook:{}", e.id)).await.unwrap();
    }
    let conversations = [Uuid::now_v7(), Uuid::now_v7()];
    let parts: Vec<_> = messages
        .iter()
        .zip(conversations)
        .map(|(e, c)| {
            switchboard_router::encode_entry(&switchboard_router::Entry::Inbound {
                at: now,
                envelope: Box::new(e.clone()),
                new_conversation: c,
                kb: Vec::new(),
                replies: Vec::new(),
            })
        })
        .collect();
    let mut journal = t.bus.open_journal(&subjects::router_journal("default")).await.unwrap();
    journal.append(switchboard_router::encode_entries(&parts).into(), "group:dead-leader").await.unwrap();

    let router = support::start(&t, "next", config()).await;
    leading(&t).await;
    wait_for("both offers", WAIT, || async { deliveries(&t).await.len() == 2 }).await;
    let stored: Vec<_> = stored_batches(&t)
        .await
        .into_iter()
        .filter(|(_, _, _, b)| b.events.iter().any(|e| e.conversation_id.is_some()))
        .collect();
    assert_eq!(stored.len(), 1, "one journal message, one write for both customers: {stored:?}");
    let (_, _, msg_id, batch) = &stored[0];
    let order: Vec<_> = batch.events.iter().map(|e| e.conversation_id).collect();
    let [a, b] = conversations.map(Some);
    assert_eq!(order, [a, a, a, b, b, b], "each entry's events in the journal's order");
    assert_eq!(msg_id, &format!("events:{}", batch.events[0].id));
    router.stop().await;
}
