//! Deliveries to agents' helpdesks (`sb.agent.out.webhook.<agent>`) against a real NATS server and a real
//! HTTP helpdesk: outages, waits the helpdesk asks for, and a deliverer killed mid-delivery.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use switchboard_adapter::RuntimeConfig;
use switchboard_adapter::testkit::{TestBus, wait_for};
use switchboard_bus::Backoff;
use switchboard_channel_webhook::{AgentEndpoint, AgentEndpoints, signature};
use switchboard_core::agent::Offer;
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{AgentDelivery, Customer, Priority, Tier};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const KEY: &[u8] = b"helpdesk-key-0123456789abcdef";
const AGENT: &str = "anna";

/// One request the helpdesk saw: its `webhook-id`, the status answered, when.
type Seen = (String, u16, Instant);

/// A scripted answer: a status and the `Retry-After` it carries, if any.
type Answer = (u16, Option<String>);

/// A helpdesk: answers each request with the next scripted status (and `Retry-After`), then
/// `200`; or, while `hang` is set, never answers.
#[derive(Clone, Default)]
struct Helpdesk {
    script: Arc<Mutex<Vec<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    hang: Arc<std::sync::atomic::AtomicBool>,
}

impl Helpdesk {
    fn router(&self) -> axum::Router {
        let me = self.clone();
        axum::Router::new().route(
            "/agent",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    let id = headers.get(signature::ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                    let now = chrono::Utc::now().timestamp();
                    let verified = signature::verify(
                        KEY,
                        h(signature::ID),
                        h(signature::TIMESTAMP),
                        h(signature::SIGNATURE),
                        &body,
                        now,
                        300,
                    );
                    if me.hang.load(std::sync::atomic::Ordering::SeqCst) {
                        me.seen.lock().unwrap().push((id.clone(), 0, Instant::now()));
                        std::future::pending::<()>().await;
                    }
                    let (status, retry_after) = {
                        let mut script = me.script.lock().unwrap();
                        if script.is_empty() { (200, None) } else { script.remove(0) }
                    };
                    let status = if verified.is_ok() { status } else { 401 };
                    me.seen.lock().unwrap().push((id, status, Instant::now()));
                    let mut response = StatusCode::from_u16(status).unwrap().into_response();
                    if let Some(after) = retry_after {
                        response.headers_mut().insert("retry-after", after.parse().unwrap());
                    }
                    response
                }
            }),
        )
    }

    /// Serves on `addr` until the returned token is cancelled (then the port refuses connections).
    async fn serve_on(&self, addr: SocketAddr) -> CancellationToken {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the helpdesk's port");
        let stop = CancellationToken::new();
        let (router, until) = (self.router(), stop.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).with_graceful_shutdown(async move { until.cancelled().await }).await.unwrap()
        });
        stop
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many times each id was accepted (`200`).
    fn accepted(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (id, status, _) in self.seen() {
            if status == 200 {
                *counts.entry(id).or_default() += 1;
            }
        }
        counts
    }
}

/// A free local address (bound once, then released so the helpdesk can be "down" on it).
async fn free_addr() -> SocketAddr {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap()
}

fn offer() -> AgentDelivery {
    let now = chrono::Utc::now();
    AgentDelivery::Offer(Box::new(Offer {
        id: Uuid::now_v7(),
        agent_id: AGENT.into(),
        conversation_id: Uuid::now_v7(),
        channel: "webhook".into(),
        customer: Customer { id: "c-7".into(), name: Some("Ada".into()), email: None, phone: None, language: None },
        subject: None,
        priority: Priority::P3,
        tier: Tier::L1,
        skills: vec![],
        sla_deadline: now + chrono::Duration::minutes(30),
        offer_deadline: now + chrono::Duration::minutes(2),
        history: vec![],
        actions: vec!["accept".into(), "decline".into()],
        code: "K4F2".into(),
        reopened: false,
        suggested_replies: Vec::new(),
    }))
}

fn id_of(delivery: &AgentDelivery) -> String {
    match delivery {
        AgentDelivery::Offer(o) => o.id.to_string(),
        AgentDelivery::Message(m) => m.id.to_string(),
        AgentDelivery::Update(u) => u.id.to_string(),
    }
}

