//! OpenTelemetry traces (`[telemetry]`, off by default): spans exported over OTLP/HTTP
//! (protobuf) in batches, and the W3C trace context carried in NATS headers
//! ([`switchboard_bus::trace`]), so one customer message is one trace across processes:
//! provider in → router decision → agent delivery → the agent's command → router decision →
//! customer out. The standard `OTEL_*` variables apply (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`, ...); the section's keys win where set. Off,
//! nothing is installed and nothing is carried.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Whether traces are exported (and trace context carried on the bus).
    pub enabled: bool,
    /// The OTLP/HTTP traces endpoint, e.g. `http://collector:4318/v1/traces`; absent: the
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` variables, else
    /// `http://localhost:4318/v1/traces`.
    pub endpoint: Option<String>,
    /// The `service.name` of the spans; absent: `OTEL_SERVICE_NAME`, else `switchboard`.
    pub service_name: Option<String>,
}

/// The running exporter: flushes what is left and stops when dropped.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry: could not flush the last spans: {e}");
        }
    }
}

/// The exporter and the `tracing` layer that feeds it, when `config.enabled`.
pub fn start<S>(config: &TelemetryConfig) -> Result<Option<(Telemetry, impl tracing_subscriber::Layer<S>)>, String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    if !config.enabled {
        return Ok(None);
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(endpoint) = &config.endpoint {
        exporter = exporter.with_endpoint(endpoint.clone());
    }
    let exporter = exporter.build().map_err(|e| format!("telemetry: the OTLP exporter: {e}"))?;
    let name = config
        .service_name
        .clone()
        .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
        .unwrap_or_else(|| "switchboard".into());
    let resource = Resource::builder()
        .with_service_name(name)
        .with_attribute(opentelemetry::KeyValue::new("service.instance.id", instance()))
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("switchboard");
    switchboard_bus::trace::enable();
    Ok(Some((Telemetry { provider }, tracing_opentelemetry::layer().with_tracer(tracer))))
}

/// This process among others: `<host>:<pid>`.
fn instance() -> String {
    format!("{}:{}", crate::host::host_name(), std::process::id())
}
