//! The published documents against the standard tools and a running daemon with every channel
//! that has routes enabled: each documented path is served with exactly its documented methods
//! (axum answers 405 to a method a served path lacks, and an empty 404 to a path it does not
//! serve); `docs/openapi.json` passes `openapi-spec-validator` and `docs/asyncapi.yaml` the
//! AsyncAPI parser; Schemathesis' default checks pass against the live daemon for every operation
//! (status codes, content types, response schemas), with an admin token so the authenticated
//! paths are exercised too. The tools are pinned and installed by `make tools`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webchat::WebchatConfig;
use switchboard_e2e::TestDaemon;
use switchboard_testkit::FakeBotApi;

const BOT: &str = "424242:openapi-test-token-for-the-fake-bot";
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
const ADMIN: &str = "openapi-test-admin-token-0123456789";
const ALICE: &str = "openapi-test-alice-token-0123456789";
const HOOK_SECRET: &str = "openapi-test-webhook-secret";
/// Generated cases per operation and phase: about a minute on two cores for the whole API.
const EXAMPLES: &str = "25";

/// The workspace root (documents, tools).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The pinned Python tools (`openapi-spec-validator`, `schemathesis`), or a failure naming
/// `make tools`.
fn python_tools() -> PathBuf {
    let dir = root().join("tools/contract-python");
    assert!(
        dir.join("schemathesis").is_dir() && dir.join("openapi_spec_validator").is_dir(),
        "{} lacks schemathesis or openapi-spec-validator: run `make tools`",
        dir.display()
    );
    dir
}

/// Runs a command to its end; panics with its output unless it succeeded.
fn run(what: &str, command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

/// A daemon with every channel that has routes enabled, the router, metrics and an admin token.
async fn daemon_with_every_route(api: &FakeBotApi, dir: &Path) -> TestDaemon {
    let (bot, hook, session, admin, alice) =
        (dir.join("bot"), dir.join("hook"), dir.join("session"), dir.join("admin"), dir.join("alice"));
    std::fs::write(&bot, BOT).unwrap();
    std::fs::write(&hook, HOOK_SECRET).unwrap();
    std::fs::write(&session, "openapi-test-session-key-0123456789abcdef").unwrap();
    std::fs::write(&admin, ADMIN).unwrap();
    std::fs::write(&alice, ALICE).unwrap();
    let api_url = api.url();
    let dir_slack = dir.to_path_buf();
    TestDaemon::start(None, move |c| {
        let tg = &mut c.channels.telegram;
        (tg.enabled, tg.token_file, tg.api_url) = (true, Some(bot), api_url);
        (tg.webhook_url, tg.webhook_secret_file) =
            (Some("https://switchboard.test/v1/telegram/updates".into()), Some(hook));
        c.channels.webchat = WebchatConfig {
            enabled: true,
            session_secret_file: Some(session),
            allowed_origins: vec!["http://shop.test".into()],
            demo_page: true,
            ..Default::default()
        };
        // Slack's Events API routes; no agents on Slack, so the Web API (unreachable) is never called.
        std::fs::write(dir_slack.join("slack-bot"), "xoxb-openapi-test").unwrap();
        std::fs::write(dir_slack.join("slack-signing"), "openapi-test-slack-signing-secret").unwrap();
        let slack = &mut c.channels.slack;
        (slack.enabled, slack.api_base) = (true, "http://127.0.0.1:9/api".into());
        (slack.bot_token_file, slack.signing_secret_file) =
            (Some(dir_slack.join("slack-bot")), Some(dir_slack.join("slack-signing")));
        // WhatsApp's webhook; nothing is ever sent, so the Graph API (unreachable) is never called.
        for (name, value) in [
            ("wa-token", "openapi-test-whatsapp-token"),
            ("wa-secret", "openapi-test-app-secret"),
            ("wa-verify", "openapi-verify"),
        ] {
            std::fs::write(dir_slack.join(name), value).unwrap();
        }
        let wa = &mut c.channels.whatsapp;
        (wa.enabled, wa.graph_url, wa.phone_number_id) = (true, "http://127.0.0.1:9".into(), "106540352242922".into());
        (wa.access_token_file, wa.app_secret_file, wa.verify_token_file) =
            (Some(dir_slack.join("wa-token")), Some(dir_slack.join("wa-secret")), Some(dir_slack.join("wa-verify")));
        // VK's Callback API route; nothing is sent to VK (unreachable) unless an event is stored.
        std::fs::write(dir_slack.join("vk-token"), "vk1.a.openapi-test").unwrap();
        std::fs::write(dir_slack.join("vk-secret"), "openapi-test-vk-secret").unwrap();
        c.channels.vk = switchboard_channel_vk::VkConfig {
            enabled: true,
            mode: switchboard_channel_vk::VkMode::Callback,
            group_id: 1,
            token_file: Some(dir_slack.join("vk-token")),
            secret_file: Some(dir_slack.join("vk-secret")),
            confirmation: Some("openapi".into()),
            api_url: "http://127.0.0.1:9/method".into(),
            ..Default::default()
        };
        c.metrics.enabled = true;
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 120 } },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
        }))
        .unwrap();
        c.api.command_wait_ms = 1000;
        // Endpoints registered through the API may point anywhere here: which addresses are
        // inward is policy, not schema (refusals of inward ones are tested in agents_e2e).
        c.channels.webhook.allowed_networks = vec!["0.0.0.0/0".into(), "::/0".into()];
        c.api
            .tokens
            .insert("ops".into(), ApiTokenConfig { token_file: Some(admin), admin: true, ..Default::default() });
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(alice), agent: Some("alice".into()), ..Default::default() },
        );
    })
    .await
}

