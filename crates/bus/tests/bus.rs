//! The bus against a real NATS server: set-up, publish, consumers, dead letters, version check.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use switchboard_bus::{Backoff, Bus, BusConfig, BusError, ConsumerSpec, HandlerError};
use switchboard_core::contract::{buckets, headers, streams, subjects};
use switchboard_core::{Contract, Customer, Envelope};
use switchboard_testkit::NatsServer;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn envelope(provider_id: &str) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        channel: "webhook".into(),
        provider_message_id: provider_id.into(),
        received_at: chrono::Utc::now(),
        customer: Customer { id: "c-1".into(), name: None, email: None, phone: None, language: None },
        thread_key: "t-1".into(),
        text: "hello".into(),
        subject: None,
        html: None,
        attachments: vec![],
        metadata: Default::default(),
        raw_ref: None,
    }
}

async fn connect(server: &NatsServer) -> Bus {
    let bus = Bus::connect(&BusConfig::for_url(server.url()), &CancellationToken::new()).await.unwrap();
    bus.ensure_contract().await.unwrap();
    bus
}

async fn stream_len(bus: &Bus, stream: &str) -> u64 {
    bus.jetstream().get_stream(stream).await.unwrap().info().await.unwrap().state.messages
}

#[tokio::test]
async fn setup_is_idempotent_across_restarts() {
    let mut server = NatsServer::start();
    let bus = connect(&server).await;
    bus.ensure_contract().await.unwrap();
    bus.publish(&subjects::inbound("webhook"), &envelope("a"), "webhook:a").await.unwrap();
    drop(bus);

    server.restart();
    let bus = connect(&server).await;
    assert!(bus.contract_present().await);
    assert_eq!(stream_len(&bus, streams::INBOUND).await, 1, "restart and re-setup kept the stored message");
    for bucket in buckets::ALL {
        bus.jetstream().get_key_value(*bucket).await.unwrap();
    }
    bus.jetstream().get_object_store(switchboard_core::contract::ATTACHMENTS_STORE).await.unwrap();
}

#[tokio::test]
async fn publish_dedupes_by_msg_id_and_sets_schema() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::inbound("webhook");
    let first = bus.publish(&subject, &envelope("m-1"), "webhook:m-1").await.unwrap();
    let second = bus.publish(&subject, &envelope("m-1"), "webhook:m-1").await.unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.sequence, second.sequence);
    assert_eq!(stream_len(&bus, streams::INBOUND).await, 1);

    let stored = bus.jetstream().get_stream(streams::INBOUND).await.unwrap().get_raw_message(1).await.unwrap();
    assert_eq!(stored.headers.get(headers::SCHEMA).unwrap().as_str(), "envelope/1");
    assert_eq!(stored.headers.get(headers::MSG_ID).unwrap().as_str(), "webhook:m-1");

    let mut bad = envelope("m-2");
    bad.customer.id = String::new();
    let err = bus.publish(&subject, &bad, "webhook:m-2").await.unwrap_err();
    assert!(matches!(err, BusError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("customer.id"), "{err}");
    assert_eq!(stream_len(&bus, streams::INBOUND).await, 1, "invalid envelope not stored");
}

