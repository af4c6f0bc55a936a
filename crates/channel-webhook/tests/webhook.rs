//! The webhook channel end to end against a real NATS server and real HTTP sockets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use switchboard_adapter::testkit::{self, TestBus, wait_for};
use switchboard_adapter::{ChannelRuntime, RuntimeConfig};
use switchboard_bus::Backoff;
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_channel_webhook::{Source, WebhookChannel, WebhookConfig, WebhookDelivery, signature};
use switchboard_core::contract::headers;
use tokio_util::sync::CancellationToken;

const KEY: &[u8] = b"test-key-0123456789abcdef";

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn channel(outbound_url: Option<String>) -> WebhookChannel {
    let settings = WebhookConfig { max_body_bytes: 1024, ..WebhookConfig::default() };
    let source = Source { name: "shop".into(), key: Arc::from(KEY), previous_key: None, outbound_url };
    WebhookChannel::new(settings, vec![source]).unwrap()
}

fn runtime_config() -> RuntimeConfig {
    RuntimeConfig {
        max_attempts: 4,
        // Given up after the attempts alone, not after the default ten-minute window.
        retry_for_secs: 0,
        backoff: Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(80) },
        ..RuntimeConfig::default()
    }
}

struct Inbound {
    t: TestBus,
    base: String,
    http: reqwest::Client,
}

