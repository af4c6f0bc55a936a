//! The frames of the chat's WebSocket: what the widget sends, the close codes, and the helpers
//! that write frames, refuse a frame over the limit and close.

use futures::future::BoxFuture;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_bus::{InboundOutcome, outcomes};
use switchboard_core::AttachmentRef;
use tracing::info;

use crate::CHANNEL;
use crate::server::Shared;
use crate::session::ClaimedIdentity;
use crate::transcript::Entry;

/// Close codes the widget understands (see `docs/webchat-protocol.md`).
pub(crate) mod close {
    /// Protocol error.
    pub const PROTOCOL: u16 = 4400;
    /// Too many messages from one IP (too many sockets are refused at the upgrade, 429).
    pub const TOO_MANY: u16 = 4429;
    /// The server is going away; reconnect.
    pub const RESTART: u16 = 1012;
    /// The socket fell behind; reconnect and resume.
    pub const TRY_AGAIN: u16 = 1013;
    /// A frame over `max_frame_bytes` (RFC 6455 "message too big"); an `error` frame
    /// `frame_too_large` comes first.
    pub const TOO_BIG: u16 = 1009;
}

/// What the widget sends (`docs/webchat-protocol.md`, "Client → server").
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    Hello {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        after: u64,
        #[serde(default)]
        lang: Option<String>,
        #[serde(default)]
        identity: Option<ClaimedIdentity>,
        #[serde(default)]
        page: Option<String>,
    },
    Send {
        client_id: String,
        #[serde(default)]
        text: String,
        #[serde(default)]
        attachments: Vec<AttachmentRef>,
        #[serde(default)]
        prechat: Option<Prechat>,
    },
    Typing {},
    Csat {
        conversation_id: String,
        score: i64,
    },
    Survey {
        conversation_id: String,
        survey: String,
        score: i64,
    },
}

/// The pre-chat form's answers.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Prechat {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

/// An `error` frame; `rate_limited_ip` is sent as `rate_limited` with `scope: "ip"`.
pub(crate) fn error_frame(client_id: Option<&str>, code: &str, message: &str) -> Value {
    let mut frame = match code {
        "rate_limited_ip" => json!({ "type": "error", "code": "rate_limited", "scope": "ip", "message": message }),
        _ => json!({ "type": "error", "code": code, "message": message }),
    };
    if let Some(id) = client_id {
        frame["client_id"] = id.into();
    }
    frame
}

/// Frames up to this many times `max_frame_bytes` are still read, so that the refusal can name
/// the message (its `client_id`); larger ones are refused unread.
pub(crate) const READ_CAP_FACTOR: usize = 4;

/// Refuses a frame over `max_frame_bytes`: counted, answered with an `error` frame
/// `frame_too_large` (with the message's `client_id` when it could be read) and closed with 1009.
/// Boxed, like [`close_with`]: a socket's task is sized for its largest step, and an ending
/// should not make every idle socket larger.
pub(crate) fn too_large<'a>(
    ws: WebSocket,
    shared: &'a Shared,
    session: &'a str,
    client_id: Option<&'a str>,
    unread: bool,
) -> BoxFuture<'a, ()> {
    Box::pin(refuse_too_large(ws, shared, session, client_id, unread))
}

async fn refuse_too_large(mut ws: WebSocket, shared: &Shared, session: &str, client_id: Option<&str>, unread: bool) {
    let limit = shared.cfg.max_frame_bytes;
    info!(session = %session, max_frame_bytes = limit, unread, "web-chat frame over the limit refused");
    outcomes::record(CHANNEL, InboundOutcome::Rejected);
    let mut reply = error_frame(client_id, "frame_too_large", &format!("frames are limited to {limit} bytes"));
    reply["max_frame_bytes"] = limit.into();
    if send_json(&mut ws, &reply).await.is_err() {
        return;
    }
    let frame = CloseFrame { code: close::TOO_BIG, reason: Utf8Bytes::from_static("frame too large") };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    if unread {
        // The rest of the frame is still unread: closing the connection now would reset it, and
        // the peer could lose the error and the close before reading them. Give it a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether a read failed because the frame was over the read cap.
pub(crate) fn is_too_large(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// The next text frame, parsed; `None` when the socket ends or sends something else.
pub(crate) async fn next_frame(ws: &mut WebSocket) -> Option<Result<ClientFrame, ()>> {
    loop {
        match ws.recv().await? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).map_err(|_| ())),
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

/// Sends one JSON frame.
pub(crate) async fn send_json(ws: &mut WebSocket, value: &Value) -> Result<(), axum::Error> {
    ws.send(Message::Text(Utf8Bytes::from(value.to_string()))).await
}

/// Sends a transcript entry with its sequence.
pub(crate) async fn send_entry(ws: &mut WebSocket, seq: u64, entry: &Entry) -> Result<(), axum::Error> {
    send_json(ws, &json!({ "type": "entry", "seq": seq, "entry": entry })).await
}

/// Closes the socket with `code` and `reason` (boxed: see [`too_large`]).
pub(crate) fn close_with(mut ws: WebSocket, code: u16, reason: &str) -> BoxFuture<'static, ()> {
    let frame = CloseFrame { code, reason: Utf8Bytes::from(reason.to_string()) };
    Box::pin(async move {
        let _ = ws.send(Message::Close(Some(frame))).await;
    })
}
