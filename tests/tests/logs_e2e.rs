//! No message body, secret or customer identifier in the logs at info level: a whole round trip
//! through the daemon (webhook in, routed, offered to an agent's helpdesk, the agent's reply
//! through the agent API out to the shop, a web-chat message, refused forgeries) with marked
//! texts and secrets, every log line captured in both formats, then searched for the marks.
//!
//! One test in this file: it installs the process's global `tracing` subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webchat::{WebchatConfig, sign_identity};
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_e2e::{ChatSocket, Receiver, SECRET, TestDaemon, signed_headers};
use tracing_subscriber::layer::SubscriberExt;

const WAIT: Duration = Duration::from_secs(20);
const BODY: &str = "PINEAPPLE-BODY";
const AGENT_TOKEN: &str = "AGENT-TOKEN-MARK-7f3a9c";
const METRICS_TOKEN: &str = "METRICS-TOKEN-MARK-51be0d";
const SESSION_SECRET: &str = "WEBCHAT-SESSION-SECRET-MARK-0123456789abcdef";
const IDENTITY_SECRET: &str = "WEBCHAT-IDENTITY-SECRET-MARK-0123";
const ORIGIN: &str = "http://shop.test";

/// A log sink shared by the subscriber and the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_logs_carry_no_bodies_secrets_or_customer_identifiers() {
    // The daemon's own formats (crates/switchboard/src/logging.rs), at info, whatever RUST_LOG says.
    let (human, json_lines) = (Captured::default(), Captured::default());
    let (h, j) = (human.clone(), json_lines.clone());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || h.clone()))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_writer(move || j.clone()),
        );
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test process");

    let alice_secret =
        format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode("ALICE-ENDPOINT-SECRET-MARK"));
    let helpdesk = Receiver::start("/alice").await;
    let shop = Receiver::start("/replies").await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        path
    };
    let (token_file, metrics_file) = (file("alice.token", AGENT_TOKEN), file("metrics.token", METRICS_TOKEN));
    let (alice_file, session_file) = (file("alice.secret", &alice_secret), file("session.key", SESSION_SECRET));
    let identity_file = file("identity.key", IDENTITY_SECRET);
    let helpdesk_url = helpdesk.url.clone();
    let daemon = TestDaemon::start(Some(shop.url.clone()), move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300 } },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online",
                          "capacity": { "webhook": 5, "webchat": 5 } } ]
        }))
        .unwrap();
        c.channels.webhook.agents.insert(
            "alice".into(),
            AgentEndpointConfig { url: helpdesk_url, secret_env: None, secret_file: Some(alice_file) },
        );
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(token_file), agent: Some("alice".into()), ..Default::default() },
        );
        c.metrics.token_file = Some(metrics_file);
        c.channels.webchat = WebchatConfig {
            enabled: true,
            session_secret_file: Some(session_file),
            identity_secret_file: Some(identity_file),
            allowed_origins: vec![ORIGIN.into()],
            prechat: false,
            ..Default::default()
        };
    })
    .await;

    // A customer writes through the shop's webhook; the conversation is offered to alice.
    let message = json!({
        "message_id": "MSG-ID-MARK-1",
        "customer": { "id": "CUSTOMER-ID-MARK-1", "name": "CUSTOMER-NAME-MARK", "email": "customer-email-mark@example.com" },
        "thread_id": "THREAD-MARK-1",
        "subject": format!("{BODY}-subject"),
        "text": format!("{BODY}-webhook-in: my card was charged twice"),
    })
    .to_string();
    let (status, answer) = daemon.post_signed("evt_log_1", &message).await;
    assert_eq!(status, 202, "{answer}");
    let offer = helpdesk.wait_for("the offer to alice", WAIT, |v| v["type"] == "offer").await;
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();

    // Alice accepts and replies through the agent API; the reply reaches the shop.
    for action in [json!({ "type": "accept" }), json!({ "type": "reply", "text": format!("{BODY}-agent-reply") })] {
        let command = json!({ "conversation_id": conversation, "action": action }).to_string();
        let (code, why) = daemon.api(AGENT_TOKEN, "POST", "/v1/agent/commands", Some(&command)).await;
        assert_eq!(code, 200, "{action}: {why}");
    }
    shop.wait_for("the reply at the shop", WAIT, |v| v["text"] == format!("{BODY}-agent-reply")).await;

    // A signed-in visitor writes in the web chat.
    let mut chat = ChatSocket::connect(&daemon.base, ORIGIN).await.expect("socket");
    let user = "CUSTOMER-ID-MARK-2";
    let identity = json!({ "user_id": user, "hash": sign_identity(IDENTITY_SECRET.as_bytes(), user),
                           "name": "CUSTOMER-NAME-MARK", "email": "customer-email-mark@example.com" });
    let welcome = chat.hello(json!({ "identity": identity, "page": "http://shop.test/PAGE-MARK" })).await;
    let session_token = welcome["token"].as_str().unwrap().to_string();
    chat.send(json!({ "type": "send", "client_id": "c1", "text": format!("{BODY}-webchat") })).await;
    assert_eq!(chat.outcome().await, "ack");
    helpdesk.wait_for("the web-chat offer", WAIT, |v| v["type"] == "offer" && v["channel"] == "webchat").await;

    // Forgeries and guesses: refused, and logged without what they carried.
    let forged =
        json!({ "message_id": "m-2", "customer": { "id": "CUSTOMER-ID-MARK-1" }, "text": format!("{BODY}-forged") })
            .to_string();
    let mut headers = signed_headers("evt_log_2", chrono::Utc::now().timestamp(), "{}");
    headers[2].1 = "v1,FORGED-SIGNATURE-MARK".into();
    let mut req = daemon.http.post(format!("{}/v1/webhooks/shop", daemon.base));
    for (name, value) in &headers {
        req = req.header(*name, value);
    }
    assert_eq!(req.body(forged).send().await.unwrap().status(), 401);
    let guess = "GUESSED-TOKEN-MARK";
    assert_eq!(daemon.api(guess, "GET", "/v1/queue", None).await.0, 401);
    let metrics = daemon.http.get(format!("{}/metrics", daemon.base)).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    drop(chat);
    daemon.stop().await;

    let (human, json_lines) = (human.text(), json_lines.text());
    let webhook_key = String::from_utf8(switchboard_channel_webhook::decode_secret(SECRET).unwrap()).unwrap();
    let forbidden = [
        BODY,
        SECRET,
        &SECRET["whsec_".len()..],
        &webhook_key,
        &alice_secret["whsec_".len()..],
        "ALICE-ENDPOINT-SECRET-MARK",
        AGENT_TOKEN,
        METRICS_TOKEN,
        SESSION_SECRET,
        IDENTITY_SECRET,
        &session_token,
        session_token.rsplit('.').next().unwrap(),
        "FORGED-SIGNATURE-MARK",
        guess,
        "CUSTOMER-ID-MARK",
        "CUSTOMER-NAME-MARK",
        "customer-email-mark",
        "THREAD-MARK",
        "PAGE-MARK",
    ];
    for (format, logs) in [("human", &human), ("json", &json_lines)] {
        // Proof that real log lines were captured, from every part of the round trip.
        for line in [
            "HTTP listener up",
            "switchboard ready",
            "leading",
            "webhook message stored",
            "agent command accepted",
            "web-chat message stored",
            "webhook signature refused",
            "switchboard stopped",
        ] {
            assert!(logs.contains(line), "{format} logs lack {line:?}:\n{logs}");
        }
        for mark in forbidden {
            let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(mark)).collect();
            assert!(leaks.is_empty(), "{format} logs contain {mark:?}:\n{}", leaks.join("\n"));
        }
    }
    println!(
        "captured {} human and {} JSON log lines at info; none carries a body, secret or customer identifier",
        human.lines().count(),
        json_lines.lines().count()
    );
}
