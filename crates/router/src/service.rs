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
use switchboard_bus::{AppendError, Bus, BusError, HandlerError, Journal, Lease};
use switchboard_bus::{InboundOutcome, outcomes};
use switchboard_core::contract::subjects;
use switchboard_core::{AgentCommand, Envelope, Event};
use switchboard_routing::Ms;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::group::{Done, Group, Offered, Recent};

mod effects;
mod inputs;
mod privacy;
mod reload;
mod snapshot;
mod traces;
mod views;

use crate::{Entry, Router, RouterConfig, RouterError, decode_entries};
use inputs::INPUT_CONCURRENCY;
pub use reload::RoutingUpdates;

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

/// An input waiting for the leader loop, with where to report its outcome.
struct Work {
    input: Input,
    done: Done,
    /// The `traceparent` the input arrived with, while tracing is on.
    trace: Option<String>,
}

enum Input {
    Inbound(Box<Envelope>),
    /// An agent's command, with its sequence in `SB_AGENT`.
    Command(Box<AgentCommand>, u64),
    /// A message to a customer was not delivered (`delivery_failed`).
    Undelivered(Box<Event>),
    /// Stamped in an earlier step whose group it did not fit.
    Carried(Box<Entry>),
}

impl Work {
    /// An entry that did not fit its step's group, for the next step.
    fn carried(entry: Entry, done: Done) -> Work {
        Work { input: Input::Carried(Box::new(entry)), done, trace: None }
    }

    /// Whether this router's routing group is to act on the input (a carried one was claimed).
    fn claimed(&self, router: &Router) -> bool {
        match &self.input {
            Input::Inbound(envelope) => router.claims_envelope(envelope),
            Input::Command(command, _) => router.claims_command(command),
            Input::Undelivered(event) => router.claims_undelivered(event),
            Input::Carried(_) => true,
        }
    }

    /// The journal entry for this input, taken at `at`.
    fn stamp(self, at: Ms, router: &Router) -> (Entry, Done) {
        let entry = match self.input {
            Input::Inbound(envelope) => {
                let kb = router.kb_lookup(&envelope);
                let replies = router.reply_lookup(&envelope);
                Entry::Inbound { at, envelope, new_conversation: router.new_conversation_id(), kb, replies }
            }
            Input::Command(command, sequence) => Entry::Command {
                at,
                command: Box::new(router.render_template(*command)),
                stream_sequence: Some(sequence),
            },
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
    /// The `[routing]` sections reloads bring (`SIGHUP`), if the process reloads.
    reload: Option<RoutingUpdates>,
    /// Trace contexts of inputs and conversations (`[telemetry]`).
    traces: std::sync::Mutex<traces::Traces>,
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
            reload: None,
            traces: Default::default(),
        }
    }

    /// Follows what the service is doing (standby, leading, failed).
    pub fn role(&self) -> tokio::sync::watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Contends for the lease and leads while holding it, until `shutdown`. Losing the lease
    /// (or a NATS failure while leading) goes back to contending.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ServiceError> {
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

    async fn lead(&mut self, lease: &mut Lease, shutdown: &CancellationToken) -> Result<(), ServiceError> {
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
            self.publish(effects.into_iter().map(|e| (e, Default::default())).collect()).await?;
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
        // A leader routes by its own configuration: a restart with a changed file applies it
        // through the journal, as a reload does.
        let wanted = self.wanted_routing();
        self.apply_routing(&mut journal, &mut router, &wanted).await?;
        let mut reload = self.reload.clone();

        let mut queue_requests = self.subscribe(subjects::router_queue(&self.svc.group)).await?;
        let mut explain_requests = self.subscribe(subjects::router_explain(&self.svc.group)).await?;
        let mut availability_requests = self.subscribe(subjects::router_availability(&self.svc.group)).await?;
        let mut agents_requests = self.subscribe(subjects::router_agents(&self.svc.group)).await?;
        let mut forget_requests = self.subscribe(subjects::router_forget(&self.svc.group)).await?;
        let mut expire_requests = self.subscribe(subjects::router_expire(&self.svc.group)).await?;
        let mut offers_requests = self.subscribe(subjects::router_offers(&self.svc.group)).await?;
        let (tx, mut rx) = mpsc::channel::<Work>(INPUT_CONCURRENCY * 2);
        let stop_inputs = CancellationToken::new();
        let commands_from = self.commands_from(&router).await;
        let mut inputs = self.start_inputs(tx, &stop_inputs, commands_from);
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
                    Some(()) = async { match reload.as_mut() { Some(r) => r.changed().await.ok(), None => None } } => {
                        let wanted = reload.as_mut().map(|r| r.borrow_and_update().clone()).expect("a reload channel");
                        if let Err(e) = self.apply_routing(&mut journal, &mut router, &wanted).await {
                            break Err(e);
                        }
                        continue;
                    }
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
            while let Some(mut work) = next.take() {
                if !work.claimed(&router) {
                    // Another routing group's input: acked untouched, never journaled here.
                    let _ = work.done.send(Ok(()));
                    next = rx.try_recv().ok();
                    continue;
                }
                let trace = work.trace.take();
                let (entry, done) = work.stamp(at, &router);
                if let (Some(trace), Some(id)) = (trace, entry.input_id()) {
                    self.traces.lock().expect("traces lock").input(id, trace);
                }
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
        let effects = router.apply_batch_each(appended.sequence, group.entries());
        let (effects, spans) = self.traces.lock().expect("traces lock").decide(group.entries(), effects);
        let published = self.publish(effects).await;
        drop(spans);
        published
    }
}
