//! The SMS channel under the SDK's runtime, against a real NATS server (the SDK's `testkit`) and a
//! toy SMS gateway on loopback HTTP that records what it was sent and answers as scripted.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use switchboard_adapter::testkit::{self, TestBus, wait_for};
use switchboard_adapter::{RateLimitConfig, RuntimeConfig};
use switchboard_bus::Backoff;
use switchboard_core::contract::{headers, streams, subjects};
use switchboard_core::{Contract, Event};
use switchboard_example_sms::gateway::OutboundSms;
use switchboard_example_sms::{CHANNEL, SmsChannel, SmsConfig};

const TOKEN: &str = "test-token-0123456789";
const WAIT: Duration = Duration::from_secs(15);

/// One request the gateway received.
#[derive(Debug, Clone)]
struct Received {
    authorization: Option<String>,
    idempotency_key: Option<String>,
    sms: OutboundSms,
}

/// The toy gateway: answers each number's requests with its scripted statuses, then `200`.
#[derive(Clone, Default)]
struct Gateway {
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Gateway {
    async fn start(&self) -> String {
        let app = axum::Router::new().route("/messages", axum::routing::post(take)).with_state(self.clone());
        format!("http://{}", serve(app).await)
    }

    fn script(&self, to: &str, statuses: &[u16]) {
        self.script.lock().unwrap().insert(to.into(), statuses.iter().copied().collect());
    }

    fn received_for(&self, to: &str) -> Vec<Received> {
        self.received.lock().unwrap().iter().filter(|r| r.sms.to == to).cloned().collect()
    }
}

async fn take(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Json(sms): Json<OutboundSms>,
) -> (StatusCode, Json<Value>) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let status = gw.script.lock().unwrap().get_mut(&sms.to).and_then(VecDeque::pop_front).unwrap_or(200);
    let id = format!("gw-{}", sms.reference);
    gw.received.lock().unwrap().push(Received {
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        sms,
    });
    (StatusCode::from_u16(status).unwrap(), Json(json!({ "id": id })))
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

fn runtime() -> RuntimeConfig {
    RuntimeConfig {
        max_attempts: 3,
        // Given up after the attempts alone, not after the default ten-minute window.
        retry_for_secs: 0,
        backoff: Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(50) },
        rate_limit: RateLimitConfig { per_minute: 600, burst: 100 },
        ..RuntimeConfig::default()
    }
}

/// A bus, the channel running on it, its inbound URL, and the gateway it sends through.
async fn start() -> (TestBus, testkit::RunningChannel, String, Gateway) {
    let bus = TestBus::start().await;
    let gateway = Gateway::default();
    let config = SmsConfig {
        enabled: true,
        gateway_url: gateway.start().await,
        token_env: Some("unused".into()),
        ..SmsConfig::default()
    };
    let channel = SmsChannel::new(&config, TOKEN.into()).expect("channel");
    let running = bus.run_channel(channel, runtime());
    let routes = running.routes.clone().expect("the SMS channel serves HTTP routes");
    let inbound_url = format!("http://{}/v1/sms/inbound", serve(routes).await);
    (bus, running, inbound_url, gateway)
}

async fn post_sms(url: &str, token: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_sms_is_stored_once_as_a_valid_envelope() {
    let (bus, running, url, _gateway) = start().await;
    let sms = json!({ "id": "gw-in-1", "from": "+4915112345678", "to": "+4930123456", "text": "My order is late" });

    let (status, first) = post_sms(&url, TOKEN, sms.clone()).await;
    assert_eq!((status, &first["duplicate"]), (200, &json!(false)), "{first}");
    // The gateway retries (it did not hear us): the same id is stored once, and still `200`.
    let (status, again) = post_sms(&url, TOKEN, sms).await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)), "{again}");

    let (status, _) = post_sms(&url, "wrong", json!({ "id": "gw-in-2", "from": "+4915112345678", "text": "x" })).await;
    assert_eq!(status, 401);
    let (status, bad) = post_sms(&url, TOKEN, json!({ "id": "gw-in-3", "from": "alice", "text": "x" })).await;
    assert_eq!((status, &bad["field"]), (400, &json!("from")), "{bad}");
    let (status, empty) =
        post_sms(&url, TOKEN, json!({ "id": "gw-in-4", "from": "+4915112345678", "text": " " })).await;
    assert_eq!((status, &empty["field"]), (400, &json!("text")), "{empty}");

    let stored = bus.stored(streams::INBOUND, &subjects::inbound(CHANNEL)).await;
    assert_eq!(stored.len(), 1, "only the accepted SMS is stored, once");
    let (headers_of, payload) = &stored[0];
    assert_eq!(headers_of.get(headers::SCHEMA).map(|v| v.as_str()), Some("envelope/1"));
    assert_eq!(headers_of.get(headers::MSG_ID).map(|v| v.as_str()), Some("sms:gw-in-1"));
    let envelope = switchboard_core::Envelope::from_json(payload).expect("a valid envelope/1");
    assert_eq!(envelope.id.to_string(), first["id"].as_str().unwrap());
    assert_eq!((envelope.customer.id.as_str(), envelope.text.as_str()), ("+4915112345678", "My order is late"));
    running.stop().await;
}

