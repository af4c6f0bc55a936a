//! The metrics component: folds `sb.events.>` into support KPIs as they happen and serves them
//! in the Prometheus text format at `/metrics`.
//!
//! The fold ([`switchboard_metrics::Metrics`]) and the stream sequence it reached are saved
//! together in the object store `sb_metrics` every `snapshot_secs` and at shutdown. A restart
//! loads the snapshot and reads on from the next sequence, so every event is counted once: an
//! event after the snapshot is read again and was not in it; the fold also ignores an event id
//! it has seen. Several processes may run the component: each folds the whole stream, and any
//! snapshot is a consistent prefix of it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use switchboard_bus::{Backoff, Bus};
use switchboard_core::contract::{METRICS_STORE, headers, streams};
use switchboard_core::decode_events;
use switchboard_metrics::Metrics;

pub use crate::config::MetricsConfig;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Object name of the snapshot in `sb_metrics`.
const SNAPSHOT: &str = "kpis";

/// Who may scrape `/metrics`.
#[derive(Clone)]
enum Access {
    /// No token configured: anyone who reaches the listener.
    Open,
    /// Only requests with this token (kept as its digest, compared in constant time).
    Token([u8; 32]),
    /// A token was configured but cannot be read: nobody, rather than everybody.
    Locked,
}

/// Refuses a configured metrics token shorter than [`crate::api::MIN_TOKEN_BYTES`] (checked at start).
pub fn check_token(cfg: &MetricsConfig) -> Result<(), String> {
    if cfg.token_env.is_none() && cfg.token_file.is_none() {
        return Ok(());
    }
    match switchboard_adapter::read_secret(cfg.token_env.as_deref(), cfg.token_file.as_deref()) {
        Ok(Some(token)) if !token.is_empty() && token.trim().len() < crate::api::MIN_TOKEN_BYTES => Err(format!(
            "metrics.token: the token has {} bytes; at least {} are required",
            token.trim().len(),
            crate::api::MIN_TOKEN_BYTES
        )),
        _ => Ok(()),
    }
}

impl Access {
    fn from_config(cfg: &MetricsConfig) -> Access {
        if cfg.token_env.is_none() && cfg.token_file.is_none() {
            return Access::Open;
        }
        match switchboard_adapter::read_secret(cfg.token_env.as_deref(), cfg.token_file.as_deref()) {
            Ok(Some(token)) if !token.is_empty() => {
                info!("/metrics requires its bearer token");
                Access::Token(Sha256::digest(token.as_bytes()).into())
            }
            Ok(_) => {
                warn!("metrics token is empty: /metrics refuses every request until it is set");
                Access::Locked
            }
            Err(reason) => {
                warn!(%reason, "metrics token unreadable: /metrics refuses every request until it is set");
                Access::Locked
            }
        }
    }

    fn allows(&self, headers: &HeaderMap) -> bool {
        let expected = match self {
            Access::Open => return true,
            Access::Locked => return false,
            Access::Token(digest) => digest,
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(presented) = presented else { return false };
        // Digests have one length, so the comparison's time says nothing about the token.
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(expected))
    }
}

/// The fold and how far into `SB_EVENTS` it got.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Fold {
    /// Stream sequence of the last event applied.
    last_seq: u64,
    metrics: Metrics,
    /// Events that could not be read (counted, not applied).
    #[serde(default)]
    unreadable: u64,
}

/// The running fold, shared with the `/metrics` route.
#[derive(Clone, Default)]
pub struct LiveMetrics(Arc<RwLock<Fold>>);

impl LiveMetrics {
    /// The `/metrics` route, behind the bearer token when `cfg` names one.
    pub fn routes(&self, cfg: &MetricsConfig) -> Router {
        let state = Scrape {
            live: self.clone(),
            access: Access::from_config(cfg),
            staffing_target_secs: cfg.staffing_target_secs,
        };
        documented().split_for_parts().0.with_state(state)
    }

    /// Runs `f` on the fold as it stands (the console's KPIs and agents' conversations).
    pub fn read<R>(&self, f: impl FnOnce(&Metrics) -> R) -> R {
        f(&self.0.read().unwrap_or_else(|e| e.into_inner()).metrics)
    }

    /// The OpenAPI paths of [`LiveMetrics::routes`].
    pub fn openapi() -> utoipa::openapi::OpenApi {
        documented().into_openapi()
    }

