//! Switchboard's NATS JetStream layer.
//!
//! It connects (with retry and back-off, refusing servers older than 2.10), creates or updates the
//! streams, key-value buckets and object store of the bus contract, publishes contract types with
//! their schema header and de-duplication id while waiting for the JetStream ack, and runs durable
//! consumers that ack only after their handler succeeded and dead-letter what keeps failing, and
//! holds leadership leases so that one of several processes acts while the others stand by.
//! It knows the contract's names from `switchboard-core` but never decides routing and never
//! speaks a provider's wire format.

mod auth;
mod backoff;
mod config;
mod connect;
pub mod consumer;
mod error;
pub mod fill;
mod follow;
mod journal;
mod lease;
pub mod limits;
pub mod outcomes;
mod publish;
mod setup;
pub mod trace;
mod version;

pub use auth::BusConfigError;
pub use backoff::Backoff;
pub use config::BusConfig;
pub use connect::{Bus, BusSlot, redacted_url, server_list};
pub use consumer::{ConsumerSpec, Delivery, HandlerError};
pub use error::BusError;
pub use fill::Fill;
pub use journal::{AppendError, Appended, Journal, JournalEntry};
pub use lease::{Lease, LeaseLost, LeaseRecord};
pub use outcomes::InboundOutcome;
pub use publish::{PendingPublish, Published};
pub use setup::PRESENCE_MAX_AGE;
pub use version::{MIN_SERVER_VERSION, check_server_version};

/// Re-exported so that callers can build headers and inspect messages without a direct dependency.
pub use async_nats;
