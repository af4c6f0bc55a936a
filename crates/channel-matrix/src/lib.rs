//! Switchboard's Matrix agent endpoint (kind `matrix`): agents work from any Matrix client.
//!
//! A bot account opens one direct room per agent (by their Matrix user id). Offers arrive there
//! with the customer, channel, priority, SLA deadline and history, and the bot's ✅/❌ reactions
//! to accept or decline with one click (or `!accept`/`!decline`). Each conversation is a thread
//! rooted at its offer: a plain message in the thread answers the customer, `!note` is an internal
//! note (a `note` command, so by construction never sent to the customer), `!resolve`,
//! `!transfer <team> <note>`, `!escalate`, `!t <saved reply>`; `!online`/`!away`/`!offline`
//! anywhere. Team rooms show each team's live queue as one message edited in place.
//!
//! Deliveries are consumed by every process (acked once the homeserver accepted them); `/sync`
//! runs in one process at a time, under a lease. Encrypted rooms are refused: see `docs/matrix.md`.
//! The client-server API is spoken over `reqwest` directly. It never logs message bodies or the
//! access token.

mod agents;
mod board;
mod client;
mod config;
mod events;
pub mod format;
mod state;
mod sync;

use switchboard_bus::{Bus, BusError};
use tokio_util::sync::CancellationToken;

pub use agents::{ENCRYPTED_NOTICE, MatrixAgents};
pub use client::{MatrixClient, MatrixError};
pub use config::{MatrixConfig, MatrixConfigError};
pub use events::{EventOutcome, OUTCOME_CHANNEL};
pub use state::{State, Thread};
pub use sync::LEASE;

/// The endpoint kind this crate serves: subject `sb.agent.out.matrix`.
pub const ENDPOINT_KIND: &str = "matrix";

impl MatrixAgents {
    /// Runs until `stop`: consumes `sb.agent.out.matrix` (in every process) and, while this
    /// process holds the sync lease, reads what agents do and keeps the team boards.
    pub async fn run(self, bus: Bus, stop: CancellationToken) -> Result<(), String> {
        switchboard_bus::outcomes::register(OUTCOME_CHANNEL);
        // A token of another user would act as that user: nothing runs until it is the bot's.
        match self.check_token(&stop).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "the Matrix endpoint does not start");
                return Err(e);
            }
        }
        let exclusive = tokio::spawn({
            let (this, bus, stop) = (self.clone(), bus.clone(), stop.clone());
            async move {
                let outcome = this.run_exclusive(bus, stop).await;
                if let Err(e) = &outcome {
                    tracing::error!(error = %e, "Matrix sync stopped");
                }
                outcome
            }
        });
        let consumed = self.consume(bus, stop.clone()).await.map_err(|e| e.to_string());
        stop.cancel();
        let synced = exclusive.await.map_err(|e| format!("matrix sync: {e}"))?;
        consumed.and(synced)
    }

    /// Consumes `sb.agent.out.matrix` until `stop`: acked once the homeserver took the
    /// delivery, retried after the wait it asked for, dead-lettered (`sb.dlq.agent-matrix`) when
    /// it cannot ever be sent.
    pub async fn consume(self, bus: Bus, stop: CancellationToken) -> Result<(), BusError> {
        let runtime = switchboard_adapter::RuntimeConfig::default();
        switchboard_adapter::agent_chat::run_deliveries(bus, ENDPOINT_KIND, &runtime, stop, move |bus, delivery| {
            let this = self.clone();
            async move { this.deliver(&bus, &delivery).await }
        })
        .await
    }
}
