//! `switchboard customers export|forget` against a real NATS and a real daemon (in this process):
//! export prints the person's messages as JSON, forget erases them and says so, a second export
//! finds nothing; with no router leading, forget refuses and changes nothing; a malformed id or
//! configuration is refused with the usual exit codes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::Config;
use switchboard_channel_webhook::signature;
use switchboard_testkit::{NatsServer, free_port};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXQtMTIz";

fn config(dir: &Path, nats: &str) -> PathBuf {
    let secret = dir.join("shared.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let path = dir.join("switchboard.toml");
    let toml = format!(
        r#"
[nats]
url = "{nats}"
[http]
listen = "127.0.0.1:{port}"
[router]
lease_ttl_secs = 3
[routing]
default_team = "support"
[routing.teams.support]
offer_timeout_secs = 600
[[routing.agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "offline"
[channels.webhook.sources.shop]
secret_file = "{secret}"
[privacy]
retention_days = 7
"#,
        port = free_port(),
        secret = secret.display(),
    );
    std::fs::write(&path, toml).unwrap();
    path
}

async fn wait_until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(http: &reqwest::Client, base: &str, id: &str, customer: &str, text: &str) {
    let key = switchboard_channel_webhook::decode_secret(SECRET).unwrap();
    let body = serde_json::json!({ "message_id": id, "customer": { "id": customer }, "text": text }).to_string();
    let ts = chrono::Utc::now().timestamp();
    let r = http
        .post(format!("{base}/v1/webhooks/shop"))
        .header(signature::ID, id)
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(&key, id, ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

async fn switchboard(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).output().await.unwrap();
    let code = out.status.code().expect("exited, not killed");
    (code, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn export(cfg: &str, who: &str) -> Value {
    let (code, out, err) = switchboard(&["customers", "export", who, "--config", cfg]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("export printed no JSON ({e}): {out}"))
}

async fn daemon(path: &Path) -> (CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let task = tokio::spawn(switchboard::daemon::run(Config::load(path).unwrap(), listener, stop.clone()));
    let http = reqwest::Client::new();
    wait_until(
        "the daemon to be ready",
        async || matches!(http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status().as_u16() == 200),
    )
    .await;
    (stop, task, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_forget_on_the_command_line() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &nats.url());
    let cfg = path.to_str().unwrap();
    let (stop, task, base) = daemon(&path).await;
    let http = reqwest::Client::new();
    post(&http, &base, "m-1", "clizq-1", "clizq-one-text").await;
    post(&http, &base, "m-2", "kept-2", "kept-two-text").await;
    wait_until("both conversations recorded", async || {
        export(cfg, "webhook:clizq-1").await["conversations"].as_array().unwrap().len() == 1
            && export(cfg, "webhook:kept-2").await["conversations"].as_array().unwrap().len() == 1
    })
    .await;

    let one = export(cfg, "webhook:clizq-1").await;
    assert!(one.to_string().contains("clizq-one-text"), "{one}");
    assert!(!one.to_string().contains("kept-two"), "another customer in the export: {one}");
    let (code, summary, _) =
        switchboard(&["customers", "export", "webhook:clizq-1", "--config", cfg, "--format", "text"]).await;
    assert_eq!(code, 0);
    assert!(summary.starts_with("webhook:clizq-1: 1 conversation(s)"), "{summary}");

    // Malformed ids and configurations: refused before anything happens.
    let (code, _, err) = switchboard(&["customers", "forget", "clizq-1", "--config", cfg]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("<channel>:<customer id>"), "{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[privacy]\nretention_days = 1\nsweep_every_secs = 86400\n").unwrap();
    let (code, _, err) = switchboard(&["customers", "forget", "webhook:x", "--config", bad.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml") && err.contains("privacy.sweep_every_secs"), "{err}");

    let (code, out, err) =
        switchboard(&["customers", "forget", "webhook:clizq-1", "--config", cfg, "--format", "json"]).await;
    assert_eq!(code, 0, "{err}");
    // The log (stderr) says what was done, never about whom.
    assert!(err.contains("customer data erased") && !err.contains("clizq"), "{err}");
    let erasure: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(erasure["conversations"], 1, "{erasure}");
    assert!(erasure["messages"].as_u64().unwrap() >= 3, "message, events, journal: {erasure}");
    let gone = export(cfg, "webhook:clizq-1").await;
    assert!(
        gone["messages"].as_array().unwrap().is_empty() && gone["conversations"].as_array().unwrap().is_empty(),
        "{gone}"
    );
    assert!(export(cfg, "webhook:kept-2").await.to_string().contains("kept-two-text"));

    // No router leads: forget refuses, and the person's data is all still there.
    stop.cancel();
    task.await.unwrap().unwrap();
    let before = export(cfg, "webhook:kept-2").await;
    let (code, _, err) = switchboard(&["customers", "forget", "webhook:kept-2", "--config", cfg]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no router of group `default`") && err.contains("nothing was erased"), "{err}");
    let after = export(cfg, "webhook:kept-2").await;
    assert_eq!(before["messages"], after["messages"]);
    assert_eq!(before["conversations"], after["conversations"]);
}
