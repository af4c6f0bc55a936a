//! The leader's inputs: customer messages, agents' commands, delivery failures and edits, each a durable
//! consumer whose deliveries are handed to the step loop and acked once journaled and applied.

use futures::StreamExt;
use std::time::Duration;
use switchboard_bus::async_nats::jetstream::consumer::pull;
use switchboard_bus::{Bus, ConsumerSpec, Delivery, HandlerError};
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
    /// Starts the inputs: customer messages and channel events through durable consumers,
    /// agents' commands read in stream order from `SB_AGENT` sequence `commands_from`.
    pub(super) fn start_inputs(
        &self,
        tx: mpsc::Sender<Work>,
        stop: &CancellationToken,
        commands_from: u64,
    ) -> JoinSet<()> {
        let mut set = JoinSet::new();
        let component = format!("router-{}", self.svc.group);
        let mut spec = ConsumerSpec::new(&component, streams::INBOUND, &component, "sb.in.>");
        set.spawn(self.channel_event_input(EventKind::DeliveryFailed, "undelivered", tx.clone(), stop));
        set.spawn(self.channel_event_input(EventKind::MessageEdited, "edited", tx.clone(), stop));
        set.spawn(self.command_input(component, commands_from, tx.clone(), stop.clone()));
        // An input fails here only because the router is not leading or NATS is down: never
        // a reason to give a customer's message up. Bad payloads are still rejected at once.
        spec.max_deliver = u64::MAX;
        spec.ack_wait = self.svc.lease_ttl.max(Duration::from_secs(5));
        // Many customer messages in flight, so that the leader finds a group's worth
        // waiting; one thread's messages one after the other, so a customer's quick
        // messages are journaled (and reach the agent) in the order they were written.
        spec.concurrency = INPUT_CONCURRENCY;
        spec.per_conversation = true;
        let (bus, stop) = (self.bus.clone(), stop.clone());
        let answers_bad_input = self.answers_bad_input();
        set.spawn(async move {
            let handler = move |d: Delivery| {
                let tx = tx.clone();
                async move {
                    let envelope = match inbound_envelope(&d) {
                        Ok(envelope) => envelope,
                        // Every group reads every input: one of them keeps the bad one.
                        Err(_) if !answers_bad_input => return Ok(()),
                        Err(e) => {
                            let channel = d.subject.strip_prefix("sb.in.").unwrap_or(&d.subject);
                            warn!(subject = %d.subject, reason = %e, "inbound message refused");
                            outcomes::record(channel, InboundOutcome::DeadLetter);
                            return Err(e);
                        }
                    };
                    let (done, result) = oneshot::channel();
                    let work = Work { input: Input::Inbound(Box::new(envelope)), done, trace: traceparent(&d) };
                    if tx.send(work).await.is_err() {
                        return Err(HandlerError::Retry("router not leading".into()));
                    }
                    result.await.unwrap_or_else(|_| Err(HandlerError::Retry("router stopped".into())))
                }
            };
            if let Err(e) = bus.run_consumer(spec, stop, handler).await {
                warn!(error = %e, "router input consumer failed");
            }
        });
        set
    }

    /// Where the leader starts reading agents' commands: after the last one journaled. A group
    /// whose journal predates reading them that way starts where its durable consumer of
    /// commands had acked up to (the few read again are recognised as journaled by their ids).
    pub(super) async fn commands_from(&self, router: &crate::Router) -> u64 {
        if let Some(read) = router.commands_read() {
            return read + 1;
        }
        let durable = format!("router-{}-commands", self.svc.group);
        let acked = async {
            let stream = self.bus.jetstream().get_stream(streams::AGENT).await.ok()?;
            let mut consumer = stream.get_consumer::<pull::Config>(&durable).await.ok()?;
            Some(consumer.info().await.ok()?.ack_floor.stream_sequence)
        };
        acked.await.map_or(1, |floor| floor + 1)
    }

    /// Agents' commands, strictly in stream order and without acks: the journal keeps the
    /// sequence of each one taken, so a leader that dies leaves nothing held (a new one resumes
    /// after the last journaled) and the leader can take many at once into one group while none
    /// overtakes another (an accept and the reply after it stay in order).
    fn command_input(
        &self,
        component: String,
        from: u64,
        tx: mpsc::Sender<Work>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + use<> {
        let bus = self.bus.clone();
        let answers_bad_input = self.answers_bad_input();
        async move {
            let mut next = from;
            let backoff = switchboard_bus::Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(5) };
            let mut failures = 0;
            loop {
                match bus.follow(streams::AGENT, subjects::AGENT_IN, next).await {
                    Ok(commands) => {
                        let mut commands = std::pin::pin!(commands);
                        loop {
                            let read = tokio::select! {
                                _ = stop.cancelled() => return,
                                read = commands.next() => read,
                            };
                            let d = match read {
                                Some(Ok(d)) => d,
                                Some(Err(e)) => {
                                    warn!(error = %e, next, "reading agent commands failed; reading again");
                                    break;
                                }
                                None => break,
                            };
                            failures = 0;
                            next = d.stream_sequence + 1;
                            let command = match d.decode::<AgentCommand>() {
                                Ok(command) => command,
                                Err(_) if !answers_bad_input => continue,
                                Err(e) => {
                                    refuse_command(&bus, &component, &d, &e.to_string(), &stop).await;
                                    continue;
                                }
                            };
                            // Nobody waits for the outcome: a command the leader fails to
                            // journal is read again by the next leader.
                            let (done, _) = oneshot::channel();
                            let input = Input::Command(Box::new(command), d.stream_sequence);
                            if tx.send(Work { input, done, trace: traceparent(&d) }).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => warn!(error = %e, next, "cannot read agent commands; retrying"),
                }
                failures += 1;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.delay(failures)) => {}
                }
            }
        }
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

/// Dead-letters an agent command that cannot be read (named by its stream and sequence, so a
/// leader reading it again after a takeover stores it once), retrying until stored or stopped.
async fn refuse_command(bus: &Bus, component: &str, d: &Delivery, reason: &str, stop: &CancellationToken) {
    let backoff = switchboard_bus::Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(5) };
    let mut attempt = 0;
    while let Err(e) = bus.dead_letter_delivery(component, streams::AGENT, d, reason).await {
        warn!(error = %e, "cannot dead-letter the agent command; retrying");
        attempt += 1;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff.delay(attempt)) => {}
        }
    }
}
