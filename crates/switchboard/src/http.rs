//! The daemon's HTTP surface: health and readiness, plus whatever channels mount.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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

/// The last reload's outcome in a sentence, shown by `/readyz`; `None` before the first.
#[derive(Debug, Clone, Default)]
pub struct LastReload(Arc<Mutex<Option<String>>>);

impl LastReload {
    /// The sentence, if a reload happened.
    pub fn get(&self) -> Option<String> {
        self.0.lock().expect("reload status lock").clone()
    }

    /// Records what the latest reload did.
    pub fn set(&self, said: String) {
        *self.0.lock().expect("reload status lock") = Some(said);
    }
}

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    /// The bus, once connected.
    pub bus: BusSlot,
    /// Each component's health by name.
    pub components: Arc<Vec<(&'static str, Health)>>,
    /// What the last configuration reload did.
    pub last_reload: LastReload,
}

/// The body of `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `up`: the process answers.
    #[schema(example = "up")]
    pub status: &'static str,
}

/// What the readiness check found.
#[derive(Debug, Clone)]
pub struct ReadinessReport {
    /// Bus and every component ready.
    pub ready: bool,
    /// The bus: `connecting`, `disconnected`, `streams missing` or `ready`.
    pub bus: &'static str,
    /// Each component's status by name: `ready`, `starting`, `degraded: ...`, `stopped: ...`.
    pub components: serde_json::Map<String, serde_json::Value>,
}

impl ReadinessReport {
    /// What is not ready (`bus` or a component) and its status.
    pub fn problems(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        if self.bus != "ready" {
            out.insert("bus".to_string(), self.bus.to_string());
        }
        for (name, status) in &self.components {
            let status = status.as_str().unwrap_or_default();
            if status != "ready" {
                out.insert(name.clone(), status.to_string());
            }
        }
        out
    }
}

impl Readiness {
    /// Checks the bus and every component: what `/readyz` answers and presence announces.
    pub async fn check(&self) -> ReadinessReport {
        let bus = match self.bus.get() {
            Err(_) => "connecting",
            Ok(bus) if !bus.is_connected() => "disconnected",
            Ok(bus) if !bus.contract_present().await => "streams missing",
            Ok(_) => "ready",
        };
        let mut ready = bus == "ready";
        let mut components = serde_json::Map::new();
        for (name, health) in self.components.iter() {
            let status = match health.get() {
                HealthStatus::Ready => "ready".to_string(),
                HealthStatus::Starting => "starting".to_string(),
                HealthStatus::Degraded(why) => format!("degraded: {why}"),
                HealthStatus::Stopped(why) => format!("stopped: {why}"),
            };
            ready &= status == "ready";
            components.insert(name.to_string(), status.into());
        }
        ReadinessReport { ready, bus, components }
    }
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
    /// Each stream, bucket and object store against its byte budget, e.g.
    /// `3.2 MiB of 512 MiB (1%)`, starting `nearly full: ` at 90% (a full one refuses new data
    /// but the process stays ready). Empty while the bus is not ready.
    pub storage: BTreeMap<String, String>,
    /// What the last configuration reload (`SIGHUP`) did, e.g. `applied at 2026-12-07T10:00:00Z:
    /// routing; needs a restart: http`, or `invalid at ..., nothing changed: <file>: <key>: <why>`;
    /// absent before the first. A refused reload does not make the process unready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reload: Option<String>,
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
    let report = r.check().await;
    let code = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if report.ready { "ready" } else { "not ready" };
    let components =
        report.components.iter().map(|(name, s)| (name.clone(), s.as_str().unwrap_or_default().to_string())).collect();
    let storage = match r.bus.get() {
        Ok(bus) if report.bus == "ready" => storage_fill(bus).await,
        _ => BTreeMap::new(),
    };
    let last_reload = r.last_reload.get();
    (code, Json(ReadyState { status, bus: report.bus, components, storage, last_reload }))
}

/// Every store's fill for `/readyz`; empty when it cannot be read (readiness does not depend on it).
async fn storage_fill(bus: &switchboard_bus::Bus) -> BTreeMap<String, String> {
    match bus.fill_report().await {
        Ok(fills) => fills.iter().map(|f| (f.name.clone(), f.describe())).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "storage fill not read for /readyz");
            BTreeMap::new()
        }
    }
}
