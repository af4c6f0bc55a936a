//! The fake Slack over raw HTTP and a WebSocket: the rules it enforces (tokens, known channels,
//! Block Kit limits, updates of the bot's own messages, uploads in three steps, private files to
//! the bot token), the rate limit it answers on demand, and Socket Mode's hello, envelopes and
//! acks.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_testkit::FakeSlack;
use tokio::time::timeout;

const BOT: &str = "xoxb-testkit-bot";
const APP: &str = "xapp-1-testkit-app";

async fn call(fake: &FakeSlack, token: &str, method: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/{method}", fake.api_base()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_web_api_enforces_slacks_rules() {
    let fake = FakeSlack::start(BOT, APP).await;
    fake.add_channel("C1");
    let (_, me) = call(&fake, BOT, "auth.test", json!({})).await;
    assert_eq!(me["ok"], true);
    assert_eq!(call(&fake, "xoxb-other", "auth.test", json!({})).await.1["error"], "invalid_auth");
    assert_eq!(
        call(&fake, APP, "chat.postMessage", json!({ "channel": "C1", "text": "x" })).await.1["error"],
        "invalid_auth"
    );
    assert_eq!(
        call(&fake, BOT, "chat.postMessage", json!({ "channel": "C9", "text": "x" })).await.1["error"],
        "channel_not_found"
    );
    assert_eq!(call(&fake, BOT, "chat.postMessage", json!({ "channel": "C1" })).await.1["error"], "no_text");
    let long = json!([{ "type": "section", "text": { "type": "mrkdwn", "text": "x".repeat(3001) } }]);
    assert_eq!(
        call(&fake, BOT, "chat.postMessage", json!({ "channel": "C1", "blocks": long })).await.1["error"],
        "invalid_blocks"
    );
    let unnamed = json!([{ "type": "actions", "elements": [{ "type": "button", "text": { "type": "plain_text", "text": "Go" } }] }]);
    assert_eq!(
        call(&fake, BOT, "chat.postMessage", json!({ "channel": "C1", "blocks": unnamed })).await.1["error"],
        "invalid_blocks"
    );
    let (_, dm) = call(&fake, BOT, "conversations.open", json!({ "users": "U1" })).await;
    assert_eq!(dm["channel"]["id"], FakeSlack::dm_id_for("U1"));
    let (_, posted) = call(&fake, BOT, "chat.postMessage", json!({ "channel": "D1", "text": "v1" })).await;
    let ts = posted["ts"].as_str().unwrap().to_string();
    assert_eq!(
        call(&fake, BOT, "chat.update", json!({ "channel": "D1", "ts": "1.0", "text": "v2" })).await.1["error"],
        "message_not_found"
    );
    assert_eq!(call(&fake, BOT, "chat.update", json!({ "channel": "D1", "ts": ts, "text": "v2" })).await.1["ok"], true);
    let in_thread = json!({ "channel": "D1", "text": "r", "thread_ts": "9.9" });
    assert_eq!(call(&fake, BOT, "chat.postMessage", in_thread).await.1["error"], "thread_not_found");
    let m = &fake.messages_in("D1")[0];
    assert_eq!((m.text.as_str(), m.earlier.as_slice()), ("v2", ["v1".to_string()].as_slice()));

    // 429 with Retry-After, then served again.
    fake.rate_limit("chat.postMessage", 1, 7);
    let limited = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", fake.api_base()))
        .bearer_auth(BOT)
        .json(&json!({ "channel": "C1", "text": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    assert_eq!(limited.json::<Value>().await.unwrap()["error"], "ratelimited");
    assert_eq!(call(&fake, BOT, "chat.postMessage", json!({ "channel": "C1", "text": "x" })).await.1["ok"], true);

    // Files: private ones only to the bot token; uploads complete only with their bytes.
    let file = fake.add_file("F1", "a.txt", "text/plain", b"abc".to_vec());
    let url = file["url_private_download"].as_str().unwrap();
    let http = reqwest::Client::new();
    assert_eq!(http.get(url).bearer_auth(BOT).send().await.unwrap().bytes().await.unwrap().as_ref(), b"abc");
    assert!(http.get(url).send().await.unwrap().text().await.unwrap().contains("sign in"));
    let form = [("filename", "b.txt"), ("length", "3")];
    let got: Value = http
        .post(format!("{}/files.getUploadURLExternal", fake.api_base()))
        .bearer_auth(BOT)
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files = json!([{ "id": got["file_id"] }]).to_string();
    let early = call(&fake, BOT, "files.completeUploadExternal", json!({ "files": files, "channel_id": "C1" })).await;
    assert_eq!(early.1["error"], "file_not_found");
    http.post(got["upload_url"].as_str().unwrap()).body("xyz").send().await.unwrap();
    let done = call(&fake, BOT, "files.completeUploadExternal", json!({ "files": files, "channel_id": "C1" })).await;
    assert_eq!(done.1["ok"], true);
    assert_eq!(fake.uploads()[0].bytes, b"xyz");
    assert_eq!(fake.messages_in("C1").last().unwrap().files, ["b.txt"]);
}

#[tokio::test]
async fn socket_mode_says_hello_sends_envelopes_and_records_acks() {
    use futures::{SinkExt, StreamExt};
    let fake = FakeSlack::start(BOT, APP).await;
    let (_, opened) = call(&fake, APP, "apps.connections.open", json!({})).await;
    let url = opened["url"].as_str().unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = timeout(Duration::from_secs(3), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(hello.to_text().unwrap()).unwrap()["type"], "hello");
    let id = fake.socket_send("events_api", json!({ "type": "event_callback" }));
    let envelope = timeout(Duration::from_secs(3), ws.next()).await.unwrap().unwrap().unwrap();
    let envelope: Value = serde_json::from_str(envelope.to_text().unwrap()).unwrap();
    assert_eq!((envelope["envelope_id"].as_str(), envelope["type"].as_str()), (Some(id.as_str()), Some("events_api")));
    ws.send(tokio_tungstenite::tungstenite::Message::Text(json!({ "envelope_id": id }).to_string().into()))
        .await
        .unwrap();
    fake.wait_for("the ack", Duration::from_secs(3), |f| f.socket_acks().into_iter().find(|a| a.envelope_id == id))
        .await;
    fake.socket_disconnect();
    let bye = timeout(Duration::from_secs(3), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(bye.to_text().unwrap()).unwrap()["type"], "disconnect");
    fake.wait_for("the socket closed", Duration::from_secs(3), |f| (!f.socket_connected()).then_some(())).await;
}