/// A concrete path for a templated one (any value will do: only routing is checked).
fn concrete(path: &str) -> String {
    path.replace("{source}", "shop")
        .replace("{id}", "0190b2f0-0000-7000-8000-000000000000")
        .replace("{session}", "s1")
        .replace("{file}", "f1")
}

/// The status, and whether the body was empty (axum's own 404 for an unknown path is).
async fn request(daemon: &TestDaemon, method: &str, path: &str) -> (u16, bool) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let response = daemon
        .http
        .request(method, format!("{}{path}", daemon.base))
        .header("origin", "http://shop.test")
        .send()
        .await
        .expect("the daemon answers");
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served_with_exactly_its_methods() {
    let api = FakeBotApi::start(BOT).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_every_route(&api, dir.path()).await;

    let doc = serde_json::to_value(switchboard::openapi::document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 16, "the document has too few paths: {}", paths.len());
    let mut wrong = Vec::new();
    for (path, item) in paths {
        let documented: BTreeSet<String> = item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect();
        for method in METHODS {
            let (status, empty) = request(&daemon, method, &concrete(path)).await;
            let served = status != 405 && !(status == 404 && empty);
            if served != documented.contains(method) {
                wrong.push(format!("{method} {path}: {status} (documented: {documented:?})"));
            }
        }
    }
    assert!(wrong.is_empty(), "served and documented routes differ: {wrong:#?}");

    // The checks above can fail: a path the daemon does not serve answers an empty 404.
    assert_eq!(request(&daemon, "GET", "/v1/not-a-route").await, (404, true));
    daemon.stop().await;
}

#[test]
fn openapi_document_passes_openapi_spec_validator() {
    let doc = root().join("docs/openapi.json");
    let out = run(
        "openapi-spec-validator",
        Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(&doc).env("PYTHONPATH", python_tools()),
    );
    assert!(out.contains(": OK"), "{out}");
}

#[test]
fn asyncapi_document_passes_the_asyncapi_parser() {
    let dir = root().join("tests/contract");
    assert!(
        dir.join("node_modules/@asyncapi/parser").is_dir(),
        "{} lacks @asyncapi/parser: run `make tools`",
        dir.display()
    );
    let out = run(
        "the AsyncAPI parser",
        Command::new("node").current_dir(&dir).arg("asyncapi.mjs").arg(root().join("docs/asyncapi.yaml")),
    );
    assert!(out.contains("valid AsyncAPI"), "{out}");
}

/// Operations an agent calls for itself: run with an agent token (with the admin token, which
/// has no agent, they answer `400`/`403` by design).
const AGENT_OPERATIONS: [&str; 4] = ["command", "typing", "telegram_link", "agent_offers"];

