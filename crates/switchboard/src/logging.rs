//! `tracing` set-up: human lines by default, JSON for log collectors, and spans exported over
//! OTLP when `[telemetry]` says so ([`crate::telemetry`]).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::telemetry::{Telemetry, TelemetryConfig};

/// Installs the global subscriber; `RUST_LOG`, when set, overrides `level`. With telemetry on,
/// the returned guard flushes the last spans when dropped.
pub fn init(format: LogFormat, level: &str, telemetry: &TelemetryConfig) -> Result<Option<Telemetry>, String> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (guard, otel) = match crate::telemetry::start(telemetry)? {
        Some((guard, layer)) => (Some(guard), Some(layer)),
        None => (None, None),
    };
    let registry = tracing_subscriber::registry().with(otel).with(filter());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Human => registry.with(fmt).init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true).with_current_span(false)).init(),
    }
    Ok(guard)
}
