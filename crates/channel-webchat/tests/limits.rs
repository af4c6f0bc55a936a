//! The web chat's limits as a browser meets them: a frame over `max_frame_bytes` is refused with an
//! error frame and close 1009, every message within the text limit fits the smallest frame limit
//! the configuration accepts, and `/chat/admission` tells a busy address from a site not allowed.

mod common;

use common::*;
use serde_json::{Value, json};
use switchboard_bus::{InboundOutcome, outcomes};
use switchboard_channel_webchat::{CHANNEL, WebchatConfig};
use tokio_tungstenite::tungstenite::Error as WsError;

/// The smallest `max_frame_bytes` the configuration accepts with `max_text_bytes = text`.
fn smallest_accepted_frame(dir: &std::path::Path, text: usize) -> usize {
    let mut cfg = config(dir);
    cfg.max_text_bytes = text;
    (text..text * 20 + 1024 * 1024)
        .find(|&n| {
            cfg.max_frame_bytes = n;
            cfg.validate().is_ok()
        })
        .expect("some frame size is accepted")
}

#[tokio::test]
async fn every_message_within_the_text_limit_fits_the_smallest_frame_the_config_accepts() {
    const TEXT: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let smallest = smallest_accepted_frame(dir.path(), TEXT);
    let chat = Chat::start(|cfg| {
        cfg.max_text_bytes = TEXT;
        cfg.max_frame_bytes = smallest;
    })
    .await;
    let (mut ws, welcome) = chat.open(json!({})).await;
    ws.history().await;
    // JSON escapes `"` and `\` as 2 bytes and a control character as 6: each text is at the limit.
    let texts =
        ["\"".repeat(TEXT), "\\".repeat(TEXT), "\u{1}".repeat(TEXT), format!("{}\u{1f}", "\"".repeat(TEXT - 1))];
    let long_name = "\u{1}".repeat(100);
    for (i, text) in texts.iter().enumerate() {
        let mut frame = json!({ "type": "send", "client_id": format!("m{i}"), "text": text });
        if i == 0 {
            frame["prechat"] = json!({ "name": long_name, "email": format!("{}@example.com", "\"".repeat(200)) });
        }
        ws.send(frame).await;
        let reply = ws.next_of_any(&["ack", "error"]).await;
        assert_eq!(reply["type"], "ack", "message {i} ({} bytes) at max_frame_bytes = {smallest}: {reply}", text.len());
    }
    assert_eq!(chat.envelopes().await.len(), texts.len());
    assert_eq!(welcome["limits"]["max_frame_bytes"], smallest, "the widget is not told the frame limit");
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn a_frame_over_the_limit_gets_an_error_frame_and_close_1009() {
    let chat = Chat::start(|cfg| cfg.max_text_bytes = 100).await;
    let rejected_before = outcomes::count(CHANNEL, InboundOutcome::Rejected);
    let (mut ws, _) = chat.open(json!({})).await;
    ws.history().await;
    ws.send(json!({ "type": "send", "client_id": "ok", "text": "fine" })).await;
    ws.next_of("ack").await;
    let limit = WebchatConfig::default().max_frame_bytes;
    ws.send(json!({ "type": "send", "client_id": "big", "text": "x".repeat(limit) })).await;
    let error = ws.next_of("error").await;
    assert_eq!(error["code"], "frame_too_large", "{error}");
    assert_eq!(error["client_id"], "big", "the refusal does not name the message: {error}");
    assert_eq!(error["max_frame_bytes"], limit, "{error}");
    assert_eq!(ws.closed().await, Some(1009), "not closed with 1009 (message too big)");
    // Far over the limit, the frame is refused unread: the error names no message.
    let (mut ws, _) = chat.open(json!({})).await;
    ws.history().await;
    ws.send(json!({ "type": "send", "client_id": "huge", "text": "x".repeat(limit * 5) })).await;
    let error = ws.next_of("error").await;
    assert_eq!((&error["code"], &error["client_id"]), (&json!("frame_too_large"), &Value::Null), "{error}");
    assert_eq!(ws.closed().await, Some(1009), "not closed with 1009 (message too big)");
    assert_eq!(chat.envelopes().await.len(), 1, "a frame over the limit stored something");
    // Each counted once, as rejected.
    assert_eq!(
        outcomes::count(CHANNEL, InboundOutcome::Rejected) - rejected_before,
        2,
        "the refused frames are not counted"
    );
    chat.running.unwrap().stop().await;
}

async fn admission(chat: &Chat, origin: Option<&str>) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().get(format!("http://{}/chat/admission", chat.base));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, response.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test]
async fn the_widget_can_tell_a_busy_address_from_a_site_not_allowed() {
    let chat = Chat::start(|_| {}).await; // 4 sockets per address
    let (status, body, headers) = admission(&chat, Some(ORIGIN)).await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    let (status, body, headers) = admission(&chat, Some("http://evil.test")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("origin_not_allowed")), "{body}");
    // Readable by the refused page, or its widget would take the refusal for an outage.
    assert_eq!(headers["access-control-allow-origin"], "http://evil.test");

    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(chat.open(json!({})).await.0);
    }
    match chat.connect_from(Some(ORIGIN)).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "5");
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["code"], "busy", "{body}");
        }
        other => panic!("a fifth socket should be refused with 429, got {:?}", other.map(|_| "a socket")),
    }
    let (status, body, headers) = admission(&chat, Some(ORIGIN)).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("busy")), "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(headers["access-control-expose-headers"], "retry-after");
    // A slot freed: admitted again.
    drop(open.pop());
    switchboard_adapter::testkit::wait_for("admission once a socket closed", WAIT, || async {
        admission(&chat, Some(ORIGIN)).await.0 == 200
    })
    .await;
    chat.connect_from(Some(ORIGIN)).await.expect("a socket once a slot is free");
    chat.running.unwrap().stop().await;
}
