//! The adapter runtime against a real NATS server, with a scripted in-process channel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_adapter::testkit::{self, TestBus, wait_for};
use switchboard_adapter::{
    Channel, ChannelRuntime, InboundError, RateLimitConfig, RuntimeConfig, SendError, SendReceipt,
};
use switchboard_bus::Backoff;
use switchboard_core::contract::{headers, streams, subjects};
use switchboard_core::{Contract, Event, EventKind, OutboundMessage};
use tokio_util::sync::CancellationToken;

/// Answers each send with the next scripted result (then `Ok`), recording what it was asked.
#[derive(Default)]
struct Scripted {
    script: Mutex<Vec<Result<(), SendError>>>,
    sent: Mutex<Vec<String>>,
}

impl Channel for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        self.sent.lock().unwrap().push(message.text.clone());
        let mut script = self.script.lock().unwrap();
        if script.is_empty() { Ok(SendReceipt::default()) } else { script.remove(0).map(|_| SendReceipt::default()) }
    }
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        max_attempts: 3,
        // Given up after the attempts alone, not after the default ten-minute window.
        retry_for_secs: 0,
        backoff: Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(50) },
        rate_limit: RateLimitConfig { per_minute: 60, burst: 3 },
        ..RuntimeConfig::default()
    }
}

#[tokio::test]
async fn inbound_publish_dedupes_validates_and_rate_limits() {
    let t = TestBus::start().await;
    let runtime = ChannelRuntime::new(Arc::new(Scripted::default()), config(), t.slot(), CancellationToken::new());
    let inbound = runtime.inbound();

    let first = inbound.publish(testkit::envelope("scripted", "p-1", "ann", "hi")).await.unwrap();
    let again = inbound.publish(testkit::envelope("scripted", "p-1", "ann", "hi")).await.unwrap();
    assert!(!first.duplicate && again.duplicate);

    let wrong = inbound.publish(testkit::envelope("other", "p-2", "bob", "hi")).await.unwrap_err();
    assert!(matches!(&wrong, InboundError::Invalid(e) if e.field == "channel"), "{wrong}");

    // Burst of 3 per sender: ann already used 2, so one more passes and the next is refused,
    // while another sender is unaffected.
    inbound.publish(testkit::envelope("scripted", "p-3", "ann", "hi")).await.unwrap();
    let limited = inbound.publish(testkit::envelope("scripted", "p-4", "ann", "hi")).await.unwrap_err();
    assert!(matches!(limited, InboundError::RateLimited { retry_after } if retry_after > Duration::ZERO));
    inbound.publish(testkit::envelope("scripted", "p-5", "bob", "hi")).await.unwrap();

    let stored: Vec<_> = t.envelopes("scripted").await.into_iter().map(|e| e.provider_message_id).collect();
    assert_eq!(stored, ["p-1", "p-3", "p-5"]);
}

#[tokio::test]
async fn not_ready_until_the_bus_is_connected() {
    let runtime = ChannelRuntime::new(
        Arc::new(Scripted::default()),
        config(),
        switchboard_bus::BusSlot::new(),
        CancellationToken::new(),
    );
    let err = runtime.inbound().publish(testkit::envelope("scripted", "p-1", "ann", "hi")).await.unwrap_err();
    assert!(matches!(err, InboundError::NotReady(_)), "{err}");
}