impl Inbound {
    async fn start() -> Inbound {
        let t = TestBus::start().await;
        let runtime =
            ChannelRuntime::new(Arc::new(channel(None)), runtime_config(), t.slot(), CancellationToken::new());
        let base = serve(runtime.routes().unwrap()).await;
        Inbound { t, base, http: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: &str, id: &str, ts: i64, key: &[u8]) -> (StatusCode, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header(signature::ID, id)
            .header(signature::TIMESTAMP, ts.to_string())
            .header(signature::SIGNATURE, signature::sign(key, id, ts, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    async fn signed(&self, body: &str) -> (StatusCode, serde_json::Value) {
        self.post("/v1/webhooks/shop", body, "msg_1", chrono::Utc::now().timestamp(), KEY).await
    }

    async fn stored(&self) -> usize {
        self.t.envelopes("webhook").await.len()
    }
}

/// The webhook channel's outcome counts, in `InboundOutcome::ALL` order. The counters are
/// process-wide; nextest runs every test in a process of its own.
fn counted() -> [u64; 5] {
    InboundOutcome::ALL.map(|o| outcomes::count("webhook", o))
}

/// Counts as `[routed, duplicate, not_routed, dead_letter, rejected]`.
fn counts(duplicate: u64, not_routed: u64, rejected: u64) -> [u64; 5] {
    [0, duplicate, not_routed, 0, rejected]
}

const VALID: &str = r#"{"message_id":"m-1","customer":{"id":"c-7","name":"Ada","email":"ada@example.com"},"text":"Where is my order?","metadata":{"plan":"pro"}}"#;

#[tokio::test]
async fn valid_message_is_stored_once_even_when_replayed() {
    let s = Inbound::start().await;
    let (status, first) = s.signed(VALID).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, body) = s.signed(VALID).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["duplicate"], true);
    assert_eq!((&body["id"], &body["sequence"]), (&first["id"], &first["sequence"]), "the original's id");

    let stored = s.t.envelopes("webhook").await;
    assert_eq!(stored.len(), 1);
    let e = &stored[0];
    assert_eq!(e.provider_message_id, "shop:m-1");
    assert_eq!(e.customer.id, "c-7");
    assert_eq!(e.customer.email.as_deref(), Some("ada@example.com"));
    assert_eq!(e.thread_key, "shop:c-7");
    assert_eq!(e.text, "Where is my order?");
    assert_eq!(e.metadata.get("plan").map(String::as_str), Some("pro"));
    assert_eq!(e.metadata.get("webhook_source").map(String::as_str), Some("shop"));
    // The stored one is the router's to count; the replay is settled here as a duplicate.
    assert_eq!(counted(), counts(1, 0, 0));
}

/// While the bus is not connected a request gets `503` and decides nothing: nothing is stored,
/// nothing counted; the sender's retry is what gets an outcome.
#[tokio::test]
async fn a_request_that_cannot_be_stored_yet_gets_503_and_no_outcome() {
    let runtime = ChannelRuntime::new(
        Arc::new(channel(None)),
        runtime_config(),
        switchboard_bus::BusSlot::new(),
        CancellationToken::new(),
    );
    let base = serve(runtime.routes().unwrap()).await;
    let t = TestBus::start().await;
    let s = Inbound { t, base, http: reqwest::Client::new() };
    let (status, body) = s.signed(VALID).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(counted(), counts(0, 0, 0));
    let metrics = outcomes::exposition();
    assert!(metrics.contains("switchboard_inbound_total{channel=\"webhook\",outcome=\"rejected\"} 0\n"), "{metrics}");
}

#[tokio::test]
async fn rejected_requests_get_the_right_status_and_store_nothing() {
    let s = Inbound::start().await;
    let now = chrono::Utc::now().timestamp();

    let (status, body) = s.post("/v1/webhooks/shop", VALID, "msg_1", now, b"wrong-key-0123456789abcdef").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid signature")));

    let (status, body) = s.post("/v1/webhooks/shop", VALID, "msg_1", now - 301, KEY).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["reason"].as_str().unwrap().contains("tolerance"), "{body}");

    let (status, body) = s.signed("{not json").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid request")), "{body}");

    let (status, body) = s.signed(r#"{"message_id":"m-2","customer":{"id":"c-7"}}"#).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("text")), "{body}");

    let (status, body) = s.signed(r#"{"message_id":"m-3","customer":{"id":""},"text":"hi"}"#).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("customer.id")), "{body}");

    let big = format!(r#"{{"message_id":"m-4","customer":{{"id":"c"}},"text":"{}"}}"#, "x".repeat(2000));
    let (status, body) = s.signed(&big).await;
    assert_eq!((status, body["limit_bytes"].as_u64()), (StatusCode::PAYLOAD_TOO_LARGE, Some(1024)), "{body}");

    let (status, _) = s.post("/v1/webhooks/nope", VALID, "msg_1", now, KEY).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let unsigned = s.http.post(format!("{}/v1/webhooks/shop", s.base)).body(VALID).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    assert_eq!(s.stored().await, 0, "nothing stored for a rejected request");
    assert_eq!(counted(), counts(0, 0, 8), "each of the 8 refused requests counted once, as rejected");
}

/// A sender over the per-sender limit is refused with `429` and counted as rejected.
#[tokio::test]
async fn a_sender_over_the_rate_limit_is_rejected_and_counted() {
    let t = TestBus::start().await;
    let mut config = runtime_config();
    config.rate_limit = switchboard_adapter::RateLimitConfig { per_minute: 1, burst: 1 };
    let runtime = ChannelRuntime::new(Arc::new(channel(None)), config, t.slot(), CancellationToken::new());
    let base = serve(runtime.routes().unwrap()).await;
    let s = Inbound { t, base, http: reqwest::Client::new() };
    let body = |n: u32| format!(r#"{{"message_id":"m-{n}","customer":{{"id":"c-7"}},"text":"hello {n}"}}"#);
    assert_eq!(s.signed(&body(1)).await.0, StatusCode::ACCEPTED);
    assert_eq!(s.signed(&body(2)).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(s.stored().await, 1);
    assert_eq!(counted(), counts(0, 0, 1));
}

/// What the receiver saw: headers, body, and the status it answered.
type Seen = (HeaderMap, Vec<u8>, u16);

/// A receiver that answers each request with the next scripted status, then 200; a 429 or 503
/// carries `retry_after` as `Retry-After` when set.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<Vec<u16>>>,
    retry_after: Arc<Mutex<Option<String>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    at: Arc<Mutex<Vec<std::time::Instant>>>,
}

impl Receiver {
    fn router(&self) -> axum::Router {
        let me = self.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    let status = {
                        let mut script = me.script.lock().unwrap();
                        if script.is_empty() { 200 } else { script.remove(0) }
                    };
                    me.seen.lock().unwrap().push((headers, body.to_vec(), status));
                    me.at.lock().unwrap().push(std::time::Instant::now());
                    let mut response =
                        axum::response::IntoResponse::into_response(StatusCode::from_u16(status).unwrap());
                    if let (429 | 503, Some(after)) = (status, me.retry_after.lock().unwrap().clone()) {
                        response.headers_mut().insert("retry-after", after.parse().unwrap());
                    }
                    response
                }
            }),
        )
    }
}

/// A customer's endpoint answering `503` with `Retry-After` (an HTTP date here) is waited for,
/// again and again, even with a single attempt allowed: never a dead letter, never a
/// `delivery_failed`, delivered once it accepts.
#[tokio::test]
async fn a_503_with_retry_after_is_waited_for_and_never_dead_lettered() {
    let t = TestBus::start().await;
    let receiver = Receiver::default();
    receiver.script.lock().unwrap().extend([503, 503]);
    let in_two_secs = std::time::SystemTime::now() + Duration::from_secs(2);
    *receiver.retry_after.lock().unwrap() = Some(httpdate::fmt_http_date(in_two_secs));
    let url = format!("{}/hook", serve(receiver.router()).await);
    let shutdown = CancellationToken::new();
    let config = RuntimeConfig { max_attempts: 1, retry_for_secs: 0, ..runtime_config() };
    let task = ChannelRuntime::new(Arc::new(channel(Some(url))), config, t.slot(), shutdown.clone()).spawn();

    let mut message = testkit::outbound("webhook", "c-7", "Your order ships today");
    message.to.thread_key = "shop:c-7".into();
    t.send_outbound(&message).await;
    wait_for("delivered", Duration::from_secs(20), || async { receiver.seen.lock().unwrap().len() == 3 }).await;
    t.wait_outbound_drained("webhook", Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let statuses: Vec<u16> = receiver.seen.lock().unwrap().iter().map(|(_, _, s)| *s).collect();
    assert_eq!(statuses, [503, 503, 200]);
    let at = receiver.at.lock().unwrap().clone();
    // The date has whole seconds: the first wait is 1 to 2 s; the second date is past, so 1 s.
    assert!(at[1] - at[0] >= Duration::from_secs(1), "tried again after {:?}", at[1] - at[0]);
    assert!(at[2] - at[1] >= Duration::from_secs(1), "tried again after {:?}", at[2] - at[1]);
    assert!(t.dead_letters("webhook").await.is_empty(), "a wait is not a failure");
    let failed = t
        .stored(
            switchboard_core::contract::streams::EVENTS,
            &switchboard_core::contract::subjects::event("delivery_failed"),
        )
        .await;
    assert!(failed.is_empty(), "no delivery_failed for a wait");
}

#[tokio::test]
async fn outbound_is_retried_until_the_receiver_accepts_and_is_signed() {
    let t = TestBus::start().await;
    let receiver = Receiver::default();
    receiver.script.lock().unwrap().extend([503, 500]);
    let url = format!("{}/hook", serve(receiver.router()).await);
    let shutdown = CancellationToken::new();
    let task = ChannelRuntime::new(Arc::new(channel(Some(url))), runtime_config(), t.slot(), shutdown.clone()).spawn();

    let mut message = testkit::outbound("webhook", "c-7", "Your order ships today");
    message.to.thread_key = "shop:c-7".into();
    // An agent's reply with a file: the receiver is told of it, not left unaware.
    let invoice = switchboard_core::AttachmentRef {
        object: "telegram/agent/invoice".into(),
        filename: "invoice.pdf".into(),
        content_type: "application/pdf".into(),
        size: 1234,
        skipped: None,
    };
    message.attachments = vec![invoice.clone()];
    t.send_outbound(&message).await;
    t.wait_outbound_drained("webhook", Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let seen = receiver.seen.lock().unwrap().clone();
    let statuses: Vec<u16> = seen.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(statuses, [503, 500, 200], "retried after 5xx, exactly one accepted delivery");
    let (headers, body, _) = &seen[2];
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    assert_eq!(h(signature::ID), Some(message.id.to_string().as_str()));
    signature::verify(
        KEY,
        h(signature::ID),
        h(signature::TIMESTAMP),
        h(signature::SIGNATURE),
        body,
        chrono::Utc::now().timestamp(),
        300,
    )
    .expect("delivery signature verifies");
    let delivery: WebhookDelivery = serde_json::from_slice(body).unwrap();
    assert_eq!((delivery.thread_id.as_str(), delivery.text.as_str()), ("c-7", "Your order ships today"));
    assert_eq!(delivery.attachments, vec![invoice], "the file is listed");
    assert!(t.dead_letters("webhook").await.is_empty());
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_in_the_dead_letter_subject() {
    let t = TestBus::start().await;
    let receiver = Receiver::default();
    receiver.script.lock().unwrap().extend([500; 10]);
    let url = format!("{}/hook", serve(receiver.router()).await);
    let shutdown = CancellationToken::new();
    let task = ChannelRuntime::new(Arc::new(channel(Some(url))), runtime_config(), t.slot(), shutdown.clone()).spawn();

    let mut message = testkit::outbound("webhook", "c-7", "hello");
    message.to.thread_key = "shop:c-7".into();
    t.send_outbound(&message).await;
    wait_for("dead letter", Duration::from_secs(10), || async { !t.dead_letters("webhook").await.is_empty() }).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let dead = t.dead_letters("webhook").await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].0.get(headers::DLQ_REASON).unwrap().as_str();
    assert_eq!(reason, "HTTP 500 from receiver of source shop");
    assert_eq!(dead[0].0.get(headers::DLQ_ATTEMPTS).unwrap().as_str(), "4");
    assert_eq!(receiver.seen.lock().unwrap().len(), 4, "tried max_attempts times, no more");
}

#[tokio::test]
async fn the_survey_is_delivered_with_its_metadata_and_the_answer_becomes_one_csat_event() {
    let t = TestBus::start().await;
    let receiver = Receiver::default();
    let url = format!("{}/hook", serve(receiver.router()).await);
    let shutdown = CancellationToken::new();
    let task = ChannelRuntime::new(Arc::new(channel(Some(url))), runtime_config(), t.slot(), shutdown.clone()).spawn();
    let conversation = uuid::Uuid::now_v7();
    let mut survey = testkit::csat_request("webhook", "c-7", conversation, "anna");
    survey.to.thread_key = "shop:c-7".into();
    t.send_outbound(&survey).await;
    t.wait_outbound_drained("webhook", Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let seen = receiver.seen.lock().unwrap().clone();
    let delivery: WebhookDelivery = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(delivery.kind, switchboard_core::OutboundKind::System);
    assert_eq!(delivery.metadata.get("csat").map(String::as_str), Some("request"));
    assert_eq!(delivery.metadata.get("csat.conversation"), Some(&conversation.to_string()));
    drop(t);

    let s = Inbound::start().await;
    s.t.store_conversation(conversation, "webhook", "shop:c-7", Some("anna")).await;
    let answer = |score: &str| format!(r#"{{"csat":{{"conversation_id":"{conversation}","score":{score}}}}}"#);
    for bad in ["0", "6", "-1"] {
        let (status, body) = s.signed(&answer(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, body) = s.signed(&answer("4")).await;
    assert_eq!((status, body["duplicate"].as_bool()), (StatusCode::ACCEPTED, Some(false)), "{body}");
    let (status, body) = s.signed(&answer("1")).await;
    assert_eq!((status, body["duplicate"].as_bool()), (StatusCode::ACCEPTED, Some(true)), "only the first counts");
    let unknown = format!(r#"{{"csat":{{"conversation_id":"{}","score":5}}}}"#, uuid::Uuid::now_v7());
    assert_eq!(s.signed(&unknown).await.0, StatusCode::NOT_FOUND);

    let csat = s.t.csat_events().await;
    assert_eq!(csat.len(), 1);
    assert_eq!(csat[0].data["score"], 4);
    assert_eq!(
        (csat[0].conversation_id, csat[0].agent_id.as_deref(), csat[0].channel.as_deref()),
        (Some(conversation), Some("anna"), Some("webhook"))
    );
    assert_eq!(s.stored().await, 0, "an answer is not a message");
    // 3 bad scores and the unknown conversation refused; the answer not routed; the second a duplicate.
    assert_eq!(counted(), counts(1, 1, 4));
}

#[tokio::test]
async fn an_nps_survey_carries_its_kind_and_only_an_nps_answer_on_its_scale_counts_once() {
    use switchboard_core::SurveyKind;
    let t = TestBus::start().await;
    let receiver = Receiver::default();
    let url = format!("{}/hook", serve(receiver.router()).await);
    let shutdown = CancellationToken::new();
    let task = ChannelRuntime::new(Arc::new(channel(Some(url))), runtime_config(), t.slot(), shutdown.clone()).spawn();
    let conversation = uuid::Uuid::now_v7();
    let mut survey = testkit::survey_request(SurveyKind::Nps, "webhook", "c-8", conversation, "anna");
    survey.to.thread_key = "shop:c-8".into();
    t.send_outbound(&survey).await;
    t.wait_outbound_drained("webhook", Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let seen = receiver.seen.lock().unwrap().clone();
    let delivery: WebhookDelivery = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(delivery.metadata.get("survey").map(String::as_str), Some("nps"));
    assert_eq!(delivery.metadata.get("survey.conversation"), Some(&conversation.to_string()));
    drop(t);

    let s = Inbound::start().await;
    s.t.store_surveyed(conversation, "webhook", "shop:c-8", Some("anna"), SurveyKind::Nps).await;
    let answer = |kind: &str, score: &str| {
        format!(r#"{{"survey":{{"conversation_id":"{conversation}","kind":"{kind}","score":{score}}}}}"#)
    };
    for (body, field, reason) in [
        (answer("nps", "11"), "survey.score", "11 is not on the nps scale (0 to 10)"),
        (answer("nps", "-1"), "survey.score", "-1 is not on the nps scale (0 to 10)"),
        (answer("csat", "5"), "survey.kind", "this conversation was asked nps, not csat"),
        (format!(r#"{{"csat":{{"conversation_id":"{conversation}","score":4}}}}"#), "csat", "asked nps, not csat"),
    ] {
        let (status, got) = s.signed(&body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {got}");
        assert_eq!(got["field"], field, "{got}");
        assert!(got["reason"].as_str().is_some_and(|r| r.contains(reason)), "{got}");
    }
    let (status, got) = s.signed(&answer("stars", "5")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown survey: {got}");
    let (status, got) = s.signed(&answer("nps", "9")).await;
    assert_eq!((status, got["duplicate"].as_bool()), (StatusCode::ACCEPTED, Some(false)), "{got}");
    let (status, got) = s.signed(&answer("nps", "0")).await;
    assert_eq!((status, got["duplicate"].as_bool()), (StatusCode::ACCEPTED, Some(true)), "only the first counts");

    let nps = s.t.survey_events(SurveyKind::Nps).await;
    assert_eq!(nps.len(), 1);
    assert_eq!((nps[0].data["score"].as_u64(), nps[0].agent_id.as_deref()), (Some(9), Some("anna")));
    assert!(s.t.csat_events().await.is_empty(), "the refused CSAT answers changed nothing");
    assert_eq!(s.stored().await, 0, "an answer is not a message");
    assert_eq!(counted(), counts(1, 1, 5));
}

/// The secret a source used before the rotation under way.
const OLD_KEY: &[u8] = b"old-key-0123456789abcdef0";

/// A secret rotation: with the new secret current and the old one as `previous_key`, requests
/// signed with either are stored and any other key is refused; deliveries carry one signature per
/// key, so a receiver still on the old secret and one already on the new both accept them.
#[tokio::test]
async fn during_a_secret_rotation_both_secrets_verify_and_deliveries_carry_both_signatures() {
    let t = TestBus::start().await;
    let receiver = Receiver::default();
    let url = format!("{}/hook", serve(receiver.router()).await);
    let source = Source {
        name: "shop".into(),
        key: Arc::from(KEY),
        previous_key: Some(Arc::from(OLD_KEY)),
        outbound_url: Some(url),
    };
    let channel = WebhookChannel::new(WebhookConfig::default(), vec![source]).unwrap();
    let shutdown = CancellationToken::new();
    let runtime = ChannelRuntime::new(Arc::new(channel), runtime_config(), t.slot(), shutdown.clone());
    let base = serve(runtime.routes().unwrap()).await;
    let s = Inbound { t, base, http: reqwest::Client::new() };

    let now = chrono::Utc::now().timestamp();
    let body = |n: u32| format!(r#"{{"message_id":"m-{n}","customer":{{"id":"c-7"}},"text":"hello {n}"}}"#);
    let (status, answer) = s.post("/v1/webhooks/shop", &body(1), "msg_1", now, OLD_KEY).await;
    assert_eq!(status, StatusCode::ACCEPTED, "signed with the previous secret: {answer}");
    let (status, answer) = s.post("/v1/webhooks/shop", &body(2), "msg_2", now, KEY).await;
    assert_eq!(status, StatusCode::ACCEPTED, "signed with the new secret: {answer}");
    let (status, _) = s.post("/v1/webhooks/shop", &body(3), "msg_3", now, b"wrong-key-0123456789abcdef").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "any other key is still refused");
    assert_eq!(s.stored().await, 2);

    let task = runtime.spawn();
    let mut message = testkit::outbound("webhook", "c-7", "Your order ships today");
    message.to.thread_key = "shop:c-7".into();
    s.t.send_outbound(&message).await;
    s.t.wait_outbound_drained("webhook", Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one delivery");
    let (headers, body, _) = &seen[0];
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    assert_eq!(h(signature::SIGNATURE).map(|v| v.split(' ').count()), Some(2), "one signature per key");
    for (who, key) in [("a receiver on the new secret", KEY), ("a receiver still on the old secret", OLD_KEY)] {
        let verdict = signature::verify(
            key,
            h(signature::ID),
            h(signature::TIMESTAMP),
            h(signature::SIGNATURE),
            body,
            chrono::Utc::now().timestamp(),
            300,
        );
        assert_eq!(verdict, Ok(()), "{who} accepts the delivery");
    }
}
