//! Dead-letter replay for every kind of dead letter, against a real NATS, a real daemon (in this
//! process) and the `switchboard` binary: a replayed item goes back to the step that failed.
//! A raw mail goes through the email parser (dovecot holds the mailbox) and a raw Telegram update
//! through the update handler (the fake Bot API speaks the real wire format), each becoming an
//! envelope; an outbound message is delivered by its channel, an agent delivery reaches the
//! helpdesk, an envelope the router gave up is routed; an event is not replayed (it would count
//! twice). `dlq list` says what each dead letter is and where a replay puts it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use serde_json::{Value, json};
use switchboard::Config;
use switchboard::cli::dlq;
use switchboard_bus::Bus;
use switchboard_core::contract::{headers, streams, subjects};
use switchboard_core::{Contract, Envelope};

use switchboard_testkit::{FakeBotApi, MailServer, NatsServer};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "123456:test-token-for-the-fake-bot-api";

/// A flood limit that refuses a customer's second message within a minute.
const STRICT: &str = "per_minute = 1\nburst = 1";
/// The limit an operator raises it to before replaying.
const RAISED: &str = "per_minute = 600\nburst = 50";

async fn wait_until(what: &str, timeout: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A daemon running in this process.
struct Daemon {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    async fn start(config: &Path) -> Daemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(switchboard::daemon::run(Config::load(config).unwrap(), listener, stop.clone()));
        let http = reqwest::Client::new();
        wait_until(
            "the daemon to be ready",
            WAIT,
            async || matches!(http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status().as_u16() == 200),
        )
        .await;
        Daemon { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task).await.unwrap().unwrap().unwrap();
    }
}

