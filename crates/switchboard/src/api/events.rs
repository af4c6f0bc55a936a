//! Agents on the API alone: `GET /v1/agent/events` streams an agent's deliveries (offers,
//! messages, updates) as Server-Sent Events, resumable with `Last-Event-ID`, and
//! `GET /v1/agent/offers` lists its open offers.
//!
//! The router stores every delivery to an agent on the agent's own subject
//! `sb.agent.out.api.<agent id>` (stream `SB_AGENT`), whatever its endpoints, so an agent with no
//! endpoint gets them too. A stream is an ordered consumer on that subject from a start sequence:
//! the server filters, nothing is kept here, and the stream sequence is the event id, so a client
//! that reconnects with the last id it saw gets exactly the deliveries after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use switchboard_core::contract::{headers as contract_headers, streams, subjects};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use utoipa::{IntoParams, ToSchema};

use super::{Api, ApiError, Token, error};

/// Streams one token may hold open for one agent (or for every agent) at once: enough for a
/// reconnect overlapping the old connection and a second client; more are refused (`429`)
/// rather than holding connections and consumers without bound.
pub(crate) const MAX_STREAMS_PER_TOKEN: usize = 4;

/// Longest pause between two writes on a stream; a comment line is sent when nothing else was.
const KEEP_ALIVE_MAX: Duration = Duration::from_secs(15);

/// How long `GET /v1/agent/offers` waits for each group's router.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// What the event streams share: the shutdown that ends them, the keep-alive interval (below
/// the listener's idle timeout, so an open stream is never cut as idle) and the open streams.
#[derive(Clone)]
pub(crate) struct Streams {
    shutdown: CancellationToken,
    keep_alive: Duration,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for Streams {
    fn default() -> Self {
        Streams { shutdown: CancellationToken::new(), keep_alive: KEEP_ALIVE_MAX, open: Arc::default() }
    }
}

/// One open stream's place under [`MAX_STREAMS_PER_TOKEN`]; given back when the stream ends
/// (the client went away, or the daemon stops).
struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl StreamSlot {
    fn take(streams: &Streams, key: String) -> Option<StreamSlot> {
        let mut open = streams.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key.clone()).or_default();
        if *n >= MAX_STREAMS_PER_TOKEN {
            return None;
        }
        *n += 1;
        Some(StreamSlot { open: streams.open.clone(), key })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl Api {
    /// Ends the event streams on `shutdown` (a stream never finishes by itself, and the listener
    /// waits for open responses), and keeps them under the listener's `idle_timeout` with
    /// keep-alive comments.
    pub fn with_event_streams(mut self, shutdown: CancellationToken, idle_timeout: Duration) -> Api {
        let keep_alive = (idle_timeout / 3).clamp(Duration::from_millis(100), KEEP_ALIVE_MAX);
        self.streams = Streams { shutdown, keep_alive, open: Arc::default() };
        self
    }
}

/// Whose deliveries: with an integration token, `agent_id` names the agent (every agent's when
/// absent); an agent token reads only its own.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AgentQuery {
    /// The agent (integration tokens); must be the token's own with an agent token.
    #[serde(default)]
    agent_id: Option<String>,
}

/// The agent a read acts for: `None` is every agent (integration tokens only).
fn reader(token: &Token, named: Option<String>) -> Result<Option<String>, (StatusCode, String)> {
    let agent = match (&token.agent, named) {
        (Some(own), Some(named)) if *own != named => {
            return Err((StatusCode::FORBIDDEN, format!("this token reads as `{own}`, not `{named}`")));
        }
        (Some(own), _) => Some(own.clone()),
        (None, named) => named,
    };
    if let Some(a) = agent.as_deref().filter(|a| !switchboard_core::agent::has_own_stream(a)) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("agent_id `{a}`: no agent stream for an id with '.', '*', '>' or spaces"),
        ));
    }
    Ok(agent)
}

/// Where a stream starts: after the `Last-Event-ID` the client sent, else after what is stored.
fn resume_from(headers: &HeaderMap) -> Result<Option<u64>, (StatusCode, String)> {
    let Some(value) = headers.get("last-event-id") else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| (StatusCode::BAD_REQUEST, "Last-Event-ID: not an event id of this stream (a number)".into()))
}

/// The token and the agent whose deliveries it reads (`None`: every agent's, for an integration
/// token that names none), or the refusal: the same checks for the stream and the offers.
fn authorised(
    api: &Api,
    headers: &HeaderMap,
    query: Result<Query<AgentQuery>, QueryRejection>,
) -> Result<(Arc<Token>, Option<String>), (StatusCode, String)> {
    let token = api.authenticate(headers).map_err(|why| (StatusCode::UNAUTHORIZED, why.to_string()))?;
    let Query(query) = query.map_err(|e| (StatusCode::BAD_REQUEST, e.body_text()))?;
    let agent = reader(&token, query.agent_id)?;
    Ok((token, agent))
}

