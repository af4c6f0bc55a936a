//! The offline backup of the runbook (docs/operations.md), proved with the real nats-server: fill every kind
//! of state Switchboard keeps (streams, the router journal, KV buckets, the object store, a
//! durable consumer's progress), stop the server the way an operator does, copy its store
//! directory with `cp -a`, start a new server on the copy and read everything back.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use futures::StreamExt;
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::{ROUTER_SNAPSHOTS_STORE, buckets, streams, subjects};
use switchboard_testkit::NatsServer;
use tokio::io::AsyncReadExt;

async fn connect(server: &NatsServer) -> Bus {
    tokio::time::timeout(Duration::from_secs(20), Bus::connect_once(&BusConfig::for_url(server.url())))
        .await
        .expect("connect within 20 s")
        .expect("connect")
}

/// Every message of every contract stream: stream → sequence → (subject, payload).
type Contents = BTreeMap<String, BTreeMap<u64, (String, Vec<u8>)>>;

async fn stream_contents(bus: &Bus) -> Contents {
    let mut all = Contents::new();
    for (name, _) in streams::ALL {
        let mut stream = bus.jetstream().get_stream(*name).await.expect("stream exists");
        let state = stream.info().await.expect("stream info").state.clone();
        let mut messages = BTreeMap::new();
        if state.messages > 0 {
            for seq in state.first_sequence..=state.last_sequence {
                let m = stream.get_raw_message(seq).await.expect("read back by sequence");
                messages.insert(seq, (m.subject.to_string(), m.payload.to_vec()));
            }
        }
        all.insert(name.to_string(), messages);
    }
    all
}

async fn kv_contents(bus: &Bus) -> BTreeMap<(String, String), Vec<u8>> {
    let mut all = BTreeMap::new();
    for bucket in buckets::ALL {
        let kv = bus.jetstream().get_key_value(*bucket).await.expect("bucket exists");
        let mut keys = kv.keys().await.expect("list keys");
        while let Some(key) = keys.next().await {
            let key = key.expect("key");
            let value = kv.get(&key).await.expect("get").expect("value present");
            all.insert((bucket.to_string(), key), value.to_vec());
        }
    }
    all
}

async fn snapshot(bus: &Bus, name: &str) -> Vec<u8> {
    let store = bus.jetstream().get_object_store(ROUTER_SNAPSHOTS_STORE).await.expect("object store");
    let mut object = store.get(name).await.expect("snapshot object");
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.expect("read the object");
    bytes
}

/// (delivered, ack floor) of the outbound consumer: its progress must survive with the data.
async fn consumer_progress(bus: &Bus) -> (u64, u64) {
    let stream = bus.jetstream().get_stream(streams::OUTBOUND).await.unwrap();
    let mut consumer: PullConsumer = stream.get_consumer("out-backup").await.expect("the durable consumer");
    let info = consumer.info().await.unwrap();
    (info.delivered.stream_sequence, info.ack_floor.stream_sequence)
}

fn copy_store(from: &Path, to: &Path) {
    // What the runbook says: `cp -a` of the store directory, server stopped.
    let status = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().expect("run cp");
    assert!(status.success(), "cp -a {} {} failed", from.display(), to.display());
}