    /// Folds events until `stop` fires; saves a snapshot on the way out.
    pub async fn run(self, bus: Bus, cfg: MetricsConfig, stop: CancellationToken) -> Result<(), String> {
        match load(&bus).await {
            Ok(Some(fold)) => {
                info!(last_seq = fold.last_seq, "metrics resume from their snapshot");
                *self.0.write().expect("metrics lock") = fold;
            }
            Ok(None) => info!("metrics start from the beginning of the event stream"),
            Err(e) => warn!(error = %e, "metrics snapshot unreadable; folding the event stream again"),
        }
        let backoff = Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(10) };
        let mut attempt = 0;
        loop {
            match self.follow(&bus, &cfg, &stop).await {
                Ok(()) => break,
                Err(e) => {
                    attempt += 1;
                    warn!(error = %e, attempt, "metrics stopped reading events; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(backoff.delay(attempt)) => {}
                    }
                }
            }
        }
        self.save(&bus).await.map_err(|e| format!("final metrics snapshot: {e}"))
    }

    async fn follow(&self, bus: &Bus, cfg: &MetricsConfig, stop: &CancellationToken) -> Result<(), String> {
        let next = self.0.read().expect("metrics lock").last_seq + 1;
        let stream = bus.jetstream().get_stream(streams::EVENTS).await.map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: "sb.events.>".into(),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: next },
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        // Rewrites of batches the fold has passed were counted with the original, or will be
        // counted when they come (each id once); the others are folded where the original stood.
        let mut rewrites = crate::stats::read_rewrites(bus).await.map_err(|e| format!("{e:#}"))?;
        rewrites.drop_before(next);
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        let mut snapshot = tokio::time::interval(Duration::from_secs(cfg.snapshot_secs.max(1)));
        snapshot.reset();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = snapshot.tick() => {
                    self.0.write().expect("metrics lock").metrics.forget_before(retained_from(cfg));
                    if let Err(e) = self.save(bus).await {
                        warn!(error = %e, "metrics snapshot not saved; the next one covers it");
                    }
                }
                message = messages.next() => {
                    let message = match message {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("event stream ended".into()),
                    };
                    let seq = message.info().map_err(|e| e.to_string())?.stream_sequence;
                    let header = |name| message.headers.as_ref().and_then(|h| h.get(name)).map(|s| s.as_str());
                    let events = decode_events(header(headers::SCHEMA), &message.payload);
                    // What an erasure published again: the fold counts each id once, but it
                    // has forgotten ids older than its retention on purpose.
                    let kept_from = header(headers::REWRITE_OF).map(|_| retained_from(cfg));
                    let mut fold = self.0.write().expect("metrics lock");
                    for event in rewrites.take_before(seq + 1) {
                        fold.metrics.apply(&event);
                    }
                    match events {
                        Ok(events) => {
                            for event in events.iter().filter(|e| kept_from.is_none_or(|t| e.at.timestamp_millis() >= t)) {
                                fold.metrics.apply(event);
                            }
                        }
                        Err(e) => {
                            fold.unreadable += 1;
                            debug!(seq, error = %e, "unreadable event message skipped by metrics");
                        }
                    }
                    fold.last_seq = seq;
                }
            }
        }
    }

    async fn save(&self, bus: &Bus) -> Result<(), String> {
        let bytes = serde_json::to_vec(&*self.0.read().expect("metrics lock")).map_err(|e| e.to_string())?;
        let store = bus.jetstream().get_object_store(METRICS_STORE).await.map_err(|e| e.to_string())?;
        store.put(SNAPSHOT, &mut bytes.as_slice()).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The oldest time the fold keeps (Unix ms): now less `retention_days`.
fn retained_from(cfg: &MetricsConfig) -> i64 {
    let retention = Duration::from_secs(cfg.retention_days.saturating_mul(86_400));
    chrono::Utc::now().timestamp_millis() - retention.as_millis() as i64
}

async fn load(bus: &Bus) -> Result<Option<Fold>, String> {
    let store = bus.jetstream().get_object_store(METRICS_STORE).await.map_err(|e| e.to_string())?;
    let mut reader = match store.get(SNAPSHOT).await {
        Ok(r) => r,
        Err(e) if e.kind() == switchboard_bus::async_nats::jetstream::object_store::GetErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes).await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| e.to_string())
}

/// What the `/metrics` handler needs.
#[derive(Clone)]
struct Scrape {
    live: LiveMetrics,
    access: Access,
    staffing_target_secs: u64,
}

/// The metrics route, for both serving and documenting it.
fn documented() -> OpenApiRouter<Scrape> {
    OpenApiRouter::new().routes(routes!(scrape))
}

/// The KPIs in the OpenMetrics text format, for Prometheus.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The KPIs (counts, durations, agent ids as labels).",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 401, description = "`[metrics] token_env`/`token_file` is set and the request lacks the token.",
            headers(("WWW-Authenticate" = String, description = "`Bearer`")), body = String, content_type = "text/plain"),
        (status = 500, description = "The exposition could not be written.", body = String, content_type = "text/plain"),
    )
)]
async fn scrape(State(Scrape { live, access, staffing_target_secs }): State<Scrape>, headers: HeaderMap) -> Response {
    if !access.allows(&headers) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "metrics need the bearer token\n")
            .into_response();
    }
    let now = chrono::Utc::now().timestamp_millis();
    let fold = live.0.read().expect("metrics lock");
    match switchboard_metrics::exposition_with_target(&fold.metrics, Some(now), staffing_target_secs) {
        Ok(mut text) => {
            // Where the fold stands, so a stalled component shows on a dashboard.
            if let Some(eof) = text.rfind("# EOF") {
                text.truncate(eof);
            }
            text.push_str(&switchboard_bus::outcomes::exposition());
            text.push_str(&switchboard_routing::budget::exposition());
            text.push_str(&switchboard_bus::fill::exposition());
            text.push_str(&crate::serve::exposition());
            text.push_str(&crate::reload::exposition());
            text.push_str(&format!(
                "# HELP switchboard_metrics_events_sequence Stream sequence of the last event folded.\n\
                 # TYPE switchboard_metrics_events_sequence gauge\n\
                 switchboard_metrics_events_sequence {}\n\
                 # HELP switchboard_metrics_unreadable_events Events the fold could not read.\n\
                 # TYPE switchboard_metrics_unreadable_events gauge\n\
                 switchboard_metrics_unreadable_events {}\n# EOF\n",
                fold.last_seq, fold.unreadable
            ));
            ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
