//! The Events API over HTTP on the daemon's listener: `POST /v1/slack/events` (events and the
//! `url_verification` challenge), `POST /v1/slack/interactions` (button presses, form field
//! `payload`), `POST /v1/slack/commands` (the `/sb` slash command). Every request is signed by
//! Slack (`v0`, see [`crate::signature`]); the body is read within `max_body_bytes`, the signature
//! and its timestamp checked, and only then is the body parsed. A request that could not be stored
//! is answered `503` so Slack tries again; a redelivery (`X-Slack-Retry-Num`) acts once because the
//! command ids come from Slack's ids.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use switchboard_bus::BusSlot;
use switchboard_bus::outcomes::{self, InboundOutcome};
use tracing::{debug, warn};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::handler::Answer;
use crate::payload::{self, Incoming};
use crate::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::{CHANNEL, Slack};

/// Where Slack POSTs events (the app's Event Subscriptions "Request URL").
pub const EVENTS_PATH: &str = "/v1/slack/events";
/// Where Slack POSTs interactions (the app's Interactivity "Request URL").
pub const INTERACTIONS_PATH: &str = "/v1/slack/interactions";
/// Where Slack POSTs the `/sb` slash command.
pub const COMMANDS_PATH: &str = "/v1/slack/commands";

#[derive(Clone)]
struct Hook {
    slack: Slack,
    bus: BusSlot,
}

/// A refused request: why (the daemon's one error shape).
#[derive(Serialize, ToSchema)]
struct SlackError {
    /// Why, in words.
    error: String,
}

type Refusal = (StatusCode, &'static str);

fn documented() -> OpenApiRouter<Hook> {
    OpenApiRouter::new().routes(routes!(events)).routes(routes!(interactions)).routes(routes!(commands))
}

/// The three routes, for the daemon's listener.
pub fn router(slack: Slack, bus: BusSlot) -> axum::Router {
    documented().split_for_parts().0.with_state(Hook { slack, bus })
}

/// The OpenAPI paths of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

fn respond(result: Result<Answer, Refusal>) -> Response {
    match result {
        Ok(Answer::Empty) => StatusCode::OK.into_response(),
        Ok(Answer::Json(v)) => Json(v).into_response(),
        Err((code, why)) => (code, Json(SlackError { error: why.into() })).into_response(),
    }
}

/// Reads the body within the limit and checks its signature; counts a refusal.
async fn verified(hook: &Hook, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let refuse = |code, why| {
        outcomes::record(CHANNEL, InboundOutcome::Rejected);
        Err((code, why))
    };
    let Some(secret) = hook.slack.inner.signing_secret.as_deref() else {
        return refuse(StatusCode::NOT_FOUND, "the Events API is not enabled");
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
    if timestamp.is_none() || signature.is_none() {
        warn!("slack request without a signature refused");
        return refuse(StatusCode::UNAUTHORIZED, "missing X-Slack-Signature or X-Slack-Request-Timestamp");
    }
    let body = match axum::body::to_bytes(body, hook.slack.inner.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            warn!(limit = hook.slack.inner.max_body_bytes, "slack request over the size limit refused");
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over the size limit");
        }
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = signature::verify(secret, timestamp, signature, &body, now, hook.slack.inner.tolerance_secs) {
        warn!(error = %e, "slack request with a bad signature refused");
        return refuse(StatusCode::UNAUTHORIZED, "bad or stale signature");
    }
    Ok(body)
}

async fn act(hook: &Hook, incoming: Incoming) -> Result<Answer, Refusal> {
    let bus = hook.bus.get().map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "starting; retry"))?;
    hook.slack.handle(bus, incoming).await.map_err(|e| {
        warn!(error = %e, "slack request not stored; Slack will retry");
        (StatusCode::SERVICE_UNAVAILABLE, "not stored; retry")
    })
}

fn unreadable(what: &str) -> Refusal {
    debug!(what, "unreadable slack request");
    outcomes::record(CHANNEL, InboundOutcome::Rejected);
    (StatusCode::BAD_REQUEST, "unreadable body")
}

