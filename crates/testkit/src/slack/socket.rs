//! The fake's Socket Mode WebSocket: `hello` on connect, envelopes the test sends, acks recorded.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Shared, SocketAck};

/// What the test makes the fake send on the connected socket.
pub(crate) enum Out {
    /// A text frame (an envelope, `disconnect`).
    Text(String),
    /// A close frame, then the connection ends.
    Close,
}

pub(super) async fn serve(shared: Arc<Shared>, mut ws: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let number = {
        let mut state = shared.lock();
        state.socket_connections += 1;
        state.socket = Some(tx);
        state.socket_connections
    };
    shared.updated();
    let hello = json!({ "type": "hello", "num_connections": 1,
                        "debug_info": { "host": "fake-slack", "approximate_connection_time": 18060 },
                        "connection_info": { "app_id": "A0FAKE" } });
    if ws.send(Message::Text(hello.to_string().into())).await.is_ok() {
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(Out::Text(text)) => {
                        if ws.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Out::Close) | None => {
                        let _ = ws.send(Message::Close(None)).await;
                        break;
                    }
                },
                got = ws.recv() => match got {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(ack) = serde_json::from_str::<Value>(&text) else { continue };
                        if let Some(id) = ack["envelope_id"].as_str() {
                            let payload = ack.get("payload").cloned();
                            shared.lock().acks.push(SocketAck { envelope_id: id.into(), payload });
                            shared.updated();
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
            }
        }
    }
    let mut state = shared.lock();
    if state.socket_connections == number {
        state.socket = None;
    }
    drop(state);
    shared.updated();
}