#[tokio::test]
async fn outbound_retries_then_succeeds_once() {
    let t = TestBus::start().await;
    let channel = Arc::new(Scripted::default());
    channel.script.lock().unwrap().extend([Err(SendError::retryable("503")), Err(SendError::retryable("timeout"))]);
    let shutdown = CancellationToken::new();
    let task = ChannelRuntime::new(channel.clone(), config(), t.slot(), shutdown.clone()).spawn();

    t.send_outbound(&testkit::outbound("scripted", "ann", "your refund is on its way")).await;
    wait_for("third attempt", Duration::from_secs(10), || async { channel.sent.lock().unwrap().len() >= 3 }).await;
    t.wait_outbound_drained("scripted", Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    assert_eq!(channel.sent.lock().unwrap().len(), 3, "two failures, one success, nothing more");
    assert!(t.dead_letters("scripted").await.is_empty());
}

#[tokio::test]
async fn permanent_and_exhausted_failures_are_dead_lettered_with_an_event() {
    let t = TestBus::start().await;
    let channel = Arc::new(Scripted::default());
    channel.script.lock().unwrap().extend([
        Err(SendError::permanent("HTTP 404 from receiver")),
        Err(SendError::retryable("HTTP 502")),
        Err(SendError::retryable("HTTP 502")),
        Err(SendError::retryable("HTTP 503")),
    ]);
    let mut cfg = config();
    cfg.concurrency = 1; // keep the script's order tied to the messages' order
    let shutdown = CancellationToken::new();
    let task = ChannelRuntime::new(channel.clone(), cfg, t.slot(), shutdown.clone()).spawn();

    let gone = testkit::outbound("scripted", "ann", "one");
    t.send_outbound(&gone).await;
    wait_for("first dead letter", Duration::from_secs(10), || async { t.dead_letters("scripted").await.len() == 1 })
        .await;
    let flaky = testkit::outbound("scripted", "bob", "two");
    t.send_outbound(&flaky).await;
    wait_for("second dead letter", Duration::from_secs(10), || async { t.dead_letters("scripted").await.len() == 2 })
        .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let dead = t.dead_letters("scripted").await;
    let reason = |i: usize| dead[i].0.get(headers::DLQ_REASON).unwrap().as_str().to_string();
    let attempts = |i: usize| dead[i].0.get(headers::DLQ_ATTEMPTS).unwrap().as_str().to_string();
    assert_eq!((reason(0), attempts(0)), ("HTTP 404 from receiver".into(), "1".into()));
    assert_eq!((reason(1), attempts(1)), ("HTTP 503".into(), "3".into()));
    assert_eq!(OutboundMessage::from_json(&dead[1].1).unwrap().id, flaky.id);

    let events = t.stored(streams::EVENTS, &subjects::event("delivery_failed")).await;
    let events: Vec<Event> = events.iter().map(|(_, p)| Event::from_json(p).unwrap()).collect();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kind == EventKind::DeliveryFailed));
    assert_eq!(events[0].conversation_id, Some(gone.conversation_id));
}

/// How many pollers run right now, at most at once, and which ran last.
#[derive(Default)]
struct Polls {
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    starts: Mutex<Vec<usize>>,
}

/// A polling channel (like IMAP or long polling) that records when it runs.
struct Poller {
    id: usize,
    polls: Arc<Polls>,
}

/// Counts a poller as running until dropped (also when its task is aborted).
struct Running(Arc<Polls>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Channel for Poller {
    fn name(&self) -> &str {
        "poller"
    }

    fn exclusive_inbound(&self) -> bool {
        true
    }

    async fn run_inbound(
        &self,
        inbound: switchboard_adapter::Inbound,
    ) -> Result<(), switchboard_adapter::AdapterError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.polls.running.fetch_add(1, SeqCst) + 1;
        let _running = Running(self.polls.clone());
        self.polls.most.fetch_max(now, SeqCst);
        self.polls.starts.lock().unwrap().push(self.id);
        inbound.shutdown().cancelled().await;
        Ok(())
    }

    async fn send(&self, _: &OutboundMessage) -> Result<SendReceipt, SendError> {
        Ok(SendReceipt::default())
    }
}

#[tokio::test]
async fn a_polling_inbound_side_runs_in_one_process_and_another_takes_over() {
    let t = TestBus::start().await;
    let polls = Arc::new(Polls::default());
    let cfg = RuntimeConfig { inbound_lease_ttl_secs: 1, ..config() };
    let stops = [CancellationToken::new(), CancellationToken::new()];
    let mut tasks: Vec<_> = (0..2)
        .map(|id| {
            let poller = Arc::new(Poller { id, polls: polls.clone() });
            Some(ChannelRuntime::new(poller, cfg.clone(), t.slot(), stops[id].clone()).spawn())
        })
        .collect();
    let started = |n: usize| {
        let polls = polls.clone();
        move || {
            let polls = polls.clone();
            async move { polls.starts.lock().unwrap().len() >= n }
        }
    };
    wait_for("one process polls", Duration::from_secs(10), started(1)).await;
    let first = polls.starts.lock().unwrap()[0];

    // The holder dies without releasing the lease: the other takes over after the lease's TTL.
    tasks[first].take().unwrap().abort();
    wait_for("the other process takes the polling over", Duration::from_secs(10), started(2)).await;
    let second = polls.starts.lock().unwrap()[1];
    assert_ne!(first, second, "the standby took over");

    // The first comes back and stands by; the second stops cleanly, releasing the lease at once.
    let poller = Arc::new(Poller { id: first, polls: polls.clone() });
    let restarted = CancellationToken::new();
    tasks[first] = Some(ChannelRuntime::new(poller, cfg.clone(), t.slot(), restarted.clone()).spawn());
    stops[second].cancel();
    tasks[second].take().unwrap().await.unwrap().unwrap();
    wait_for("the restarted process polls again", Duration::from_secs(10), started(3)).await;
    assert_eq!(polls.starts.lock().unwrap()[2], first);
    assert_eq!(polls.most.load(std::sync::atomic::Ordering::SeqCst), 1, "never two pollers at once");
    restarted.cancel();
    tasks[first].take().unwrap().await.unwrap().unwrap();
}