/// Publishes a delivery as the router does: on `sb.agent.out.webhook.<agent>`.
async fn send(t: &TestBus, delivery: &AgentDelivery) {
    let id = id_of(delivery);
    t.bus
        .publish(&subjects::agent_delivery(switchboard_channel_webhook::ENDPOINT_KIND, AGENT), delivery, &id)
        .await
        .unwrap();
}

/// Runs the deliverer for `url` with `runtime` until the returned token is cancelled.
fn deliverer(t: &TestBus, url: &str, runtime: RuntimeConfig) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let endpoint = AgentEndpoint { url: url.into(), key: Arc::from(KEY) };
    let endpoints = AgentEndpoints::new(
        BTreeMap::from([(AGENT.to_string(), endpoint)]),
        Duration::from_secs(60),
        runtime,
        Default::default(),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let (bus, until) = (t.bus.clone(), stop.clone());
    (stop, tokio::spawn(async move { endpoints.run(bus, until).await.unwrap() }))
}

/// The scenario, scaled only in back-off: a helpdesk goes down (connection refused) for
/// 60 s (`SB_TEST_HELPDESK_OUTAGE_SECS` to change it) while offers keep coming, then comes back.
/// Every offer arrives, exactly once by `webhook-id`, and none is dead-lettered. With the old
/// fixed settings (5 attempts ~3 s apart) every offer sent during the outage was dead-lettered.
#[tokio::test]
async fn a_helpdesk_down_for_a_minute_gets_every_offer_exactly_once() {
    let outage = Duration::from_secs(
        std::env::var("SB_TEST_HELPDESK_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60),
    );
    let t = TestBus::start().await;
    let helpdesk = Helpdesk::default();
    let addr = free_addr().await;
    let up = helpdesk.serve_on(addr).await;
    // The defaults (attempts, retry window) but a short back-off, so the test does not wait up
    // to 30 s after the helpdesk is back.
    let runtime = RuntimeConfig {
        backoff: Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(3) },
        ..RuntimeConfig::default()
    };
    let (stop, task) = deliverer(&t, &format!("http://{addr}/agent"), runtime);

    let mut sent = Vec::new();
    for _ in 0..2 {
        let o = offer();
        send(&t, &o).await;
        sent.push(id_of(&o));
    }
    wait_for("the offers before the outage", Duration::from_secs(10), || async { helpdesk.accepted().len() == 2 })
        .await;

    up.cancel(); // the helpdesk restarts
    let down_at = Instant::now();
    let during = 16;
    for i in 0..during {
        let o = offer();
        send(&t, &o).await;
        sent.push(id_of(&o));
        tokio::time::sleep_until((down_at + outage * (i + 1) / (during + 1)).into()).await;
    }
    tokio::time::sleep_until((down_at + outage).into()).await;
    assert!(t.dead_letters("agent-webhook").await.is_empty(), "dead-lettered during the outage");
    let _up = helpdesk.serve_on(addr).await;
    let back_at = Instant::now();

    wait_for("every offer delivered", Duration::from_secs(20), || async { helpdesk.accepted().len() == sent.len() })
        .await;
    let caught_up = back_at.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await; // nothing more may come
    stop.cancel();
    task.await.unwrap();

    let accepted = helpdesk.accepted();
    for id in &sent {
        assert_eq!(accepted.get(id), Some(&1), "offer {id} accepted exactly once");
    }
    assert_eq!(accepted.len(), sent.len(), "nothing else delivered");
    assert!(t.dead_letters("agent-webhook").await.is_empty(), "nothing dead-lettered");
    let info =
        t.bus.jetstream().get_stream(streams::AGENT).await.unwrap().consumer_info("agent-webhook").await.unwrap();
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0), "everything acked");
    eprintln!(
        "outage {outage:?}: {} offers sent during it, all delivered {caught_up:?} after the helpdesk was back",
        during
    );
}

