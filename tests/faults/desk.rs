//! The agents' helpdesk: a local axum receiver for the agent endpoints that records every offer
//! and message (by `webhook-id`), and answers like an agent through the agent API: accept the
//! offer, reply to each customer message with the message's id in the text.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use switchboard_channel_webhook::signature;

use super::checker::{Checker, Outcome};
use super::cluster::DESK_TOKEN;

/// Marks a message id inside a text: `... [m:<id>]`.
pub fn tag(id: &str) -> String {
    format!("[m:{id}]")
}

/// The message id tagged in `text`, if any.
pub fn tagged(text: &str) -> Option<&str> {
    let start = text.find("[m:")? + 3;
    let end = text[start..].find(']')? + start;
    Some(&text[start..end])
}

/// How the desk behaves.
#[derive(Debug, Clone, Default)]
pub struct DeskBehaviour {
    /// Accept offers and reply (otherwise only record).
    pub answer: bool,
    /// Time each POST takes before it is answered (a slow helpdesk).
    pub delay: Duration,
    /// The first this-many POSTs of each delivery id get `503` (a helpdesk that is down a while).
    pub fail_first: u32,
}

/// One POST the desk received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The agent it was for (the URL's last segment).
    pub agent: String,
    /// Its `webhook-id`.
    pub webhook_id: String,
    /// Its body.
    pub body: Value,
}

/// The agents' helpdesk.
pub struct Desk {
    /// Base URL; agent `x` receives at `<url>/x`.
    pub url: String,
    inner: Arc<Inner>,
}

struct Inner {
    behaviour: DeskBehaviour,
    /// Customer messages reaching agents.
    inbound: Arc<Checker>,
    /// Agents' replies (sent through the API here) and, for customers whose ids start with
    /// `dead-`, the dead-letter checker instead.
    replies: Arc<Checker>,
    dead: Arc<Checker>,
    api: Mutex<Vec<String>>,
    http: reqwest::Client,
    deadline: Mutex<Instant>,
    attempts: Mutex<BTreeMap<String, u32>>,
    received: Mutex<Vec<Received>>,
    customers: Mutex<BTreeMap<String, String>>,
}

impl Desk {
    /// Starts the receiver; `inbound`, `replies` and `dead` are the run's checkers.
    pub async fn start(
        behaviour: DeskBehaviour,
        inbound: Arc<Checker>,
        replies: Arc<Checker>,
        dead: Arc<Checker>,
    ) -> Desk {
        let inner = Arc::new(Inner {
            behaviour,
            inbound,
            replies,
            dead,
            api: Mutex::new(Vec::new()),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client"),
            deadline: Mutex::new(Instant::now() + Duration::from_secs(600)),
            attempts: Mutex::new(BTreeMap::new()),
            received: Mutex::new(Vec::new()),
            customers: Mutex::new(BTreeMap::new()),
        });
        let app = axum::Router::new().route("/agent/{agent}", axum::routing::post(receive)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the desk");
        let url = format!("http://{}/agent", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("desk serves") });
        Desk { url, inner }
    }

    /// Where the agent API is (any of these processes; tried in turn when one is down).
    pub fn use_api(&self, bases: Vec<String>) {
        *self.inner.api.lock().expect("desk lock") = bases;
    }

    /// Until when the desk retries its commands.
    pub fn set_deadline(&self, deadline: Instant) {
        *self.inner.deadline.lock().expect("desk lock") = deadline;
    }

    /// Every POST so far (successful ones; refused attempts are not here).
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("desk lock").clone()
    }

    /// POSTs refused so far with `503` (by delivery id).
    pub fn refused(&self) -> BTreeMap<String, u32> {
        self.inner.attempts.lock().expect("desk lock").clone()
    }

    /// Sends a command as `agent` through the API until it is acknowledged, refused or the
    /// deadline passes; returns the last outcome and status.
    pub async fn command(&self, agent: &str, conversation: &str, key: &str, action: Value) -> (Outcome, u16) {
        self.inner.command(agent, conversation, key, action, None).await
    }
}

