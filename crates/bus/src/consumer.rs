//! Durable consumers that ack only after the handler succeeded, retry with back-off, and move a
//! message that keeps failing to `sb.dlq.<component>` with the reason in a header.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::HeaderMap;
use async_nats::jetstream::{AckKind, Message, consumer};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use switchboard_core::contract::{headers, streams, subjects};
use switchboard_core::{Contract, ValidationError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, debug, error, warn};

use crate::{Backoff, Bus, BusError};

/// The default ceiling of a wait a receiver asks for: an hour.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(3600);

/// What a consumer reads and how it retries.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Component name: the dead-letter subject is `sb.dlq.<component>`.
    pub component: String,
    /// Stream to read.
    pub stream: String,
    /// Durable consumer name; processes sharing it share the work.
    pub durable: String,
    /// Subject filter within the stream.
    pub filter_subject: String,
    /// Further subject filters, read together with `filter_subject` (see [`ConsumerSpec::also`]).
    pub more_filters: Vec<String>,
    /// Deliveries before a message is dead-lettered (1 = no retry), unless `retry_for` asks
    /// for more.
    pub max_deliver: u64,
    /// A message failing with [`HandlerError::Retry`] is retried at least this long after it
    /// was stored, however many deliveries that takes (zero: `max_deliver` alone decides). Lets
    /// a receiver be down for a while (a helpdesk restarting) without its messages becoming
    /// dead letters.
    pub retry_for: Duration,
    /// Delay between deliveries of a failing message.
    pub backoff: Backoff,
    /// How long the server waits for an ack before redelivering; progress is signalled while a
    /// handler runs, so this bounds only a crashed handler.
    pub ack_wait: Duration,
    /// Messages handled at once.
    pub concurrency: usize,
    /// Messages handed out and not yet acked, including those waiting for their next try;
    /// `None`: four per handler, at least 16. Raise it for consumers whose messages go to many
    /// receivers and may wait long (one receiver that is down must not hold up the others).
    pub max_pending: Option<usize>,
    /// A new durable starts with messages stored after it was created, not the stream's start
    /// (for consumers that react to what happens, not to history).
    pub only_new: bool,
    /// Strictly in stream order: the server hands out the next message only once the previous
    /// one is acked, so a message that is retried (nak with back-off) or was held by a process
    /// that died is never overtaken by a later one. Needs `concurrency` 1.
    pub in_order: bool,
    /// Messages of one conversation (the payload's `conversation_id`, or for a customer's message
    /// its `channel` and `thread_key`) are handled one after the other in stream order, while
    /// other conversations' go on at once: a customer gets an agent's replies, and an agent a
    /// customer's messages, in the order they were written. A
    /// message that fails, or whose receiver asks to wait, is retried in place (kept alive on
    /// the server) so the conversation's next message cannot overtake it; `concurrency` bounds
    /// the handlers running, not the messages waiting their turn. Within one process: two
    /// processes on one durable can still take one conversation's messages at once.
    pub per_conversation: bool,
    /// Longest wait honoured when a handler is asked to wait ([`HandlerError::Wait`]); a longer
    /// one is cut to this, and the message is simply tried again then.
    pub max_wait: Duration,
}

