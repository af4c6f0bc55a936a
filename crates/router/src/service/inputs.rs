//! The leader's inputs: customer messages, agents' commands, delivery failures and edits, each a durable
//! consumer whose deliveries are handed to the step loop and acked once journaled and applied.

use std::time::Duration;
use switchboard_bus::{ConsumerSpec, Delivery, HandlerError};
use switchboard_bus::{InboundOutcome, outcomes};
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{AgentCommand, Envelope, Event, EventKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Input, RouterService, Work};

/// How many inputs each input consumer hands the leader at once.
pub(super) const INPUT_CONCURRENCY: usize = 256;

/// A customer message as the router accepts it: a valid envelope whose channel is the one of the
/// subject it arrived on (`sb.in.<channel>`), so that NATS subject permissions bound what an
/// adapter can write: one allowed only `sb.in.pigeon` cannot speak for webhook customers.
pub(super) fn inbound_envelope(d: &Delivery) -> Result<Envelope, HandlerError> {
    let envelope = d.decode::<Envelope>()?;
    let subject_channel = d.subject.strip_prefix("sb.in.").unwrap_or(&d.subject);
    if envelope.channel != subject_channel {
        return Err(HandlerError::Reject(switchboard_core::contract::channel_mismatch(&envelope.channel, &d.subject)));
    }
    Ok(envelope)
}

/// The `traceparent` an input arrived with, while tracing is on.
fn traceparent(d: &Delivery) -> Option<String> {
    let on = switchboard_bus::trace::enabled();
    on.then(|| d.headers.get(switchboard_bus::trace::TRACEPARENT).map(|v| v.to_string())).flatten()
}

impl RouterService {
    pub(super) fn start_inputs(&self, tx: mpsc::Sender<Work>, stop: &CancellationToken) -> JoinSet<()> {
        let mut set = JoinSet::new();
        let component = format!("router-{}", self.svc.group);
        let inbound = ConsumerSpec::new(&component, streams::INBOUND, &component, "sb.in.>");
        let commands =
            ConsumerSpec::new(&component, streams::AGENT, &format!("{component}-commands"), subjects::AGENT_IN);
        set.spawn(self.channel_event_input(EventKind::DeliveryFailed, "undelivered", tx.clone(), stop));
        set.spawn(self.channel_event_input(EventKind::MessageEdited, "edited", tx.clone(), stop));
        for (mut spec, customers) in [(inbound, true), (commands, false)] {
            // An input fails here only because the router is not leading or NATS is down: never
            // a reason to give a customer's message up. Bad payloads are still rejected at once.
            spec.max_deliver = u64::MAX;
            spec.ack_wait = self.svc.lease_ttl.max(Duration::from_secs(5));
            if customers {
                // Many customer messages in flight, so that the leader finds a group's worth
                // waiting; one thread's messages one after the other, so a customer's quick
                // messages are journaled (and reach the agent) in the order they were written.
                spec.concurrency = INPUT_CONCURRENCY;
                spec.per_conversation = true;
            } else {
                // Agents' commands strictly in stream order: an accept that is retried, or was
                // held by a leader that died, must not be overtaken by the reply after it (found
                // by the fault tests: the router refused the reply as not assigned).
                spec.in_order = true;
            }
            let (bus, tx, stop) = (self.bus.clone(), tx.clone(), stop.clone());
            let answers_bad_input = self.answers_bad_input();
            set.spawn(async move {
                let handler = move |d: Delivery| {
                    let tx = tx.clone();
                    async move {
                        let input = if customers {
                            match inbound_envelope(&d) {
                                Ok(envelope) => Input::Inbound(Box::new(envelope)),
                                // Every group reads every input: one of them keeps the bad one.
                                Err(_) if !answers_bad_input => return Ok(()),
                                Err(e) => {
                                    let channel = d.subject.strip_prefix("sb.in.").unwrap_or(&d.subject);
                                    warn!(subject = %d.subject, reason = %e, "inbound message refused");
                                    outcomes::record(channel, InboundOutcome::DeadLetter);
                                    return Err(e);
                                }
                            }
                        } else {
                            Input::Command(Box::new(d.decode::<AgentCommand>()?))
                        };
                        let (done, result) = oneshot::channel();
                        if tx.send(Work { input, done, trace: traceparent(&d) }).await.is_err() {
                            return Err(HandlerError::Retry("router not leading".into()));
                        }
                        result.await.unwrap_or_else(|_| Err(HandlerError::Retry("router stopped".into())))
                    }
                };
                if let Err(e) = bus.run_consumer(spec, stop, handler).await {
                    warn!(error = %e, "router input consumer failed");
                }
            });
        }
        set
    }

    /// A consumer of channel events about messages (`delivery_failed` with durable suffix
    /// `undelivered`, `message_edited` with `edited`): each one the router acts on goes through
    /// the journal like any input (a takeover replays it); the others are acked untouched.
    pub(super) fn channel_event_input(
        &self,
        kind: switchboard_core::EventKind,
        suffix: &str,
        tx: mpsc::Sender<Work>,
        stop: &CancellationToken,
    ) -> impl Future<Output = ()> + use<> {
        let component = format!("router-{}", self.svc.group);
        let mut spec = ConsumerSpec::new(
            &component,
            streams::EVENTS,
            &format!("{component}-{suffix}"),
            &subjects::event(kind.as_str()),
        );
        spec.max_deliver = u64::MAX;
        spec.ack_wait = self.svc.lease_ttl.max(Duration::from_secs(5));
        // Failures from before this consumer existed are history, not news for an agent.
        spec.only_new = true;
        let (bus, stop) = (self.bus.clone(), stop.clone());
        let answers_bad_input = self.answers_bad_input();
        async move {
            let handler = move |d: Delivery| {
                let tx = tx.clone();
                async move {
                    let event = match d.decode::<Event>() {
                        Ok(event) => event,
                        Err(_) if !answers_bad_input => return Ok(()),
                        Err(e) => return Err(e),
                    };
                    if !crate::undelivered::acts_on(&event) {
                        return Ok(());
                    }
                    let (done, result) = oneshot::channel();
                    let input = Input::Undelivered(Box::new(event));
                    if tx.send(Work { input, done, trace: traceparent(&d) }).await.is_err() {
                        return Err(HandlerError::Retry("router not leading".into()));
                    }
                    result.await.unwrap_or_else(|_| Err(HandlerError::Retry("router stopped".into())))
                }
            };
            if let Err(e) = bus.run_consumer(spec, stop, handler).await {
                warn!(error = %e, "router delivery-failure consumer failed");
            }
        }
    }

    /// Whether this router dead-letters inputs nobody can route (unreadable, or on another
    /// channel's subject): with the teams divided into groups only the last group does, so such
    /// an input becomes one dead letter, not one per group.
    pub(super) fn answers_bad_input(&self) -> bool {
        match self.cfg.group.as_ref().filter(|g| g.layout.divided()) {
            Some(g) => g.layout.catch_all() == g.name,
            None => true,
        }
    }
}
