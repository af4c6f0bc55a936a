//! Replayed events: `switchboard dlq replay` of a `webchat-events` dead letter (an `event/1`, or
//! an `events/1` batch of the router's) stores it on `sb.replay.webchat-events` (stream
//! `SB_REPLAY`), not on `sb.events.>` again (where it is already, in the audit log, and a second
//! copy would count twice in metrics). This consumer hands it to the same handler as a live
//! event: each assignment or resolution becomes its transcript entry.

use std::sync::Arc;

use switchboard_bus::{Bus, BusError, ConsumerSpec, Delivery, HandlerError};
use tokio_util::sync::CancellationToken;

use crate::events::{EVENTS_CONSUMER, show};
use crate::server::Shared;

/// Durable consumer of replayed events (shared by every replica).
pub const REPLAY_CONSUMER: &str = "webchat-events-replay";

/// Handles replayed events until `stop` fires.
pub(crate) async fn run_event_replays(shared: Arc<Shared>, bus: Bus, stop: CancellationToken) -> Result<(), BusError> {
    let spec = ConsumerSpec::replay(EVENTS_CONSUMER, REPLAY_CONSUMER);
    bus.clone()
        .run_consumer(spec, stop, move |delivery: Delivery| {
            let (shared, bus) = (shared.clone(), bus.clone());
            async move {
                // An event or a batch of them, told apart by `Sb-Schema` as on `sb.events.>`.
                show(&shared, &bus, &delivery).await.map_err(|e| match e {
                    HandlerError::Reject(why) => HandlerError::Reject(format!("replayed event: {why}")),
                    other => other,
                })
            }
        })
        .await
}