/// An upgrade: the durable of an older release read only `sb.agent.out.webhook`. A delivery
/// written there before the upgrade and one written on the agent's own subject after it both
/// reach the helpdesk, once each.
#[tokio::test]
async fn deliveries_on_the_old_subject_and_on_the_agents_subject_both_arrive_after_an_upgrade() {
    let t = TestBus::start().await;
    let old_filter = subjects::agent_out(switchboard_channel_webhook::ENDPOINT_KIND);
    let stream = t.bus.jetstream().get_stream(streams::AGENT).await.unwrap();
    stream
        .create_consumer(switchboard_bus::async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("agent-webhook".into()),
            filter_subject: old_filter.clone(),
            ack_policy: switchboard_bus::async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let before = offer();
    t.bus.publish(&old_filter, &before, &id_of(&before)).await.unwrap();
    let helpdesk = Helpdesk::default();
    let addr = free_addr().await;
    let _up = helpdesk.serve_on(addr).await;
    let (stop, task) = deliverer(&t, &format!("http://{addr}/agent"), RuntimeConfig::default());
    let after = offer();
    send(&t, &after).await;
    wait_for("both offers delivered", Duration::from_secs(15), || async { helpdesk.accepted().len() == 2 }).await;
    stop.cancel();
    task.await.unwrap();
    let accepted = helpdesk.accepted();
    assert_eq!((accepted.get(&id_of(&before)), accepted.get(&id_of(&after))), (Some(&1), Some(&1)));
    let info = stream.consumer_info("agent-webhook").await.unwrap();
    assert_eq!(
        info.config.filter_subjects,
        [old_filter, subjects::agent_out_filter(switchboard_channel_webhook::ENDPOINT_KIND)],
        "the durable now reads both"
    );
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0), "everything acked");
}

/// A helpdesk answering `429` with `Retry-After: 3` is waited for, even with a single attempt
/// allowed: delivered on the next try at least 3 s later, never dead-lettered.
#[tokio::test]
async fn a_429_with_retry_after_is_waited_even_with_one_attempt() {
    let t = TestBus::start().await;
    let helpdesk = Helpdesk::default();
    helpdesk.script.lock().unwrap().push((429, Some("3".into())));
    let addr = free_addr().await;
    let _up = helpdesk.serve_on(addr).await;
    let runtime = RuntimeConfig { max_attempts: 1, retry_for_secs: 0, ..RuntimeConfig::default() };
    let (stop, task) = deliverer(&t, &format!("http://{addr}/agent"), runtime);

    let o = offer();
    send(&t, &o).await;
    wait_for("the offer delivered", Duration::from_secs(15), || async { helpdesk.accepted().len() == 1 }).await;
    stop.cancel();
    task.await.unwrap();

    let seen = helpdesk.seen();
    let statuses: Vec<u16> = seen.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(statuses, [429, 200], "asked to wait, then delivered once");
    assert!(seen.iter().all(|(id, ..)| *id == id_of(&o)));
    let waited = seen[1].2 - seen[0].2;
    assert!(waited >= Duration::from_secs(3), "tried again after {waited:?}, before the 3 s asked for");
    assert!(t.dead_letters("agent-webhook").await.is_empty(), "a wait is not a failure");
}

/// A deliverer killed while a delivery is in flight (no ack, no progress): the delivery reaches
/// the helpdesk again after the configured `ack_wait` (2 s), not the 30 s it used to be.
#[tokio::test]
async fn an_in_flight_delivery_of_a_killed_deliverer_is_redelivered_after_the_configured_ack_wait() {
    let t = TestBus::start().await;
    let helpdesk = Helpdesk::default();
    helpdesk.hang.store(true, std::sync::atomic::Ordering::SeqCst);
    let addr = free_addr().await;
    let _up = helpdesk.serve_on(addr).await;
    let url = format!("http://{addr}/agent");
    let runtime = RuntimeConfig { ack_wait_secs: 2, ..RuntimeConfig::default() };

    let (_, killed) = deliverer(&t, &url, runtime.clone());
    let o = offer();
    send(&t, &o).await;
    wait_for("the delivery in flight", Duration::from_secs(10), || async { !helpdesk.seen().is_empty() }).await;
    killed.abort(); // kill -9: the process is gone mid-request
    let _ = killed.await;
    helpdesk.hang.store(false, std::sync::atomic::Ordering::SeqCst);

    let (stop, task) = deliverer(&t, &url, runtime);
    wait_for("the delivery again", Duration::from_secs(40), || async { helpdesk.accepted().len() == 1 }).await;
    stop.cancel();
    task.await.unwrap();
    let seen = helpdesk.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(id, ..)| *id == id_of(&o)));
    let late = seen[1].2 - seen[0].2;
    assert!(late < Duration::from_secs(6), "redelivered after {late:?}, not after the 2 s ack_wait");
    eprintln!("redelivered {late:?} after the killed attempt (ack_wait 2 s)");
}
