//! `POST /v1/sms/inbound`: check the gateway's token, translate, store, and only then answer `200`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use subtle::ConstantTimeEq;
use switchboard_adapter::{Inbound, InboundError};
use tracing::{debug, warn};

use crate::gateway::InboundSms;

/// The path the gateway POSTs received SMS to.
pub const PATH: &str = "/v1/sms/inbound";

#[derive(Clone)]
struct Ctx {
    inbound: Inbound,
    token: Arc<str>,
}

pub(crate) fn routes(inbound: Inbound, token: String) -> axum::Router {
    axum::Router::new().route(PATH, post(receive)).with_state(Ctx { inbound, token: token.into() })
}

async fn receive(State(ctx): State<Ctx>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&headers, &ctx.token) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "unauthorized" }))).into_response();
    }
    let sms: InboundSms = match serde_json::from_slice(&body) {
        Ok(sms) => sms,
        Err(e) => return bad_request("(body)", &e.to_string()),
    };
    let envelope = match sms.into_envelope(chrono::Utc::now()) {
        Ok(envelope) => envelope,
        Err(e) => return bad_request(&e.field, &e.reason),
    };
    let id = envelope.id;
    // `publish` checks the sender's rate limit, validates and waits for JetStream's ack.
    match ctx.inbound.publish(envelope).await {
        // `200` only now: JetStream has the envelope, so the gateway may forget the SMS. A
        // duplicate is a success too (the gateway retried something already stored).
        Ok(published) => {
            debug!(envelope = %id, duplicate = published.duplicate, "sms stored");
            (StatusCode::OK, Json(json!({ "id": id, "duplicate": published.duplicate }))).into_response()
        }
        Err(InboundError::Invalid(e)) => bad_request(&e.field, &e.reason),
        Err(InboundError::RateLimited { retry_after }) => too_many(retry_after),
        Err(e @ (InboundError::NotReady(_) | InboundError::Bus(_))) => {
            warn!(error = %e, "sms not stored, the gateway will retry");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "not stored, retry" }))).into_response()
        }
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant time, so the token cannot be guessed byte by byte from response times.
    bool::from(presented.as_bytes().ct_eq(token.as_bytes()))
}

fn bad_request(field: &str, reason: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid", "field": field, "reason": reason }))).into_response()
}

fn too_many(retry_after: std::time::Duration) -> Response {
    let secs = retry_after.as_secs().max(1).to_string();
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs)], Json(json!({ "error": "rate limited" })))
        .into_response()
}
