//! The OpenAPI document against a running daemon with every channel that has routes enabled:
//! each documented path is served with exactly its documented methods (axum answers 405 to a
//! method a served path lacks, and an empty 404 to a path it does not serve).

use std::collections::BTreeSet;

use reqwest::Method;
use switchboard_channel_webchat::WebchatConfig;
use switchboard_e2e::TestDaemon;
use switchboard_testkit::FakeBotApi;

const BOT: &str = "424242:openapi-test-token-for-the-fake-bot";
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

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
    let (bot, hook, session) = (dir.path().join("bot"), dir.path().join("hook"), dir.path().join("session"));
    std::fs::write(&bot, BOT).unwrap();
    std::fs::write(&hook, "openapi-test-webhook-secret").unwrap();
    std::fs::write(&session, "openapi-test-session-key-0123456789abcdef").unwrap();
    let api_url = api.url();
    let daemon = TestDaemon::start(None, move |c| {
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
        c.metrics.enabled = true;
    })
    .await;

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