impl ConsumerSpec {
    /// A spec with sensible defaults: 5 deliveries, back-off from 200 ms to 30 s, one at a time.
    pub fn new(component: &str, stream: &str, durable: &str, filter_subject: &str) -> Self {
        Self {
            component: component.into(),
            stream: stream.into(),
            durable: durable.into(),
            filter_subject: filter_subject.into(),
            more_filters: Vec::new(),
            max_deliver: 5,
            retry_for: Duration::ZERO,
            backoff: Backoff::default(),
            ack_wait: Duration::from_secs(30),
            concurrency: 1,
            max_pending: None,
            only_new: false,
            in_order: false,
            per_conversation: false,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// This spec reading `filter` too: e.g. an agent endpoint reads both the deliveries that name
    /// their agent and those written before they did.
    pub fn also(mut self, filter: &str) -> Self {
        self.more_filters.push(filter.into());
        self
    }

    /// The consumer of `component`'s replayed raw items (`sb.replay.<component>` in
    /// `SB_REPLAY`), put there by `switchboard dlq replay` for the step that failed them.
    pub fn replay(component: &str, durable: &str) -> Self {
        Self::new(component, streams::REPLAY, durable, &subjects::replay(component))
    }

    /// Whether a message on its `attempt`-th delivery, stored `age` ago, is given up (dead-lettered)
    /// if this delivery fails too: `max_deliver` deliveries made and `retry_for` passed.
    pub fn gives_up(&self, attempt: u64, age: Duration) -> bool {
        attempt >= self.max_deliver && age >= self.retry_for
    }

    /// Whether the delivery before this one (`attempt - 1`) was already the last: then a
    /// delivery beyond `max_deliver` means the process handling it died and the message is
    /// dead-lettered without another try. That delivery happened about one back-off (or, if it
    /// crashed, one `ack_wait`) ago; counting both errs towards one more try.
    fn gave_up_before(&self, attempt: u64, age: Duration) -> bool {
        let since_previous = self.backoff.delay(attempt.saturating_sub(1)) + self.ack_wait;
        attempt > self.max_deliver && age.saturating_sub(since_previous) >= self.retry_for
    }
}

/// Why a handler did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Worth another try later (a timeout, a 5xx); dead-lettered after `max_deliver` deliveries.
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (bad payload, a 4xx); dead-lettered at once.
    #[error("{0}")]
    Reject(String),
    /// The receiver asked to wait (flood control, `Retry-After`): tried again after `after`
    /// (at most [`ConsumerSpec::max_wait`]). Never dead-lettered for this: on the last allowed
    /// delivery the message is stored again as a fresh copy that is not handled before the wait
    /// is over, and the original is acked.
    #[error("asked to wait {after:?}: {reason}")]
    Wait {
        /// How long the receiver asked to wait.
        after: Duration,
        /// What it said.
        reason: String,
    },
}

/// One delivery of a message to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subject it was published on.
    pub subject: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its payload.
    pub payload: Bytes,
    /// Which delivery this is, from 1.
    pub attempt: u64,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// How long ago it was stored.
    pub age: Duration,
    /// Whether this is the last try: a [`HandlerError::Retry`] now makes it a dead letter (see
    /// [`ConsumerSpec::gives_up`]). A handler that records failures does so on this one.
    pub last: bool,
}

impl Delivery {
    /// Parses and validates the payload as `T`; a bad payload is rejected (never retried).
    pub fn decode<T: Contract>(&self) -> Result<T, HandlerError> {
        if let Some(schema) = self.headers.get(headers::SCHEMA)
            && schema.as_str() != T::SCHEMA
        {
            return Err(HandlerError::Reject(switchboard_core::contract::unsupported_schema(
                schema.as_str(),
                T::SCHEMA,
            )));
        }
        T::from_json(&self.payload).map_err(|e: ValidationError| {
            HandlerError::Reject(switchboard_core::contract::invalid_payload(T::SCHEMA, &e))
        })
    }
}

