//! The inbound side's handle: rate limit, validate, publish, wait for the ack.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_bus::{BusError, BusSlot, Published};
use switchboard_core::contract::{inbound_msg_id, subjects};
use switchboard_core::{Contract, Envelope, ValidationError};
use tokio_util::sync::CancellationToken;

use crate::{Health, RateLimitConfig};

/// Given to a channel's inbound side: publishes envelopes on `sb.in.<channel>`. Cheap to clone.
#[derive(Clone)]
pub struct Inbound {
    channel: Arc<str>,
    bus: BusSlot,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    health: Health,
    shutdown: CancellationToken,
}

/// Why an envelope was not stored.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// This sender exceeded the per-sender rate limit; try again after the given time.
    #[error("sender is over the rate limit, retry in {retry_after:?}")]
    RateLimited {
        /// When the sender may try again.
        retry_after: Duration,
    },
    /// The envelope broke the contract.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The bus is not connected yet, or the daemon is shutting down.
    #[error("not ready: {0}")]
    NotReady(&'static str),
    /// JetStream did not acknowledge the envelope; nothing can be promised to the provider.
    #[error(transparent)]
    Bus(BusError),
}

impl Inbound {
    pub(crate) fn new(
        channel: &str,
        bus: BusSlot,
        rate_limit: RateLimitConfig,
        health: Health,
        shutdown: CancellationToken,
    ) -> Self {
        let per_minute = NonZeroU32::new(rate_limit.per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate_limit.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst));
        Self { channel: channel.into(), bus, limiter: Arc::new(limiter), health, shutdown }
    }

    /// The channel name envelopes must carry.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Fires when the daemon shuts down: stop taking new provider messages.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The same publisher with another stop signal (an inbound side that stops when its lease is lost).
    pub(crate) fn with_shutdown(&self, shutdown: CancellationToken) -> Inbound {
        Inbound { shutdown, ..self.clone() }
    }

    /// The bus, once connected: for what a channel stores besides envelopes (cursors, events,
    /// attachments).
    pub fn bus(&self) -> Result<&switchboard_bus::Bus, switchboard_bus::BusError> {
        self.bus.get()
    }

    /// The channel's health cell, for reporting provider trouble.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Whether the bus is connected and the runtime took its outbound side up.
    pub fn is_ready(&self) -> bool {
        self.bus.get().is_ok()
    }

    /// Checks the sender's rate limit, validates `envelope` and stores it on `sb.in.<channel>`
    /// with `Nats-Msg-Id: <channel>:<provider id>`. Returns once JetStream acknowledged it;
    /// `duplicate` in the result says the provider re-delivered something already stored.
    pub async fn publish(&self, envelope: Envelope) -> Result<Published, InboundError> {
        if envelope.channel != *self.channel {
            return Err(ValidationError::new("channel", format!("must be `{}` for this adapter", self.channel)).into());
        }
        envelope.validate()?;
        self.check_rate(&envelope.customer.id)?;
        let bus = self.bus.get().map_err(|_| InboundError::NotReady("bus not connected"))?;
        let msg_id = inbound_msg_id(&self.channel, &envelope.provider_message_id);
        // A customer message starts its trace here: the stored envelope carries this span.
        let span = match switchboard_bus::trace::enabled() {
            true => {
                tracing::info_span!("inbound", otel.name = "provider in", otel.kind = "producer", channel = %self.channel)
            }
            false => tracing::Span::none(),
        };
        let subject = subjects::inbound(&self.channel);
        let publish = bus.publish(&subject, &envelope, &msg_id);
        tracing::Instrument::instrument(publish, span).await.map_err(InboundError::Bus)
    }

    /// Counts one message from `sender` against the per-sender limit.
    pub fn check_rate(&self, sender: &str) -> Result<(), InboundError> {
        self.limiter.check_key(&sender.to_string()).map_err(|not_until| InboundError::RateLimited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// Forgets senders whose buckets are full again, so the limiter's memory stays bounded.
    pub(crate) fn forget_idle_senders(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}
