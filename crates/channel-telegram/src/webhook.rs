//! Updates by webhook: Telegram POSTs each update to `POST /v1/telegram/updates` on the daemon's
//! listener with the secret token in `X-Telegram-Bot-Api-Secret-Token`. An update is answered
//! `200` only after it was handled (stored), so Telegram redelivers what was not; a redelivered
//! update is dropped by its de-duplication id.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_adapter::Inbound;
use switchboard_bus::outcomes::{self, InboundOutcome};
use teloxide_core::payloads::SetWebhookSetters;
use teloxide_core::prelude::Requester;
use teloxide_core::types::{AllowedUpdate, Update};
use tracing::{info, warn};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::CHANNEL;
use crate::agent::AgentChats;
use crate::inbound::{Files, handle_update};
use crate::outbound::{Sender, classify};

/// The largest update accepted, in bytes: Telegram's updates carry at most 4,096 characters of
/// text plus entities and metadata (tens of KiB at most); files come by reference.
pub const MAX_UPDATE_BYTES: usize = 256 * 1024;

/// The header Telegram puts the secret token in.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// The path updates are POSTed to.
pub const PATH: &str = "/v1/telegram/updates";

#[derive(Clone)]
struct Hook {
    inbound: Inbound,
    agents: Option<AgentChats>,
    files: Files,
    secret: Arc<[u8; 32]>,
}

/// The webhook route, for both serving and documenting it.
fn documented() -> OpenApiRouter<Hook> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// The webhook route.
pub fn router(inbound: Inbound, agents: Option<AgentChats>, files: Files, secret: &str) -> axum::Router {
    let secret = Arc::new(Sha256::digest(secret.as_bytes()).into());
    documented().split_for_parts().0.with_state(Hook { inbound, agents, files, secret })
}

/// The OpenAPI paths of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

/// Tells Telegram where to POST updates, with the secret token.
pub async fn register(sender: &Sender, public_url: &str, secret: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(public_url).map_err(|e| format!("webhook_url: {e}"))?;
    let allowed = [
        AllowedUpdate::Message,
        AllowedUpdate::EditedMessage,
        AllowedUpdate::CallbackQuery,
        AllowedUpdate::MyChatMember,
    ];
    sender
        .bot()
        .set_webhook(url)
        .secret_token(secret)
        .allowed_updates(allowed)
        .await
        .map_err(|e| classify(e).reason)?;
    info!("telegram webhook registered");
    Ok(())
}

/// One update from Telegram, answered `200` only once it was handled (stored).
#[utoipa::path(
    post,
    path = PATH,
    operation_id = "receive_telegram_update",
    tag = "telegram",
    security(("telegramSecret" = [])),
    request_body(content = Option<serde_json::Value>, description = "A Telegram Bot API `Update` (see Telegram's documentation). \
        Any body (or none) is taken: one that is not an `Update` is answered `200`, counted `rejected` and skipped, since Telegram \
        would only send it again."),
    responses(
        (status = 200, description = "Handled, or unreadable and skipped (Telegram would only resend it)."),
        (status = 401, description = "Wrong or missing secret token.", body = TelegramError),
        (status = 413, description = "Larger than 256 KiB (checked after the secret token).", body = TelegramError),
        (status = 503, description = "Not stored; Telegram retries.", body = TelegramError),
    )
)]
async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: Body) -> Response {
    match handle(&hook, &headers, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err((code, why)) => (code, Json(TelegramError { error: why.into() })).into_response(),
    }
}

/// A refused update: what was wrong (the daemon's one error shape).
#[derive(Serialize, ToSchema)]
struct TelegramError {
    /// Why, in words.
    error: String,
}

/// One update, or the status and reason to refuse it.
async fn handle(hook: &Hook, headers: &HeaderMap, body: Body) -> Result<(), (StatusCode, &'static str)> {
    let presented = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let digest: [u8; 32] = Sha256::digest(presented).into();
    // Compared as digests, so the time taken says nothing about the secret.
    if !bool::from(digest.ct_eq(&*hook.secret)) {
        warn!("telegram webhook request with a wrong secret token refused");
        outcomes::record(CHANNEL, InboundOutcome::Rejected);
        return Err((StatusCode::UNAUTHORIZED, "wrong or missing secret token"));
    }
    // Read only once the secret matched, so an anonymous sender cannot make the daemon buffer.
    let body: Bytes = match axum::body::to_bytes(body, MAX_UPDATE_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            warn!(limit = MAX_UPDATE_BYTES, "telegram update over the size limit (or cut off) refused");
            outcomes::record(CHANNEL, InboundOutcome::Rejected);
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "update over 256 KiB"));
        }
    };
    let text = match std::str::from_utf8(&body).ok().filter(|t| serde_json::from_str::<Update>(t).is_ok()) {
        Some(t) => t,
        None => {
            // Answered 200: Telegram would only send the same unreadable update again.
            warn!(bytes = body.len(), "unreadable telegram update refused");
            outcomes::record(CHANNEL, InboundOutcome::Rejected);
            return Ok(());
        }
    };
    match handle_update(&hook.inbound, hook.agents.as_ref(), &hook.files, text).await {
        Ok(_) => Ok(()),
        Err(e) => {
            warn!(error = %e, "telegram update not stored; Telegram will retry");
            Err((StatusCode::SERVICE_UNAVAILABLE, "not stored; retry"))
        }
    }
}