/// The events `GET /v1/agent/events` sends (documentation of the `text/event-stream` body).
///
/// Each delivery is one event: `event:` is the delivery's `type` (`offer`, `message`, `update`),
/// `id:` its position (send it back as `Last-Event-ID` to resume), `data:` the delivery as JSON
/// (`offer/1`, `message/1`, `update/1`). The stream opens with `event: ready` (`id:` the position
/// it starts after); `event: truncated` says deliveries after the requested position were
/// dropped by the stream's retention (then `GET /v1/agent/offers` and `GET
/// /v1/conversations/{id}` tell the state). Lines starting with `:` are keep-alive comments.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct AgentEvents {
    /// `ready`, `truncated`, or the delivery's type.
    event: String,
    /// The position: the stream sequence of the delivery.
    id: u64,
    /// The delivery (`offer/1`, `message/1`, `update/1`) as JSON.
    data: serde_json::Value,
}

/// Streams the agent's deliveries as Server-Sent Events, from after `Last-Event-ID`.
#[utoipa::path(
    get,
    path = "/v1/agent/events",
    tag = "agent",
    security(("bearer" = [])),
    params(
        AgentQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "The last event id seen: the stream resumes right after it."),
    ),
    responses(
        (status = 200, description = "The stream (`text/event-stream`): `ready`, then one event per delivery; `truncated` when retention dropped some.", body = AgentEvents, content_type = "text/event-stream"),
        (status = 400, description = "`Last-Event-ID` is not a number, `agent_id` is not an agent id, or an unknown query parameter.", body = ApiError),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "An agent token reading another agent's deliveries.", body = ApiError),
        (status = 429, description = "The token already holds 4 streams for this agent.", body = ApiError),
        (status = 503, description = "Not connected to NATS.", body = ApiError),
    )
)]
pub(crate) async fn agent_events(
    State(api): State<Api>,
    headers: HeaderMap,
    query: Result<Query<AgentQuery>, QueryRejection>,
) -> Response {
    let (token, agent, after) = match authorised(&api, &headers, query).and_then(|(t, a)| {
        let after = resume_from(&headers)?;
        Ok((t, a, after))
    }) {
        Ok(parts) => parts,
        Err((code, why)) => return error(code, why),
    };
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    let key = format!("{}/{}", token.name, agent.as_deref().unwrap_or("*"));
    let Some(slot) = StreamSlot::take(&api.streams, key) else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("this token already holds {MAX_STREAMS_PER_TOKEN} streams for this agent; close one first"),
        );
    };
    let subject = subjects::agent_stream(agent.as_deref().unwrap_or(">"));
    let stream = match bus.jetstream().get_stream(streams::AGENT).await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let state = match stream.get_info().await {
        Ok(info) => info.state,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let (first, last) = (state.first_sequence, state.last_sequence);
    let mut opening = Vec::new();
    let start = match after {
        None => last + 1,
        // Retention dropped what came after the client's position (the stream starts later).
        Some(seen) if seen + 1 < first => {
            opening.push(truncated(
                seen,
                first,
                "the stream no longer holds everything after this position (retention may have dropped deliveries)",
            ));
            first
        }
        // A position this stream never reached (it was recreated): nothing to resume from.
        Some(seen) if seen > last => {
            opening.push(truncated(seen, last + 1, "this position is unknown to the stream"));
            last + 1
        }
        Some(seen) => seen + 1,
    };
    opening.insert(
        0,
        Event::default().event("ready").id((start - 1).to_string()).data(json!({ "after": start - 1 }).to_string()),
    );
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject,
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start },
            ..Default::default()
        })
        .await;
    let messages = match consumer {
        Ok(c) => match c.messages().await {
            Ok(m) => m,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    info!(token = %token.name, agent = agent.as_deref().unwrap_or("*"), start, "agent event stream opened");
    let shutdown = api.streams.shutdown.clone();
    let opening = futures::stream::iter(opening.into_iter().map(Ok::<_, std::convert::Infallible>));
    let deliveries = futures::stream::unfold((messages, shutdown, slot), |(mut messages, shutdown, slot)| async move {
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => return None,
                m = messages.next() => m,
            };
            let message = match message {
                Some(Ok(m)) => m,
                // The consumer failed (NATS went away for good): end the response; the client
                // reconnects with its last id and loses nothing.
                Some(Err(e)) => {
                    debug!(error = %e, "agent event stream ended");
                    return None;
                }
                None => return None,
            };
            if let Some(event) = delivery_event(&message) {
                return Some((Ok(event), (messages, shutdown, slot)));
            }
        }
    });
    Sse::new(opening.chain(deliveries)).keep_alive(KeepAlive::new().interval(api.streams.keep_alive)).into_response()
}