#[tokio::test]
async fn a_reply_reaches_the_gateway_once_and_is_acked() {
    let (bus, running, _url, gateway) = start().await;
    let reply = testkit::outbound(CHANNEL, "+4915100000001", "Your parcel left today.");
    bus.send_outbound(&reply).await;

    bus.wait_outbound_drained(CHANNEL, WAIT).await;
    let got = gateway.received_for("+4915100000001");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].sms.text, "Your parcel left today.");
    assert_eq!(got[0].authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(got[0].idempotency_key.as_deref(), Some(reply.id.to_string().as_str()));
    assert!(bus.dead_letters(CHANNEL).await.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_hiccup_is_retried_and_a_refusal_ends_in_the_dead_letter_queue() {
    let (bus, running, _url, gateway) = start().await;
    let flaky = "+4915100000002";
    let refused = "+4915100000003";
    let down = "+4915100000004";
    gateway.script(flaky, &[503]);
    gateway.script(refused, &[400]);
    gateway.script(down, &[503, 503, 503, 503]);
    let refused_msg = testkit::outbound(CHANNEL, refused, "no such number");
    for message in [
        testkit::outbound(CHANNEL, flaky, "second try"),
        refused_msg.clone(),
        testkit::outbound(CHANNEL, down, "never"),
    ] {
        bus.send_outbound(&message).await;
    }

    wait_for("two dead letters", WAIT, || async { bus.dead_letters(CHANNEL).await.len() == 2 }).await;
    bus.wait_outbound_drained(CHANNEL, WAIT).await;
    // Retried once, then taken: two requests, both with the same idempotency key.
    let tries = gateway.received_for(flaky);
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0].idempotency_key, tries[1].idempotency_key);
    // A 400 is final at once; a gateway that stays down is given up after max_attempts.
    assert_eq!(gateway.received_for(refused).len(), 1);
    assert_eq!(gateway.received_for(down).len(), 3);

    let letters = bus.dead_letters(CHANNEL).await;
    let header = |i: usize, name: &str| letters[i].0.get(name).map(|v| v.as_str().to_string()).unwrap_or_default();
    let by_to: HashMap<String, usize> = letters
        .iter()
        .enumerate()
        .map(|(i, (_, payload))| (switchboard_core::OutboundMessage::from_json(payload).unwrap().to.customer_id, i))
        .collect();
    let (r, d) = (by_to[refused], by_to[down]);
    assert_eq!(header(r, headers::DLQ_REASON), "HTTP 400 from the SMS gateway");
    assert_eq!(header(r, headers::DLQ_ATTEMPTS), "1");
    assert_eq!(header(r, headers::DLQ_COMPONENT), CHANNEL);
    assert_eq!(header(r, headers::DLQ_SUBJECT), "sb.out.sms");
    assert_eq!(header(d, headers::DLQ_REASON), "HTTP 503 from the SMS gateway");
    assert_eq!(header(d, headers::DLQ_ATTEMPTS), "3");

    // The conversation shows the failure too.
    let failed = bus.stored(streams::EVENTS, &subjects::event("delivery_failed")).await;
    let events: Vec<Event> = failed.iter().map(|(_, p)| Event::from_json(p).unwrap()).collect();
    assert!(events.iter().any(|e| e.conversation_id == Some(refused_msg.conversation_id)), "{events:?}");
    assert_eq!(events.len(), 2);
    running.stop().await;
}