#[tokio::test]
async fn a_copy_of_the_stopped_servers_store_restores_streams_kv_snapshots_and_consumers() {
    let mut original = NatsServer::start();
    let bus = connect(&original).await;
    bus.ensure_contract().await.unwrap();

    // Streams: customer messages in and out, events, agent commands, dead letters.
    for i in 0..50u32 {
        let payload = format!("{{\"n\":{i}}}");
        for subject in [subjects::inbound("webhook"), subjects::outbound("email"), subjects::event("opened")] {
            bus.publish_raw(&subject, HeaderMap::new(), payload.clone().into(), &format!("{subject}:{i}"))
                .await
                .unwrap();
        }
    }
    bus.publish_raw(subjects::AGENT_IN, HeaderMap::new(), "accept".into(), "cmd-1").await.unwrap();
    bus.publish_raw("sb.dlq.webhook", HeaderMap::new(), "dead".into(), "dlq-1").await.unwrap();
    // The router journal (fenced appends).
    let mut journal = bus.open_journal(&subjects::router_journal("default")).await.unwrap();
    for i in 0..20u32 {
        journal.append(format!("entry {i}").into(), &format!("j:{i}")).await.unwrap();
    }
    // KV: conversation records, the lease, a channel cursor, an agent endpoint.
    for (bucket, key, value) in [
        (buckets::CONVERSATIONS, "c-1", "{\"state\":\"open\"}"),
        (buckets::CONVERSATIONS, "c-2", "{\"state\":\"resolved\"}"),
        (buckets::ROUTER, "lease.router.default", "holder-a"),
        (buckets::CHANNELS, "telegram.offset", "4711"),
        (buckets::AGENTS, "webhook.ada", "{\"url\":\"https://desk.example\"}"),
    ] {
        let kv = bus.jetstream().get_key_value(bucket).await.unwrap();
        kv.put(key, value.as_bytes().to_vec().into()).await.unwrap();
    }
    // A second revision: history is part of what is restored.
    let conversations = bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    conversations.put("c-1", "{\"state\":\"assigned\"}".into()).await.unwrap();
    // The object store: a router snapshot bigger than one chunk.
    let snapshot_bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let store = bus.jetstream().get_object_store(ROUTER_SNAPSHOTS_STORE).await.unwrap();
    store.put("default", &mut snapshot_bytes.as_slice()).await.unwrap();
    // A durable consumer that acked part of the outbound stream.
    let stream = bus.jetstream().get_stream(streams::OUTBOUND).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("out-backup".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(20).messages().await.unwrap();
    while let Some(message) = batch.next().await {
        message.unwrap().double_ack().await.unwrap();
    }

    let streams_before = stream_contents(&bus).await;
    let kv_before = kv_contents(&bus).await;
    let progress_before = consumer_progress(&bus).await;
    let history_before = conversations.history("c-1").await.unwrap().count().await;
    assert_eq!(streams_before[streams::INBOUND].len(), 50);
    assert_eq!(streams_before[streams::ROUTER].len(), 20);
    assert_eq!(kv_before.len(), 5);
    assert_eq!(progress_before, (20, 20), "20 delivered and acked before the backup");
    assert_eq!(history_before, 2);
    drop(bus);

    // Offline backup: stop the server (SIGTERM flushes the store), copy the directory.
    original.terminate();
    let backup = tempfile::Builder::new().prefix("sb-nats-backup-").tempdir().unwrap();
    copy_store(original.store_dir(), backup.path());
    // The original is gone for good: only the copy is left to restore from.
    drop(original);

    let restored = NatsServer::start_with_store(backup);
    let bus = connect(&restored).await;
    assert_eq!(stream_contents(&bus).await, streams_before, "every stream message, same sequences");
    assert_eq!(kv_contents(&bus).await, kv_before, "every key's latest value");
    let conversations = bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    assert_eq!(conversations.history("c-1").await.unwrap().count().await, history_before, "KV history");
    assert_eq!(snapshot(&bus, "default").await, snapshot_bytes, "the router snapshot");
    assert_eq!(consumer_progress(&bus).await, progress_before, "the consumer resumes where it was");
    // The journal's fencing continues from the restored end: a writer appends after it.
    let mut journal = bus.open_journal(&subjects::router_journal("default")).await.unwrap();
    assert_eq!(journal.last_sequence(), *streams_before[streams::ROUTER].keys().last().unwrap());
    journal.append("after restore".into(), "j:restored").await.expect("the journal takes appends after a restore");
    // Setting up the contract again (every daemon start does) changes nothing that was restored.
    bus.ensure_contract().await.unwrap();
    assert_eq!(stream_contents(&bus).await[streams::INBOUND], streams_before[streams::INBOUND]);
}
