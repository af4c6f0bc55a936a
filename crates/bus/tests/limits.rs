//! Storage budgets against a real NATS server: every stream, bucket and object store gets one,
//! old stores are updated, full work streams refuse rather than delete, and fill is reported.

use std::time::Duration;

use async_nats::jetstream::{object_store, stream::DiscardPolicy};
use switchboard_bus::limits::StoreKind;
use switchboard_bus::{Bus, BusConfig, BusError, fill, limits};
use switchboard_core::contract::{ATTACHMENTS_STORE, OBJECT_STORES, buckets, streams};
use switchboard_testkit::NatsServer;
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1 << 20;

async fn connect(cfg: &BusConfig) -> Bus {
    Bus::connect(cfg, &CancellationToken::new()).await.expect("connect")
}

async fn stream_config(bus: &Bus, stream: &str) -> async_nats::jetstream::stream::Config {
    bus.jetstream().get_stream(stream).await.unwrap().info().await.unwrap().config.clone()
}

#[tokio::test]
async fn every_stream_bucket_and_store_gets_its_budget_and_an_old_store_is_updated() {
    let server = NatsServer::start();
    let mut cfg = BusConfig::for_url(server.url());
    // An attachments store as an older version created it: no byte or age limit.
    let old = connect(&cfg).await;
    old.jetstream()
        .create_object_store(object_store::Config { bucket: ATTACHMENTS_STORE.into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(stream_config(&old, &format!("OBJ_{ATTACHMENTS_STORE}")).await.max_bytes, -1);

    cfg.store_max_bytes.insert("sb_attachments".into(), 4 * MIB);
    cfg.stream_max_bytes.insert("sb_outbound".into(), 3 * MIB);
    cfg.attachments_max_age_secs = 3600;
    let bus = connect(&cfg).await;
    bus.ensure_contract().await.unwrap();

    let attachments = stream_config(&bus, &format!("OBJ_{ATTACHMENTS_STORE}")).await;
    assert_eq!(attachments.max_bytes, 4 * MIB as i64, "the old store got the configured budget");
    assert_eq!(attachments.max_age, Duration::from_secs(3600));
    assert_eq!(attachments.discard, DiscardPolicy::New, "a full store refuses new files");
    assert_eq!(stream_config(&bus, streams::OUTBOUND).await.max_bytes, 3 * MIB as i64);
    for (name, _) in streams::ALL {
        let config = stream_config(&bus, name).await;
        assert_eq!(config.max_bytes, cfg.max_bytes_of(StoreKind::Stream, name) as i64, "{name}");
        assert_eq!(config.discard, limits::discard_policy(name), "{name}");
        assert!(config.max_age > Duration::ZERO, "{name} has an age limit");
    }
    for bucket in buckets::ALL {
        let config = stream_config(&bus, &format!("KV_{bucket}")).await;
        assert_eq!(config.max_bytes, cfg.max_bytes_of(StoreKind::Bucket, bucket) as i64, "{bucket}");
        assert!(config.max_messages_per_subject >= 1, "{bucket} keeps a bounded history");
    }
    assert_eq!(stream_config(&bus, &format!("KV_{}", buckets::UPLOADS)).await.max_age, Duration::from_secs(3600));
    for store in OBJECT_STORES {
        assert_eq!(
            stream_config(&bus, &format!("OBJ_{store}")).await.max_bytes,
            cfg.max_bytes_of(StoreKind::ObjectStore, store) as i64
        );
    }

    // Idempotent, and the report names everything with its budget.
    bus.ensure_contract().await.unwrap();
    let report = bus.fill_report().await.unwrap();
    assert_eq!(report.len(), streams::ALL.len() + buckets::ALL.len() + OBJECT_STORES.len());
    assert!(report.iter().all(|f| f.max_bytes >= limits::MIN_MAX_BYTES), "{report:?}");
    let text = fill::exposition();
    assert!(
        text.contains("switchboard_stream_max_bytes{stream=\"sb_attachments\",kind=\"object_store\"} 4194304"),
        "{text}"
    );
    assert!(text.contains("switchboard_stream_bytes{stream=\"SB_INBOUND\",kind=\"stream\"} 0"), "{text}");
}

#[tokio::test]
async fn a_full_work_stream_refuses_new_messages_and_keeps_what_it_holds_while_the_audit_log_drops_its_oldest() {
    let server = NatsServer::start();
    let mut cfg = BusConfig::for_url(server.url());
    cfg.stream_max_bytes.insert("sb_inbound".into(), 2 * MIB);
    cfg.stream_max_bytes.insert("sb_events".into(), MIB);
    let bus = connect(&cfg).await;
    bus.ensure_contract().await.unwrap();
    let chunk = bytes::Bytes::from(vec![b'x'; 200 * 1024]);

    let mut stored = 0;
    let refused = loop {
        let ack = bus.jetstream().publish("sb.in.test", chunk.clone()).await.unwrap();
        match ack.await {
            Ok(_) => stored += 1,
            Err(e) => break e.to_string(),
        }
        assert!(stored < 20, "a 2 MiB stream took {stored} messages of 200 KiB");
    };
    assert!(stored >= 8, "stored {stored} before the budget");
    println!("SB_INBOUND stored {stored} x 200 KiB, then refused: {refused}");
    let mut inbound = bus.jetstream().get_stream(streams::INBOUND).await.unwrap();
    let info = inbound.info().await.unwrap();
    assert_eq!(info.state.first_sequence, 1, "nothing stored was deleted to make room");
    assert_eq!(info.state.messages, stored);
    assert!(info.state.bytes <= 2 * MIB);

    for _ in 0..12 {
        bus.jetstream().publish("sb.events.test", chunk.clone()).await.unwrap().await.expect("the audit log takes it");
    }
    let events = bus.jetstream().get_stream(streams::EVENTS).await.unwrap().info().await.unwrap().clone();
    assert!(events.state.first_sequence > 1, "the oldest events made room");
    assert!(events.state.bytes <= MIB);

    let fills = bus.fill_report().await.unwrap();
    let inbound_fill = fills.iter().find(|f| f.name == streams::INBOUND).unwrap();
    assert!(inbound_fill.nearly_full(), "{inbound_fill:?}");
    assert!(!fills.iter().find(|f| f.name == buckets::AGENTS).unwrap().nearly_full());

    // Lowering a work stream's budget under what it holds would delete unhandled messages.
    cfg.stream_max_bytes.insert("sb_inbound".into(), MIB);
    let lowered = connect(&cfg).await;
    let err = lowered.ensure_contract().await.unwrap_err();
    assert!(matches!(&err, BusError::Setup { what, .. } if what == "stream SB_INBOUND"), "{err}");
    assert!(err.to_string().contains("nats.stream_max_bytes.sb_inbound"), "{err}");
    assert_eq!(inbound.info().await.unwrap().state.messages, stored, "the refused setup changed nothing");
}
