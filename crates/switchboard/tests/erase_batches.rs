//! Erasure and the router's event batches on a real NATS: a batch holds one router step's
//! events, often several customers'. Erasing one customer deletes every batch that names them;
//! one that also holds someone else's events is first published again without theirs (header
//! `Sb-Rewrite-Of`, on `sb.events.rewritten`), so the other customer's events survive exactly
//! once; a fold that counted the original counts none of them twice, and one that starts after
//! the erasure folds them where the original stood.

use std::time::Duration;

use switchboard::privacy::{CustomerRef, forget};
use switchboard::stats;
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::{buckets, headers, streams, subjects};
use switchboard_core::{Contract, Event, EventBatch, EventKind};
use switchboard_metrics::{Metrics, Phase};
use switchboard_testkit::NatsServer;
use uuid::Uuid;

async fn connect(server: &NatsServer) -> Bus {
    let bus = tokio::time::timeout(Duration::from_secs(20), Bus::connect_once(&BusConfig::for_url(server.url())))
        .await
        .expect("connect within 20 s")
        .expect("connect");
    bus.ensure_contract().await.expect("contract");
    bus
}

fn event(kind: EventKind, conversation: Uuid) -> Event {
    Event {
        id: Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind,
        conversation_id: Some(conversation),
        agent_id: Some("alice".into()),
        channel: Some("webhook".into()),
        data: serde_json::Map::new(),
    }
}

/// A customer's new conversation as the router writes it: its events, in order.
fn opened(conversation: Uuid) -> Vec<Event> {
    [EventKind::MessageReceived, EventKind::ConversationOpened, EventKind::Offered]
        .map(|k| event(k, conversation))
        .to_vec()
}

/// Every message of `SB_EVENTS` now: sequence, `Sb-Rewrite-Of`, `Nats-Msg-Id` and its events.
async fn stored(bus: &Bus) -> Vec<(u64, Option<String>, String, Vec<Event>)> {
    let stream = bus.jetstream().get_stream(streams::EVENTS).await.unwrap();
    let state = stream.get_info().await.unwrap().state;
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else { continue };
        let header = |name: &str| m.headers.get(name).map(|v| v.as_str().to_string());
        let events = switchboard_core::decode_events(header(headers::SCHEMA).as_deref(), &m.payload).unwrap();
        out.push((seq, header(headers::REWRITE_OF), header(headers::MSG_ID).unwrap_or_default(), events));
    }
    out
}

#[tokio::test]
async fn erasing_one_customer_rewrites_a_shared_batch_without_them_and_deletes_it() {
    let nats = NatsServer::start();
    let bus = connect(&nats).await;
    let (ann, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let records = bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    // One without a person key: it must not link Ann to anyone who has none either.
    for (id, customer, person) in [(ann, "ann-erase-zq", "webhook:ann-erase-zq"), (bob, "bob-keep-zq", "")] {
        let record = serde_json::json!({ "id": id, "channel": "webhook", "customer": { "id": customer },
                                         "person": person, "thread_key": format!("webhook:{customer}"),
                                         "state": "offered" });
        records.put(id.to_string(), record.to_string().into()).await.unwrap();
    }
    // Three steps: Ann's and Bob's messages taken together, then one of each alone.
    let steps = [
        EventBatch { events: [opened(ann), opened(bob)].concat() },
        EventBatch { events: vec![event(EventKind::Assigned, ann)] },
        EventBatch { events: vec![event(EventKind::Assigned, bob)] },
    ];
    for step in &steps {
        bus.publish(subjects::EVENT_BATCH, step, &step.msg_id()).await.unwrap();
    }
    let before = stored(&bus).await;
    let shared_seq = before[0].0;
    // A live metrics fold has seen all three steps.
    let mut live = Metrics::new();
    for (_, _, _, events) in &before {
        for e in events {
            assert!(live.apply(e));
        }
    }

    let who: CustomerRef = "webhook:ann-erase-zq".parse().unwrap();
    let erasure = forget(&bus, &[], &who, "test", 100_000).await.unwrap();
    assert_eq!(erasure.conversations, 1, "{erasure:?}");
    assert_eq!(erasure.rewritten_batches, 1, "{erasure:?}");

    let after = stored(&bus).await;
    let ann_text = ann.to_string();
    for (seq, _, _, events) in &after {
        assert!(
            events.iter().all(|e| e.conversation_id != Some(ann))
                && !serde_json::to_string(events).unwrap().contains(&ann_text),
            "Ann is left in SB_EVENTS message {seq}: {events:?}"
        );
    }
    assert!(after.iter().all(|(seq, ..)| *seq != shared_seq), "the shared batch was deleted");
    let rewrite: Vec<_> = after.iter().filter(|(_, of, ..)| of.is_some()).collect();
    assert_eq!(rewrite.len(), 1, "{after:?}");
    let (_, of, msg_id, events) = rewrite[0];
    assert_eq!(of.as_deref(), Some(shared_seq.to_string().as_str()), "it names the batch it rewrote");
    assert_eq!(msg_id, &format!("events:rewrite:{shared_seq}"));
    assert_eq!(events, &opened_of(&before[0].3, bob), "Bob's events of the step, unchanged and in order");
    // Bob's events are all there, each once.
    let bob_events: Vec<Uuid> = after
        .iter()
        .flat_map(|(.., events)| events.iter())
        .filter(|e| e.conversation_id == Some(bob))
        .map(|e| e.id)
        .collect();
    let mut expected: Vec<Uuid> = before
        .iter()
        .flat_map(|(.., events)| events.iter())
        .filter(|e| e.conversation_id == Some(bob))
        .map(|e| e.id)
        .collect();
    expected.sort();
    let mut got = bob_events.clone();
    got.sort();
    assert_eq!(got, expected, "each of Bob's events exactly once");
    // The fold that had counted the original counts nothing of the rewrite again.
    assert!(events.iter().all(|e| !live.apply(e)), "a rewritten event counted twice");
    // A fold that starts after the erasure (`switchboard stats`, metrics without a snapshot)
    // folds the rewrite where the batch it replaced stood: Bob is assigned, as the live fold
    // has him. Folded where it is stored, at the end, his `offered` would undo the assignment.
    let fresh = stats::read_events(&bus, chrono::DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(fresh.metrics.conversations.get(&bob), live.conversations.get(&bob));
    assert_eq!(live.conversations[&bob].phase, Phase::Assigned);
    let in_stored_order = Metrics::from_events(after.iter().flat_map(|(.., events)| events.iter()));
    assert_eq!(in_stored_order.conversations[&bob].phase, Phase::Offered, "the order matters, as above");

    // Erasing again finds nothing more to rewrite or delete.
    let again = forget(&bus, &[], &who, "test", 100_000).await.unwrap();
    assert_eq!((again.rewritten_batches, again.messages), (0, 0), "{again:?}");
    let last = stored(&bus).await;
    assert_eq!(last.len(), after.len() + 1, "only the second audit event was added");
    assert_eq!(last[last.len() - 1].3[0].kind, EventKind::CustomerForgotten);
    assert!(EventBatch { events: events.clone() }.validate().is_ok());
}

/// The events of `conversation` among `events`, in order.
fn opened_of(events: &[Event], conversation: Uuid) -> Vec<Event> {
    events.iter().filter(|e| e.conversation_id == Some(conversation)).cloned().collect()
}