#[tokio::test]
async fn failing_handler_is_retried_then_dead_lettered() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("test");
    bus.publish(&subject, &envelope("fails"), "test:fails").await.unwrap();
    bus.publish(&subject, &envelope("flaky"), "test:flaky").await.unwrap();

    let mut dlq = bus.client().subscribe(subjects::dlq("test-out")).await.unwrap();
    let attempts: Arc<std::sync::Mutex<Vec<(String, u64)>>> = Default::default();
    let ok = Arc::new(AtomicU64::new(0));
    let mut spec = ConsumerSpec::new("test-out", streams::OUTBOUND, "test-out", &subject);
    spec.max_deliver = 3;
    spec.backoff = Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(50) };
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, attempts, ok, shutdown) = (bus.clone(), attempts.clone(), ok.clone(), shutdown.clone());
        tokio::spawn(async move {
            bus.run_consumer(spec, shutdown, move |d| {
                let (attempts, ok) = (attempts.clone(), ok.clone());
                async move {
                    let env: Envelope = d.decode()?;
                    attempts.lock().unwrap().push((env.provider_message_id.clone(), d.attempt));
                    match (env.provider_message_id.as_str(), d.attempt) {
                        ("flaky", 1) => Err(HandlerError::Retry("first try fails".into())),
                        ("flaky", _) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        }
                        _ => Err(HandlerError::Retry("receiver said 503".into())),
                    }
                }
            })
            .await
        })
    };

    let dead =
        tokio::time::timeout(Duration::from_secs(10), dlq.next()).await.expect("dead letter within 10s").unwrap();
    let h = dead.headers.as_ref().unwrap();
    assert_eq!(h.get(headers::DLQ_REASON).unwrap().as_str(), "receiver said 503");
    assert_eq!(h.get(headers::DLQ_ATTEMPTS).unwrap().as_str(), "3");
    assert_eq!(h.get(headers::DLQ_COMPONENT).unwrap().as_str(), "test-out");
    assert_eq!(h.get(headers::DLQ_SUBJECT).unwrap().as_str(), subject);
    assert_eq!(Envelope::from_json(&dead.payload).unwrap().provider_message_id, "fails");

    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let attempts = attempts.lock().unwrap().clone();
    let of = |id: &str| attempts.iter().filter(|(p, _)| p == id).map(|(_, a)| *a).collect::<Vec<_>>();
    assert_eq!(of("fails"), [1, 2, 3]);
    assert_eq!(of("flaky"), [1, 2]);
    assert_eq!(ok.load(Ordering::SeqCst), 1);
    assert_eq!(stream_len(&bus, streams::DLQ).await, 1, "only the permanently failing message is dead-lettered");

    // Everything was acked: a new consumer instance on the same durable gets nothing.
    let info = bus.jetstream().get_stream(streams::OUTBOUND).await.unwrap().consumer_info("test-out").await.unwrap();
    assert_eq!(info.num_pending, 0);
    assert_eq!(info.num_ack_pending, 0);
}

#[tokio::test]
async fn rejected_payload_is_dead_lettered_at_once() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("test");
    let mut h = async_nats::HeaderMap::new();
    h.insert(headers::SCHEMA, "envelope/1");
    bus.publish_raw(&subject, h, "{not json".into(), "junk").await.unwrap();
    let mut dlq = bus.client().subscribe(subjects::dlq("junk")).await.unwrap();
    let shutdown = CancellationToken::new();
    let spec = ConsumerSpec::new("junk", streams::OUTBOUND, "junk", &subject);
    let task = tokio::spawn({
        let (bus, shutdown) = (bus.clone(), shutdown.clone());
        async move { bus.run_consumer(spec, shutdown, |d| async move { d.decode::<Envelope>().map(|_| ()) }).await }
    });
    let dead = tokio::time::timeout(Duration::from_secs(10), dlq.next()).await.unwrap().unwrap();
    let h = dead.headers.unwrap();
    assert_eq!(h.get(headers::DLQ_ATTEMPTS).unwrap().as_str(), "1");
    assert!(h.get(headers::DLQ_REASON).unwrap().as_str().starts_with("invalid envelope/1"));
    assert_eq!(h.get(headers::DLQ_KIND).unwrap().as_str(), "envelope/1", "what it holds, from its schema header");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn connect_waits_for_a_server_that_comes_up_later() {
    let port = switchboard_testkit::free_port();
    let mut config = BusConfig::for_url(format!("nats://127.0.0.1:{port}"));
    config.connect_backoff = Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(200) };
    let shutdown = CancellationToken::new();
    let connecting = tokio::spawn(async move { Bus::connect(&config, &shutdown).await });
    tokio::time::sleep(Duration::from_millis(300)).await; // let a few attempts fail first
    assert!(!connecting.is_finished(), "no server yet, connect must still be retrying");
    let _server = NatsServer::start_on(port);
    let bus = tokio::time::timeout(Duration::from_secs(15), connecting).await.unwrap().unwrap().unwrap();
    bus.ensure_contract().await.unwrap();
}

