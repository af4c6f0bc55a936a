//! The router service: the [`Router`] on the bus, with a lease, a journal and snapshots.
//!
//! One process per routing group leads (holds the lease `router.<group>`); the others wait in
//! [`Bus::acquire_lease`]. The leader restores the latest snapshot, replays the journal after it
//! (re-publishing the effects of the tail: JetStream drops those already published), and then in
//! steps: it takes the inputs that are waiting (up to a group's worth), stamps them (time, new
//! conversation ids), appends them to the journal as one message (group commit), applies them in
//! order, publishes their effects, and only then acks them. A crash at any point leaves either
//! unjournaled inputs (redelivered, handled as new) or journaled ones (replayed by the next
//! leader; their redelivery is recognised by the ids of recently journaled inputs, which the
//! next leader reads back from the journal, and changes nothing twice).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use switchboard_bus::async_nats::jetstream::object_store;
use switchboard_bus::{AppendError, Bus, BusError, ConsumerSpec, Delivery, HandlerError, Journal, Lease};
use switchboard_bus::{InboundOutcome, outcomes};
use switchboard_core::contract::{ROUTER_SNAPSHOTS_STORE, buckets, streams, subjects};
use switchboard_core::{AgentCommand, AgentDelivery, CommandVerdict, Envelope, Event};
use switchboard_routing::Ms;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::group::{Done, Group, Offered, Recent};

mod privacy;
use crate::{Effect, Entry, Router, RouterConfig, RouterError, RouterState, decode_entries};

/// How many inputs each input consumer hands the leader at once.
const INPUT_CONCURRENCY: usize = 256;

/// The entries of a journal message, or why they cannot be read.
fn decode(e: &switchboard_bus::JournalEntry) -> Result<Vec<Entry>, ServiceError> {
    decode_entries(&e.payload)
        .map_err(|err| ServiceError::Corrupt { what: format!("journal entry {}", e.sequence), reason: err.to_string() })
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Routing group: the lease, journal and snapshot are per group.
    pub group: String,
    /// This process's unique name in the lease.
    pub holder: String,
    /// Lease TTL: a standby takes over this long after the leader stopped renewing.
    pub lease_ttl: Duration,
    /// Snapshot after this many journal entries (and on a graceful stop).
    pub snapshot_every: u64,
    /// How long a journaled input is remembered, so that its redelivery (after a leader died
    /// between journaling and acking it) is not acted on twice. It must exceed the inputs'
    /// ack wait plus a takeover by far; a publisher's own retries are de-duplicated by the
    /// input streams' 24 h window before they get here.
    pub redelivery_window: Duration,
}

impl ServiceConfig {
    /// Defaults for `group`: a 10 s lease, a snapshot every 1,000 entries, a unique holder.
    pub fn new(group: &str) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        ServiceConfig {
            group: group.into(),
            holder: format!("{host}:{}:{}", std::process::id(), Uuid::now_v7()),
            lease_ttl: Duration::from_secs(10),
            snapshot_every: 1000,
            redelivery_window: Duration::from_secs(300),
        }
    }
}

/// Why the service stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// NATS failed us.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Another process leads now, or we could not renew the lease in time.
    #[error("leadership lost: {0}")]
    Lost(String),
    /// The configuration is invalid.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// A journal entry or snapshot could not be read.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which.
        what: String,
        /// Why.
        reason: String,
    },
}

/// A customer message as the router accepts it: a valid envelope whose channel is the one of the
/// subject it arrived on (`sb.in.<channel>`), so that NATS subject permissions bound what an
/// adapter can write: one allowed only `sb.in.pigeon` cannot speak for webhook customers.
fn inbound_envelope(d: &Delivery) -> Result<Envelope, HandlerError> {
    let envelope = d.decode::<Envelope>()?;
    let subject_channel = d.subject.strip_prefix("sb.in.").unwrap_or(&d.subject);
    if envelope.channel != subject_channel {
        return Err(HandlerError::Reject(switchboard_core::contract::channel_mismatch(&envelope.channel, &d.subject)));
    }
    Ok(envelope)
}

/// An input waiting for the leader loop, with where to report its outcome.
struct Work {
    input: Input,
    done: Done,
}

