//! The daemon as a whole: readiness follows the bus, and SIGTERM loses nothing that got a 202.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use switchboard::Config;
use switchboard_channel_webhook::{SourceConfig, signature};
use switchboard_testkit::{NatsServer, free_port};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXQtMTIz";

fn key() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(SECRET.trim_start_matches("whsec_")).unwrap()
}

async fn get_status(http: &reqwest::Client, url: &str) -> Option<u16> {
    http.get(url).send().await.ok().map(|r| r.status().as_u16())
}

async fn wait_status(http: &reqwest::Client, url: &str, want: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = get_status(http, url).await;
        if got == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{url} answered {got:?}, expected {want} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn write_secret(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("shop.secret");
    std::fs::write(&path, SECRET).unwrap();
    path
}

#[tokio::test]
async fn readiness_waits_for_nats_then_turns_ready() {
    let dir = tempfile::tempdir().unwrap();
    let nats_port = free_port();
    let mut config = Config::default();
    config.nats.url = format!("nats://127.0.0.1:{nats_port}");
    config.nats.connect_backoff.max = Duration::from_millis(200);
    config.router.enabled = false;
    config
        .channels
        .webhook
        .sources
        .insert("shop".into(), SourceConfig { secret_file: Some(write_secret(dir.path())), ..SourceConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(switchboard::daemon::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();

    wait_status(&http, &format!("{base}/healthz"), 200, Duration::from_secs(5)).await;
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["bus"], "connecting", "{body}");

    // A webhook before the bus is up is refused with 503, not accepted and lost.
    let text = r#"{"message_id":"early","customer":{"id":"c"},"text":"hi"}"#;
    let ts = chrono::Utc::now().timestamp();
    let early = http
        .post(format!("{base}/v1/webhooks/shop"))
        .header(signature::ID, "early")
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(&key(), "early", ts, text.as_bytes()))
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(early.status().as_u16(), 503);

    let _nats = NatsServer::start_on(nats_port);
    wait_status(&http, &format!("{base}/readyz"), 200, Duration::from_secs(15)).await;
    let body: serde_json::Value = http.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["components"]["webhook"], "ready", "{body}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), daemon).await.unwrap().unwrap().unwrap();
}

/// Fires signed requests at a real `switchboard` process, sends SIGTERM mid-stream, and checks
/// that every request answered 202 is in the stream, that the process exits 0 within its grace
/// period, and that the info-level log holds no message text and no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_nothing_that_got_a_202() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(
        &config_path,
        format!(
            "[nats]\nurl = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[shutdown]\ngrace_secs = 10\n[router]\nenabled = false\n\
             [channels.webhook.runtime.rate_limit]\nper_minute = 100000\nburst = 100000\n\
             [channels.webhook.sources.shop]\nsecret_file = \"{}\"\n",
            nats.url(),
            write_secret(dir.path()).display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("daemon.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    wait_status(&http, &format!("{base}/readyz"), 200, Duration::from_secs(15)).await;

    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for worker in 0..8 {
        let (http, base, accepted, refused) = (http.clone(), base.clone(), accepted.clone(), refused.clone());
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("w{worker}-{i}");
                let body =
                    format!(r#"{{"message_id":"{id}","customer":{{"id":"c-{worker}"}},"text":"secret-body-{id}"}}"#);
                let ts = chrono::Utc::now().timestamp();
                let sent = http
                    .post(format!("{base}/v1/webhooks/shop"))
                    .header(signature::ID, &id)
                    .header(signature::TIMESTAMP, ts.to_string())
                    .header(signature::SIGNATURE, signature::sign(&key(), &id, ts, body.as_bytes()))
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 202 => accepted.lock().unwrap().push(id),
                    // Refused connections and 503s are fine: the sender was told to retry.
                    _ => {
                        refused.store(true, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "daemon did not accept 300 requests in 20 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_term = accepted.lock().unwrap().len();
    let term_at = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(term_at.elapsed() < Duration::from_secs(12), "daemon did not exit within its 10 s grace period");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for s in senders {
        s.await.unwrap();
    }
    assert!(status.success(), "exit status {status:?}");
    assert!(refused.load(std::sync::atomic::Ordering::SeqCst), "senders saw the daemon stop");

    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= before_term);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let stream = async_nats::jetstream::new(client).get_stream("SB_INBOUND").await.unwrap();
    let info = stream.get_info().await.unwrap();
    let mut stored = std::collections::HashSet::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        let e: switchboard_core::Envelope = serde_json::from_slice(&m.payload).unwrap();
        stored.insert(e.provider_message_id);
    }
    let lost: Vec<_> = accepted.iter().filter(|id| !stored.contains(&format!("shop:{id}"))).collect();
    assert!(lost.is_empty(), "{} of {} accepted messages lost: {lost:?}", lost.len(), accepted.len());

    let mut log = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("shutting down") && log.contains("switchboard stopped"), "{log}");
    assert!(!log.contains("secret-body-"), "message text in the info log");
    assert!(!log.contains(SECRET.trim_start_matches("whsec_")), "secret in the info log");
}

/// A guessable API token (under 16 bytes) stops the daemon at start, naming the token.
#[tokio::test]
async fn a_short_api_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("short.token");
    std::fs::write(&token, "letmein").unwrap();
    let mut config = Config::default();
    config.router.enabled = false;
    config.api.tokens.insert(
        "ops".into(),
        switchboard::config::ApiTokenConfig { token_file: Some(token), admin: true, ..Default::default() },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let run = tokio::time::timeout(Duration::from_secs(10), switchboard::daemon::run(config, listener, stop)).await;
    let error = run.expect("refused at once, before reaching NATS").expect_err("refused");
    let message = format!("{error:#}");
    assert!(message.contains("api.tokens.ops") && message.contains("at least 16"), "{message}");
}
