//! The retention sweep on a real NATS: with a retention longer than the data's age nothing goes;
//! with one shorter, resolved conversation records, thread tokens, web-chat profiles, Telegram
//! message maps and attachments go (every revision), while open conversations' records, cursors
//! and agent links stay.

use std::time::Duration;

use switchboard::privacy::PrivacyConfig;
use switchboard::privacy::retention::{Swept, sweep};
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets};
use switchboard_testkit::NatsServer;

async fn connect(server: &NatsServer) -> Bus {
    let bus = tokio::time::timeout(Duration::from_secs(20), Bus::connect_once(&BusConfig::for_url(server.url())))
        .await
        .expect("connect within 20 s")
        .expect("connect");
    bus.ensure_contract().await.expect("contract");
    bus
}

#[tokio::test]
async fn the_sweep_removes_what_is_older_than_the_retention_and_keeps_what_must_stay() {
    let nats = NatsServer::start();
    let bus = connect(&nats).await;
    let js = bus.jetstream();
    let conversations = js.get_key_value(buckets::CONVERSATIONS).await.unwrap();
    let channels = js.get_key_value(buckets::CHANNELS).await.unwrap();
    for (key, state) in [("c-open", "assigned"), ("c-done", "resolved")] {
        // Two revisions each: the sweep must not leave the older one behind.
        for text in ["first", "second"] {
            let record = serde_json::json!({ "id": key, "state": state, "customer": { "id": "old-zq" }, "text": text });
            conversations.put(key, record.to_string().into()).await.unwrap();
        }
    }
    let customer_keys =
        ["email.thread.t0123456789abcdefghij", "webchat.profile.s1", "telegram.msg.5.7", "email.csat.x"];
    for key in customer_keys {
        channels.put(key, "old-zq".into()).await.unwrap();
    }
    let kept_keys = ["email.cursor.inbox", "telegram.agent.alice"];
    for key in kept_keys {
        channels.put(key, "42".into()).await.unwrap();
    }
    let store = js.get_object_store(ATTACHMENTS_STORE).await.unwrap();
    store.put("webchat/s1/file", &mut "old-zq file".as_bytes()).await.unwrap();

    let cfg = PrivacyConfig::default();
    // Younger than the retention: nothing goes.
    let swept = sweep(&bus, &cfg, &[], Duration::from_secs(3600)).await.unwrap();
    assert_eq!(swept, Swept::default());
    assert!(conversations.get("c-done").await.unwrap().is_some());

    // Older than it (a zero retention makes everything written so far older).
    let swept = sweep(&bus, &cfg, &[], Duration::ZERO).await.unwrap();
    assert_eq!(swept, Swept { records: 1, mappings: customer_keys.len(), objects: 1, routers: 0 });
    assert!(conversations.get("c-done").await.unwrap().is_none());
    assert!(conversations.get("c-open").await.unwrap().is_some(), "an open conversation keeps its record");
    for key in customer_keys {
        assert!(channels.get(key).await.unwrap().is_none(), "{key} kept");
    }
    for key in kept_keys {
        assert!(channels.get(key).await.unwrap().is_some(), "{key} swept");
    }
    assert!(store.get("webchat/s1/file").await.is_err(), "the attachment is still there");

    // Nothing of the swept items is left in the streams behind the buckets and the store, not
    // even older revisions or delete markers.
    let mut left = Vec::new();
    for stream in [
        format!("KV_{}", buckets::CONVERSATIONS),
        format!("KV_{}", buckets::CHANNELS),
        format!("OBJ_{ATTACHMENTS_STORE}"),
    ] {
        let mut s = js.get_stream(&stream).await.unwrap();
        let state = s.info().await.unwrap().state.clone();
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = s.get_raw_message(seq).await {
                let text = format!("{} {}", m.subject, String::from_utf8_lossy(&m.payload));
                if text.contains("c-done")
                    || text.contains("old-zq file")
                    || customer_keys.iter().any(|k| text.contains(k))
                {
                    left.push(format!("{stream}: {text}"));
                }
            }
        }
    }
    assert!(left.is_empty(), "swept items left behind:\n{}", left.join("\n"));
}