/// A server speaking just enough of the NATS protocol to announce an old version.
#[tokio::test]
async fn refuses_a_server_older_than_2_10() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let info = r#"INFO {"server_id":"OLD","server_name":"old","version":"2.9.10","go":"go1.19","host":"127.0.0.1","port":4222,"headers":true,"max_payload":1048576,"proto":1,"jetstream":true}"#;
        sock.write_all(format!("{info}\r\n").as_bytes()).unwrap();
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.starts_with("PING") {
                let _ = sock.write_all(b"PONG\r\n");
            }
            line.clear();
        }
    });
    let err = Bus::connect(&BusConfig::for_url(format!("nats://127.0.0.1:{port}")), &CancellationToken::new())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, BusError::ServerTooOld { .. }), "{text}");
    assert!(text.contains("2.9.10") && text.contains("2.10.0"), "names both versions: {text}");
}

/// On shutdown the handler in flight finishes and is acked; messages pulled but not started are
/// handed back at once rather than held until ack_wait.
#[tokio::test]
async fn shutdown_finishes_in_flight_work_and_hands_back_the_rest() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("slow");
    for i in 0..5 {
        bus.publish(&subject, &envelope(&format!("s-{i}")), &format!("slow:{i}")).await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let started = Arc::new(tokio::sync::Notify::new());
    let handled = Arc::new(AtomicU64::new(0));
    let spec = ConsumerSpec::new("slow", streams::OUTBOUND, "slow", &subject);
    let task = tokio::spawn({
        let (bus, shutdown, started, handled) = (bus.clone(), shutdown.clone(), started.clone(), handled.clone());
        async move {
            let stop = shutdown.clone();
            bus.run_consumer(spec, shutdown, move |_| {
                let (stop, started, handled) = (stop.clone(), started.clone(), handled.clone());
                async move {
                    started.notify_one();
                    stop.cancelled().await; // still working when shutdown arrives
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await
        }
    });
    tokio::time::timeout(Duration::from_secs(10), started.notified()).await.unwrap();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();

    assert_eq!(handled.load(Ordering::SeqCst), 1, "the in-flight message finished");
    let info = bus.jetstream().get_stream(streams::OUTBOUND).await.unwrap().consumer_info("slow").await.unwrap();
    assert_eq!(info.ack_floor.stream_sequence, 1, "the finished message was acked");

    // A new instance on the same durable gets the other four long before the 30 s ack_wait.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let spec = ConsumerSpec::new("slow", streams::OUTBOUND, "slow", &subject);
    let task = tokio::spawn({
        let (bus, shutdown, seen) = (bus.clone(), shutdown.clone(), seen.clone());
        async move {
            bus.run_consumer(spec, shutdown, move |d| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(d.decode::<Envelope>()?.provider_message_id);
                    Ok(())
                }
            })
            .await
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "handed-back messages not redelivered: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["s-1", "s-2", "s-3", "s-4"]);
}

#[tokio::test]
async fn one_conversations_deliveries_keep_their_order_while_others_go_on() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("perconv");
    for (conversation, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 1)] {
        let payload = serde_json::json!({ "conversation_id": conversation, "n": n }).to_string();
        bus.publish_raw(&subject, Default::default(), payload.into(), &format!("perconv:{conversation}{n}"))
            .await
            .unwrap();
    }
    let handled: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let mut spec = ConsumerSpec::new("perconv", streams::OUTBOUND, "perconv", &subject);
    spec.concurrency = 4;
    spec.per_conversation = true;
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, handled, shutdown) = (bus.clone(), handled.clone(), shutdown.clone());
        tokio::spawn(async move {
            bus.run_consumer(spec, shutdown, move |d| {
                let handled = handled.clone();
                async move {
                    let v: serde_json::Value = serde_json::from_slice(&d.payload).unwrap();
                    let id = format!("{}{}", v["conversation_id"].as_str().unwrap(), v["n"]);
                    // The first of `a` meets a slow receiver: with four at once the other two of
                    // `a` would be done first.
                    if id == "a1" {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    handled.lock().unwrap().push(id);
                    Ok(())
                }
            })
            .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handled.lock().unwrap().len() < 4 {
        assert!(std::time::Instant::now() < deadline, "handled only {:?}", handled.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    assert_eq!(*handled.lock().unwrap(), ["b1", "a1", "a2", "a3"], "b did not wait for a; a kept its order");
}

#[tokio::test]
async fn a_conversations_retried_or_waiting_message_is_not_overtaken_by_its_next_one() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("perconvretry");
    // a1 fails once (a transient error), c1 is asked to wait (a rate limit): a2 and c2 (the
    // survey after the last answer, say) must still come after them, and b1 must not wait.
    for (conversation, n) in [("a", 1), ("c", 1), ("a", 2), ("c", 2), ("b", 1)] {
        let payload = serde_json::json!({ "conversation_id": conversation, "n": n }).to_string();
        bus.publish_raw(&subject, Default::default(), payload.into(), &format!("perconvretry:{conversation}{n}"))
            .await
            .unwrap();
    }
    let handled: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let mut spec = ConsumerSpec::new("perconvretry", streams::OUTBOUND, "perconvretry", &subject);
    spec.concurrency = 4;
    spec.per_conversation = true;
    spec.backoff = Backoff { initial: Duration::from_millis(300), max: Duration::from_millis(300) };
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, handled, shutdown) = (bus.clone(), handled.clone(), shutdown.clone());
        let tried: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        tokio::spawn(async move {
            bus.run_consumer(spec, shutdown, move |d| {
                let (handled, tried) = (handled.clone(), tried.clone());
                async move {
                    let v: serde_json::Value = serde_json::from_slice(&d.payload).unwrap();
                    let id = format!("{}{}", v["conversation_id"].as_str().unwrap(), v["n"]);
                    let first_try = !tried.lock().unwrap().contains(&id);
                    tried.lock().unwrap().push(id.clone());
                    match id.as_str() {
                        "a1" if first_try => return Err(HandlerError::Retry("connection reset".into())),
                        "c1" if first_try => {
                            return Err(HandlerError::Wait {
                                after: Duration::from_millis(400),
                                reason: "429 retry after".into(),
                            });
                        }
                        _ => {}
                    }
                    handled.lock().unwrap().push(id);
                    Ok(())
                }
            })
            .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handled.lock().unwrap().len() < 5 {
        assert!(std::time::Instant::now() < deadline, "handled only {:?}", handled.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let handled = handled.lock().unwrap().clone();
    let at = |id: &str| handled.iter().position(|h| h == id).unwrap();
    assert!(at("a1") < at("a2"), "a2 overtook the retried a1: {handled:?}");
    assert!(at("c1") < at("c2"), "c2 overtook the waiting c1: {handled:?}");
    assert_eq!(handled[0], "b1", "b went on while a and c waited: {handled:?}");
}

#[tokio::test]
async fn an_in_order_consumer_never_lets_a_later_message_overtake_a_retried_one() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("ordered");
    for id in ["first", "second", "third"] {
        bus.publish(&subject, &envelope(id), &format!("ordered:{id}")).await.unwrap();
    }
    let handled: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let mut spec = ConsumerSpec::new("ordered", streams::OUTBOUND, "ordered", &subject);
    spec.in_order = true;
    spec.backoff = Backoff { initial: Duration::from_millis(300), max: Duration::from_millis(300) };
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, handled, shutdown) = (bus.clone(), handled.clone(), shutdown.clone());
        tokio::spawn(async move {
            bus.run_consumer(spec, shutdown, move |d| {
                let handled = handled.clone();
                async move {
                    let env: Envelope = d.decode()?;
                    let id = env.provider_message_id;
                    // The first message fails twice (a router that is not leading yet, say).
                    if id == "first" && d.attempt < 3 {
                        handled.lock().unwrap().push(format!("{id} retried"));
                        return Err(HandlerError::Retry("not yet".into()));
                    }
                    handled.lock().unwrap().push(id);
                    Ok(())
                }
            })
            .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handled.lock().unwrap().len() < 5 {
        assert!(std::time::Instant::now() < deadline, "handled only {:?}", handled.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
    assert_eq!(*handled.lock().unwrap(), ["first retried", "first retried", "first", "second", "third"]);
}

#[tokio::test]
async fn a_consumer_that_cannot_be_opened_yet_keeps_trying_until_it_can() {
    let server = NatsServer::start();
    // Connected, but the contract is not set up: the stream the consumer reads does not exist.
    let bus = Bus::connect(&BusConfig::for_url(server.url()), &CancellationToken::new()).await.unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let shutdown = CancellationToken::new();
    let subject = subjects::outbound("late");
    let consumer = {
        let (bus, handled, shutdown) = (bus.clone(), handled.clone(), shutdown.clone());
        let spec = ConsumerSpec::new("late-out", streams::OUTBOUND, "late-out", &subject);
        tokio::spawn(async move {
            bus.run_consumer(spec, shutdown, move |_| {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await
        })
    };
    // The stream appears only after the consumer had time to fail to open (it used to give up).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!consumer.is_finished(), "the consumer gave up instead of retrying");
    bus.ensure_contract().await.unwrap();
    bus.publish(&subject, &envelope("late"), "late:1").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while handled.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the consumer never opened once the stream existed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

/// A receiver that answers "wait" on every delivery, up to and beyond `max_deliver` (1 here: no
/// retry at all), is never dead-lettered: the message is stored again with `Sb-Not-Before`, each
/// wait is honoured (no delivery before it is over), and it is handled once the receiver accepts.
#[tokio::test]
async fn a_receiver_that_keeps_asking_to_wait_is_never_dead_lettered() {
    const WAIT: Duration = Duration::from_secs(1);
    const WAITS: usize = 3;
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("patient");
    bus.publish(&subject, &envelope("wait-me"), "patient:1").await.unwrap();

    let calls: Arc<std::sync::Mutex<Vec<(std::time::Instant, u64)>>> = Default::default();
    let mut spec = ConsumerSpec::new("patient", streams::OUTBOUND, "patient", &subject);
    spec.max_deliver = 1;
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, calls, shutdown) = (bus.clone(), calls.clone(), shutdown.clone());
        tokio::spawn(async move {
            bus.run_consumer(spec, shutdown, move |d| {
                let calls = calls.clone();
                async move {
                    let n = {
                        let mut calls = calls.lock().unwrap();
                        calls.push((std::time::Instant::now(), d.attempt));
                        calls.len()
                    };
                    if n <= WAITS { Err(HandlerError::Wait { after: WAIT, reason: "429".into() }) } else { Ok(()) }
                }
            })
            .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while calls.lock().unwrap().len() <= WAITS {
        assert!(std::time::Instant::now() < deadline, "handled only {} times", calls.lock().unwrap().len());
        assert!(stream_len(&bus, streams::DLQ).await == 0, "dead-lettered while the receiver only asked to wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Settle: the accepted delivery is acked and nothing else follows.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    consumer.await.unwrap().unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), WAITS + 1, "handled until accepted, then never again");
    assert!(calls.iter().all(|(_, attempt)| *attempt == 1), "every copy counts its attempts from 1: {calls:?}");
    for pair in calls.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        // Due times are whole milliseconds of the wall clock: allow that rounding, nothing more.
        assert!(gap + Duration::from_millis(2) >= WAIT, "handled again after {gap:?}, before the {WAIT:?} wait");
    }
    assert_eq!(stream_len(&bus, streams::DLQ).await, 0, "never dead-lettered");
    let stream = bus.jetstream().get_stream(streams::OUTBOUND).await.unwrap();
    let mut copies = 0;
    for seq in 2..=stream.get_info().await.unwrap().state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        let due: i64 =
            m.headers.get(headers::NOT_BEFORE).expect("a copy carries Sb-Not-Before").as_str().parse().unwrap();
        let stored = (m.time - time::OffsetDateTime::UNIX_EPOCH).whole_milliseconds() as i64;
        assert!(due >= stored + WAIT.as_millis() as i64 - 5, "due {due} is the wait after storing {stored}");
        assert_eq!(Envelope::from_json(&m.payload).unwrap().provider_message_id, "wait-me");
        copies += 1;
    }
    assert_eq!(copies, WAITS, "stored again once per wait at the last allowed delivery");
    let info = stream.consumer_info("patient").await.unwrap();
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0), "the original and every copy acked");
}

/// With `retry_for`, a failing message is retried beyond `max_deliver` until the window has
/// passed: a receiver down for a while gets it once it is back; one that stays down past the
/// window makes it a dead letter, and only the delivery that gives up is marked `last`.
#[tokio::test]
async fn retryable_failures_are_retried_for_the_whole_retry_window() {
    const WINDOW: Duration = Duration::from_secs(2);
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("window");
    bus.publish(&subject, &envelope("recovers"), "window:recovers").await.unwrap();
    bus.publish(&subject, &envelope("down"), "window:down").await.unwrap();
    let started = std::time::Instant::now();

    let calls: Arc<std::sync::Mutex<Vec<(String, u64, bool)>>> = Default::default();
    let mut spec = ConsumerSpec::new("window", streams::OUTBOUND, "window", &subject);
    spec.max_deliver = 2;
    spec.retry_for = WINDOW;
    spec.backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(200) };
    spec.concurrency = 2;
    let mut dlq = bus.client().subscribe(subjects::dlq("window")).await.unwrap();
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, calls, shutdown) = (bus.clone(), calls.clone(), shutdown.clone());
        tokio::spawn(async move {
            bus.run_consumer(spec, shutdown, move |d| {
                let calls = calls.clone();
                async move {
                    let id = d.decode::<Envelope>()?.provider_message_id;
                    calls.lock().unwrap().push((id.clone(), d.attempt, d.last));
                    // "recovers" is back after 1.5 s, well past its 2 deliveries.
                    if id == "recovers" && started.elapsed() > Duration::from_millis(1500) {
                        return Ok(());
                    }
                    Err(HandlerError::Retry("connection refused".into()))
                }
            })
            .await
        })
    };
    let dead =
        tokio::time::timeout(Duration::from_secs(15), dlq.next()).await.expect("dead letter within 15s").unwrap();
    let given_up_after = started.elapsed();
    shutdown.cancel();
    consumer.await.unwrap().unwrap();

    assert_eq!(Envelope::from_json(&dead.payload).unwrap().provider_message_id, "down");
    assert!(given_up_after >= WINDOW, "dead-lettered after {given_up_after:?}, inside the {WINDOW:?} window");
    let calls = calls.lock().unwrap().clone();
    let of = |id: &str| calls.iter().filter(|(p, ..)| p == id).map(|(_, a, l)| (*a, *l)).collect::<Vec<_>>();
    let recovers = of("recovers");
    assert!(recovers.len() > 2, "retried beyond max_deliver: {recovers:?}");
    assert!(recovers.iter().all(|(_, last)| !last), "never marked last: {recovers:?}");
    let down = of("down");
    assert!(down.len() > 2, "retried beyond max_deliver: {down:?}");
    assert_eq!(down.iter().filter(|(_, last)| *last).count(), 1, "only the final delivery is last: {down:?}");
    assert!(down.last().unwrap().1, "the final delivery is the last one: {down:?}");
    let attempts = dead.headers.as_ref().unwrap().get(headers::DLQ_ATTEMPTS).unwrap().as_str().to_string();
    assert_eq!(attempts, down.len().to_string());
    assert_eq!(stream_len(&bus, streams::DLQ).await, 1, "the receiver that came back lost nothing");
}

/// A durable created with one `ack_wait` takes a changed one when the consumer is opened again
/// (a restarted daemon with a new setting), and a message held by a process that stops without
/// acking (a kill -9: no ack, no progress) is redelivered after that `ack_wait`, not the old one.
#[tokio::test]
async fn an_existing_durable_takes_a_changed_ack_wait_and_redelivers_after_it() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::outbound("crash");
    let spec = |ack_wait: Duration| ConsumerSpec {
        ack_wait,
        ..ConsumerSpec::new("crash", streams::OUTBOUND, "crash", &subject)
    };
    let consumer_ack_wait = || async {
        bus.jetstream()
            .get_stream(streams::OUTBOUND)
            .await
            .unwrap()
            .consumer_info("crash")
            .await
            .unwrap()
            .config
            .ack_wait
    };

    // The durable as an earlier version left it: ack_wait 30 s.
    let shutdown = CancellationToken::new();
    let old = tokio::spawn({
        let (bus, spec, shutdown) = (bus.clone(), spec(Duration::from_secs(30)), shutdown.clone());
        async move { bus.run_consumer(spec, shutdown, |_| async { Ok(()) }).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bus.jetstream().get_stream(streams::OUTBOUND).await.unwrap().consumer_info("crash").await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the durable was never created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    old.await.unwrap().unwrap();
    assert_eq!(consumer_ack_wait().await, Duration::from_secs(30));

    // Now configured with 1 s; the handler takes the message and never finishes.
    bus.publish(&subject, &envelope("held"), "crash:held").await.unwrap();
    let taken = Arc::new(tokio::sync::Notify::new());
    let crashing = tokio::spawn({
        let (bus, spec, taken) = (bus.clone(), spec(Duration::from_secs(1)), taken.clone());
        async move {
            bus.run_consumer(spec, CancellationToken::new(), move |_| {
                let taken = taken.clone();
                async move {
                    taken.notify_one();
                    std::future::pending().await
                }
            })
            .await
        }
    });
    tokio::time::timeout(Duration::from_secs(10), taken.notified()).await.expect("the message was taken");
    let held_at = std::time::Instant::now();
    assert_eq!(consumer_ack_wait().await, Duration::from_secs(1), "the durable took the new ack_wait");
    // The process dies: its tasks stop, nothing is acked or nak'd, no progress is sent.
    crashing.abort();
    let _ = crashing.await;

    let redelivered = Arc::new(tokio::sync::Notify::new());
    let shutdown = CancellationToken::new();
    let next = tokio::spawn({
        let (bus, spec, shutdown, redelivered) =
            (bus.clone(), spec(Duration::from_secs(1)), shutdown.clone(), redelivered.clone());
        async move {
            bus.run_consumer(spec, shutdown, move |_| {
                let redelivered = redelivered.clone();
                async move {
                    redelivered.notify_one();
                    Ok(())
                }
            })
            .await
        }
    });
    tokio::time::timeout(Duration::from_secs(10), redelivered.notified()).await.expect("redelivered within 10 s");
    let after = held_at.elapsed();
    assert!(after < Duration::from_secs(5), "redelivered after {after:?}: the old 30 s ack_wait, not the new 1 s");
    shutdown.cancel();
    next.await.unwrap().unwrap();
}
