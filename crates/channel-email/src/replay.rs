//! Replayed raw mails: `switchboard dlq replay` of an `email-in` dead letter stores the raw mail on
//! `sb.replay.email-in` (stream `SB_REPLAY`), and this consumer hands it to the same [`Handler`]
//! as a freshly fetched mail: parsed, classified, threaded and published as an envelope, or
//! dead-lettered again with the reason. On `sb.in.email` the router would read the raw bytes as
//! an envelope and refuse them.

use async_nats::HeaderMap;
use switchboard_adapter::Inbound;
use switchboard_bus::{BusError, ConsumerSpec, Delivery, HandlerError};
use switchboard_core::contract::{dlq_kinds, headers};
use tracing::info;

use crate::handle::{DLQ_COMPONENT, Handler, Outcome};

/// Durable consumer of replayed raw mails (shared by every process that watches the mailboxes).
pub const REPLAY_CONSUMER: &str = "email-replay";

/// Handles replayed raw mails until `inbound`'s shutdown.
pub async fn run(handler: Handler, inbound: Inbound) -> Result<(), BusError> {
    let bus = inbound.bus()?.clone();
    let spec = ConsumerSpec::replay(DLQ_COMPONENT, REPLAY_CONSUMER);
    let shutdown = inbound.shutdown().clone();
    bus.run_consumer(spec, shutdown, move |d: Delivery| {
        let (handler, inbound) = (handler.clone(), inbound.clone());
        async move { replay_one(&handler, &inbound, d).await }
    })
    .await
}

/// Where a replayed mail is at the provider, with the replay's id appended
/// (`<raw ref>;replay:<seq>:<ns>`): the handler names a dead letter after the reference, and one
/// failing again must not be dropped as a duplicate of the dead letter it was replayed from.
pub fn replay_ref(headers: &HeaderMap, stream_sequence: u64) -> String {
    // A mail replayed before carries that replay's id already: keep only where it is.
    let original = headers
        .get(headers::RAW_REF)
        .and_then(|v| v.as_str().split(';').next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let replay = headers
        .get(headers::MSG_ID)
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| format!("replay:{stream_sequence}"));
    format!("{original};{replay}")
}

async fn replay_one(handler: &Handler, inbound: &Inbound, d: Delivery) -> Result<(), HandlerError> {
    let kind = d.headers.get(headers::DLQ_KIND).map(|v| v.as_str().to_string());
    if kind.as_deref().is_some_and(|k| k != dlq_kinds::RAW_MAIL) {
        return Err(HandlerError::Reject(format!("not a raw mail but {}", kind.unwrap_or_default())));
    }
    let raw_ref = replay_ref(&d.headers, d.stream_sequence);
    let outcome =
        handler.handle(&d.payload, &raw_ref, inbound).await.map_err(|e| HandlerError::Retry(e.to_string()))?;
    info!(raw_ref, outcome = outcome.name(), "replayed mail handled");
    match outcome {
        Outcome::Retry(reason) => Err(HandlerError::Retry(reason)),
        _ => Ok(()),
    }
}
