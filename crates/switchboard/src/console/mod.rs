//! The supervisor's console: `/console`, a plain HTML/JS page served from the binary, and the
//! JSON and event-stream routes it reads (`/v1/console/*`, `/v1/conversations/{id}/explain`).
//!
//! Only supervisor and admin tokens (`[api.tokens.<name>] supervisor = true` or `admin = true`)
//! are let in: `401` for a missing or unknown token, `403` for an agent's or an integration's.
//! The page keeps the token in `sessionStorage` and sends it as a bearer header, never in a URL;
//! its actions go through `POST /v1/agent/commands` as `supervise`, `set_status` and
//! `set_capacity` commands (see `api.rs`). Setup and what it shows: `docs/console.md`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use switchboard_bus::BusSlot;
use switchboard_routing::groups::Layout;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{Token, Tokens};
use crate::metrics::LiveMetrics;

mod assets;
pub mod config;
mod stream;
mod views;

pub use config::ConsoleConfig;

/// Longest pause between two writes on a stream (a keep-alive comment when nothing else was).
const KEEP_ALIVE_MAX: Duration = Duration::from_secs(15);

/// What the console's handlers share.
#[derive(Clone)]
pub struct Console {
    bus: BusSlot,
    tokens: Tokens,
    /// Every routing group, in configuration order.
    groups: Arc<Vec<String>>,
    /// Which group owns a conversation (for its explanation).
    layout: Arc<Layout>,
    /// The configured teams, so a team without traffic today still shows.
    teams: Arc<Vec<String>>,
    live: LiveMetrics,
    /// Whether `live` is folding (`[metrics] enabled`); without it the KPIs are empty.
    folding: bool,
    config: Arc<ConsoleConfig>,
    shutdown: CancellationToken,
    keep_alive: Duration,
    /// Streams open now, under `console.max_streams`.
    open: Arc<AtomicUsize>,
    /// Each agent's status and since when this process has seen it.
    seen_status: Arc<Mutex<HashMap<String, (String, i64)>>>,
}

/// What [`Console::new`] takes.
pub struct ConsoleParts {
    /// The bus, once connected.
    pub bus: BusSlot,
    /// The API's tokens (supervisor and admin ones are let in).
    pub tokens: Tokens,
    /// The routing groups' layout.
    pub layout: Arc<Layout>,
    /// The configured team names.
    pub teams: Vec<String>,
    /// The process's live KPI fold.
    pub live: LiveMetrics,
    /// Whether that fold runs.
    pub folding: bool,
    /// Ends the streams.
    pub shutdown: CancellationToken,
    /// The listener's idle timeout, which keep-alive comments stay under.
    pub idle_timeout: Duration,
}

/// The console's routes, for both serving and documenting them.
fn documented() -> OpenApiRouter<Console> {
    OpenApiRouter::new()
        .routes(routes!(assets::page))
        .routes(routes!(assets::script))
        .routes(routes!(assets::strings))
        .routes(routes!(assets::style))
        .routes(routes!(views::agents))
        .routes(routes!(views::kpis))
        .routes(routes!(views::explain))
        .routes(routes!(stream::stream))
}

/// The OpenAPI paths of [`Console::routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

impl Console {
    /// The console over the API's tokens and the process's live KPIs.
    pub fn new(config: &ConsoleConfig, parts: ConsoleParts) -> Console {
        let keep_alive = (parts.idle_timeout / 3).clamp(Duration::from_millis(100), KEEP_ALIVE_MAX);
        Console {
            bus: parts.bus,
            tokens: parts.tokens,
            groups: Arc::new(parts.layout.names().map(str::to_string).collect()),
            layout: parts.layout,
            teams: Arc::new(parts.teams),
            live: parts.live,
            folding: parts.folding,
            config: Arc::new(config.clone()),
            shutdown: parts.shutdown,
            keep_alive,
            open: Arc::default(),
            seen_status: Arc::default(),
        }
    }

    /// The console's routes.
    pub fn routes(self) -> axum::Router {
        documented().split_for_parts().0.with_state(self)
    }

    /// The request's token if it is a supervisor's or an admin's, else the status and reason.
    fn supervisor(&self, headers: &HeaderMap) -> Result<Arc<Token>, (StatusCode, String)> {
        let token = self.tokens.authenticate(headers).map_err(|why| (StatusCode::UNAUTHORIZED, why.to_string()))?;
        if !token.supervises() {
            let why = "the console needs a supervisor or admin token (`supervisor = true`)";
            return Err((StatusCode::FORBIDDEN, why.into()));
        }
        Ok(token)
    }
}

/// One open stream's place under `console.max_streams`, given back when the stream ends.
struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<StreamSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| StreamSlot(open.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
