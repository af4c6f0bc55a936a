//! The daemon's HTTP surface: health and readiness, plus whatever channels mount.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use switchboard_adapter::{Health, HealthStatus};
use switchboard_bus::BusSlot;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    /// The bus, once connected.
    pub bus: BusSlot,
    /// Each component's health by name.
    pub components: Arc<Vec<(&'static str, Health)>>,
}

/// `/healthz` and `/readyz`.
pub fn health_routes(readiness: Readiness) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "up" })) }))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn readyz(State(r): State<Readiness>) -> impl IntoResponse {
    let bus = match r.bus.get() {
        Err(_) => "connecting",
        Ok(bus) if !bus.is_connected() => "disconnected",
        Ok(bus) if !bus.contract_present().await => "streams missing",
        Ok(_) => "ready",
    };
    let mut ready = bus == "ready";
    let mut components = serde_json::Map::new();
    for (name, health) in r.components.iter() {
        let status = match health.get() {
            HealthStatus::Ready => "ready".to_string(),
            HealthStatus::Starting => "starting".to_string(),
            HealthStatus::Degraded(why) => format!("degraded: {why}"),
            HealthStatus::Stopped(why) => format!("stopped: {why}"),
        };
        ready &= status == "ready";
        components.insert(name.to_string(), status.into());
    }
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(json!({ "status": if ready { "ready" } else { "not ready" }, "bus": bus, "components": components })))
}
