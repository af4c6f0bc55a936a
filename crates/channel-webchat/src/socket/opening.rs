//! A socket's opening: `hello` (or the reason it is refused), `welcome`, the transcript the
//! widget has not seen, `synced`. It runs once, boxed, so its large steps are not part of the
//! idle socket's task.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocket;
use serde_json::{Value, json};
use switchboard_bus::{InboundOutcome, outcomes};
use switchboard_core::Customer;
use tracing::{debug, warn};

use super::{Conn, Open};
use crate::CHANNEL;
use crate::frames::{ClientFrame, close, close_with, next_frame, send_entry, send_json};
use crate::server::Shared;
use crate::transcript;

/// Entries replayed at most on connect (the transcript keeps 1,000 per session).
const HISTORY_LIMIT: usize = 1000;
/// How long a new socket may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The opening: `hello`, `welcome`, the transcript the widget has not seen, `synced`. `None`
/// when the socket ended (closed with the reason where there is one).
pub(super) async fn open(shared: Arc<Shared>, mut ws: WebSocket, ip: IpAddr) -> Option<Box<Open>> {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, next_frame(&mut ws)).await {
        Ok(Some(Ok(ClientFrame::Hello { token, after, lang, identity, page }))) => (token, after, lang, identity, page),
        Ok(Some(Ok(ClientFrame::Send { .. }))) => {
            // A message before hello is refused (the widget always says hello first): counted.
            outcomes::record(CHANNEL, InboundOutcome::Rejected);
            {
                close_with(ws, close::PROTOCOL, "say hello first").await;
                return None;
            }
        }
        Ok(Some(Ok(_))) | Ok(Some(Err(_))) => {
            close_with(ws, close::PROTOCOL, "say hello first").await;
            return None;
        }
        Ok(None) => return None,
        Err(_) => {
            close_with(ws, close::PROTOCOL, "no hello").await;
            return None;
        }
    };
    let (token, after, lang, identity, page) = hello;
    let (session, token) = match token.as_deref().and_then(|t| shared.sessions.verify(t)) {
        Some(session) => (session, token.unwrap_or_default()),
        None => shared.sessions.issue(),
    };
    let verified_user = identity.as_ref().and_then(|claim| shared.sessions.verify_identity(claim));
    let customer = Customer {
        id: match &verified_user {
            Some(user) => format!("user:{user}"),
            None => format!("visitor:{session}"),
        },
        name: identity.as_ref().filter(|_| verified_user.is_some()).and_then(|c| c.name.clone()),
        // An address is an identity link (same email = one person), so only a vouched-for one.
        email: identity
            .as_ref()
            .filter(|_| verified_user.is_some())
            .and_then(|c| c.email.clone())
            .filter(|e| e.contains('@')),
        phone: None,
        language: lang.filter(|l| l.len() <= 16 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')),
    };
    // Every session id this server issues or verifies is one the hub can key.
    let Some((_registration, pushes)) = shared.hub.register(&session) else {
        warn!(session = %session, "web-chat session id the hub cannot key");
        close_with(ws, close::RESTART, "try again").await;
        return None;
    };
    let profile = shared.profile(&session).await.unwrap_or_else(|e| {
        warn!(session = %session, error = %e, "pre-chat answers unavailable");
        None
    });
    let mut conn = Conn {
        shared: shared.clone(),
        ip,
        session,
        customer,
        verified: verified_user.is_some(),
        page: page.map(|p| p.chars().take(512).collect()),
        profile: profile.map(Box::new),
        last_seq: after,
        sent: BTreeMap::new(),
        resolved: BTreeMap::new(),
        rated: BTreeSet::new(),
        agent_name: None,
    };
    debug!(session = %conn.session, verified = conn.verified, "web-chat socket open");

    let team = conn.team();
    let online = Box::pin(shared.online(&team)).await;
    let welcome = json!({
        "type": "welcome",
        "token": token,
        "session": conn.session,
        "online": online,
        "prechat": shared.cfg.prechat.then(|| prechat_form(&shared, &conn.customer, conn.verified)).flatten(),
        "limits": {
            "max_text_bytes": shared.cfg.max_text_bytes,
            "max_frame_bytes": shared.cfg.max_frame_bytes,
            "max_upload_bytes": shared.cfg.max_upload_bytes,
        },
    });
    if send_json(&mut ws, &welcome).await.is_err() {
        return None;
    }
    // History from the start, so the socket knows every sent message and resolved conversation;
    // only what the widget has not seen is sent to it.
    let history = match shared.bus() {
        Ok(bus) => Box::pin(transcript::history(bus, &conn.session, 0, HISTORY_LIMIT)).await,
        Err(e) => Err(e),
    };
    let history = match history {
        Ok(h) => h,
        Err(e) => {
            warn!(session = %conn.session, error = %e, "transcript unavailable");
            {
                close_with(ws, close::RESTART, "try again").await;
                return None;
            }
        }
    };
    for (seq, entry) in history {
        if conn.learn(seq, &entry) && send_entry(&mut ws, seq, &entry).await.is_err() {
            return None;
        }
    }
    if send_json(&mut ws, &json!({ "type": "synced", "seq": conn.last_seq })).await.is_err() {
        return None;
    }
    Some(Box::new(Open { ws, conn, pushes, _registration }))
}

/// The pre-chat form for this visitor: no name or email the host site vouched for (a signed-in
/// visitor is not asked again), and no form when nothing is left to ask.
fn prechat_form(shared: &Shared, customer: &Customer, verified: bool) -> Option<Value> {
    let russian = customer.language.as_deref().is_some_and(|l| l.starts_with("ru"));
    let topics: Vec<Value> = shared
        .cfg
        .topics
        .iter()
        .map(|(id, t)| {
            let label = if russian { t.ru.clone().unwrap_or_else(|| t.en.clone()) } else { t.en.clone() };
            json!({ "id": id, "label": label })
        })
        .collect();
    let mut fields = Vec::new();
    if !(verified && customer.name.is_some()) {
        fields.push("name");
    }
    if !(verified && customer.email.is_some()) {
        fields.push("email");
    }
    if !topics.is_empty() {
        fields.push("topic");
    }
    (!fields.is_empty()).then(|| json!({ "fields": fields, "topics": topics }))
}
