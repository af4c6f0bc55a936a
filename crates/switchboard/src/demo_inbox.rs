//! `switchboard demo-inbox`: a tiny local receiver for `make run`, standing in for the demo
//! webhook source's backend (where replies to its customers go) and for the demo agent's
//! helpdesk (where its offers, messages and updates go), so the README's walk-through shows a
//! reply reach a customer and an offer reach an agent without anything else installed.
//!
//! It prints one line per delivery and keeps what it got, for `GET` on the same paths. It is a
//! development aid: it checks no signature and keeps everything in memory.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Where the demo source's replies arrive (`channels.webhook.sources.demo.outbound_url`).
pub const REPLIES_PATH: &str = "/switchboard/replies";
/// Where the demo agent's deliveries arrive (`channels.webhook.agents.demo-agent.url`).
pub const AGENT_PATH: &str = "/switchboard/agent";

/// What the inbox received, oldest first.
#[derive(Clone, Default)]
struct Received {
    replies: Arc<Mutex<Vec<Value>>>,
    agent: Arc<Mutex<Vec<Value>>>,
}

/// Serves the inbox on `listener` until `shutdown`; every delivery is also printed by `print`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    print: impl Fn(String) + Send + Sync + 'static,
) -> std::io::Result<()> {
    let print = Arc::new(print);
    let received = Received::default();
    let (p1, p2) = (print.clone(), print);
    let app = Router::new()
        .route(
            REPLIES_PATH,
            get(|State(r): State<Received>| async move { Json(snapshot(&r.replies)) }).post(
                move |State(r): State<Received>, Json(body): Json<Value>| async move {
                    p1(describe_reply(&body));
                    keep(&r.replies, body);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            AGENT_PATH,
            get(|State(r): State<Received>| async move { Json(snapshot(&r.agent)) }).post(
                move |State(r): State<Received>, Json(body): Json<Value>| async move {
                    p2(describe_delivery(&body));
                    keep(&r.agent, body);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(received);
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// The inbox keeps this many of each kind, dropping the oldest: it is a demo, never a store.
const KEEP: usize = 1000;

fn keep(list: &Mutex<Vec<Value>>, body: Value) {
    // A poisoned lock only means a handler panicked mid-push; the list is still usable.
    let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
    if list.len() >= KEEP {
        list.remove(0);
    }
    list.push(body);
}

fn snapshot(list: &Mutex<Vec<Value>>) -> Vec<Value> {
    list.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("?").to_string()
}

/// One line for a message to a customer (an `outbound` webhook body).
pub fn describe_reply(body: &Value) -> String {
    format!(
        "customer {} receives ({}, conversation {}): {}",
        text(body, "customer_id"),
        text(body, "kind"),
        text(body, "conversation_id"),
        text(body, "text")
    )
}

/// One line for a delivery to the demo agent (`agent-delivery/1`: offer, message or update).
pub fn describe_delivery(body: &Value) -> String {
    let agent = text(body, "agent_id");
    let conversation = text(body, "conversation_id");
    match body.get("type").and_then(Value::as_str) {
        Some("offer") => {
            let said = body["history"].as_array().and_then(|h| h.last()).map_or("?".into(), |e| text(e, "text"));
            format!("{agent} is offered conversation {conversation}: \"{said}\"")
        }
        Some("message") => {
            format!("{agent}: the customer wrote again in {conversation}: \"{}\"", text(&body["entry"], "text"))
        }
        Some("update") => format!("{agent}: conversation {conversation} {}", text(body, "change")),
        _ => format!("{agent}: a delivery for conversation {conversation}"),
    }
}
