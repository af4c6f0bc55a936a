//! The webhook on the daemon's listener, `/v1/whatsapp/webhook`:
//!
//! - `GET`: Meta's verification request. `hub.mode=subscribe` with the configured verify token
//!   (compared in constant time) is answered with `hub.challenge`; anything else `403`.
//! - `POST`: a notification. The `X-Hub-Signature-256` header must be there (`401`), the body is
//!   read within `max_body_bytes` (`413`), its signature checked (`401`, nothing stored), and only
//!   then is it parsed. `200` only once every item was stored (or settled); `503` when the bus
//!   could not take them, so Meta delivers the notification again.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::Mac;
use serde::Serialize;
use switchboard_adapter::Inbound;
use switchboard_bus::outcomes::{self, InboundOutcome};
use tracing::warn;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::inbound::{Receiver, handle_items};
use crate::signature::{self, SIGNATURE_HEADER};
use crate::{CHANNEL, payload};

/// The webhook's path: the "Callback URL" given to Meta ends with it.
pub const PATH: &str = "/v1/whatsapp/webhook";

#[derive(Clone)]
struct Hook {
    inbound: Inbound,
    rx: Receiver,
    app_secret: Arc<[u8]>,
    verify_token: Arc<str>,
    max_body_bytes: usize,
}

/// A refused request: why (the daemon's one error shape).
#[derive(Serialize, ToSchema)]
struct WhatsAppError {
    /// Why, in words.
    error: String,
}

type Refusal = (StatusCode, &'static str);

fn documented() -> OpenApiRouter<Hook> {
    OpenApiRouter::new().routes(routes!(verify_subscription, receive))
}

/// The webhook route (both methods), for the daemon's listener.
pub fn router(
    inbound: Inbound,
    rx: Receiver,
    app_secret: &str,
    verify_token: &str,
    max_body_bytes: usize,
) -> axum::Router {
    let hook = Hook {
        inbound,
        rx,
        app_secret: Arc::from(app_secret.as_bytes()),
        verify_token: Arc::from(verify_token),
        max_body_bytes,
    };
    documented().split_for_parts().0.with_state(hook)
}

/// The OpenAPI paths of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

fn refuse(code: StatusCode, why: &'static str) -> Response {
    (code, Json(WhatsAppError { error: why.into() })).into_response()
}

/// Whether two strings are equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    // HMACs of both under one key: equal length, compared in constant time.
    let mac = |s: &str| {
        let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(b"verify-token").expect("any key length");
        m.update(s.as_bytes());
        m
    };
    mac(a).verify_slice(&mac(b).finalize().into_bytes()).is_ok()
}

/// Meta's verification of the callback URL: answered with the challenge when the verify token
/// matches.
#[utoipa::path(
    get,
    path = PATH,
    operation_id = "verify_whatsapp_webhook",
    tag = "whatsapp",
    params(
        ("hub.mode" = Option<String>, Query, description = "`subscribe`."),
        ("hub.verify_token" = Option<String>, Query, description = "The verify token configured at Meta and here."),
        ("hub.challenge" = Option<String>, Query, description = "Echoed back when the token matches."),
    ),
    responses(
        (status = 200, description = "The `hub.challenge`, as plain text.", body = String, content_type = "text/plain"),
        (status = 403, description = "Not `subscribe`, or a wrong verify token.", body = WhatsAppError),
    )
)]
async fn verify_subscription(State(hook): State<Hook>, Query(query): Query<HashMap<String, String>>) -> Response {
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_str).unwrap_or_default();
    match (mode, query.get("hub.challenge")) {
        (Some("subscribe"), Some(challenge)) if same(token, &hook.verify_token) && challenge.len() <= 256 => {
            tracing::info!("whatsapp webhook verified by Meta");
            (StatusCode::OK, [("content-type", "text/plain")], challenge.clone()).into_response()
        }
        _ => {
            warn!("whatsapp webhook verification refused");
            refuse(StatusCode::FORBIDDEN, "verification refused")
        }
    }
}

/// A notification from Meta: messages and statuses, answered `200` once stored.
#[utoipa::path(
    post,
    path = PATH,
    operation_id = "receive_whatsapp_notification",
    tag = "whatsapp",
    security(("whatsappSignature" = [])),
    request_body(content = Option<serde_json::Value>, description = "A WhatsApp Cloud API webhook notification \
        (`object: whatsapp_business_account`, `entry[].changes[].value` with `messages` and `statuses`). Signed with \
        the app secret. A signed body that is not a notification is answered `200`, counted `rejected` and skipped, \
        since Meta would only send it again."),
    responses(
        (status = 200, description = "Every item stored or settled (or an unreadable notification skipped)."),
        (status = 401, description = "Missing or wrong `X-Hub-Signature-256`; nothing stored.", body = WhatsAppError),
        (status = 413, description = "Over `max_body_bytes` (1 MiB by default).", body = WhatsAppError),
        (status = 503, description = "Not stored; Meta delivers it again.", body = WhatsAppError),
    )
)]
async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: Body) -> Response {
    match handle(&hook, &headers, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err((code, why)) => refuse(code, why),
    }
}

async fn handle(hook: &Hook, headers: &HeaderMap, body: Body) -> Result<(), Refusal> {
    let rejected = |code, why| {
        outcomes::record(CHANNEL, InboundOutcome::Rejected);
        Err((code, why))
    };
    let presented = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if presented.is_none() {
        warn!("whatsapp notification without a signature refused");
        return rejected(StatusCode::UNAUTHORIZED, "missing X-Hub-Signature-256");
    }
    let body: Bytes = match axum::body::to_bytes(body, hook.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            warn!(limit = hook.max_body_bytes, "whatsapp notification over the size limit refused");
            return rejected(StatusCode::PAYLOAD_TOO_LARGE, "body over the size limit");
        }
    };
    if let Err(e) = signature::verify(&hook.app_secret, presented, &body) {
        warn!(error = %e, "whatsapp notification with a bad signature refused");
        return rejected(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let items = match payload::parse(&body) {
        Ok(items) => items,
        Err(why) => {
            // Answered 200: Meta would only send the same unreadable body again.
            warn!(bytes = body.len(), %why, "unreadable whatsapp notification skipped");
            outcomes::record(CHANNEL, InboundOutcome::Rejected);
            return Ok(());
        }
    };
    if !hook.inbound.is_ready() {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "starting; retry"));
    }
    match handle_items(&hook.inbound, &hook.rx, items).await {
        Ok(_) => Ok(()),
        Err(e) => {
            warn!(error = %e, "whatsapp notification not stored; Meta will deliver it again");
            Err((StatusCode::SERVICE_UNAVAILABLE, "not stored; retry"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_compared_whole() {
        assert!(super::same("verify-me", "verify-me"));
        assert!(!super::same("verify-me", "verify-m"));
        assert!(!super::same("", "verify-me"));
    }
}