impl Bus {
    /// Runs `handler` over the consumer described by `spec` until `shutdown` is cancelled, then
    /// lets in-flight handlers finish. Unhandled messages stay unacked and are redelivered.
    pub async fn run_consumer<H, F>(
        &self,
        spec: ConsumerSpec,
        shutdown: CancellationToken,
        handler: H,
    ) -> Result<(), BusError>
    where
        H: Fn(Delivery) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let err = |source: Box<dyn std::error::Error + Send + Sync>| BusError::Consumer {
            stream: spec.stream.clone(),
            durable: spec.durable.clone(),
            source,
        };
        // Setting the consumer up can fail for a while (a JetStream cluster electing a stream
        // leader after losing a node, NATS restarting): keep trying until shutdown, since a
        // consumer given up here would leave its component running with nothing to do (seen:
        // the router kept leading without its agent commands after a node was killed).
        let backoff = Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(5) };
        let mut attempt = 0;
        let mut messages = loop {
            match self.open_consumer(&spec).await {
                Ok(messages) => break messages,
                Err(e) => {
                    attempt += 1;
                    let delay = backoff.delay(attempt);
                    warn!(durable = %spec.durable, error = %err(e), retry_in_ms = delay.as_millis() as u64, "cannot open consumer; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };

        let handler = Arc::new(handler);
        let spec = Arc::new(spec);
        let mut in_flight = JoinSet::new();
        let mut chains = Chains::default();
        // Per conversation, a message waiting for its conversation's previous one (or holding
        // its place through retries) must not keep other conversations from running: the
        // semaphore bounds the handlers running, the wider task bound what is held in memory.
        let running = Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1)));
        let held = match spec.per_conversation {
            true => spec.concurrency.max(1) * 16,
            false => spec.concurrency.max(1),
        };
        loop {
            while in_flight.len() >= held {
                in_flight.join_next().await;
            }
            // Biased: once shutdown fired, no further message is started even if one is ready.
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                next = messages.next() => next,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    // Heartbeat misses and reconnects surface here; the stream recovers by itself,
                    // and the pause keeps a persistent error from spinning a core.
                    warn!(durable = %spec.durable, error = %e, "consumer stream error");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    continue;
                }
                None => break,
            };
            let (bus, handler, spec, running) = (self.clone(), handler.clone(), spec.clone(), running.clone());
            let stop = shutdown.clone();
            let (before, done) = if spec.per_conversation { chains.link(&message.payload) } else { (None, None) };
            in_flight.spawn(async move {
                if let Some(mut before) = before {
                    // Until the conversation's previous message is done (or its task ended); the
                    // server is told this one is in progress, so it does not deliver it again.
                    let mut progress = tokio::time::interval(spec.ack_wait / 2);
                    progress.tick().await;
                    loop {
                        tokio::select! {
                            _ = &mut before => break,
                            _ = progress.tick() => { let _ = message.ack_with(AckKind::Progress).await; }
                        }
                    }
                }
                let span = crate::trace::consumer_span(&spec.durable, &message.subject, message.headers.as_ref());
                bus.handle_one(&spec, handler.as_ref(), message, &running, &stop).instrument(span).await;
                drop(done);
            });
        }
        // Messages pulled but not started are handed back now, so another process (or this one
        // after a restart) gets them soon instead of after ack_wait. The short delay keeps the
        // server from pushing them straight back into this stream while it closes.
        let mut handed_back = 0u64;
        while let Some(Some(Ok(message))) = messages.next().now_or_never() {
            if message.ack_with(AckKind::Nak(Some(Duration::from_millis(500)))).await.is_ok() {
                handed_back += 1;
            }
        }
        drop(messages);
        while in_flight.join_next().await.is_some() {}
        debug!(durable = %spec.durable, handed_back, "consumer stopped");
        Ok(())
    }

    /// Creates (or binds to) the durable consumer of `spec` and opens its message stream.
    async fn open_consumer(
        &self,
        spec: &ConsumerSpec,
    ) -> Result<consumer::pull::Stream, Box<dyn std::error::Error + Send + Sync>> {
        let stream = self.jetstream().get_stream(&spec.stream).await?;
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(spec.durable.clone()),
                // The server takes one filter or a list, never both.
                filter_subject: if spec.more_filters.is_empty() { spec.filter_subject.clone() } else { String::new() },
                filter_subjects: if spec.more_filters.is_empty() {
                    Vec::new()
                } else {
                    std::iter::once(&spec.filter_subject).chain(&spec.more_filters).cloned().collect()
                },
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: spec.ack_wait,
                // Unlimited on the server: we dead-letter ourselves, so nothing is silently dropped.
                max_deliver: -1,
                max_ack_pending: if spec.in_order {
                    1
                } else {
                    spec.max_pending.unwrap_or((spec.concurrency * 4).max(16)).max(spec.concurrency) as i64
                },
                deliver_policy: if spec.only_new { consumer::DeliverPolicy::New } else { consumer::DeliverPolicy::All },
                ..Default::default()
            })
            .await?;
        Ok(consumer.stream().max_messages_per_batch(spec.concurrency.max(1) * 2).messages().await?)
    }

    async fn handle_one<H, F>(
        &self,
        spec: &ConsumerSpec,
        handler: &H,
        message: Message,
        running: &tokio::sync::Semaphore,
        shutdown: &CancellationToken,
    ) where
        H: Fn(Delivery) -> F,
        F: Future<Output = Result<(), HandlerError>>,
    {
        let Ok(info) = message.info() else {
            error!(durable = %spec.durable, "message without JetStream metadata, terminating it");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        let headers = message.headers.clone().unwrap_or_default();
        // A copy stored again after a wait (see `requeue`) is not handled before its time.
        if let Some(left) = not_before(&headers) {
            debug!(durable = %spec.durable, stream_sequence = info.stream_sequence, wait_ms = left.as_millis() as u64, "not due yet");
            let _ = message.ack_with(AckKind::Nak(Some(left))).await;
            return;
        }
        // Such a copy was usually delivered once before it was due (just above): that delivery
        // is not an attempt. Counting it would dead-letter a copy with `max_deliver` 1 without a
        // single try; not counting it when the copy was first delivered late costs one extra try.
        let delivered = info.delivered.max(1) as u64;
        let mut attempt = if headers.get(headers::NOT_BEFORE).is_some() { (delivered - 1).max(1) } else { delivered };
        let published = SystemTime::from(info.published);
        let age = || SystemTime::now().duration_since(published).unwrap_or_default();
        let mut delivery = Delivery {
            subject: message.subject.to_string(),
            headers,
            payload: message.payload.clone(),
            attempt,
            stream_sequence: info.stream_sequence,
            age: age(),
            last: spec.gives_up(attempt, age()),
        };
        let stream_sequence = delivery.stream_sequence;

        // A previous process may have crashed after the last allowed attempt: give up now.
        let outcome = if spec.gave_up_before(attempt, age()) {
            Err(HandlerError::Retry(format!("exceeded {} deliveries", spec.max_deliver)))
        } else {
            let _progress = keep_alive(self.client().clone(), &message, spec.ack_wait);
            loop {
                let outcome = {
                    let _permit = running.acquire().await;
                    handler(delivery.clone()).await
                };
                // Per conversation, a retry or a wait happens here, in the message's place: a
                // nak would let the conversation's next message go first. A wait is not a
                // failed attempt, so it does not bring the dead letter closer.
                let hold = match &outcome {
                    _ if !spec.per_conversation => None,
                    Err(HandlerError::Wait { after, .. }) => Some((*after.min(&spec.max_wait), 0)),
                    Err(HandlerError::Retry(_)) if !delivery.last => Some((spec.backoff.delay(attempt), 1)),
                    _ => None,
                };
                let Some((delay, counted)) = hold else { break outcome };
                debug!(durable = %spec.durable, attempt, retry_in_ms = delay.as_millis() as u64, "retrying in place, keeping the conversation's order");
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        // Handed back: the server redelivers it after the wait, to this process
                        // after a restart or to another one.
                        let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                        return;
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                attempt += counted;
                delivery.attempt = attempt;
                delivery.age = age();
                delivery.last = spec.gives_up(attempt, delivery.age);
            }
        };

        let result = match outcome {
            Ok(()) => message.double_ack().await,
            Err(HandlerError::Wait { after, reason }) => {
                let after = after.min(spec.max_wait);
                if attempt < spec.max_deliver {
                    debug!(durable = %spec.durable, attempt, wait_ms = after.as_millis() as u64, %reason, "asked to wait");
                    message.ack_with(AckKind::Nak(Some(after))).await
                } else {
                    match self.requeue(spec, &delivery, after).await {
                        Ok(()) => message.double_ack().await,
                        Err(e) => {
                            error!(durable = %spec.durable, error = %e, "cannot store the message again, will redeliver");
                            message.ack_with(AckKind::Nak(Some(after))).await
                        }
                    }
                }
            }
            Err(HandlerError::Retry(reason)) if !delivery.last => {
                let delay = spec.backoff.delay(attempt);
                debug!(durable = %spec.durable, attempt, retry_in_ms = delay.as_millis() as u64, %reason, "handler failed, will retry");
                message.ack_with(AckKind::Nak(Some(delay))).await
            }
            Err(HandlerError::Retry(reason) | HandlerError::Reject(reason)) => {
                match self.dead_letter(spec, &delivery, &reason).await {
                    Ok(()) => message.double_ack_with(AckKind::Term).await,
                    Err(e) => {
                        error!(durable = %spec.durable, error = %e, "cannot dead-letter, will redeliver");
                        message.ack_with(AckKind::Nak(Some(spec.backoff.max))).await
                    }
                }
            }
        };
        if let Err(e) = result {
            // The server redelivers after ack_wait; handlers are idempotent by contract.
            warn!(durable = %spec.durable, stream_sequence, error = %e, "ack not confirmed");
        }
    }

    /// Stores `delivery` again on its subject as a fresh message (its deliveries counted from 1)
    /// that is not handled before `after` has passed: a receiver that only asks to wait never
    /// makes a message a dead letter. The id is derived from the original, so a requeue repeated
    /// after a crash stores one copy.
    async fn requeue(&self, spec: &ConsumerSpec, delivery: &Delivery, after: Duration) -> Result<(), BusError> {
        warn!(component = %spec.component, subject = %delivery.subject, attempts = delivery.attempt, wait_ms = after.as_millis() as u64, "still asked to wait after the last delivery; storing the message again for later");
        let due = unix_ms() + after.as_millis() as i64;
        let mut headers = delivery.headers.clone();
        headers.insert(headers::NOT_BEFORE, due.to_string().as_str());
        let msg_id = format!("requeue:{}:{}:{}", spec.durable, spec.stream, delivery.stream_sequence);
        self.publish_raw(&delivery.subject, headers, delivery.payload.clone(), &msg_id).await?;
        Ok(())
    }

    async fn dead_letter(&self, spec: &ConsumerSpec, delivery: &Delivery, reason: &str) -> Result<(), BusError> {
        self.dead_letter_delivery(&spec.component, &spec.stream, delivery, reason).await
    }

    /// Dead-letters `delivery`, read from `stream` by `component`, with its attempts and stream
    /// sequence in the headers; named by component, stream and sequence, so a message read and
    /// refused again (after a crash, a takeover) lands in the DLQ once.
    pub async fn dead_letter_delivery(
        &self,
        component: &str,
        stream: &str,
        delivery: &Delivery,
        reason: &str,
    ) -> Result<(), BusError> {
        warn!(%component, subject = %delivery.subject, attempts = delivery.attempt, %reason, "dead-lettering message");
        let mut headers = delivery.headers.clone();
        headers.insert(headers::DLQ_ATTEMPTS, delivery.attempt.to_string().as_str());
        headers.insert(headers::DLQ_STREAM_SEQ, delivery.stream_sequence.to_string().as_str());
        let msg_id = switchboard_core::contract::dlq_msg_id(component, stream, delivery.stream_sequence);
        self.publish_dead_letter(component, &delivery.subject, reason, headers, delivery.payload.clone(), &msg_id)
            .await?;
        Ok(())
    }

    /// Stores `payload` on `sb.dlq.<component>` with the reason (one line), the component and the
    /// subject it was meant for in the `Sb-Dlq-*` headers. `msg_id` names this dead letter, so a
    /// failure handled again after a crash lands in the DLQ once (it replaces any `Nats-Msg-Id`).
    /// What the payload is (`Sb-Dlq-Kind`, which decides where a replay goes) is the caller's
    /// `Sb-Dlq-Kind` when it set one (a raw provider item), else the payload's `Sb-Schema`.
    pub async fn publish_dead_letter(
        &self,
        component: &str,
        subject: &str,
        reason: &str,
        mut headers: HeaderMap,
        payload: Bytes,
        msg_id: &str,
    ) -> Result<(), BusError> {
        headers.insert(headers::DLQ_REASON, one_line(reason).as_str());
        headers.insert(headers::DLQ_COMPONENT, component);
        headers.insert(headers::DLQ_SUBJECT, subject);
        if headers.get(headers::DLQ_KIND).is_none()
            && let Some(schema) = headers.get(headers::SCHEMA).map(|s| s.as_str().to_string())
        {
            headers.insert(headers::DLQ_KIND, schema.as_str());
        }
        self.publish_raw(&subjects::dlq(component), headers, payload, msg_id).await?;
        Ok(())
    }
}