async fn receive(
    State(desk): State<Arc<Inner>>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let webhook_id = headers.get(signature::ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    {
        let mut attempts = desk.attempts.lock().expect("desk lock");
        let n = attempts.entry(webhook_id.clone()).or_default();
        if *n < desk.behaviour.fail_first {
            *n += 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    // A slow helpdesk: the daemon must wait for it (its delivery timeout is longer) or retry.
    tokio::time::sleep(desk.behaviour.delay).await;
    let Ok(body) = serde_json::from_str::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    desk.received.lock().expect("desk lock").push(Received {
        agent: agent.clone(),
        webhook_id: webhook_id.clone(),
        body: body.clone(),
    });
    let conversation = body["conversation_id"].as_str().unwrap_or_default().to_string();
    if let Some(customer) = body["customer"]["id"].as_str() {
        desk.customers.lock().expect("desk lock").insert(conversation.clone(), customer.to_string());
    }
    let entries: Vec<&Value> = match body["type"].as_str() {
        Some("offer") => body["history"].as_array().map(|h| h.iter().collect()).unwrap_or_default(),
        Some("message") => vec![&body["entry"]],
        _ => Vec::new(),
    };
    let mut fresh = Vec::new();
    for entry in entries.into_iter().filter(|e| e["from"] == "customer") {
        if let Some(id) = entry["text"].as_str().and_then(tagged)
            && desk.inbound.delivered(id, &webhook_id)
        {
            fresh.push(id.to_string());
        }
    }
    // Like a de-duplicating receiver: act once per delivery id, in the background.
    if desk.behaviour.answer && (!fresh.is_empty() || body["type"] == "offer") {
        let accept = body["type"] == "offer"
            && body["actions"].as_array().is_some_and(|a| a.iter().any(|x| x == "accept"))
            && desk.received.lock().expect("desk lock").iter().filter(|r| r.webhook_id == webhook_id).count() == 1;
        let desk = desk.clone();
        tokio::spawn(async move { desk.act(&agent, &conversation, accept, fresh).await });
    }
    StatusCode::NO_CONTENT
}

impl Inner {
    async fn act(&self, agent: &str, conversation: &str, accept: bool, messages: Vec<String>) {
        let mut accepted = None;
        if accept {
            let key = format!("accept:{conversation}:{agent}");
            let (outcome, status) = self.command(agent, conversation, &key, json!({"type": "accept"}), None).await;
            if outcome != Outcome::Acked {
                eprintln!("desk: accept of {conversation} by {agent} ended {outcome:?} ({status})");
                return;
            }
            accepted = Some(status);
        }
        let dead = self.customers.lock().expect("desk lock").get(conversation).is_some_and(|c| c.starts_with("dead-"));
        let checker = if dead { &self.dead } else { &self.replies };
        for id in messages {
            let action = json!({"type": "reply", "text": format!("Answer to {}", tag(&id))});
            let (outcome, status) =
                self.command(agent, conversation, &format!("reply:{id}"), action, Some((checker, &id))).await;
            if outcome != Outcome::Acked {
                eprintln!(
                    "desk: reply to {id} in {conversation} by {agent} ended {outcome:?} ({status}); accepted: {accepted:?}"
                );
            }
        }
    }

    async fn command(
        &self,
        agent: &str,
        conversation: &str,
        key: &str,
        action: Value,
        track: Option<(&Arc<Checker>, &str)>,
    ) -> (Outcome, u16) {
        let id = switchboard_adapter::derived_command_id(&format!("faults:{key}"));
        let body = json!({"id": id, "agent_id": agent, "conversation_id": conversation, "action": action});
        let deadline = *self.deadline.lock().expect("desk lock");
        let mut attempt = 0usize;
        loop {
            let bases = self.api.lock().expect("desk lock").clone();
            let base = &bases[attempt % bases.len().max(1)];
            attempt += 1;
            if let Some((checker, id)) = track {
                checker.invoke(id);
            }
            let resp = self
                .http
                .post(format!("{base}/v1/agent/commands"))
                .bearer_auth(DESK_TOKEN)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16());
            let (outcome, status) = match resp {
                Ok(s @ (200 | 202)) => (Outcome::Acked, s),
                Ok(s @ (408 | 429 | 500..)) => (Outcome::Indeterminate, s),
                Ok(s) => (Outcome::Failed, s),
                Err(_) => (Outcome::Indeterminate, 0),
            };
            if let Some((checker, id)) = track {
                checker.record(id, outcome);
            }
            if outcome != Outcome::Indeterminate || Instant::now() > deadline {
                return (outcome, status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
