//! The NATS permissions `docs/adapters.md` gives a third-party adapter, on a real server: the
//! `authorization` block is taken from the document as it stands, so the guide and this test
//! cannot drift apart. The adapter's user stores envelopes on its own subject, consumes and acks
//! its own outbound messages, dead-letters, records events and keeps its own keys; it cannot
//! publish on another channel's subject, consume another channel's messages or write another
//! channel's keys.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use switchboard_bus::async_nats::{self, jetstream};
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::{buckets, streams, subjects};
use switchboard_testkit::NatsServer;

const ADMIN_PASSWORD: &str = "admin-secret-for-the-test";
const PIGEON_PASSWORD: &str = "pigeon-secret-for-the-test";

/// The fenced `authorization` block under "NATS permissions" in `docs/adapters.md`.
fn documented_block() -> String {
    let guide = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/adapters.md"))
        .expect("docs/adapters.md");
    let section = guide.split("### NATS permissions for a third-party adapter").nth(1).expect("the section");
    let block = section.split("```").nth(1).expect("a fenced block in the section");
    assert!(block.trim_start().starts_with("authorization {"), "the block is an authorization block:\n{block}");
    block.to_string()
}

/// A JetStream server whose users are an admin (everything) and the documented adapter user.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let block = documented_block().replacen(
            "users = [",
            &format!("users = [\n    {{ user: admin, password: \"{ADMIN_PASSWORD}\" }}"),
            1,
        );
        let conf = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\", max_file_store: 1TB }}\n{block}",
            dir.path().join("js").display()
        );
        let conf_path = dir.path().join("nats.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let check = Command::new(NatsServer::binary())
            .arg("-t")
            .arg("-c")
            .arg(&conf_path)
            .env("PIGEON_PASSWORD", PIGEON_PASSWORD)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "nats-server refuses the documented block: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(NatsServer::binary())
            .arg("-c")
            .arg(&conf_path)
            .env("PIGEON_PASSWORD", PIGEON_PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port, _dir: dir }
    }

    /// A URL carrying the user and password, as an operator writes `nats.url`.
    fn url(&self, user: &str, password: &str) -> String {
        format!("nats://{user}:{password}@127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a JetStream publish as this user is stored.
async fn stored(js: &jetstream::Context, subject: &str, id: &str) -> bool {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    match js.publish_with_headers(subject.to_string(), headers, "{}".into()).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn the_documented_adapter_user_reaches_its_own_channel_and_nothing_else() {
    let server = Server::start();
    let admin =
        Bus::connect_once(&BusConfig::for_url(server.url("admin", ADMIN_PASSWORD))).await.expect("admin connects");
    tokio::time::timeout(Duration::from_secs(60), admin.ensure_contract())
        .await
        .expect("contract set up in time")
        .expect("contract set up by the admin");

    let client = async_nats::ConnectOptions::with_user_and_password("pigeon".into(), PIGEON_PASSWORD.into())
        .connect(format!("127.0.0.1:{}", server.port))
        .await
        .expect("pigeon connects");
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));

    // Inbound: its own subject only.
    assert!(stored(&js, &subjects::inbound("pigeon"), "pigeon:1").await, "sb.in.pigeon is allowed");
    assert!(!stored(&js, &subjects::inbound("webhook"), "webhook:1").await, "sb.in.webhook is refused");
    let inbound = admin.jetstream().get_stream(streams::INBOUND).await.unwrap().info().await.unwrap().state.messages;
    assert_eq!(inbound, 1, "only the pigeon envelope was stored");

    // Dead letters and events.
    assert!(stored(&js, &subjects::dlq("pigeon"), "dlq:pigeon:1").await, "its dead letters");
    assert!(stored(&js, &subjects::event("delivery_failed"), "ev-1").await, "delivery_failed events");
    assert!(!stored(&js, &subjects::dlq("webhook"), "dlq:webhook:1").await, "another component's dead letters");

    // Outbound: its durable consumer on its subject, fetch and ack.
    admin.publish_raw(&subjects::outbound("webhook"), Default::default(), "not yours".into(), "o-w").await.unwrap();
    admin.publish_raw(&subjects::outbound("pigeon"), Default::default(), "yours".into(), "o-p").await.unwrap();
    let stream = js.get_stream(streams::OUTBOUND).await.expect("stream info of SB_OUTBOUND");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("out-pigeon".into()),
            filter_subject: subjects::outbound("pigeon"),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("its own durable consumer");
    let mut messages = consumer.fetch().max_messages(10).expires(Duration::from_secs(2)).messages().await.unwrap();
    let message = messages.next().await.expect("a message").expect("readable");
    assert_eq!(message.payload.as_ref(), b"yours");
    message.double_ack().await.expect("its ack is accepted");
    let foreign = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("out-webhook".into()),
            filter_subject: subjects::outbound("webhook"),
            ..Default::default()
        })
        .await;
    assert!(foreign.is_err(), "a consumer of another channel's messages is refused");

    // Its own keys in sb_channels, and not another channel's.
    let kv = js.get_key_value(buckets::CHANNELS).await.expect("bucket info of sb_channels");
    kv.put("pigeon.cursor", "42".into()).await.expect("its own key");
    assert_eq!(kv.get("pigeon.cursor").await.expect("read back").as_deref(), Some(&b"42"[..]));
    assert!(kv.put("webhook.cursor", "1".into()).await.is_err(), "another channel's key is refused");
    assert!(kv.get("email.cursor.inbox").await.is_err(), "another channel's key cannot be read");
}