/// An Events API request: answered once handled (stored).
#[utoipa::path(
    post,
    path = EVENTS_PATH,
    operation_id = "receive_slack_event",
    tag = "slack",
    security(("slackSignature" = [])),
    request_body(content = Option<serde_json::Value>, description = "An Events API body: `url_verification` \
        (answered with its challenge) or `event_callback` (an agent's `message` in their DM with the bot). Signed `v0`."),
    responses(
        (status = 200, description = "Handled (or nothing to act on); `url_verification` answered `{\"challenge\": ...}`."),
        (status = 400, description = "Signed but unreadable.", body = SlackError),
        (status = 401, description = "Missing, wrong or stale signature (older than the tolerance, 5 minutes by default).", body = SlackError),
        (status = 413, description = "Over `max_body_bytes`.", body = SlackError),
        (status = 503, description = "Not stored; Slack retries.", body = SlackError),
    )
)]
async fn events(State(hook): State<Hook>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let body = verified(&hook, &headers, body).await?;
        let value: Value = serde_json::from_slice(&body).map_err(|_| unreadable("event"))?;
        match value["type"].as_str() {
            Some("url_verification") => {
                outcomes::record(CHANNEL, InboundOutcome::NotRouted);
                Ok(Answer::Json(json!({ "challenge": value["challenge"] })))
            }
            Some("event_callback") => {
                let incoming = payload::event(&value).map_err(|_| unreadable("event_callback"))?;
                act(&hook, incoming).await
            }
            _ => act(&hook, Incoming::Ignored("event type".into())).await,
        }
    }
    .await;
    respond(result)
}

/// Form fields of a body.
fn form(body: &[u8]) -> Result<BTreeMap<String, String>, Refusal> {
    serde_urlencoded::from_bytes(body).map_err(|_| unreadable("form"))
}

/// An interaction (a button pressed): answered once the command is stored.
#[utoipa::path(
    post,
    path = INTERACTIONS_PATH,
    operation_id = "receive_slack_interaction",
    tag = "slack",
    security(("slackSignature" = [])),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`payload=<JSON>`: a `block_actions` payload (Accept, Decline, Resolve). Signed `v0`."),
    responses(
        (status = 200, description = "Stored (the message's buttons change once the router agreed), or nothing to act on."),
        (status = 400, description = "Signed but unreadable.", body = SlackError),
        (status = 401, description = "Missing, wrong or stale signature.", body = SlackError),
        (status = 413, description = "Over `max_body_bytes`.", body = SlackError),
        (status = 503, description = "Not stored; press again.", body = SlackError),
    )
)]
async fn interactions(State(hook): State<Hook>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let body = verified(&hook, &headers, body).await?;
        let fields = form(&body)?;
        let payload: Value = fields
            .get("payload")
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(|| unreadable("interaction payload"))?;
        let incoming = payload::interaction(&payload).map_err(|_| unreadable("block_actions"))?;
        act(&hook, incoming).await
    }
    .await;
    respond(result)
}

/// The `/sb` slash command: answered (ephemerally) with what became of it.
#[utoipa::path(
    post,
    path = COMMANDS_PATH,
    operation_id = "receive_slack_command",
    tag = "slack",
    security(("slackSignature" = [])),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "A slash command's fields (`command`, `text`, `user_id`, `channel_id`, `trigger_id`, ...). Signed `v0`."),
    responses(
        (status = 200, description = "`{\"response_type\": \"ephemeral\", \"text\": ...}`: done, refused (with why), or received."),
        (status = 400, description = "Signed but unreadable.", body = SlackError),
        (status = 401, description = "Missing, wrong or stale signature.", body = SlackError),
        (status = 413, description = "Over `max_body_bytes`.", body = SlackError),
        (status = 503, description = "Not stored; run it again.", body = SlackError),
    )
)]
async fn commands(State(hook): State<Hook>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let body = verified(&hook, &headers, body).await?;
        let incoming = payload::command(&form(&body)?).map_err(|_| unreadable("slash command"))?;
        act(&hook, incoming).await
    }
    .await;
    respond(result)
}
