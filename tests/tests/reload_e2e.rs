//! Reloading the configuration with SIGHUP through the real daemon, started from a file: a
//! changed rule applies to the next customer (and the waiting one keeps its team), a changed
//! section that needs a restart is named, and an invalid file or one that changes the teams
//! changes nothing; `/readyz` and `/metrics` say what each reload did. Rotated secret files
//! (a webhook source's, an API token's) and the webhook's limits apply without a restart.

use std::path::Path;
use std::time::Duration;

use switchboard::config::Config;
use switchboard_e2e::{SECRET, TestDaemon};
use switchboard_testkit::NatsServer;

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "integration-token-for-the-reload-test";

/// The daemon's whole file; `extra_routing` goes at the end of `[routing]`'s tables.
fn file(nats: &str, dir: &Path, timeout_ms: u64, extra_routing: &str) -> String {
    let d = dir.display();
    format!(
        r#"
[nats]
url = "{nats}"
[http]
request_timeout_ms = {timeout_ms}
[channels.webhook.sources.shop]
secret_file = "{d}/shop.secret"
[channels.webchat]
enabled = false
[router]
enabled = true
[metrics]
enabled = true
[api.tokens.integration]
token_file = "{d}/integration.token"
[routing]
default_team = "support"
[routing.teams.support]
[routing.teams.billing]
[[routing.agents]]
id = "alice"
teams = ["support", "billing"]
tiers = ["L1"]
status = "away"
{extra_routing}
"#
    )
}

const REFUND_RULE: &str =
    "[[routing.rules]]\nname = \"refunds\"\nwhen = 'text.contains(\"refund\")'\nteam = \"billing\"\n";

async fn hup() {
    let pid = std::process::id().to_string();
    assert!(tokio::process::Command::new("kill").args(["-HUP", &pid]).status().await.unwrap().success());
}