/// Tells the server the message is still being worked on, so a slow handler is not redelivered.
/// Stops when the returned guard is dropped, also when the handler's task is aborted: a
/// consumer torn down mid-handler must not keep the message from being redelivered.
fn keep_alive(client: async_nats::Client, message: &Message, ack_wait: Duration) -> AbortOnDropHandle<()> {
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let reply = message.reply.clone();
    AbortOnDropHandle::new(tokio::spawn(async move {
        let Some(reply) = reply else { return };
        loop {
            tokio::time::sleep(period).await;
            let _ = client.publish(reply.clone(), Bytes::from_static(b"+WPI")).await;
        }
    }))
}

/// How long a message stored again after a wait still has to wait (`None`: due now).
fn not_before(headers: &HeaderMap) -> Option<Duration> {
    let due: i64 = headers.get(headers::NOT_BEFORE)?.as_str().parse().ok()?;
    let left = due - unix_ms();
    (left > 0).then(|| Duration::from_millis(left as u64))
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Header values cannot hold line breaks.
fn one_line(reason: &str) -> String {
    let line: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    line.chars().take(1024).collect()
}

/// The last message started per conversation, for [`ConsumerSpec::per_conversation`]: a new
/// message of the conversation waits until that one is done.
#[derive(Default)]
struct Chains {
    tails: std::collections::HashMap<String, tokio::sync::oneshot::Receiver<()>>,
}

impl Chains {
    /// What the message must wait for, and what to drop when it is done; nothing for a payload
    /// without a conversation.
    fn link(
        &mut self,
        payload: &[u8],
    ) -> (Option<tokio::sync::oneshot::Receiver<()>>, Option<tokio::sync::oneshot::Sender<()>>) {
        #[derive(serde::Deserialize)]
        struct Key {
            conversation_id: Option<String>,
            channel: Option<String>,
            thread_key: Option<String>,
        }
        // A customer's message (`envelope/1`) has no conversation yet: its thread stands for it.
        let key = serde_json::from_slice::<Key>(payload).ok().and_then(|k| {
            match (k.conversation_id, k.channel, k.thread_key) {
                (Some(conversation), _, _) => Some(conversation),
                (None, Some(channel), Some(thread)) => Some(format!("{channel}:{thread}")),
                _ => None,
            }
        });
        let Some(key) = key else {
            return (None, None);
        };
        if self.tails.len() >= 4096 {
            // Bounded: forget the conversations whose last message is done.
            self.tails.retain(|_, rx| matches!(rx.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        (self.tails.insert(key, rx), Some(tx))
    }
}
