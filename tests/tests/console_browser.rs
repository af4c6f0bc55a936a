//! The supervisor's console in a real browser, and its token roles on the API.
//!
//! A daemon with two teams (support, billing), an agent in each whose deliveries go to a webhook
//! receiver this test runs (sam in support, away; bill in billing, online), a supervisor token and
//! an agent token. First the roles through the API: the console's routes refuse a missing (401)
//! or an agent's or integration's token (403), a supervisor cannot define agents (403), agents and
//! integrations cannot send `supervise` (403), the page carries a strict CSP. Then Chromium
//! (playwright-core, `tests/browser/console.mjs`) signs in, sees a webhook customer's conversation
//! appear in the live queue, transfers it to billing with a note and sets its priority, checks the
//! other views, Russian, and axe-core at 1280x800 and 390x844. Last, from this side: bill's
//! receiver got the offer of that conversation, sam's nothing, and the record holds the note and
//! the new priority. Screenshots: `target/test-output/console-*.png`. A second test bounds the
//! live streams (`console.max_streams`, 503 over it) and sees them end when the daemon stops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webhook::{AgentEndpointConfig, decode_secret, signature};
use switchboard_e2e::{Receiver, SECRET, TestDaemon};

const SUPERVISOR_TOKEN: &str = "olga-supervisor-token-for-the-console";
const AGENT_TOKEN: &str = "sam-agent-token-for-the-console-test";
const INTEGRATION_TOKEN: &str = "integration-token-for-the-console";
const NOTE: &str = "Invoice question: over to billing <b>not bold</b>";
const CUSTOMER_TEXT: &str = "My invoice for November is wrong";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Serves `GET /customer`: a webhook customer writes to `daemon` (signed as source `shop`).
async fn customer_trigger(daemon: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/customer", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/customer",
        axum::routing::get(move || {
            let daemon = daemon.clone();
            async move {
                let body = json!({ "message_id": "m-console-1", "customer": { "id": "u-nina", "name": "Nina" },
                                   "thread_id": "t-nina", "text": CUSTOMER_TEXT })
                .to_string();
                let key = decode_secret(SECRET).expect("valid secret");
                let ts = chrono::Utc::now().timestamp();
                let answer = reqwest::Client::new()
                    .post(format!("{daemon}/v1/webhooks/shop"))
                    .header("content-type", "application/json")
                    .header(signature::ID, "evt_console_1")
                    .header(signature::TIMESTAMP, ts.to_string())
                    .header(signature::SIGNATURE, signature::sign(&key, "evt_console_1", ts, body.as_bytes()))
                    .body(body)
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().as_u16() == 202 => axum::http::StatusCode::OK,
                    _ => axum::http::StatusCode::BAD_GATEWAY,
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.expect("trigger serves") });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_live_queue_and_transfers_in_chromium() {
    let started = Instant::now();
    let root = workspace();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: run `make tools` (installs Debian's chromium)");
    for package in ["playwright-core", "axe-core"] {
        assert!(
            root.join("tests/browser/node_modules").join(package).exists(),
            "{package} is missing: run `make tools` (npm ci in tests/browser)"
        );
    }
    let support_desk = Receiver::start("/sam").await;
    let billing_desk = Receiver::start("/bill").await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (olga, sam, integration, secret) = (
        file("olga.token", SUPERVISOR_TOKEN),
        file("sam.token", AGENT_TOKEN),
        file("integration.token", INTEGRATION_TOKEN),
        file("agent.secret", SECRET),
    );
    let (sam_url, bill_url) = (support_desk.url.clone(), billing_desk.url.clone());
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300 }, "billing": { "offer_timeout_secs": 300 } },
            "agents": [
                { "id": "sam", "name": "Sam", "teams": ["support"], "tiers": ["L1"], "status": "away",
                  "default_capacity": 5, "max_total": 5 },
                { "id": "bill", "name": "Bill", "teams": ["billing"], "tiers": ["L1"], "status": "online",
                  "default_capacity": 5, "max_total": 5 }
            ]
        }))
        .unwrap();
        for (agent, url) in [("sam", sam_url), ("bill", bill_url)] {
            let endpoint = AgentEndpointConfig { url, secret_env: None, secret_file: Some(secret.clone()) };
            c.channels.webhook.agents.insert(agent.into(), endpoint);
        }
        c.api
            .tokens
            .insert("olga".into(), ApiTokenConfig { token_file: Some(olga), supervisor: true, ..Default::default() });
        c.api.tokens.insert(
            "sam".into(),
            ApiTokenConfig { token_file: Some(sam), agent: Some("sam".into()), ..Default::default() },
        );
        c.api
            .tokens
            .insert("integration".into(), ApiTokenConfig { token_file: Some(integration), ..Default::default() });
    })
    .await;

    // The roles, through the API.
    for path in ["/v1/console/kpis", "/v1/console/agents", "/v1/console/stream"] {
        let url = format!("{}{path}", daemon.base);
        let anonymous = daemon.http.get(&url).send().await.unwrap().status().as_u16();
        assert_eq!(anonymous, 401, "{path} without a token");
        for other in [AGENT_TOKEN, INTEGRATION_TOKEN] {
            let (code, body) = daemon.api(other, "GET", path, None).await;
            assert_eq!(code, 403, "{path} with an agent's or integration's token: {body}");
        }
    }
    let (code, kpis) = daemon.api(SUPERVISOR_TOKEN, "GET", "/v1/console/kpis", None).await;
    assert_eq!(code, 200, "{kpis}");
    let teams: Vec<&str> = kpis["teams"].as_array().unwrap().iter().map(|t| t["team"].as_str().unwrap()).collect();
    assert_eq!(teams, ["billing", "support"], "{kpis}");
    let agent = json!({ "teams": ["support"], "tiers": ["L1"] }).to_string();
    let (code, body) = daemon.api(SUPERVISOR_TOKEN, "PUT", "/v1/agents/newbie", Some(&agent)).await;
    assert_eq!(code, 403, "a supervisor does not define agents: {body}");
    let supervise = |agent_id: Option<&str>| {
        json!({ "agent_id": agent_id, "conversation_id": uuid::Uuid::now_v7(),
                "action": { "type": "supervise", "op": { "type": "resolve" } } })
        .to_string()
    };
    let (code, body) = daemon.api(AGENT_TOKEN, "POST", "/v1/agent/commands", Some(&supervise(None))).await;
    assert_eq!(code, 403, "an agent cannot supervise: {body}");
    let (code, body) = daemon.api(INTEGRATION_TOKEN, "POST", "/v1/agent/commands", Some(&supervise(Some("sam")))).await;
    assert_eq!(code, 403, "an integration cannot supervise: {body}");
    let accept = json!({ "agent_id": "sam", "conversation_id": uuid::Uuid::now_v7(), "action": { "type": "accept" } });
    let (code, body) = daemon.api(SUPERVISOR_TOKEN, "POST", "/v1/agent/commands", Some(&accept.to_string())).await;
    assert_eq!(code, 403, "a supervisor does not act as an agent: {body}");
    let page = daemon.http.get(format!("{}/console", daemon.base)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");

    // The browser.
    let trigger = customer_trigger(daemon.base.clone()).await;
    let output = root.join("target/test-output");
    std::fs::create_dir_all(&output).unwrap();
    let script = root.join("tests/browser/console.mjs");
    let daemon_url = daemon.base.clone();
    let out_dir = output.clone();
    let browser_started = Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .current_dir(root.join("tests/browser"))
            .env("SB_DAEMON_URL", daemon_url)
            .env("SB_TOKEN", SUPERVISOR_TOKEN)
            .env("SB_AGENT_TOKEN", AGENT_TOKEN)
            .env("SB_TRIGGER_URL", trigger)
            .env("SB_NOTE", NOTE)
            .env("SB_CUSTOMER_TEXT", CUSTOMER_TEXT)
            .env("SB_OUTPUT_DIR", out_dir)
            .env("CHROMIUM", chromium)
            .output()
            .expect("run node (Node.js 20 is on the machine)")
    });
    let out = tokio::time::timeout(Duration::from_secs(200), run).await.expect("the browser run ends").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "the browser scenario failed ({}):\n{stdout}\n{stderr}", out.status);
    let result: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|l| serde_json::from_str(l).expect("the result is JSON"))
        .expect("the script printed its result");
    let conversation = result["conversation"].as_str().expect("a conversation id").to_string();

    // What the agents' helpdesks got: the offer reached billing's agent; sam (away) got nothing.
    let offer = billing_desk
        .wait_for("bill's offer of the transferred conversation", Duration::from_secs(20), |v| {
            v["type"] == "offer" && v["conversation_id"] == conversation.as_str()
        })
        .await;
    assert_eq!(offer["agent_id"], "bill", "{offer}");
    assert!(support_desk.received().is_empty(), "sam was away: {:?}", support_desk.received());
    // The record: the note in the history, as a note by the supervisor (the token's name); the
    // priority set.
    let record = daemon
        .record_when(SUPERVISOR_TOKEN, &conversation, "the priority set from the console", |r| r["priority"] == 10)
        .await;
    let noted =
        record["history"].as_array().unwrap().iter().any(|e| {
            e["from"] == "note" && e["author"] == "olga" && e["text"].as_str().is_some_and(|t| t.contains(NOTE))
        });
    assert!(noted, "the note is in the history: {record}");
    assert_eq!(record["team"], "billing", "{record}");

    for name in ["queue-1280x800", "conversation-1280x800", "kpis-1280x800", "ru-1280x800", "390x844"] {
        assert!(output.join(format!("console-{name}.png")).exists(), "screenshot console-{name}.png");
    }
    println!(
        "axe: {}; browser {:.1} s, whole test {:.1} s",
        result["axe"],
        browser_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    daemon.stop().await;
}

