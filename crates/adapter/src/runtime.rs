//! The runtime around a channel: outbound consumer with retries and dead letters, inbound task,
//! rate-limiter housekeeping, health.

use std::sync::Arc;
use std::time::Duration;

use switchboard_bus::{BusSlot, Delivery, HandlerError};
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{Event, EventKind, OutboundMessage};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{AdapterError, Channel, Health, HealthStatus, Inbound, RuntimeConfig};

/// Runs one channel: its inbound side and the consumer of `sb.out.<channel>`.
pub struct ChannelRuntime<C: Channel> {
    channel: Arc<C>,
    config: RuntimeConfig,
    bus: BusSlot,
    health: Health,
    inbound: Inbound,
    shutdown: CancellationToken,
}

impl<C: Channel> ChannelRuntime<C> {
    /// Prepares the runtime; nothing runs until [`ChannelRuntime::spawn`]. `bus` may still be
    /// empty: inbound calls answer not-ready until it is filled.
    pub fn new(channel: Arc<C>, config: RuntimeConfig, bus: BusSlot, shutdown: CancellationToken) -> Self {
        let health = Health::default();
        let inbound = Inbound::new(channel.name(), bus.clone(), config.rate_limit, health.clone(), shutdown.clone());
        Self { channel, config, bus, health, inbound, shutdown }
    }

    /// The inbound handle, e.g. to build the channel's HTTP routes before the bus is up.
    pub fn inbound(&self) -> Inbound {
        self.inbound.clone()
    }

    /// The channel's HTTP routes, if it has any.
    pub fn routes(&self) -> Option<axum::Router> {
        self.channel.routes(self.inbound.clone())
    }

    /// The channel's health cell.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Runs the inbound side and the outbound consumer until shutdown. Needs a connected bus.
    pub fn spawn(self) -> JoinHandle<Result<(), AdapterError>> {
        tokio::spawn(self.run())
    }

    async fn run(self) -> Result<(), AdapterError> {
        let bus = self.bus.get()?.clone();
        let name = self.channel.name().to_string();
        let subject = subjects::outbound(&name);
        let spec = self.config.consumer_spec(&name, streams::OUTBOUND, &format!("out-{name}"), &subject);

        let housekeeping = {
            let (inbound, shutdown) = (self.inbound.clone(), self.shutdown.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                while tokio::select! { _ = shutdown.cancelled() => false, _ = tick.tick() => true } {
                    inbound.forget_idle_senders();
                }
            })
        };
        let inbound_task = {
            let (channel, inbound, health) = (self.channel.clone(), self.inbound.clone(), self.health.clone());
            let (bus, ttl) = (bus.clone(), Duration::from_secs(self.config.inbound_lease_ttl_secs.max(1)));
            // Aborted with the runtime: a runtime that is dropped must not leave a poller behind.
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                let outcome = if channel.exclusive_inbound() {
                    run_exclusive(channel.as_ref(), &bus, inbound, ttl).await
                } else {
                    channel.run_inbound(inbound).await
                };
                if let Err(e) = outcome {
                    error!(channel = channel.name(), error = %e, "inbound side stopped");
                    health.set(HealthStatus::Degraded(format!("inbound stopped: {e}")));
                }
            }))
        };

        info!(channel = %name, %subject, "channel running");
        self.health.set(HealthStatus::Ready);
        let channel = self.channel.clone();
        let events = bus.clone();
        let outcome = bus
            .run_consumer(spec, self.shutdown.clone(), move |delivery| {
                let (channel, events) = (channel.clone(), events.clone());
                async move { deliver(channel.as_ref(), &events, delivery).await }
            })
            .await;

        let _ = inbound_task.await;
        housekeeping.abort();
        self.health.set(HealthStatus::Stopped("shut down".into()));
        info!(channel = %name, "channel stopped");
        outcome.map_err(AdapterError::from)
    }
}

/// Runs a channel's inbound side only while this process holds the lease `channel.<name>`:
/// contends, runs it, renews the lease meanwhile, and stops it (to contend again) when the lease
/// is lost. Returns when the runtime shuts down, or with the inbound side's own error.
async fn run_exclusive<C: Channel>(
    channel: &C,
    bus: &switchboard_bus::Bus,
    inbound: Inbound,
    ttl: Duration,
) -> Result<(), AdapterError> {
    let name = format!("channel.{}", channel.name());
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let holder = format!("{host}:{}:{}", std::process::id(), uuid::Uuid::now_v7());
    let shutdown = inbound.shutdown().clone();
    loop {
        let mut lease = match bus.acquire_lease(&name, &holder, ttl, &shutdown).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Ok(()),
            Err(e) => {
                warn!(lease = %name, error = %e, "cannot contend for the inbound lease; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        info!(lease = %name, "polling inbound here");
        let stop = shutdown.child_token();
        let run = channel.run_inbound(inbound.with_shutdown(stop.clone()));
        tokio::pin!(run);
        let mut renew = tokio::time::interval(lease.renew_every());
        let lost = loop {
            tokio::select! {
                outcome = &mut run => {
                    lease.release().await;
                    return outcome;
                }
                _ = renew.tick() => {
                    if let Err(lost) = lease.renew().await {
                        break lost;
                    }
                }
            }
        };
        // Stop polling before anyone else may start: the lease's margin leaves time for it.
        warn!(lease = %name, error = %lost, "inbound lease lost; stopping the inbound side and contending again");
        stop.cancel();
        if let Err(e) = run.await {
            warn!(lease = %name, error = %e, "inbound side stopped with an error after losing its lease");
        }
    }
}

/// Sends one outbound message; on a final failure also records a `delivery_failed` event so the
/// conversation shows it.
async fn deliver<C: Channel>(channel: &C, bus: &switchboard_bus::Bus, delivery: Delivery) -> Result<(), HandlerError> {
    let message: OutboundMessage = delivery.decode()?;
    if message.channel != channel.name() {
        return Err(HandlerError::Reject(format!("message for channel {} on {}", message.channel, channel.name())));
    }
    match channel.send(&message).await {
        Ok(_) => Ok(()),
        Err(e) if e.retry_after.is_some() => {
            warn!(channel = channel.name(), message = %message.id, attempt = delivery.attempt, retry_after_ms = e.retry_after.unwrap_or_default().as_millis() as u64, "provider asked to wait");
            Err(e.into())
        }
        Err(e) => {
            let last = !e.retryable || delivery.last;
            if last {
                record_failure(bus, &message, &e.reason, delivery.attempt).await;
                Err(HandlerError::Reject(e.reason))
            } else {
                warn!(channel = channel.name(), message = %message.id, attempt = delivery.attempt, reason = %e.reason, "send failed, will retry");
                Err(HandlerError::Retry(e.reason))
            }
        }
    }
}

async fn record_failure(bus: &switchboard_bus::Bus, message: &OutboundMessage, reason: &str, attempts: u64) {
    let mut data = serde_json::Map::new();
    data.insert("outbound_id".into(), message.id.to_string().into());
    data.insert("reason".into(), reason.into());
    data.insert("attempts".into(), attempts.into());
    let event = Event {
        id: uuid::Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind: EventKind::DeliveryFailed,
        conversation_id: Some(message.conversation_id),
        agent_id: message.agent_id.clone(),
        channel: Some(message.channel.clone()),
        data,
    };
    let msg_id = format!("delivery-failed:{}", message.id);
    if let Err(e) = bus.publish(&subjects::event(EventKind::DeliveryFailed.as_str()), &event, &msg_id).await {
        warn!(error = %e, message = %message.id, "cannot record delivery failure event");
    }
}
