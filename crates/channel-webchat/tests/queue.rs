//! Queue notices reach the widget as `queue` entries with their figures (`docs/queue.md`), live
//! on an open socket and in the history of one that resumes, against a real NATS server.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use switchboard_adapter::testkit::outbound;
use switchboard_channel_webchat::CHANNEL;
use switchboard_core::OutboundKind;
use switchboard_core::contract::metadata;

#[tokio::test]
async fn a_queue_notice_arrives_as_a_queue_frame_with_its_figures() {
    let chat = Chat::start(|_| {}).await;
    let (mut ws, welcome) = chat.open(json!({ "lang": "en" })).await;
    let session = welcome["session"].as_str().unwrap().to_string();
    ws.history().await;
    ws.send(json!({ "type": "send", "client_id": "a", "text": "help" })).await;
    ws.next_of("ack").await;

    // What the router sends a waiting web-chat customer.
    let mut notice = outbound(
        CHANNEL,
        &format!("visitor:{session}"),
        "You are 3rd in line; an agent usually answers within about 4 minutes.",
    );
    notice.to.thread_key = session.clone();
    notice.kind = OutboundKind::System;
    notice.agent_id = None;
    for (k, v) in
        [(metadata::QUEUE_POSITION, "3"), (metadata::QUEUE_ESTIMATE_SECS, "240"), (metadata::QUEUE_AGENTS_ONLINE, "2")]
    {
        notice.metadata.insert(k.into(), v.into());
    }
    chat.bus.send_outbound(&notice).await;
    let frame = ws.entry_of("queue").await;
    let entry = &frame["entry"];
    assert_eq!(entry["queue"], json!({ "position": 3, "estimate_secs": 240, "agents_online": 2 }));
    assert_eq!(entry["text"], "You are 3rd in line; an agent usually answers within about 4 minutes.");

    // Any other system message stays a `system` entry, without figures.
    let mut other = outbound(CHANNEL, &format!("visitor:{session}"), "We will be right with you.");
    other.to.thread_key = session.clone();
    other.kind = OutboundKind::System;
    chat.bus.send_outbound(&other).await;
    let frame = ws.entry_of("system").await;
    assert!(frame["entry"].get("queue").is_none(), "{frame}");
    chat.bus.wait_outbound_drained(CHANNEL, Duration::from_secs(30)).await;

    // A tab opening later sees the notice in the history, with its figures.
    let (mut again, _) = chat.open(json!({ "token": welcome["token"] })).await;
    let history = again.history().await;
    let queued: Vec<_> = history.iter().filter(|f| f["entry"]["kind"] == "queue").collect();
    assert_eq!(queued.len(), 1, "{history:?}");
    assert_eq!(queued[0]["entry"]["queue"]["position"], 3);
    chat.running.unwrap().stop().await;
}