async fn get(daemon: &TestDaemon, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = daemon.http.get(format!("{}{path}", daemon.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The team of each waiting conversation, oldest first.
async fn queue_teams(daemon: &TestDaemon) -> Vec<String> {
    let (status, body) = get(daemon, "/v1/queue", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let queue: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut items: Vec<(i64, String)> = queue["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["waiting_since"].as_i64().unwrap(), q["team"].as_str().unwrap().to_string()))
        .collect();
    items.sort();
    items.into_iter().map(|(_, t)| t).collect()
}

async fn last_reload(daemon: &TestDaemon) -> String {
    let (_, body) = get(daemon, "/readyz", None).await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    ready["last_reload"].as_str().unwrap_or_default().to_string()
}

async fn wait_reload(daemon: &TestDaemon, previous: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = last_reload(daemon).await;
        if !now.is_empty() && now != previous {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new reload outcome on /readyz (last: {previous:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn customer(daemon: &TestDaemon, n: u32, text: &str) {
    let body = format!(r#"{{"message_id":"m-{n}","customer":{{"id":"c-{n}"}},"thread_id":"t-{n}","text":"{text}"}}"#);
    let (status, answer) = daemon.post_signed(&format!("evt_{n}"), &body).await;
    assert_eq!(status, 202, "{answer}");
}

async fn wait_queue(daemon: &TestDaemon, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let teams = queue_teams(daemon).await;
        if teams == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "queue teams {teams:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sighup_applies_a_changed_rule_names_what_needs_a_restart_and_refuses_bad_files() {
    // SIGHUP must never end this test process, whatever the daemon's handler is doing.
    let _keep = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.secret"), SECRET).unwrap();
    std::fs::write(dir.path().join("integration.token"), TOKEN).unwrap();
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, file(&nats.url(), dir.path(), 10_000, "")).unwrap();
    let config = Config::load(&path).expect("the test's file is valid");
    let nats_url = nats.url();
    let daemon = TestDaemon::start_with(nats, config, tempfile::tempdir().unwrap()).await;

    customer(&daemon, 1, "a refund please").await;
    wait_queue(&daemon, &["support"]).await;

    // A new rule, and a changed HTTP timeout (which needs a restart).
    std::fs::write(&path, file(&nats_url, dir.path(), 20_000, REFUND_RULE)).unwrap();
    hup().await;
    let said = wait_reload(&daemon, "").await;
    assert!(said.starts_with("applied at ") && said.contains(": routing; needs a restart: http"), "{said}");
    customer(&daemon, 2, "another refund").await;
    wait_queue(&daemon, &["support", "billing"]).await;

    // An invalid file: nothing changes, and the reason names the key.
    std::fs::write(&path, file(&nats_url, dir.path(), 20_000, "[routing.no_such_key]\n")).unwrap();
    hup().await;
    let said = wait_reload(&daemon, &said).await;
    assert!(said.starts_with("invalid at ") && said.contains("no_such_key"), "{said}");
    customer(&daemon, 3, "refund again").await;
    wait_queue(&daemon, &["support", "billing", "billing"]).await;

    // A valid file with another team: refused as a whole (the rule's removal does not apply either).
    std::fs::write(&path, file(&nats_url, dir.path(), 20_000, "[routing.teams.sales]\n")).unwrap();
    hup().await;
    let said = wait_reload(&daemon, &said).await;
    assert!(said.starts_with("refused at ") && said.contains("needs a restart"), "{said}");
    customer(&daemon, 4, "refund, fourth").await;
    wait_queue(&daemon, &["support", "billing", "billing", "billing"]).await;

    let (_, metrics) = get(&daemon, "/metrics", None).await;
    for result in ["applied\"} 1", "invalid\"} 1", "refused\"} 1"] {
        assert!(metrics.contains(&format!("switchboard_config_reload_total{{result=\"{result}")), "{metrics}");
    }
    let (status, _) = get(&daemon, "/readyz", None).await;
    assert_eq!(status, 200, "a refused reload leaves the daemon ready");
}

const ROTATED: &str = "whsec_cm90YXRlZC1zZWNyZXQtZm9yLXRoZS1yZWxvYWQtdGVzdA==";

/// POSTs a customer message for source `shop` signed with `secret`; the status.
async fn post_with(daemon: &TestDaemon, secret: &str, n: u32, text: &str) -> u16 {
    use switchboard_channel_webhook::{decode_secret, signature};
    let key = decode_secret(secret).unwrap();
    let id = format!("evt_r{n}");
    let body = format!(r#"{{"message_id":"r-{n}","customer":{{"id":"r-{n}"}},"thread_id":"r-{n}","text":"{text}"}}"#);
    let ts = chrono::Utc::now().timestamp();
    let resp = daemon
        .http
        .post(format!("{}/v1/webhooks/shop", daemon.base))
        .header("content-type", "application/json")
        .header(signature::ID, &id)
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(&key, &id, ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

#[tokio::test]
async fn sighup_rotates_secrets_and_applies_the_webhook_limits_without_a_restart() {
    let _keep = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("shop.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    std::fs::write(dir.path().join("integration.token"), TOKEN).unwrap();
    let path = dir.path().join("switchboard.toml");
    let nats_url = nats.url();
    let with_webhook = |settings: &str| {
        file(&nats_url, dir.path(), 10_000, "").replace(
            "[channels.webhook.sources.shop]",
            &format!("[channels.webhook]\n{settings}\n[channels.webhook.sources.shop]"),
        )
    };
    std::fs::write(&path, with_webhook("")).unwrap();
    let config = Config::load(&path).expect("the test's file is valid");
    let daemon = TestDaemon::start_with(nats, config, tempfile::tempdir().unwrap()).await;
    assert_eq!(post_with(&daemon, ROTATED, 1, "hello").await, 401, "the new secret is not in use yet");

    // Only the secret files change: the reload reads them again and the new secrets apply.
    const NEW_TOKEN: &str = "rotated-integration-token-for-the-reload-test";
    std::fs::write(&secret_file, ROTATED).unwrap();
    std::fs::write(dir.path().join("integration.token"), NEW_TOKEN).unwrap();
    assert_eq!(get(&daemon, "/v1/queue", Some(NEW_TOKEN)).await.0, 401, "the new token is not in use yet");
    hup().await;
    let said = wait_reload(&daemon, "").await;
    assert!(said.starts_with("applied at ") && said.contains("channels.webhook.sources.shop"), "{said}");
    assert!(said.contains("api.tokens.integration") && !said.contains("needs a restart"), "{said}");
    assert_eq!(post_with(&daemon, ROTATED, 2, "hello again").await, 202);
    assert_eq!(post_with(&daemon, SECRET, 3, "old secret").await, 401, "the old secret no longer verifies");
    assert_eq!(get(&daemon, "/v1/queue", Some(NEW_TOKEN)).await.0, 200);
    assert_eq!(get(&daemon, "/v1/queue", Some(TOKEN)).await.0, 401, "the old token no longer opens the API");

    // A smaller body limit applies to the next request; the POST timeout needs a restart.
    std::fs::write(&path, with_webhook("max_body_bytes = 300\nrequest_timeout_ms = 5000")).unwrap();
    hup().await;
    let said = wait_reload(&daemon, &said).await;
    assert!(said.contains("channels.webhook.max_body_bytes"), "{said}");
    assert!(said.contains("needs a restart: channels.webhook.request_timeout_ms"), "{said}");
    assert_eq!(post_with(&daemon, ROTATED, 4, &"x".repeat(400)).await, 413);
    assert_eq!(post_with(&daemon, ROTATED, 5, "short").await, 202);

    // A secret that cannot be used refuses the whole reload: the running secret stays.
    std::fs::write(&secret_file, "not-a-secret").unwrap();
    hup().await;
    let said = wait_reload(&daemon, &said).await;
    assert!(said.starts_with("refused at ") && said.contains("channels.webhook"), "{said}");
    assert_eq!(post_with(&daemon, ROTATED, 6, "still works").await, 202);

    // So does a token too short to be safe, and the webhook's new secret does not apply either.
    std::fs::write(&secret_file, SECRET).unwrap();
    std::fs::write(dir.path().join("integration.token"), "short").unwrap();
    hup().await;
    let said = wait_reload(&daemon, &said).await;
    assert!(said.starts_with("refused at ") && said.contains("api.tokens.integration"), "{said}");
    assert_eq!(post_with(&daemon, ROTATED, 7, "still the rotated secret").await, 202);
    assert_eq!(get(&daemon, "/v1/queue", Some(NEW_TOKEN)).await.0, 200);
}