/// One Schemathesis run over the operations `filter` selects, as `token`: whether it passed, and
/// its output.
fn schemathesis(base: &str, token: &str, filter: &[&str], report: &Path) -> (bool, String) {
    let mut command = Command::new("python3");
    command
        .args(["-c", "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())"])
        .args(["--no-color", "run", "--url", base, "--max-examples", EXAMPLES, "--seed", "21", "--workers", "1"])
        .args(["--header", &format!("Authorization: Bearer {token}"), "--header", "Origin: http://shop.test"])
        .args(["--header", &format!("X-Telegram-Bot-Api-Secret-Token: {HOOK_SECRET}")])
        .args(["--request-timeout", "10", "--report", "junit", "--report-dir"])
        .arg(report)
        .args(filter)
        .arg(root().join("docs/openapi.json"))
        .env("PYTHONPATH", python_tools())
        .env("NO_COLOR", "1")
        // Schemathesis keeps a `.schemathesis` cache in its working directory: a temporary one.
        .current_dir(report.parent().expect("the report's directory"));
    let out = command.output().unwrap_or_else(|e| panic!("cannot run schemathesis: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_default_checks_pass_against_a_live_daemon() {
    python_tools();
    let api = FakeBotApi::start(BOT).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_every_route(&api, dir.path()).await;
    let (base, report) = (daemon.base.clone(), dir.path().join("report"));
    let started = std::time::Instant::now();
    let runs = tokio::task::spawn_blocking(move || {
        let mut as_agent = Vec::new();
        let mut as_admin = Vec::new();
        for id in AGENT_OPERATIONS {
            as_agent.extend(["--include-operation-id", id]);
            as_admin.extend(["--exclude-operation-id", id]);
        }
        // The WebSocket handshake answers `101 Switching Protocols`, which Schemathesis reads as
        // neither success nor refusal; the socket is tested by webchat_e2e and the browser test.
        as_admin.extend(["--exclude-operation-id", "socket"]);
        // The agent's event stream answers 200 and stays open (that is its point): a generated
        // request would only end at the request timeout. agent_events_e2e tests it, refusals
        // included.
        as_admin.extend(["--exclude-operation-id", "agent_events"]);
        // The console's stream likewise (console_browser tests it, refusals included).
        as_admin.extend(["--exclude-operation-id", "console_stream"]);
        [
            ("agent token", schemathesis(&base, ALICE, &as_agent, &report)),
            ("admin token", schemathesis(&base, ADMIN, &as_admin, &report)),
        ]
    })
    .await
    .unwrap();
    println!("schemathesis took {:?}", started.elapsed());
    for (who, (_, out)) in &runs {
        println!("== schemathesis with the {who}\n{out}");
    }
    for (who, (passed, out)) in &runs {
        assert!(*passed && out.contains(" passed"), "Schemathesis failed with the {who} (output above)");
    }
    daemon.stop().await;
}

/// The state of conversation `id` in `sb_conversations`.
async fn state(records: &async_nats::jetstream::kv::Store, id: &str) -> String {
    let record = records.get(id).await.unwrap().expect("the conversation's record");
    serde_json::from_slice::<serde_json::Value>(&record).unwrap()["state"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_in_api_bodies_are_refused_with_422_naming_them_and_change_nothing() {
    let api = FakeBotApi::start(BOT).await;
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon_with_every_route(&api, dir.path()).await;
    let js = async_nats::jetstream::new(async_nats::connect(daemon.nats.url()).await.unwrap());
    let records = js.get_key_value("sb_conversations").await.unwrap();
    let body = r#"{"message_id":"m1","customer":{"id":"u-1"},"text":"Is anyone there?"}"#;
    assert_eq!(daemon.post_signed("evt_1", body).await.0, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let conversation = loop {
        let mut keys = records.keys().await.unwrap();
        if let Some(Ok(key)) = futures::StreamExt::next(&mut keys).await
            && state(&records, &key).await == "offered"
        {
            break key;
        }
        assert!(std::time::Instant::now() < deadline, "the message was never offered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // `accept` has no fields besides `type`, as command.v1.json says.
    let command = |action: serde_json::Value| json!({ "conversation_id": conversation, "action": action }).to_string();
    let (code, why) = daemon
        .api(ALICE, "POST", "/v1/agent/commands", Some(&command(json!({"type": "accept", "x-unknown": 42}))))
        .await;
    assert_eq!(code, 422, "{why}");
    assert!(why["error"].as_str().unwrap_or_default().contains("`x-unknown`"), "names the field: {why}");
    let mut top = serde_json::from_str::<serde_json::Value>(&command(json!({"type": "accept"}))).unwrap();
    top["x-unknown"] = json!(42);
    let (code, why) = daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&top.to_string())).await;
    assert_eq!(code, 422, "{why}");
    assert!(why["error"].as_str().unwrap_or_default().contains("`x-unknown`"), "names the field: {why}");
    let typing = json!({ "conversation_id": conversation, "x-unknown": 42 }).to_string();
    assert_eq!(daemon.api(ALICE, "POST", "/v1/agent/typing", Some(&typing)).await.0, 422);
    let agent = json!({ "teams": ["support"], "tiers": ["L1"], "x-unknown": 42 }).to_string();
    let (code, why) = daemon.api(ADMIN, "PUT", "/v1/agents/dave", Some(&agent)).await;
    assert_eq!(code, 422, "{why}");
    assert_eq!(state(&records, &conversation).await, "offered", "the refused accept changed nothing");

    // The same command without the unknown field is taken: the refusals above were for it alone.
    let (code, why) = daemon.api(ALICE, "POST", "/v1/agent/commands", Some(&command(json!({"type": "accept"})))).await;
    assert_eq!(code, 200, "{why}");
    assert_eq!(state(&records, &conversation).await, "assigned");
    daemon.stop().await;
}
