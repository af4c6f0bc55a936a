//! The team boards' driver against a real NATS: a stand-in for a group's leading router answers
//! the queue request, events wake the board, and a board is shown only when its text changed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use switchboard_adapter::agent_chat::{Plain, QueueBoard, render_board};
use switchboard_adapter::testkit::{TestBus, wait_for};
use switchboard_core::contract::{buckets, subjects};
use tokio_util::sync::CancellationToken;

/// What the stand-in router answers (`None`: it takes the request and says nothing, like a
/// leader that just lost its lease), and how many requests it took.
#[derive(Default)]
struct StandIn {
    queue: Mutex<Option<serde_json::Value>>,
    asked: AtomicUsize,
}

async fn stand_in(bus: &switchboard_bus::Bus, state: Arc<StandIn>) {
    let client = bus.client().clone();
    let mut requests = client.subscribe(subjects::router_queue("g1")).await.unwrap();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            state.asked.fetch_add(1, Ordering::SeqCst);
            let answer = state.queue.lock().unwrap().clone();
            if let (Some(answer), Some(reply)) = (answer, request.reply) {
                client.publish(reply, answer.to_string().into()).await.unwrap();
            }
        }
    });
}

#[tokio::test]
async fn boards_are_shown_when_their_text_changes_and_kept_while_no_router_answers() {
    let t = TestBus::start().await;
    let state = Arc::new(StandIn::default());
    *state.queue.lock().unwrap() = Some(serde_json::json!([]));
    stand_in(&t.bus, state.clone()).await;
    let conversation = uuid::Uuid::now_v7();
    let kv = t.bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    let record = serde_json::json!({ "id": conversation, "customer": { "id": "c-17", "name": "Ada Lovelace" } });
    kv.put(conversation.to_string(), record.to_string().into()).await.unwrap();

    let shown: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = CancellationToken::new();
    let board = QueueBoard::new(vec!["g1".into()], vec!["billing".into(), "support".into()]);
    let task = tokio::spawn({
        let (bus, stop, shown) = (t.bus.clone(), stop.clone(), shown.clone());
        async move {
            board
                .run(bus, stop, move |snapshot| {
                    let shown = shown.clone();
                    async move {
                        shown.lock().unwrap().push((snapshot.team.clone(), render_board(&Plain, &snapshot)));
                        Ok(())
                    }
                })
                .await
        }
    });
    let count = |shown: &Arc<Mutex<Vec<(String, String)>>>| shown.lock().unwrap().len();
    wait_for("both empty boards shown", Duration::from_secs(10), || async { count(&shown) == 2 }).await;
    assert!(shown.lock().unwrap().iter().all(|(_, text)| text.contains("Nobody is waiting.")));

    // A customer waits for billing: an event wakes the board, only billing's board changes.
    let now = chrono::Utc::now().timestamp_millis();
    *state.queue.lock().unwrap() = Some(serde_json::json!([{
        "conversation_id": conversation, "code": "K4F2", "channel": "webhook", "team": "billing",
        "tier": "L1", "priority": 50, "waiting_since": now - 120_000, "sla_deadline": now + 600_000,
        "sla_left_secs": 600,
    }]));
    t.bus.client().publish(subjects::event("received"), "{}".into()).await.unwrap();
    wait_for("billing's board shown again", Duration::from_secs(10), || async { count(&shown) == 3 }).await;
    let (team, text) = shown.lock().unwrap()[2].clone();
    assert_eq!(team, "billing");
    assert!(text.contains("1 waiting, the longest for 2 min"), "{text}");
    assert!(text.contains("#K4F2 Ada Lovelace (webhook), priority 50, L1, waiting 2 min, reply due in"), "{text}");

    // More events with nothing changed: asked again, nothing shown.
    let asked = state.asked.load(Ordering::SeqCst);
    for _ in 0..5 {
        t.bus.client().publish(subjects::event("message_received"), "{}".into()).await.unwrap();
    }
    wait_for("the queue asked again", Duration::from_secs(10), || async { state.asked.load(Ordering::SeqCst) > asked })
        .await;
    assert_eq!(count(&shown), 3, "an unchanged board is not shown again");

    // The leader goes quiet: the board is not emptied.
    *state.queue.lock().unwrap() = None;
    let asked = state.asked.load(Ordering::SeqCst);
    t.bus.client().publish(subjects::event("assigned"), "{}".into()).await.unwrap();
    wait_for("the quiet leader asked", Duration::from_secs(10), || async {
        state.asked.load(Ordering::SeqCst) > asked
    })
    .await;
    // The leader answers again, with a changed queue: billing's board is shown once more, and
    // nothing was shown in between (an unanswered request is not an empty queue).
    *state.queue.lock().unwrap() = Some(serde_json::json!([{
        "conversation_id": conversation, "code": "K4F2", "channel": "webhook", "team": "billing",
        "tier": "L2", "priority": 80, "waiting_since": now - 120_000, "sla_deadline": now + 600_000,
        "sla_left_secs": 600,
    }]));
    t.bus.client().publish(subjects::event("escalated"), "{}".into()).await.unwrap();
    wait_for("billing's board shown after the leader is back", Duration::from_secs(15), || async {
        count(&shown) >= 4
    })
    .await;
    let shown_now = shown.lock().unwrap().clone();
    assert_eq!(shown_now.len(), 4, "{shown_now:?}");
    assert!(shown_now[3].1.contains("priority 80, L2"), "{}", shown_now[3].1);

    stop.cancel();
    task.await.unwrap().unwrap();
}
