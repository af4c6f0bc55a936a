//! The SMS channel registered in the daemon (the `example-sms` feature; its only registration is in
//! `crates/switchboard/src/channels.rs`): `[channels.sms]` is read and checked like any section,
//! the channel's route is served on the daemon's listener, its consumer runs, and `/readyz` lists it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_adapter::testkit::{self, TestBus, wait_for};
use switchboard_core::contract::{streams, subjects};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "daemon-test-token-0123456789";
const WAIT: Duration = Duration::from_secs(15);

fn write_config(dir: &std::path::Path, nats: &str, gateway_url: &str) -> std::path::PathBuf {
    let token = dir.join("sms.token");
    std::fs::write(&token, TOKEN).unwrap();
    let path = dir.join("switchboard.toml");
    let toml = format!(
        "[nats]\nurl = \"{nats}\"\n[router]\nenabled = false\n[channels.webhook]\nenabled = false\n\
         [channels.sms]\nenabled = true\ngateway_url = \"{gateway_url}\"\ntoken_file = \"{}\"\n",
        token.display()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test]
async fn the_daemon_runs_the_registered_sms_channel() {
    let bus = TestBus::start().await;
    let dir = tempfile::tempdir().unwrap();

    // A gateway that takes everything and remembers the numbers it was asked to text.
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = sent.clone();
    let gateway = axum::Router::new().route(
        "/messages",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| async move {
            record.lock().unwrap().push(body["to"].as_str().unwrap_or_default().to_string());
            axum::Json(json!({ "id": "gw-1" }))
        }),
    );
    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}", gateway_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(gateway_listener, gateway).await.unwrap() });

    let config = switchboard::Config::load(&write_config(dir.path(), &bus.server.url(), &gateway_url))
        .expect("[channels.sms] is a known section once the feature is on");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(switchboard::daemon::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();

    wait_for("the daemon and its sms channel are ready", WAIT, || async {
        let Ok(response) = http.get(format!("{base}/readyz")).send().await else { return false };
        let body: Value = response.json().await.unwrap_or_default();
        body["components"]["sms"] == "ready"
    })
    .await;

    let sms = json!({ "id": "gw-daemon-1", "from": "+4915112345678", "text": "hello from the daemon test" });
    let answer = http.post(format!("{base}/v1/sms/inbound")).bearer_auth(TOKEN).json(&sms).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let stored = bus.stored(streams::INBOUND, &subjects::inbound("sms")).await;
    assert_eq!(stored.len(), 1);

    bus.send_outbound(&testkit::outbound("sms", "+4915100000009", "a reply")).await;
    wait_for("the reply reached the gateway", WAIT, || async { sent.lock().unwrap().len() == 1 }).await;
    assert_eq!(sent.lock().unwrap()[0], "+4915100000009");

    shutdown.cancel();
    tokio::time::timeout(WAIT, daemon).await.expect("the daemon stops").unwrap().expect("cleanly");
}

#[test]
fn a_bad_sms_section_is_reported_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "nats://127.0.0.1:4222", "ftp://gateway");
    let err = switchboard::Config::load(&path).unwrap_err();
    assert_eq!(err.key, "channels.sms.gateway_url", "{err}");
}