/// Writes a configuration: NATS, one team with one agent, and the given channel sections.
fn config(dir: &Path, name: &str, nats: &str, channels: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let toml = format!(
        r#"
[nats]
url = "{nats}"
[http]
listen = "127.0.0.1:0"
[routing]
default_team = "support"
[routing.teams.support]
offer_timeout_secs = 600
[[routing.agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
default_capacity = 50
max_total = 50
status = "online"
{channels}
"#
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// Runs the binary; returns its exit code and what it printed as JSON.
async fn switchboard_json(args: &[&str]) -> (i32, Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or_else(|| panic!("killed: {}", String::from_utf8_lossy(&out.stderr)));
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("{args:?} printed no JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    (code, v)
}

/// Every message stored on `subject` in `stream`: headers and payload, in order.
async fn stored(bus: &Bus, stream: &str, subject: &str) -> Vec<(HeaderMap, Vec<u8>)> {
    let stream = bus.jetstream().get_stream(stream).await.unwrap();
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.into(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = consumer.cached_info().num_pending as usize;
    let mut out = Vec::new();
    if pending == 0 {
        return out;
    }
    let mut messages = consumer.messages().await.unwrap();
    while out.len() < pending {
        let m = tokio::time::timeout(WAIT, messages.next()).await.unwrap().unwrap().unwrap();
        out.push((m.headers.clone().unwrap_or_default(), m.payload.to_vec()));
    }
    out
}

/// The messages on `sb.in.<channel>`, each read as an envelope (an error for what is not one).
async fn inbound(bus: &Bus, channel: &str) -> Vec<Result<Envelope, String>> {
    let all = stored(bus, streams::INBOUND, &subjects::inbound(channel)).await;
    all.into_iter().map(|(_, p)| Envelope::from_json(&p).map_err(|e| e.to_string())).collect()
}

/// Waits until the router has settled everything stored on `sb.in.>`.
async fn router_idle(bus: &Bus) {
    wait_until("the router to settle its input", WAIT, async || {
        let Ok(mut c) =
            bus.jetstream().get_consumer_from_stream::<pull::Config, _, _>("router-default", streams::INBOUND).await
        else {
            return false;
        };
        matches!(c.info().await, Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0)
    })
    .await;
}

async fn dead_letters(bus: &Bus, component: Option<&str>) -> dlq::Listing {
    dlq::list(bus, component, None, false).await.unwrap()
}

/// Lists with the binary and checks the one dead letter of `component`: its kind and where a
/// replay puts it.
async fn check_listing(cfg: &str, component: &str, kind: &str, replay_to: &str) {
    let (code, listing) = switchboard_json(&["dlq", "list", "--config", cfg, "--format", "json"]).await;
    assert_eq!(code, 0, "{listing:#}");
    let letters = listing["dead_letters"].as_array().unwrap();
    let d = letters.iter().find(|d| d["component"] == component).unwrap_or_else(|| panic!("{listing:#}"));
    assert_eq!(d["kind"], kind, "{d:#}");
    assert_eq!(d["replay_to"], replay_to, "{d:#}");
}

fn mail(from: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.test\r\nSubject: Order {id}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn email_section(server: &MailServer, dir: &Path, limit: &str) -> String {
    std::fs::write(dir.join("imap.pass"), server.password("support")).unwrap();
    std::fs::write(dir.join("token.key"), "a-test-key-for-reply-tokens").unwrap();
    format!(
        r#"
[channels.email]
enabled = true
address = "{address}"
token_secret_file = "{token}"
[channels.email.mailboxes.support]
host = "{host}"
port = {imap}
security = "none"
username = "support"
password_file = "{pass}"
poll_secs = 1
[channels.email.smtp]
host = "{host}"
port = {smtp}
security = "none"
[channels.email.runtime.rate_limit]
{limit}
"#,
        address = server.address("support"),
        token = dir.join("token.key").display(),
        host = server.host(),
        imap = server.imap_port(),
        pass = dir.join("imap.pass").display(),
        smtp = server.smtp_port(),
    )
}

/// A customer's second mail within the minute is refused by the flood limit and dead-lettered
/// whole; the operator raises the limit and replays it: the mail goes through the parser again
/// and becomes an envelope, the router routes it, and nothing is dead-lettered again. (Before:
/// the raw mail was put on `sb.in.email` as if it were an envelope, and the router refused it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_mail_dead_letter_is_replayed_through_the_email_parser() {
    let nats = NatsServer::start();
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let strict = config(dir.path(), "strict", &nats.url(), &email_section(&server, dir.path(), STRICT));
    let raised = config(dir.path(), "raised", &nats.url(), &email_section(&server, dir.path(), RAISED));
    let support = server.address("support");
    server.deliver_raw(&support, &mail("Ada <ada@customer.test>", "q1", "Where is order q1?"));
    server.deliver_raw(&support, &mail("Ada <ada@customer.test>", "q2", "And where is order q2?"));

    let daemon = Daemon::start(&strict).await;
    let bus = Bus::connect_once(&Config::load(&strict).unwrap().nats).await.unwrap();
    wait_until("the second mail to be dead-lettered", WAIT, async || {
        dead_letters(&bus, Some("email-in")).await.total == 1
    })
    .await;
    let cfg = raised.to_str().unwrap();
    check_listing(cfg, "email-in", "raw-mail", "sb.replay.email-in").await;
    let listed = dead_letters(&bus, None).await;
    assert!(listed.dead_letters[0].reason.contains("rate"), "refused by the flood limit: {listed:?}");
    assert_eq!(inbound(&bus, "email").await.len(), 1, "the first mail was stored");
    daemon.stop().await;

    // The operator raises the limit and replays the dead letter.
    let daemon = Daemon::start(&raised).await;
    let (code, replayed) =
        switchboard_json(&["dlq", "replay", "--config", cfg, "--format", "json", "--all", "--component", "email-in"])
            .await;
    assert_eq!(code, 0, "{replayed:#}");
    let r = &replayed["results"][0];
    assert_eq!(r["outcome"], "replayed", "{r:#}");
    assert_eq!(r["kind"], "raw-mail", "{r:#}");
    assert_eq!(r["subject"], "sb.replay.email-in", "{r:#}");
    assert_eq!(r["replayed_to"]["stream"], streams::REPLAY, "{r:#}");

    wait_until("the replayed mail to be stored", WAIT, async || inbound(&bus, "email").await.len() >= 2).await;
    router_idle(&bus).await;
    let got = inbound(&bus, "email").await;
    assert_eq!(got.len(), 2, "one envelope more: {got:?}");
    let replayed = got[1].as_ref().unwrap_or_else(|e| panic!("the replay is not an envelope: {e}"));
    assert_eq!(replayed.text, "And where is order q2?");
    assert_eq!(replayed.customer.email.as_deref(), Some("ada@customer.test"));
    assert_eq!(replayed.subject.as_deref(), Some("Order q2"));
    let raw_ref = replayed.raw_ref.as_deref().unwrap_or_default();
    assert!(
        raw_ref.starts_with("imap:support:") && raw_ref.contains(";replay:"),
        "where it is, and which replay: {raw_ref}"
    );
    let left = dead_letters(&bus, None).await;
    assert_eq!(left.total, 0, "nothing dead-lettered again: {left:?}");
    daemon.stop().await;
}

fn telegram_section(api: &FakeBotApi, dir: &Path, limit: &str) -> String {
    std::fs::write(dir.join("bot.token"), TOKEN).unwrap();
    format!(
        r#"
[channels.telegram]
enabled = true
token_file = "{token}"
api_url = "{api}"
poll_timeout_secs = 1
[channels.telegram.runtime.rate_limit]
{limit}
"#,
        token = dir.join("bot.token").display(),
        api = api.url(),
    )
}

/// A customer's second Telegram message within the minute is refused by the flood limit and its
/// raw update dead-lettered; after the limit is raised, the replay goes through the update
/// handler and becomes an envelope, routed without a new dead letter. (Before: the dead letter
/// held the refused envelope, which a replay put back as it was, past the handler.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_telegram_update_dead_letter_is_replayed_through_the_update_handler() {
    let nats = NatsServer::start();
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let strict = config(dir.path(), "strict", &nats.url(), &telegram_section(&api, dir.path(), STRICT));
    let raised = config(dir.path(), "raised", &nats.url(), &telegram_section(&api, dir.path(), RAISED));
    api.push_update(api.text_message(501, 501, "Where is my order?"));
    let second = api.push_update(api.text_message(501, 501, "Hello? Anyone?"));

    let daemon = Daemon::start(&strict).await;
    let bus = Bus::connect_once(&Config::load(&strict).unwrap().nats).await.unwrap();
    wait_until("the second message to be dead-lettered", WAIT, async || {
        dead_letters(&bus, Some("telegram-in")).await.total == 1
    })
    .await;
    let cfg = raised.to_str().unwrap();
    check_listing(cfg, "telegram-in", "telegram-update", "sb.replay.telegram-in").await;
    let dl = &stored(&bus, streams::DLQ, &subjects::dlq("telegram-in")).await[0];
    let update: Value = serde_json::from_slice(&dl.1).unwrap();
    assert_eq!(update["update_id"], second, "the dead letter holds the raw update");
    assert_eq!(inbound(&bus, "telegram").await.len(), 1, "the first message was stored");
    daemon.stop().await;

    let daemon = Daemon::start(&raised).await;
    let (code, replayed) = switchboard_json(&[
        "dlq",
        "replay",
        "--config",
        cfg,
        "--format",
        "json",
        "--all",
        "--component",
        "telegram-in",
    ])
    .await;
    assert_eq!(code, 0, "{replayed:#}");
    let r = &replayed["results"][0];
    assert_eq!((r["outcome"].as_str(), r["kind"].as_str()), (Some("replayed"), Some("telegram-update")), "{r:#}");
    assert_eq!(r["subject"], "sb.replay.telegram-in", "{r:#}");

    wait_until("the replayed update to be stored", WAIT, async || inbound(&bus, "telegram").await.len() >= 2).await;
    router_idle(&bus).await;
    let got = inbound(&bus, "telegram").await;
    assert_eq!(got.len(), 2, "{got:?}");
    let replayed = got[1].as_ref().unwrap_or_else(|e| panic!("not an envelope: {e}"));
    assert_eq!((replayed.text.as_str(), replayed.thread_key.as_str()), ("Hello? Anyone?", "501"));
    assert_eq!(replayed.raw_ref.as_deref(), Some(format!("update:{second}").as_str()));
    let left = dead_letters(&bus, None).await;
    assert_eq!(left.total, 0, "nothing dead-lettered again: {left:?}");
    daemon.stop().await;
}

/// An HTTP endpoint answering every POST with the status in `answer`, keeping the bodies it
/// accepted.
struct Endpoint {
    url: String,
    answer: Arc<AtomicU16>,
    accepted: Arc<Mutex<Vec<Value>>>,
}

async fn endpoint(status: u16) -> Endpoint {
    let answer = Arc::new(AtomicU16::new(status));
    let accepted: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (code, sink) = (answer.clone(), accepted.clone());
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: String| {
            let (code, sink) = (code.clone(), sink.clone());
            async move {
                let status = code.load(Ordering::SeqCst);
                if status < 300 {
                    sink.lock().unwrap().push(serde_json::from_str(&body).unwrap_or_default());
                }
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Endpoint { url, answer, accepted }
}

const SECRET: &str = "whsec_c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXQtMTIz";

/// Dead letters of consumers go back to the consumer that gave them up: an agent delivery the
/// helpdesk refused reaches it once it accepts; an outbound message the source's receiver
/// refused is delivered; an envelope the router gave up (stored before `Sb-Dlq-Kind` existed:
/// its kind comes from `Sb-Schema`) is routed; an event the web chat's reader gave up becomes its
/// transcript entry, without being stored in the audit log a second time (before: it was, and
/// metrics counted it twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_dead_letters_replay_to_the_consumer_that_gave_them_up() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (desk, receiver) = (endpoint(400).await, endpoint(400).await);
    let secret = dir.path().join("shared.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let session_key = dir.path().join("session.key");
    std::fs::write(&session_key, "a-web-chat-session-key-of-forty-two-chars!").unwrap();
    let webhook = format!(
        r#"
[channels.webhook.sources.shop]
secret_file = "{secret}"
outbound_url = "{receiver}"
[channels.webhook.agents.alice]
url = "{desk}"
secret_file = "{secret}"
[channels.webchat]
enabled = true
session_secret_file = "{session_key}"
allowed_origins = ["http://127.0.0.1"]
team = "support"
"#,
        secret = secret.display(),
        session_key = session_key.display(),
        receiver = receiver.url,
        desk = desk.url,
    );
    let path = config(dir.path(), "webhook", &nats.url(), &webhook);
    let cfg = path.to_str().unwrap();
    let daemon = Daemon::start(&path).await;
    let bus = Bus::connect_once(&Config::load(&path).unwrap().nats).await.unwrap();

    // The router gave up an envelope (as the bus stored dead letters before `Sb-Dlq-Kind`).
    let envelope = switchboard_core::Envelope {
        id: uuid::Uuid::now_v7(),
        channel: "webhook".into(),
        provider_message_id: "shop:m-router".into(),
        received_at: chrono::Utc::now(),
        customer: switchboard_core::Customer {
            id: "cust-router".into(),
            name: None,
            email: None,
            phone: None,
            language: None,
        },
        thread_key: "shop:cust-router".into(),
        text: "given up once by the router".into(),
        subject: None,
        html: None,
        attachments: Vec::new(),
        metadata: Default::default(),
        raw_ref: None,
    };
    let mut h = HeaderMap::new();
    h.insert(headers::SCHEMA, Envelope::SCHEMA);
    h.insert(headers::DLQ_ATTEMPTS, "5");
    h.insert(headers::DLQ_STREAM_SEQ, "1");
    bus.publish_dead_letter(
        "router-default",
        &subjects::inbound("webhook"),
        "exceeded 5 deliveries",
        h,
        serde_json::to_vec(&envelope).unwrap().into(),
        "dlq:router-default:SB_INBOUND:1",
    )
    .await
    .unwrap();
    // Old format: no kind header (written only by this version's bus).
    let dlq_stream = bus.jetstream().get_stream(streams::DLQ).await.unwrap();
    let router_dl = dlq_stream.get_raw_message(1).await.unwrap();
    assert_eq!(router_dl.headers.get(headers::DLQ_KIND).map(|v| v.as_str()), Some("envelope/1"));
    let mut old = HeaderMap::new();
    for (name, values) in router_dl.headers.iter() {
        if !AsRef::<str>::as_ref(name).eq_ignore_ascii_case(headers::DLQ_KIND) {
            values.iter().for_each(|v| old.append(name.clone(), v.clone()));
        }
    }
    dlq_stream.delete_message(1).await.unwrap();
    bus.publish_raw(&subjects::dlq("router-default"), old, router_dl.payload.clone(), "old-format").await.unwrap();

    // The web chat's event reader gave up an assignment on a web-chat conversation.
    let (conversation, session) = (uuid::Uuid::now_v7(), "0123456789abcdef0123456789abcdef");
    let record = json!({ "id": conversation, "channel": "webchat", "thread_key": session, "agent": "alice" });
    let kv = bus.jetstream().get_key_value(switchboard_core::contract::buckets::CONVERSATIONS).await.unwrap();
    kv.put(conversation.to_string(), record.to_string().into()).await.unwrap();
    let event = json!({
        "id": uuid::Uuid::now_v7(), "at": chrono::Utc::now(), "kind": "assigned",
        "conversation_id": conversation, "agent_id": "alice", "channel": "webchat",
        "data": { "agent_name": "Alice" },
    });
    let mut h = HeaderMap::new();
    h.insert(headers::SCHEMA, "event/1");
    bus.publish_dead_letter(
        "webchat-events",
        &subjects::event("assigned"),
        "conversation unreadable",
        h,
        event.to_string().into(),
        "dlq:webchat-events:SB_EVENTS:1",
    )
    .await
    .unwrap();

    // A customer's message is stored: the helpdesk refuses the offer (400), which is dead-lettered at once.
    let posted = post_customer(&bus, "m-1", "cust-1").await;
    assert!(posted, "the customer's envelope was stored");
    wait_until("the offer to be dead-lettered", WAIT, async || {
        dead_letters(&bus, Some("agent-webhook")).await.total == 1
    })
    .await;

    // The router sends the customer a message; the source's receiver refuses it (400).
    let outbound = json!({
        "id": uuid::Uuid::now_v7(), "conversation_id": uuid::Uuid::now_v7(), "channel": "webhook",
        "to": { "customer_id": "cust-1", "thread_key": "shop:cust-1" },
        "text": "We are on it", "kind": "agent_reply", "agent_id": "alice", "created_at": chrono::Utc::now(),
    });
    let mut h = HeaderMap::new();
    h.insert(headers::SCHEMA, "outbound/1");
    let outbound_id = outbound["id"].as_str().unwrap().to_string();
    bus.publish_raw(&subjects::outbound("webhook"), h, outbound.to_string().into(), &outbound_id).await.unwrap();
    wait_until("the outbound message to be dead-lettered", WAIT, async || {
        dead_letters(&bus, Some("webhook")).await.total == 1
    })
    .await;

    check_listing(cfg, "agent-webhook", "agent-delivery/1", "sb.agent.out.webhook.alice").await;
    check_listing(cfg, "webhook", "outbound/1", "sb.out.webhook").await;
    check_listing(cfg, "router-default", "envelope/1", "sb.in.webhook").await;
    check_listing(cfg, "webchat-events", "event/1", "sb.replay.webchat-events").await;

    // Everyone works again: replay all.
    desk.answer.store(204, Ordering::SeqCst);
    receiver.answer.store(204, Ordering::SeqCst);
    let (code, replayed) = switchboard_json(&["dlq", "replay", "--config", cfg, "--format", "json", "--all"]).await;
    assert_eq!(code, 0, "{replayed:#}");
    let results = replayed["results"].as_array().unwrap();
    let by = |c: &str| results.iter().find(|r| r["component"] == c).unwrap_or_else(|| panic!("{replayed:#}"));
    for (component, subject) in [
        ("router-default", "sb.in.webhook"),
        ("agent-webhook", "sb.agent.out.webhook.alice"),
        ("webhook", "sb.out.webhook"),
        ("webchat-events", "sb.replay.webchat-events"),
    ] {
        assert_eq!(
            (by(component)["outcome"].as_str(), by(component)["subject"].as_str()),
            (Some("replayed"), Some(subject))
        );
    }

    let offered = |customer: &'static str| {
        let accepted = desk.accepted.clone();
        move || accepted.lock().unwrap().iter().any(|d| d["type"] == "offer" && d.to_string().contains(customer))
    };
    let (cust1, router_cust) = (offered("cust-1"), offered("cust-router"));
    wait_until("the replayed offer to reach the helpdesk", WAIT, async || cust1()).await;
    wait_until("the replayed envelope to be routed and offered", WAIT, async || router_cust()).await;
    wait_until("the replayed outbound message to be delivered", WAIT, async || {
        receiver.accepted.lock().unwrap().iter().any(|d| d["text"] == "We are on it")
    })
    .await;
    let event_id = event["id"].as_str().unwrap();
    wait_until("the replayed assignment in the web-chat transcript", WAIT, async || {
        let transcript = stored(&bus, streams::WEBCHAT, &subjects::webchat_session(session)).await;
        transcript.iter().any(|(_, p)| String::from_utf8_lossy(p).contains(event_id))
    })
    .await;
    for subject in [subjects::event("assigned"), subjects::EVENT_BATCH.to_string()] {
        let events = stored(&bus, streams::EVENTS, &subject).await;
        assert!(
            !events.iter().any(|(_, p)| String::from_utf8_lossy(p).contains(event_id)),
            "the event was not stored again, alone or in a batch"
        );
    }
    let left = dead_letters(&bus, None).await;
    assert_eq!(left.total, 0, "nothing dead-lettered again: {left:?}");
    daemon.stop().await;
}

/// Stores a webhook customer's message on `sb.in.webhook` as the webhook channel would.
async fn post_customer(bus: &Bus, id: &str, customer: &str) -> bool {
    let envelope = Envelope {
        id: uuid::Uuid::now_v7(),
        channel: "webhook".into(),
        provider_message_id: format!("shop:{id}"),
        received_at: chrono::Utc::now(),
        customer: switchboard_core::Customer {
            id: customer.into(),
            name: None,
            email: None,
            phone: None,
            language: None,
        },
        thread_key: format!("shop:{customer}"),
        text: "hello".into(),
        subject: None,
        html: None,
        attachments: Vec::new(),
        metadata: Default::default(),
        raw_ref: None,
    };
    let msg_id = switchboard_core::contract::inbound_msg_id("webhook", &envelope.provider_message_id);
    bus.publish(&subjects::inbound("webhook"), &envelope, &msg_id).await.is_ok()
}