/// `GET /v1/console/stream` answers a `queue` event at once, refuses a stream over
/// `console.max_streams` with 503, and ends its open streams when the daemon stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_streams_are_bounded_and_end_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let olga = dir.path().join("olga.token");
    std::fs::write(&olga, SUPERVISOR_TOKEN).unwrap();
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({ "default_team": "support", "teams": { "support": {} } })).unwrap();
        c.console.max_streams = 1;
        c.api
            .tokens
            .insert("olga".into(), ApiTokenConfig { token_file: Some(olga), supervisor: true, ..Default::default() });
    })
    .await;
    let url = format!("{}/v1/console/stream", daemon.base);
    let mut first = daemon.http.get(&url).bearer_auth(SUPERVISOR_TOKEN).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: queue") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, first.chunk()).await.expect("a queue event in time").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("the stream is open")));
    }
    assert!(seen.contains(r#""queue":[]"#), "an empty queue first: {seen}");
    let (code, body) = daemon.api(SUPERVISOR_TOKEN, "GET", "/v1/console/stream", None).await;
    assert_eq!(code, 503, "a second stream over console.max_streams = 1: {body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("max_streams"), "{body}");

    // Stopping the daemon ends the open stream (the listener would otherwise wait for it).
    let stopping = tokio::spawn(daemon.stop());
    let ended =
        tokio::time::timeout(Duration::from_secs(10), async { while let Ok(Some(_)) = first.chunk().await {} }).await;
    assert!(ended.is_ok(), "the stream ended when the daemon stopped");
    tokio::time::timeout(Duration::from_secs(30), stopping).await.expect("the daemon stopped").unwrap();
}