enum Input {
    Inbound(Box<Envelope>),
    Command(Box<AgentCommand>),
    /// A message to a customer was not delivered (`delivery_failed`).
    Undelivered(Box<Event>),
    /// Stamped in an earlier step whose group it did not fit.
    Carried(Box<Entry>),
}

impl Work {
    /// An entry that did not fit its step's group, for the next step.
    fn carried(entry: Entry, done: Done) -> Work {
        Work { input: Input::Carried(Box::new(entry)), done }
    }

    /// Whether this router's routing group is to act on the input (a carried one was claimed).
    fn claimed(&self, router: &Router) -> bool {
        match &self.input {
            Input::Inbound(envelope) => router.claims_envelope(envelope),
            Input::Command(command) => router.claims_command(command),
            Input::Undelivered(event) => router.claims_undelivered(event),
            Input::Carried(_) => true,
        }
    }

    /// The journal entry for this input, taken at `at`.
    fn stamp(self, at: Ms, router: &Router) -> (Entry, Done) {
        let entry = match self.input {
            Input::Inbound(envelope) => Entry::Inbound { at, envelope, new_conversation: router.new_conversation_id() },
            Input::Command(command) => Entry::Command { at, command },
            Input::Undelivered(event) => Entry::Undelivered { at, event },
            Input::Carried(entry) => *entry,
        };
        (entry, self.done)
    }
}

/// What the service is doing, for health reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Not contending yet.
    Starting,
    /// Waiting for the lease: healthy, ready to take over.
    Standby,
    /// Holding the lease and routing.
    Leading,
    /// Stopped for good (e.g. an invalid configuration), with the reason.
    Failed(String),
}

