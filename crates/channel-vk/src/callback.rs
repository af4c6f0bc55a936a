//! Events by the Callback API: VK POSTs each event to `POST /v1/vk/callback` on the daemon's
//! listener. `confirmation` is answered with the configured string; every other event must name
//! this community and carry the configured `secret` (compared in constant time; a wrong or
//! missing one is refused and nothing is stored). An event is answered `ok` only once handled
//! (stored); anything else makes VK send it again, and a redelivered event is a duplicate.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_adapter::Inbound;
use switchboard_bus::outcomes::{self, InboundOutcome};
use tracing::warn;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::CHANNEL;
use crate::handle::Handler;

/// The path VK POSTs events to (the community's Callback API "server address").
pub const PATH: &str = "/v1/vk/callback";

#[derive(Clone)]
struct Hook {
    inbound: Inbound,
    handler: Handler,
    group_id: u64,
    confirmation: Arc<str>,
    secret: Arc<[u8; 32]>,
    max_body_bytes: usize,
}

/// What the callback route needs.
pub struct CallbackSettings {
    /// The community.
    pub group_id: u64,
    /// The string VK expects back on `confirmation`.
    pub confirmation: String,
    /// The secret key every event carries.
    pub secret: String,
    /// Largest body read.
    pub max_body_bytes: usize,
}

fn documented() -> OpenApiRouter<Hook> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// The callback route.
pub fn router(inbound: Inbound, handler: Handler, settings: CallbackSettings) -> axum::Router {
    let secret = Arc::new(Sha256::digest(settings.secret.as_bytes()).into());
    let hook = Hook {
        inbound,
        handler,
        group_id: settings.group_id,
        confirmation: settings.confirmation.into(),
        secret,
        max_body_bytes: settings.max_body_bytes,
    };
    documented().split_for_parts().0.with_state(hook)
}

/// The OpenAPI paths of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

/// A refused event: why (the daemon's one error shape).
#[derive(Serialize, ToSchema)]
struct VkError {
    /// Why, in words.
    error: String,
}

/// Whether `presented` is the secret, in time that says nothing about it.
fn secret_matches(secret: &[u8; 32], presented: Option<&str>) -> bool {
    let digest: [u8; 32] = Sha256::digest(presented.unwrap_or_default().as_bytes()).into();
    presented.is_some() && bool::from(digest.ct_eq(secret))
}

/// One event from VK.
#[utoipa::path(
    post,
    path = PATH,
    operation_id = "receive_vk_event",
    tag = "vk",
    request_body(content = Option<serde_json::Value>, description = "A Callback API event (`{\"type\", \"object\", \
        \"group_id\", \"event_id\", \"secret\"}`, see VK's documentation): `confirmation`, `message_new`, `message_edit`, \
        `message_allow`, `message_deny`; other types are answered `ok` and not routed. Authenticated by the body's `secret` \
        (the community's Callback API secret key, compared in constant time); `confirmation` carries none."),
    responses(
        (status = 200, description = "`ok` (text/plain) once handled and stored; for `confirmation`, the configured confirmation string."),
        (status = 400, description = "Not JSON.", body = VkError),
        (status = 403, description = "Wrong or missing secret, or another community's event; nothing stored.", body = VkError),
        (status = 413, description = "Over `max_body_bytes`.", body = VkError),
        (status = 503, description = "Not stored; VK sends it again.", body = VkError),
    )
)]
async fn receive(State(hook): State<Hook>, body: Body) -> Response {
    match handle(&hook, body).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err((code, why)) => (code, Json(VkError { error: why.into() })).into_response(),
    }
}

type Refusal = (StatusCode, &'static str);

fn refuse(code: StatusCode, why: &'static str) -> Result<String, Refusal> {
    outcomes::record(CHANNEL, InboundOutcome::Rejected);
    Err((code, why))
}

async fn handle(hook: &Hook, body: Body) -> Result<String, Refusal> {
    let body: Bytes = match axum::body::to_bytes(body, hook.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            warn!(limit = hook.max_body_bytes, "vk callback over the size limit refused");
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over the size limit");
        }
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        warn!(bytes = body.len(), "unreadable vk callback refused");
        return refuse(StatusCode::BAD_REQUEST, "not JSON");
    };
    if event["group_id"].as_u64() != Some(hook.group_id) {
        warn!("vk callback for another community refused");
        return refuse(StatusCode::FORBIDDEN, "not this community's event");
    }
    if event["type"] == "confirmation" {
        // Not an item to route: VK checks that the server is ours.
        outcomes::record(CHANNEL, InboundOutcome::NotRouted);
        return Ok(hook.confirmation.to_string());
    }
    if !secret_matches(&hook.secret, event["secret"].as_str()) {
        warn!("vk callback with a wrong or missing secret refused");
        return refuse(StatusCode::FORBIDDEN, "wrong or missing secret");
    }
    match hook.handler.handle(&hook.inbound, &event).await {
        Ok(_) => Ok("ok".into()),
        Err(e) => {
            warn!(error = %e, "vk event not stored; VK will send it again");
            Err((StatusCode::SERVICE_UNAVAILABLE, "not stored; retry"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_must_be_present_and_equal() {
        let secret: [u8; 32] = Sha256::digest(b"s3cr3t").into();
        assert!(secret_matches(&secret, Some("s3cr3t")));
        assert!(!secret_matches(&secret, Some("s3cr3T")));
        assert!(!secret_matches(&secret, Some("")));
        assert!(!secret_matches(&secret, None));
        let empty: [u8; 32] = Sha256::digest(b"").into();
        assert!(!secret_matches(&empty, None), "a missing secret never matches, even an empty one");
    }
}
