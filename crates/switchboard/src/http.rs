//! The daemon's HTTP surface: health and readiness, plus whatever channels mount.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use switchboard_adapter::{Health, HealthStatus};
use switchboard_bus::BusSlot;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    /// The bus, once connected.
    pub bus: BusSlot,
    /// Each component's health by name.
    pub components: Arc<Vec<(&'static str, Health)>>,
}

/// The body of `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `up`: the process answers.
    #[schema(example = "up")]
    pub status: &'static str,
}

/// The body of `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct ReadyState {
    /// `ready` or `not ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The bus: `connecting`, `disconnected`, `streams missing` or `ready`.
    #[schema(example = "ready")]
    pub bus: &'static str,
    /// Each component's status: `ready`, `starting`, `degraded: <why>` or `stopped: <why>`.
    pub components: BTreeMap<String, String>,
}

/// The health routes, for both serving and documenting them.
fn documented() -> OpenApiRouter<Readiness> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// `/healthz` and `/readyz`.
pub fn health_routes(readiness: Readiness) -> axum::Router {
    documented().split_for_parts().0.with_state(readiness)
}

/// The OpenAPI paths of [`health_routes`].
pub fn health_openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up.", body = Liveness)))]
async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "up" })
}

/// Readiness: the bus is connected with its streams, and every component is ready.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready to take traffic.", body = ReadyState),
        (status = 503, description = "Not ready: the bus or a component is not (yet) ready.", body = ReadyState),
    )
)]
async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    let bus = match r.bus.get() {
        Err(_) => "connecting",
        Ok(bus) if !bus.is_connected() => "disconnected",
        Ok(bus) if !bus.contract_present().await => "streams missing",
        Ok(_) => "ready",
    };
    let mut ready = bus == "ready";
    let mut components = BTreeMap::new();
    for (name, health) in r.components.iter() {
        let status = match health.get() {
            HealthStatus::Ready => "ready".to_string(),
            HealthStatus::Starting => "starting".to_string(),
            HealthStatus::Degraded(why) => format!("degraded: {why}"),
            HealthStatus::Stopped(why) => format!("stopped: {why}"),
        };
        ready &= status == "ready";
        components.insert(name.to_string(), status);
    }
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(ReadyState { status: if ready { "ready" } else { "not ready" }, bus, components }))
}
