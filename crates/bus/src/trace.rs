//! W3C trace context across the bus: a message published inside a traced span carries that span
//! as `traceparent` (and `tracestate`) headers, and a consumer's handler runs in a span whose parent
//! is the message's, so one customer message is one trace across processes (`[telemetry]`,
//! docs/operations.md). Off unless the daemon turned telemetry on: then nothing is injected or
//! extracted, and the headers cost nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header naming the trace and the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header with vendors' trace state.
pub const TRACESTATE: &str = "tracestate";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns propagation on (the daemon does, when it exports traces).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether trace context is carried.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The current span's context as W3C headers (`traceparent`, maybe `tracestate`); empty when
/// tracing is off or the current span is not traced.
pub fn current() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    if !enabled() {
        return carrier;
    }
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
    }
    carrier
}

/// Adds the current span's context to `headers` (see [`current`]).
pub fn inject(headers: &mut HeaderMap) {
    for (key, value) in current() {
        headers.insert(key.as_str(), value.as_str());
    }
}

/// Makes `span`'s parent the trace context `traceparent` (+ `tracestate`) names; does nothing when
/// tracing is off or the value is not a valid W3C `traceparent`.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent.filter(|_| enabled()) else { return };
    let mut carrier = HashMap::new();
    carrier.insert(TRACEPARENT.to_string(), traceparent.to_string());
    if let Some(state) = tracestate {
        carrier.insert(TRACESTATE.to_string(), state.to_string());
    }
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// Makes `span`'s parent the trace context of a received message's headers.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(headers) = headers.filter(|_| enabled()) else { return };
    set_parent(span, headers.get(TRACEPARENT).map(|v| v.as_str()), headers.get(TRACESTATE).map(|v| v.as_str()));
}

/// The span a consumer's handler runs in, child of the message's trace context: named for what
/// the consumer does (`customer out` for `out-<channel>`, `agent delivery` for `agent-<kind>`,
/// `router input`), or no span at all while tracing is off.
pub fn consumer_span(durable: &str, subject: &str, headers: Option<&HeaderMap>) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let name = if durable.starts_with("out-") {
        "customer out"
    } else if durable.starts_with("agent-") {
        "agent delivery"
    } else if durable.starts_with("router") {
        "router input"
    } else {
        "consume"
    };
    let span = tracing::info_span!("consume", otel.name = name, otel.kind = "consumer", durable, subject);
    set_parent_from(&span, headers);
    span
}