/// The `truncated` event: the client's position `seen` is gone; the stream goes on from `from`.
fn truncated(seen: u64, from: u64, why: &str) -> Event {
    let data = json!({ "requested_after": seen, "resumes_at": from, "reason": why });
    Event::default().event("truncated").id(from.saturating_sub(1).to_string()).data(data.to_string())
}

/// One stored delivery as an event: its type, its stream sequence, its JSON. `None` for what the
/// agent already saw: the copy of a delivery for a further endpoint kind, and a delivery its
/// endpoint stored again (to wait, or replayed from the dead letters) under another message id.
fn delivery_event(message: &switchboard_bus::async_nats::jetstream::Message) -> Option<Event> {
    let headers = message.headers.as_ref();
    if headers.is_some_and(|h| h.get(contract_headers::ENDPOINT_COPY).is_some()) {
        return None;
    }
    let seq = message.info().map(|i| i.stream_sequence).unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or(serde_json::Value::Null);
    let msg_id = headers.and_then(|h| h.get(contract_headers::MSG_ID)).map(|v| v.as_str());
    if let (Some(msg_id), Some(id)) = (msg_id, body.get("id").and_then(|i| i.as_str()))
        && msg_id != id
    {
        return None;
    }
    let kind = body.get("type").and_then(|t| t.as_str()).unwrap_or("delivery").to_string();
    Some(Event::default().event(kind).id(seq.to_string()).data(body.to_string()))
}

/// The open offers of every routing group, soonest deadline first.
#[derive(Serialize, ToSchema)]
struct OffersView {
    /// Each open offer: `conversation_id`, `agent_id`, `channel`, `customer`, `subject`,
    /// `team`, `tier`, `priority`, `offered_at`, `offer_deadline`, `sla_deadline`, `group`.
    offers: Vec<serde_json::Value>,
}

/// The agent's open offers (an integration token: the named agent's, or every agent's), with
/// their deadlines, from the leading routers (waits up to 3 s for them).
#[utoipa::path(
    get,
    path = "/v1/agent/offers",
    tag = "agent",
    security(("bearer" = [])),
    params(AgentQuery),
    responses(
        (status = 200, description = "The open offers.", body = OffersView),
        (status = 400, description = "`agent_id` is not an agent id, or an unknown query parameter.", body = ApiError),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "An agent token asking for another agent's offers.", body = ApiError),
        (status = 502, description = "A router's answer was unreadable.", body = ApiError),
        (status = 503, description = "Not connected to NATS, or no router is leading one of the groups.", body = ApiError),
    )
)]
pub(crate) async fn agent_offers(
    State(api): State<Api>,
    headers: HeaderMap,
    query: Result<Query<AgentQuery>, QueryRejection>,
) -> Response {
    let agent = match authorised(&api, &headers, query) {
        Ok((_, agent)) => agent,
        Err((code, why)) => return error(code, why),
    };
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    let body = Bytes::from(agent.unwrap_or_default());
    // An agent's offers can come from any group (an agent works in one, but a conversation
    // transferred across groups is offered by the group owning it): ask them all at once.
    let asks = api.groups.iter().map(|group| {
        let request = bus.client().request(subjects::router_offers(group), body.clone());
        async move { (group, tokio::time::timeout(ASK_TIMEOUT, request).await) }
    });
    let mut offers = Vec::new();
    for (group, answer) in futures::future::join_all(asks).await {
        let Ok(Ok(m)) = answer else {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("no router is leading group `{group}` right now"));
        };
        match serde_json::from_slice::<Vec<serde_json::Value>>(&m.payload) {
            Ok(items) => offers.extend(items.into_iter().map(|mut item| {
                if let Some(fields) = item.as_object_mut() {
                    fields.insert("group".into(), json!(group));
                }
                item
            })),
            Err(e) => {
                return error(StatusCode::BAD_GATEWAY, format!("router of group `{group}` answered garbage: {e}"));
            }
        }
    }
    offers.sort_by(|a, b| a["offer_deadline"].as_str().cmp(&b["offer_deadline"].as_str()));
    (StatusCode::OK, Json(OffersView { offers })).into_response()
}
