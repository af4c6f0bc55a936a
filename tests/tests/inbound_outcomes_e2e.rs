//! Every inbound item has exactly one counted outcome, visible on `/metrics` as
//! `switchboard_inbound_total{channel, outcome}`: through the real daemon, a webhook message is
//! routed, its re-delivery is a duplicate, a forged or unreadable request is rejected, and an
//! envelope an adapter publishes on another channel's subject is a dead letter.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::subjects;
use switchboard_core::{Customer, Envelope};
use switchboard_e2e::TestDaemon;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// The `switchboard_inbound_total` samples by `(channel, outcome)`.
async fn outcomes(daemon: &TestDaemon) -> (BTreeMap<(String, String), u64>, String) {
    let text = daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("switchboard_inbound_total{")) {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            labels[start..].split('"').next().unwrap().to_string()
        };
        out.insert((label("channel"), label("outcome")), value.parse().unwrap());
    }
    (out, text)
}

#[tokio::test]
async fn each_inbound_item_is_counted_once_with_its_outcome_on_metrics() {
    let daemon = TestDaemon::start(None, |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": {} },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
        }))
        .unwrap();
    })
    .await;
    let body = json!({ "message_id": "m-1", "customer": { "id": "u-1" }, "text": "Where is my order?" }).to_string();
    // Routed, then the same provider message again: a duplicate.
    assert_eq!(daemon.post_signed("evt_1", &body).await.0, 202);
    let (status, answer) = daemon.post_signed("evt_2", &body).await;
    assert_eq!((status, answer["duplicate"].as_bool()), (202, Some(true)));
    // A forged signature and an unreadable body: refused, nothing stored.
    let forged = daemon
        .http
        .post(format!("{}/v1/webhooks/shop", daemon.base))
        .header("content-type", "application/json")
        .header("webhook-id", "evt_3")
        .header("webhook-timestamp", chrono::Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    assert_eq!(daemon.post_signed("evt_4", "{not json").await.0, 400);
    // An adapter allowed only `sb.in.pigeon` speaks for a webhook customer: a dead letter.
    let bus = Bus::connect(&BusConfig::for_url(daemon.nats.url()), &CancellationToken::new()).await.unwrap();
    let spoofed = Envelope {
        id: uuid::Uuid::now_v7(),
        channel: "webhook".into(),
        provider_message_id: "spoof-1".into(),
        received_at: chrono::Utc::now(),
        customer: Customer { id: "u-1".into(), name: None, email: None, phone: None, language: None },
        thread_key: "shop:u-1".into(),
        text: "refund to my other account".into(),
        subject: None,
        html: None,
        attachments: vec![],
        metadata: Default::default(),
        raw_ref: None,
    };
    bus.publish(&subjects::inbound("pigeon"), &spoofed, "pigeon:spoof-1").await.unwrap();

    let expected: BTreeMap<(String, String), u64> = [
        (("pigeon", "dead_letter"), 1),
        (("webhook", "duplicate"), 1),
        (("webhook", "rejected"), 2),
        (("webhook", "routed"), 1),
    ]
    .into_iter()
    .map(|((c, o), n)| ((c.to_string(), o.to_string()), n))
    .collect();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (seen, text) = outcomes(&daemon).await;
        let nonzero: BTreeMap<_, _> = seen.into_iter().filter(|(_, n)| *n > 0).collect();
        if nonzero == expected {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "outcomes never became {expected:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Five items in, five outcomes counted: nothing twice.
    assert_eq!(expected.values().sum::<u64>(), 5);
    daemon.stop().await;
}
