//! `sms_adapter.py` (nats-py, no SDK) as a child process against a real NATS with the contract's
//! streams and a toy SMS gateway on loopback: what it stores must be a valid `envelope/1`, what it
//! consumes must reach the gateway, and what fails must end in the DLQ with the contract's headers.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use switchboard_adapter::testkit::{self, TestBus, wait_for};
use switchboard_core::contract::{headers, streams, subjects};
use switchboard_core::{Contract, Envelope, Event, OutboundMessage};

const CHANNEL: &str = "sms-py";
const TOKEN: &str = "py-test-token-0123456789";
const WAIT: Duration = Duration::from_secs(20);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `python3` from the PATH with nats-py from `tools/python`; fails loudly when either is missing.
fn python() -> Command {
    let pythonpath = workspace().join("tools/python");
    let probe = Command::new("python3")
        .args(["-c", "import nats.js.api"])
        .env("PYTHONPATH", &pythonpath)
        .output()
        .unwrap_or_else(|e| panic!("python3 not found on PATH ({e}): install Python 3.8+ and run `make tools`"));
    assert!(
        probe.status.success(),
        "nats-py is not installed in {}: run `make tools` (it pip-installs the pinned nats-py there)\n{}",
        pythonpath.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    let mut command = Command::new("python3");
    command.env("PYTHONPATH", pythonpath);
    command
}

/// The adapter process; killed on drop so a failing test leaves nothing behind.
struct PyAdapter {
    child: Child,
    http: String,
}

impl PyAdapter {
    fn start(nats_url: &str, gateway_url: &str) -> PyAdapter {
        let mut child = python()
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("sms_adapter.py"))
            .env("NATS_URL", nats_url)
            .env("SB_CHANNEL", CHANNEL)
            .env("SMS_LISTEN", "127.0.0.1:0")
            .env("SMS_GATEWAY_URL", gateway_url)
            .env("SMS_TOKEN", TOKEN)
            .env("SMS_MAX_ATTEMPTS", "3")
            .env("SMS_BACKOFF_MS", "20")
            .env("SMS_BACKOFF_MAX_MS", "50")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sms_adapter.py");
        // Read its "ready http=<addr>" line on a thread, so a hung child cannot hang the test.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("ready http=") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(WAIT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("sms_adapter.py did not report ready within {WAIT:?} (its stderr is above)");
            }
        };
        PyAdapter { child, http: format!("http://{addr}") }
    }

    /// SIGTERM, then it must exit 0 on its own (consumer stopped, connection drained).
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "sms_adapter.py exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "sms_adapter.py did not stop within {WAIT:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PyAdapter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The toy gateway: answers each number's requests with its scripted statuses, then `200`.
#[derive(Clone, Default)]
struct Gateway {
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl Gateway {
    fn received_for(&self, to: &str) -> Vec<(HeaderMap, Value)> {
        self.received.lock().unwrap().iter().filter(|(_, b)| b["to"] == to).cloned().collect()
    }
}

async fn take(State(gw): State<Gateway>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let to = body["to"].as_str().unwrap_or_default().to_string();
    let status = gw.script.lock().unwrap().get_mut(&to).and_then(VecDeque::pop_front).unwrap_or(200);
    gw.received.lock().unwrap().push((headers, body));
    (StatusCode::from_u16(status).unwrap(), Json(json!({ "id": "gw-out" })))
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

async fn post_sms(url: &str, token: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_python_adapter_keeps_the_bus_contract() {
    let bus = TestBus::start().await;
    let gateway = Gateway::default();
    let app = axum::Router::new().route("/messages", axum::routing::post(take)).with_state(gateway.clone());
    let gateway_url = format!("http://{}", serve(app).await);
    let adapter = PyAdapter::start(&bus.server.url(), &gateway_url);
    let inbound_url = format!("{}/v1/sms/inbound", adapter.http);

    // In: stored once, as a valid envelope/1 with the contract's headers.
    let sms = json!({ "id": "gw-in-1", "from": "+4915112345678", "to": "+4930123456", "text": "Where is my order?" });
    let (status, first) = post_sms(&inbound_url, TOKEN, sms.clone()).await;
    assert_eq!((status, &first["duplicate"]), (200, &json!(false)), "{first}");
    let (status, again) = post_sms(&inbound_url, TOKEN, sms).await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)), "{again}");
    let (status, _) =
        post_sms(&inbound_url, "wrong", json!({ "id": "x", "from": "+4915112345678", "text": "x" })).await;
    assert_eq!(status, 401);
    let (status, bad) = post_sms(&inbound_url, TOKEN, json!({ "id": "gw-in-2", "from": "bob", "text": "x" })).await;
    assert_eq!((status, &bad["field"]), (400, &json!("from")), "{bad}");

    let stored = bus.stored(streams::INBOUND, &subjects::inbound(CHANNEL)).await;
    assert_eq!(stored.len(), 1, "a repeated provider id is stored once");
    let (stored_headers, payload) = &stored[0];
    assert_eq!(stored_headers.get(headers::SCHEMA).map(|v| v.as_str()), Some("envelope/1"));
    assert_eq!(stored_headers.get(headers::MSG_ID).map(|v| v.as_str()), Some("sms-py:gw-in-1"));
    let envelope = Envelope::from_json(payload).expect("the Python adapter stores a valid envelope/1");
    assert_eq!(envelope.id.to_string(), first["id"].as_str().unwrap());
    assert_eq!(envelope.channel, CHANNEL);
    assert_eq!(envelope.provider_message_id, "gw-in-1");
    assert_eq!((envelope.customer.id.as_str(), envelope.text.as_str()), ("+4915112345678", "Where is my order?"));
    assert_eq!(envelope.metadata.get("sms.to").map(String::as_str), Some("+4930123456"));

    // Out: delivered, retried on a 503, dead-lettered on a 400 and when the gateway stays down.
    let (ok, flaky, refused, down) = ("+4915100000001", "+4915100000002", "+4915100000003", "+4915100000004");
    {
        let mut script = gateway.script.lock().unwrap();
        script.insert(flaky.into(), [503].into());
        script.insert(refused.into(), [400].into());
        script.insert(down.into(), [503, 503, 503, 503].into());
    }
    let reply = testkit::outbound(CHANNEL, ok, "Your parcel left today.");
    let refused_msg = testkit::outbound(CHANNEL, refused, "no such number");
    for message in [&reply, &testkit::outbound(CHANNEL, flaky, "second try"), &refused_msg] {
        bus.send_outbound(message).await;
    }
    bus.send_outbound(&testkit::outbound(CHANNEL, down, "never")).await;

    wait_for("two dead letters", WAIT, || async { bus.dead_letters(CHANNEL).await.len() == 2 }).await;
    bus.wait_outbound_drained(CHANNEL, WAIT).await;
    let delivered = gateway.received_for(ok);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let (got_headers, body) = &delivered[0];
    assert_eq!(body["text"], "Your parcel left today.");
    let header = |h: &HeaderMap, name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    assert_eq!(header(got_headers, "authorization"), Some(format!("Bearer {TOKEN}")));
    assert_eq!(header(got_headers, "idempotency-key"), Some(reply.id.to_string()));
    assert_eq!(gateway.received_for(flaky).len(), 2, "a 503 is retried, then the message is taken");
    assert_eq!(gateway.received_for(refused).len(), 1, "a 400 is final at once");
    assert_eq!(gateway.received_for(down).len(), 3, "given up after SMS_MAX_ATTEMPTS");

    let letters = bus.dead_letters(CHANNEL).await;
    let by_to: HashMap<String, usize> = letters
        .iter()
        .enumerate()
        .map(|(i, (_, p))| (OutboundMessage::from_json(p).expect("the original outbound/1").to.customer_id, i))
        .collect();
    let dlq = |to: &str, name: &str| header_of(&letters[by_to[to]].0, name);
    assert_eq!(dlq(refused, headers::DLQ_REASON), "HTTP 400 from the SMS gateway");
    assert_eq!(dlq(refused, headers::DLQ_ATTEMPTS), "1");
    assert_eq!(dlq(refused, headers::DLQ_COMPONENT), CHANNEL);
    assert_eq!(dlq(refused, headers::DLQ_SUBJECT), "sb.out.sms-py");
    assert_eq!(dlq(refused, headers::SCHEMA), "outbound/1");
    assert!(dlq(refused, headers::DLQ_STREAM_SEQ).parse::<u64>().is_ok());
    assert_eq!(dlq(down, headers::DLQ_REASON), "HTTP 503 from the SMS gateway");
    assert_eq!(dlq(down, headers::DLQ_ATTEMPTS), "3");

    let failed = bus.stored(streams::EVENTS, &subjects::event("delivery_failed")).await;
    let events: Vec<Event> =
        failed.iter().map(|(_, p)| Event::from_json(p).expect("the Python adapter stores a valid event/1")).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().any(|e| e.conversation_id == Some(refused_msg.conversation_id)));

    adapter.terminate();
}

fn header_of(h: &switchboard_bus::async_nats::HeaderMap, name: &str) -> String {
    h.get(name).map(|v| v.as_str().to_string()).unwrap_or_default()
}