/// The router service for one routing group.
pub struct RouterService {
    bus: Bus,
    cfg: RouterConfig,
    svc: ServiceConfig,
    role: tokio::sync::watch::Sender<Role>,
    /// The conversations bucket, looked up once (a lookup is a JetStream API request).
    conversations: tokio::sync::OnceCell<switchboard_bus::async_nats::jetstream::kv::Store>,
    commands: tokio::sync::OnceCell<switchboard_bus::async_nats::jetstream::kv::Store>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RouterService {
    /// A service; nothing runs until [`RouterService::run`].
    pub fn new(bus: Bus, cfg: RouterConfig, svc: ServiceConfig) -> Self {
        let role = tokio::sync::watch::Sender::new(Role::Starting);
        RouterService {
            bus,
            cfg,
            svc,
            role,
            conversations: tokio::sync::OnceCell::new(),
            commands: tokio::sync::OnceCell::new(),
        }
    }

    /// Follows what the service is doing (standby, leading, failed).
    pub fn role(&self) -> tokio::sync::watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Contends for the lease and leads while holding it, until `shutdown`. Losing the lease
    /// (or a NATS failure while leading) goes back to contending.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        // Fail fast on a bad configuration rather than in the middle of a takeover.
        if let Err(e) = Router::new(self.cfg.clone()) {
            self.role.send_replace(Role::Failed(e.to_string()));
            return Err(e.into());
        }
        let lease_name = format!("router.{}", self.svc.group);
        loop {
            self.role.send_replace(Role::Standby);
            let acquired = self.bus.acquire_lease(&lease_name, &self.svc.holder, self.svc.lease_ttl, &shutdown).await;
            let mut lease = match acquired {
                Ok(Some(lease)) => lease,
                Ok(None) => return Ok(()),
                Err(e) => {
                    warn!(error = %e, "cannot contend for the router lease; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            info!(group = %self.svc.group, "leading");
            self.role.send_replace(Role::Leading);
            match self.lead(&mut lease, &shutdown).await {
                Ok(()) => {
                    lease.release().await;
                    return Ok(());
                }
                Err(ServiceError::Router(e)) => {
                    self.role.send_replace(Role::Failed(e.to_string()));
                    return Err(ServiceError::Router(e));
                }
                Err(e) => {
                    warn!(group = %self.svc.group, error = %e, "stopped leading; contending again");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }

    async fn lead(&self, lease: &mut Lease, shutdown: &CancellationToken) -> Result<(), ServiceError> {
        let mut journal = self.bus.open_journal(&subjects::router_journal(&self.svc.group)).await?;
        let mut router = self.load_snapshot().await?;
        let replay = journal.read_after(router.sequence()).await?;
        let replayed = replay.len();
        // A long replay must not let the lease lapse: another process would start replaying too.
        let mut renew_at = tokio::time::Instant::now() + lease.renew_every();
        for e in replay {
            if tokio::time::Instant::now() >= renew_at {
                lease.renew().await.map_err(|lost| ServiceError::Lost(lost.to_string()))?;
                renew_at = tokio::time::Instant::now() + lease.renew_every();
            }
            let effects = router.apply_batch(e.sequence, &decode(&e)?);
            self.publish(effects).await?;
        }
        let mut recent = Recent::new(self.svc.redelivery_window);
        let since = std::time::SystemTime::now() - self.svc.redelivery_window;
        for e in journal.read_since(since).await? {
            for entry in decode(&e)? {
                if let Some(id) = entry.input_id() {
                    recent.insert(entry.at(), id);
                }
            }
        }
        info!(group = %self.svc.group, sequence = router.sequence(), replayed, remembered = recent.len(), "router state restored");

        let mut queue_requests = self.subscribe(subjects::router_queue(&self.svc.group)).await?;
        let mut explain_requests = self.subscribe(subjects::router_explain(&self.svc.group)).await?;
        let mut availability_requests = self.subscribe(subjects::router_availability(&self.svc.group)).await?;
        let mut agents_requests = self.subscribe(subjects::router_agents(&self.svc.group)).await?;
        let mut forget_requests = self.subscribe(subjects::router_forget(&self.svc.group)).await?;
        let mut expire_requests = self.subscribe(subjects::router_expire(&self.svc.group)).await?;
        let mut offers_requests = self.subscribe(subjects::router_offers(&self.svc.group)).await?;
        let (tx, mut rx) = mpsc::channel::<Work>(INPUT_CONCURRENCY * 2);
        let stop_inputs = CancellationToken::new();
        let mut inputs = self.start_inputs(tx, &stop_inputs);
        let mut renew = tokio::time::interval(lease.renew_every());
        let mut since_snapshot = 0u64;
        // An input taken but left out of a full group starts the next one.
        let mut carried: Option<(Entry, Done)> = None;
        let result = loop {
            let due = router.next_due().map(|d| Duration::from_millis((d - now_ms()).clamp(0, 60_000) as u64));
            let (tick, first) = match carried.take() {
                Some((entry, done)) => (false, Some(Work::carried(entry, done))),
                None => tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    _ = renew.tick() => {
                        if let Err(lost) = lease.renew().await {
                            break Err(ServiceError::Lost(lost.to_string()));
                        }
                        continue;
                    }
                    _ = tokio::time::sleep(due.unwrap_or(Duration::from_secs(60))), if due.is_some() => (true, None),
                    Some(request) = queue_requests.next() => {
                        self.answer_queue(&router, request).await;
                        continue;
                    }
                    Some(request) = explain_requests.next() => {
                        self.answer_explain(&router, request).await;
                        continue;
                    }
                    Some(request) = availability_requests.next() => {
                        let body = serde_json::to_vec(&router.engine().availability(now_ms())).expect("availability serialises");
                        self.answer(request, body).await;
                        continue;
                    }
                    Some(request) = offers_requests.next() => {
                        let agent = std::str::from_utf8(&request.payload).unwrap_or_default().trim().to_string();
                        let offers = router.open_offers(Some(agent.as_str()).filter(|a| !a.is_empty()));
                        let body = serde_json::to_vec(&offers).expect("offers serialise");
                        self.answer(request, body).await;
                        continue;
                    }
                    Some(request) = agents_requests.next() => {
                        let body = serde_json::to_vec(&router.engine().agents()).expect("agents serialise");
                        self.answer(request, body).await;
                        continue;
                    }
                    Some(request) = forget_requests.next() => {
                        if let Err(e) = self.answer_forget(&mut journal, &mut router, request).await {
                            break Err(e);
                        }
                        continue;
                    }
                    Some(request) = expire_requests.next() => {
                        if let Err(e) = self.answer_expire(&mut journal, &mut router, request).await {
                            break Err(e);
                        }
                        continue;
                    }
                    work = rx.recv() => match work {
                        Some(w) => (false, Some(w)),
                        None => break Err(ServiceError::Lost("input consumers stopped".into())),
                    },
                },
            };
            if !lease.valid() {
                break Err(ServiceError::Lost("lease not renewed in time".into()));
            }
            // Everything taken in this step shares one time, one journal append, one publish.
            let at = now_ms().max(router.engine().now());
            recent.expire(at);
            let mut group = Group::default();
            if tick {
                group.offer(Entry::Tick { at }, None, &recent);
            }
            let mut next = first;
            while let Some(work) = next.take() {
                if !work.claimed(&router) {
                    // Another routing group's input: acked untouched, never journaled here.
                    let _ = work.done.send(Ok(()));
                    next = rx.try_recv().ok();
                    continue;
                }
                let (entry, done) = work.stamp(at, &router);
                if let Offered::Full(entry, done) = group.offer(entry, Some(done), &recent) {
                    carried = Some((entry, done));
                    break;
                }
                if group.has_room() {
                    next = rx.try_recv().ok();
                }
            }
            if group.is_empty() {
                continue;
            }
            let taken = group.entries().len() as u64;
            let outcome = self.step(&mut journal, &mut router, &group).await;
            if outcome.is_ok() {
                for entry in group.entries() {
                    if let Entry::Inbound { envelope, .. } = entry {
                        outcomes::record(&envelope.channel, InboundOutcome::Routed);
                    }
                }
            }
            group.finish(outcome.as_ref().map(|_| ()).map_err(|e| HandlerError::Retry(e.to_string())), &mut recent);
            if let Err(e) = outcome {
                if let Some((_, done)) = carried.take() {
                    let _ = done.send(Err(HandlerError::Retry("router stopping".into())));
                }
                break Err(e);
            }
            since_snapshot += taken;
            if since_snapshot >= self.svc.snapshot_every {
                since_snapshot = 0;
                if let Err(e) = self.save_snapshot(&router).await {
                    warn!(error = %e, "snapshot failed; the journal still has everything");
                }
            }
        };
        if let Some((_, done)) = carried.take() {
            let _ = done.send(Err(HandlerError::Retry("router stopping".into())));
        }
        stop_inputs.cancel();
        rx.close();
        while let Some(w) = rx.recv().await {
            let _ = w.done.send(Err(HandlerError::Retry("router stopping".into())));
        }
        while inputs.join_next().await.is_some() {}
        if result.is_ok()
            && let Err(e) = self.save_snapshot(&router).await
        {
            warn!(error = %e, "final snapshot failed; the next leader replays the journal");
        }
        result
    }

    /// A core NATS subscription for the leader's request-reply views.
    async fn subscribe(&self, subject: String) -> Result<switchboard_bus::async_nats::Subscriber, ServiceError> {
        let what = format!("subscription to {subject}");
        self.bus
            .client()
            .subscribe(subject)
            .await
            .map_err(|e| ServiceError::Bus(BusError::Setup { what, source: e.into() }))
    }

    async fn answer_queue(&self, router: &Router, request: switchboard_bus::async_nats::Message) {
        let body = serde_json::to_vec(&router.queue_view(now_ms())).expect("queue view serialises");
        self.answer(request, body).await;
    }

    /// Sends a request-reply answer; a requester that gave up is not an error.
    async fn answer(&self, request: switchboard_bus::async_nats::Message, body: Vec<u8>) {
        let Some(reply) = request.reply else { return };
        if let Err(e) = self.bus.client().publish(reply, body.into()).await {
            debug!(error = %e, subject = %request.subject, "answer not sent");
        }
    }

    async fn answer_explain(&self, router: &Router, request: switchboard_bus::async_nats::Message) {
        let Some(reply) = request.reply else { return };
        let id = std::str::from_utf8(&request.payload).ok().and_then(|s| s.trim().parse::<Uuid>().ok());
        let body = match id {
            None => serde_json::json!({ "error": "not a conversation id" }),
            Some(id) => match (router.engine().explain(id), router.record(id)) {
                (Some(why), record) => serde_json::json!({
                    "explanation": why,
                    "channel": record.map(|r| r.channel.clone()),
                    "customer": record.map(|r| r.customer.id.clone()),
                }),
                (None, _) => serde_json::json!({ "error": "unknown conversation (or resolved and forgotten)" }),
            },
        };
        if let Err(e) = self.bus.client().publish(reply, body.to_string().into()).await {
            debug!(error = %e, "explanation not sent");
        }
    }

    /// Journals a group of entries as one message, applies them and publishes their effects.
    async fn step(&self, journal: &mut Journal, router: &mut Router, group: &Group) -> Result<(), ServiceError> {
        let msg_id = format!("group:{}", Uuid::now_v7());
        let appended = journal.append(Bytes::from(group.payload()), &msg_id).await.map_err(|e| match e {
            AppendError::Fenced { .. } => ServiceError::Lost(e.to_string()),
            AppendError::Bus(e) => ServiceError::Bus(e),
        })?;
        if appended.duplicate {
            debug!(msg_id, sequence = appended.sequence, "group already journaled; nothing to do twice");
            return Ok(());
        }
        let effects = router.apply_batch(appended.sequence, group.entries());
        self.publish(effects).await
    }

    fn start_inputs(&self, tx: mpsc::Sender<Work>, stop: &CancellationToken) -> JoinSet<()> {
        let mut set = JoinSet::new();
        let component = format!("router-{}", self.svc.group);
        let inbound = ConsumerSpec::new(&component, streams::INBOUND, &component, "sb.in.>");
        let commands =
            ConsumerSpec::new(&component, streams::AGENT, &format!("{component}-commands"), subjects::AGENT_IN);
        set.spawn(self.undelivered_input(tx.clone(), stop));
        for (mut spec, customers) in [(inbound, true), (commands, false)] {
            // An input fails here only because the router is not leading or NATS is down: never
            // a reason to give a customer's message up. Bad payloads are still rejected at once.
            spec.max_deliver = u64::MAX;
            spec.ack_wait = self.svc.lease_ttl.max(Duration::from_secs(5));
            if customers {
                // Many customer messages in flight, so that the leader finds a group's worth
                // waiting. One retried around a failover may be overtaken by a later one (of
                // another conversation, or the same customer's next message): nothing is lost.
                spec.concurrency = INPUT_CONCURRENCY;
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
                        if tx.send(Work { input, done }).await.is_err() {
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

    /// The consumer of `delivery_failed` events: each one naming a conversation and an outbound
    /// message goes through the journal like any input (a takeover replays it); the others
    /// concern no reply and are acked untouched.
    fn undelivered_input(&self, tx: mpsc::Sender<Work>, stop: &CancellationToken) -> impl Future<Output = ()> + use<> {
        let component = format!("router-{}", self.svc.group);
        let mut spec = ConsumerSpec::new(
            &component,
            streams::EVENTS,
            &format!("{component}-undelivered"),
            &subjects::event(switchboard_core::EventKind::DeliveryFailed.as_str()),
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
                    if crate::undelivered::failed_message(&event).is_none() {
                        return Ok(());
                    }
                    let (done, result) = oneshot::channel();
                    let input = Input::Undelivered(Box::new(event));
                    if tx.send(Work { input, done }).await.is_err() {
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
    fn answers_bad_input(&self) -> bool {
        match self.cfg.group.as_ref().filter(|g| g.layout.divided()) {
            Some(g) => g.layout.catch_all() == g.name,
            None => true,
        }
    }

    /// Publishes effects: all sent in order on one connection (so JetStream stores them in that
    /// order), then every ack awaited; each carries its stable id as `Nats-Msg-Id`.
    async fn publish(&self, effects: Vec<Effect>) -> Result<(), ServiceError> {
        let mut pending = Vec::new();
        let mut records = Vec::new();
        let mut results = Vec::new();
        for effect in effects {
            match effect {
                Effect::Event(e) => {
                    pending
                        .push(self.bus.start_publish(&subjects::event(e.kind.as_str()), &e, &e.id.to_string()).await?);
                }
                Effect::Outbound(o) => {
                    pending.push(self.bus.start_publish(&subjects::outbound(&o.channel), &o, &o.id.to_string()).await?);
                }
                Effect::Agent { kind, delivery } => {
                    let (id, agent) = match &delivery {
                        AgentDelivery::Offer(o) => (o.id, &o.agent_id),
                        AgentDelivery::Message(m) => (m.id, &m.agent_id),
                        AgentDelivery::Update(u) => (u.id, &u.agent_id),
                    };
                    let subject = if kind == crate::effect::AGENT_STREAM {
                        subjects::agent_stream(agent)
                    } else {
                        subjects::agent_out(&kind)
                    };
                    pending.push(self.bus.start_publish(&subject, &delivery, &id.to_string()).await?);
                }
                Effect::Store(record) => records.push(record),
                Effect::CommandResult { command, rejected } => results.push((command, rejected)),
            }
        }
        // A record is the conversation's whole state: of several in one group the last wins, and
        // the rest can be written at once since they are for different conversations.
        let mut latest = std::collections::HashMap::new();
        for record in records {
            latest.insert(record.id, record);
        }
        futures::future::join_all(latest.values().map(|record| self.store(record))).await;
        for p in pending {
            p.acked().await?;
        }
        // Only now, with every effect stored, does the issuer (the agent API) hear the outcome:
        // kept in `sb_commands` first, so that whoever retries the command id later is answered
        // from there, then told over core NATS (nobody listening is fine).
        let verdicts: Vec<_> =
            results.into_iter().map(|(command_id, rejected)| CommandVerdict { command_id, rejected }).collect();
        futures::future::join_all(verdicts.iter().map(|v| self.keep_verdict(v))).await;
        for verdict in verdicts {
            if let Some(reason) = &verdict.rejected {
                info!(command = %verdict.command_id, %reason, "agent command rejected");
            }
            let body = serde_json::to_vec(&verdict).expect("verdicts serialise");
            let subject = subjects::router_result(&verdict.command_id.to_string());
            if let Err(e) = self.bus.client().publish(subject, body.into()).await {
                debug!(error = %e, "command result not published");
            }
        }
        Ok(())
    }

    /// Keeps a command's verdict for retries of its id; a lost write only means a retry waits
    /// for the verdict instead of getting it at once, so a failure is logged, not fatal.
    async fn keep_verdict(&self, verdict: &CommandVerdict) {
        let bucket = self.commands.get_or_try_init(|| self.bus.jetstream().get_key_value(buckets::COMMANDS));
        let kv = match bucket.await {
            Ok(kv) => kv,
            Err(e) => return warn!(error = %e, "command verdict bucket unavailable"),
        };
        let value = serde_json::to_vec(verdict).expect("verdicts serialise");
        if let Err(e) = kv.put(CommandVerdict::key(&verdict.command_id), value.into()).await {
            warn!(command = %verdict.command_id, error = %e, "keeping the command verdict failed");
        }
    }

    /// Stores a conversation record for readers (the agent API); losing one write is repaired
    /// by the next change of the conversation, so a failure is logged, not fatal.
    async fn store(&self, record: &crate::ConversationRecord) {
        let bucket = self.conversations.get_or_try_init(|| self.bus.jetstream().get_key_value(buckets::CONVERSATIONS));
        let kv = match bucket.await {
            Ok(kv) => kv,
            Err(e) => return warn!(error = %e, "conversation bucket unavailable"),
        };
        let value = serde_json::to_vec(record).expect("records serialise");
        if let Err(e) = kv.put(record.id.to_string(), value.into()).await {
            warn!(conversation = %record.id, error = %e, "storing the conversation record failed");
        }
    }

    async fn snapshots(&self) -> Result<object_store::ObjectStore, ServiceError> {
        self.bus
            .jetstream()
            .get_object_store(ROUTER_SNAPSHOTS_STORE)
            .await
            .map_err(|e| ServiceError::Bus(BusError::Setup { what: ROUTER_SNAPSHOTS_STORE.into(), source: e.into() }))
    }

    async fn load_snapshot(&self) -> Result<Router, ServiceError> {
        let store = self.snapshots().await?;
        let mut object = match store.get(&self.svc.group).await {
            Ok(object) => object,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(Router::new(self.cfg.clone())?),
            Err(e) => {
                return Err(ServiceError::Bus(BusError::Setup { what: "router snapshot".into(), source: e.into() }));
            }
        };
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ServiceError::Corrupt { what: "router snapshot".into(), reason: e.to_string() })?;
        let state: RouterState = serde_json::from_slice(&bytes)
            .map_err(|e| ServiceError::Corrupt { what: "router snapshot".into(), reason: e.to_string() })?;
        Ok(Router::restore(self.cfg.clone(), state)?)
    }

    async fn save_snapshot(&self, router: &Router) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(&router.state()).expect("router state serialises");
        let store = self.snapshots().await?;
        store
            .put(self.svc.group.as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| ServiceError::Bus(BusError::Setup { what: "router snapshot".into(), source: e.into() }))?;
        debug!(sequence = router.sequence(), bytes = bytes.len(), "router snapshot saved");
        Ok(())
    }
}
