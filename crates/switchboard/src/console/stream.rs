//! `GET /v1/console/stream`: the console's live view as Server-Sent Events.
//!
//! One task per stream wakes on any event on `sb.events.>` (coalesced) and every
//! `console.refresh_ms`, asks the leading routers for the queue and the agents, and sends each
//! only when it changed; the KPIs go every `console.kpi_secs`. The streams are bounded
//! (`console.max_streams`, `503` over it) and all end when the daemon shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, info};
use utoipa::ToSchema;

use super::views::{agents_view, kpis_view, queue_snapshot};
use super::{Console, StreamSlot};
use crate::api::{ApiError, error};

/// How long a burst of events is gathered before the views are asked again.
const COALESCE: Duration = Duration::from_millis(150);

/// The events `GET /v1/console/stream` sends (documentation of the `text/event-stream` body).
///
/// `event: queue` (data: `queue`, `unavailable`, `now`, as the queue of every group),
/// `event: agents` (data: `agents`, `unavailable`, as `GET /v1/console/agents`) and
/// `event: kpis` (data as `GET /v1/console/kpis`). Lines starting with `:` are keep-alive
/// comments.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ConsoleEvents {
    /// `queue`, `agents` or `kpis`.
    event: String,
    /// The view as JSON.
    data: serde_json::Value,
}

/// The live queue, agents and KPIs as Server-Sent Events (read with `fetch`, since the bearer
/// token goes in a header).
#[utoipa::path(
    get,
    path = "/v1/console/stream",
    operation_id = "console_stream",
    tag = "console",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stream (`text/event-stream`): `queue` and `agents` at once and whenever they change, `kpis` at once and every `console.kpi_secs`.", body = ConsoleEvents, content_type = "text/event-stream"),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "Not a supervisor or admin token.", body = ApiError),
        (status = 503, description = "Not connected to NATS, or `console.max_streams` streams are open.", body = ApiError),
    )
)]
pub(super) async fn stream(State(console): State<Console>, headers: HeaderMap) -> Response {
    let who = match console.supervisor(&headers) {
        Ok(token) => token.name.clone(),
        Err((code, why)) => return error(code, why),
    };
    let Ok(bus) = console.bus.get().cloned() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet");
    };
    let Some(slot) = StreamSlot::take(&console.open, console.config.max_streams) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} console streams are open (console.max_streams); try again later", console.config.max_streams),
        );
    };
    info!(token = %who, "console stream opened");
    let (tx, rx) = mpsc::channel::<Event>(8);
    let keep_alive = console.keep_alive;
    tokio::spawn(run(console, bus, tx, slot));
    let events =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)).into_response()
}

/// Feeds one stream until its client goes away or the daemon stops.
async fn run(console: Console, bus: switchboard_bus::Bus, tx: mpsc::Sender<Event>, _slot: StreamSlot) {
    // Without the subscription the ticks alone keep the view fresh. Messages are not read, only
    // counted as a wake-up: a single event and the router's batch (`sb.events.batch`) alike.
    let mut wake = match bus.client().subscribe("sb.events.>").await {
        Ok(s) => Some(s),
        Err(e) => {
            debug!(error = %e, "console stream without event wake-ups");
            None
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(console.config.refresh_ms));
    let mut kpi = tokio::time::interval(Duration::from_secs(console.config.kpi_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    kpi.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_queue, mut last_agents) = (None, None);
    loop {
        let mut refresh = false;
        tokio::select! {
            _ = console.shutdown.cancelled() => return,
            _ = tx.closed() => return,
            _ = tick.tick() => refresh = true,
            _ = kpi.tick() => {
                if !send(&tx, "kpis", &kpis_view(&console)).await {
                    return;
                }
            }
            woke = async { match wake.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => {
                if woke.is_none() {
                    wake = None;
                }
                // A burst (a message, its routing, the offer) is one refresh.
                tokio::time::sleep(COALESCE).await;
                while let Some(Some(_)) = wake.as_mut().and_then(|s| s.next().now_or_never()) {}
                refresh = true;
            }
        }
        if !refresh {
            continue;
        }
        let queue = queue_snapshot(&bus, &console.groups).await;
        let identity = queue.identity();
        if last_queue.as_ref() != Some(&identity) {
            if !send(&tx, "queue", &queue).await {
                return;
            }
            last_queue = Some(identity);
        }
        let agents = agents_view(&console, &bus).await;
        let identity = serde_json::to_value(&agents).unwrap_or_default();
        if last_agents.as_ref() != Some(&identity) {
            if !send(&tx, "agents", &agents).await {
                return;
            }
            last_agents = Some(identity);
        }
    }
}

/// Sends one event; `false` when the client went away.
async fn send(tx: &mpsc::Sender<Event>, name: &str, data: &impl Serialize) -> bool {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    tx.send(Event::default().event(name).data(data)).await.is_ok()
}
