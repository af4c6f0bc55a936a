//! The admin API for a person's data: `DELETE /v1/customers/{id}` erases it and
//! `GET /v1/customers/{id}/export` returns it (as `switchboard customers forget|export` do).
//!
//! Only admin tokens (`api.tokens.<name>.admin = true`) are accepted. One such request runs at a
//! time per process (each reads every stream); an erasure runs to its end even when the HTTP
//! request times out, and its audit event says it happened.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_bus::BusSlot;
use tokio::sync::Semaphore;
use tracing::{info, warn};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiError, TokenRefused, Tokens, error};
use crate::privacy::{CustomerRef, PrivacyConfig};

/// What the handlers share.
#[derive(Clone)]
pub struct Customers {
    bus: BusSlot,
    /// The API's tokens; only admin ones are accepted here.
    tokens: Tokens,
    groups: Arc<Vec<String>>,
    limit: u64,
    busy: Arc<Semaphore>,
}

/// What an erasure did (counts only; the same as the `customer_forgotten` audit event).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documents the JSON of `privacy::Erasure` for OpenAPI
struct ErasureDoc {
    /// The erasure's reference, also in the audit event.
    reference: String,
    /// Conversations erased.
    conversations: usize,
    /// Stream messages deleted.
    messages: usize,
    /// Bucket keys purged.
    keys: usize,
    /// Attachments deleted.
    objects: usize,
    /// Journal entries newer than the router's snapshot, kept.
    kept_journal_entries: usize,
    /// Event batches that also held others' events, published again without theirs, then deleted.
    rewritten_batches: usize,
    /// Streams read only up to `privacy.max_scan_messages`.
    truncated_streams: Vec<String>,
}

/// Why a request is refused, before anything is done.
type Refusal = (StatusCode, String);

/// A request that may go ahead: who asked, about whom, and the one-at-a-time permit.
struct Admitted {
    who: String,
    customer: CustomerRef,
    bus: switchboard_bus::Bus,
    permit: tokio::sync::OwnedSemaphorePermit,
}

fn documented() -> OpenApiRouter<Customers> {
    OpenApiRouter::new().routes(routes!(forget)).routes(routes!(export))
}

/// The OpenAPI paths of [`Customers::routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

impl Customers {
    /// The routes' state: the API's `tokens` (admin ones only are let in), the routing groups
    /// an erasure asks.
    pub fn new(tokens: Tokens, privacy: &PrivacyConfig, bus: BusSlot, groups: Vec<String>) -> Customers {
        Customers {
            bus,
            tokens,
            groups: Arc::new(groups),
            limit: privacy.max_scan_messages,
            busy: Arc::new(Semaphore::new(1)),
        }
    }

    /// The routes.
    pub fn routes(self) -> axum::Router {
        documented().split_for_parts().0.with_state(self)
    }

    /// The admin token's name, or the refusal.
    fn admin(&self, headers: &HeaderMap) -> Result<String, Refusal> {
        match self.tokens.authenticate(headers) {
            Err(TokenRefused::Missing) => Err((StatusCode::UNAUTHORIZED, TokenRefused::Missing.into())),
            Ok(t) if t.admin => Ok(t.name.clone()),
            // A valid agent token is refused the same way as an unknown one: no oracle.
            _ => Err((StatusCode::FORBIDDEN, "customer data needs an admin token (`admin = true`)".into())),
        }
    }

    /// Everything a handler checks before it starts: token, id, bus, one at a time.
    fn admit(&self, headers: &HeaderMap, id: &str) -> Result<Admitted, Refusal> {
        let who = self.admin(headers)?;
        let customer: CustomerRef = id.parse().map_err(|e: String| (StatusCode::BAD_REQUEST, e))?;
        let bus = self.bus.get().map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet".into()))?;
        let permit = self.busy.clone().try_acquire_owned().map_err(|_| {
            (StatusCode::TOO_MANY_REQUESTS, "another export or erasure is running; try again".to_string())
        })?;
        Ok(Admitted { who, customer, bus: bus.clone(), permit })
    }
}

/// Erases everything held about a person (see `docs/data-lifecycle.md`) and leaves a
/// `customer_forgotten` event with counts only.
#[utoipa::path(
    delete,
    path = "/v1/customers/{id}",
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "`<channel>:<customer id>`, e.g. `email:ann@example.com`, `webhook:cust-42`: a channel name, `:`, and an id of 1 to 512 characters (blanks around it are trimmed).", pattern = r"^[a-z0-9_-]+:\s*\S([\s\S]{0,510}\S)?\s*$")),
    responses(
        (status = 200, description = "Erased; counts only.", body = ErasureDoc),
        (status = 400, description = "Not `<channel>:<customer id>`.", body = ApiError),
        (status = 401, description = "Missing bearer token.", body = ApiError),
        (status = 403, description = "Not an admin token.", body = ApiError),
        (status = 429, description = "Another export or erasure is running in this process.", body = ApiError),
        (status = 503, description = "Not connected to NATS, or a routing group has no leading router: nothing was erased.", body = ApiError),
    )
)]
async fn forget(State(c): State<Customers>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Admitted { who, customer, bus, permit } = match c.admit(&headers, &id) {
        Ok(ok) => ok,
        Err((code, why)) => return error(code, why),
    };
    info!(token = %who, "customer erasure requested");
    let groups = c.groups.clone();
    // Its own task: a timed-out request does not stop an erasure half-way.
    let task = tokio::spawn(async move {
        let _permit = permit;
        crate::privacy::forget(&bus, &groups, &customer, &format!("api:{who}"), c.limit).await
    });
    match task.await {
        Ok(Ok(erasure)) => Json(erasure).into_response(),
        Ok(Err(e)) => {
            warn!(error = %format!("{e:#}"), "customer erasure failed");
            error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("erasure task failed: {e}")),
    }
}

/// Everything held about a person, as JSON: conversation records, channel mappings, attachment
/// references and every stored message that mentions them.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}/export",
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "`<channel>:<customer id>`, e.g. `email:ann@example.com`, `webhook:cust-42`: a channel name, `:`, and an id of 1 to 512 characters (blanks around it are trimmed).", pattern = r"^[a-z0-9_-]+:\s*\S([\s\S]{0,510}\S)?\s*$")),
    responses(
        (status = 200, description = "What is held about them (`docs/data-lifecycle.md`, export format).", body = Object),
        (status = 400, description = "Not `<channel>:<customer id>`.", body = ApiError),
        (status = 401, description = "Missing bearer token.", body = ApiError),
        (status = 403, description = "Not an admin token.", body = ApiError),
        (status = 429, description = "Another export or erasure is running in this process.", body = ApiError),
        (status = 503, description = "Not connected to NATS, or reading a stream failed.", body = ApiError),
    )
)]
async fn export(State(c): State<Customers>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Admitted { who, customer, bus, permit: _permit } = match c.admit(&headers, &id) {
        Ok(ok) => ok,
        Err((code, why)) => return error(code, why),
    };
    info!(token = %who, "customer export requested");
    match crate::privacy::export(&bus, &customer, c.limit).await {
        Ok(export) => Json(export).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}
