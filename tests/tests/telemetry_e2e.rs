//! OpenTelemetry across processes: an adapter process (webhook channel) and a router process,
//! both exporting to an OTLP/HTTP endpoint this test runs, with the W3C trace context carried in
//! NATS headers. One customer message is one trace: provider in → router decision (offer) →
//! agent delivery → the agent's accept and reply → router decisions → customer out, with spans
//! from both processes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::json;
use switchboard_channel_webhook::{decode_secret, signature};
use switchboard_e2e::faults::cluster::{ADMIN_TOKEN, Cluster, DESK_TOKEN, Role, Settings};
use switchboard_e2e::{Receiver, SECRET};

const WAIT: Duration = Duration::from_secs(30);

/// One exported span: its trace, name and the process that sent it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    name: String,
    instance: String,
}

/// An OTLP/HTTP traces endpoint (protobuf), keeping every span received.
async fn collector() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                for resource in request.resource_spans {
                    let instance = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.instance.id")
                        .and_then(|a| a.value.as_ref())
                        .map(|v| format!("{:?}", v.value))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let trace = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                            sink.lock().unwrap().push(Span { trace, name: span.name, instance: instance.clone() });
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_message_is_one_trace_across_the_adapter_and_the_router() {
    let (endpoint, spans) = collector().await;
    let shop = Receiver::start("/shop").await;
    let desk = Receiver::start("/desk/ann").await;
    let settings = Settings {
        sources: BTreeMap::from([("shop".to_string(), shop.url.clone())]),
        env: vec![
            ("SWITCHBOARD__TELEMETRY__ENABLED".into(), "true".into()),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".into(), endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        ],
        ..Settings::default()
    };
    let roles = vec![Role::new("adapter", false, true, false), Role::new("router", true, false, false)];
    let cluster = Cluster::start(roles, &settings).await;
    let (adapter, http) = (&cluster.daemons[0].base, reqwest::Client::new());

    let agent = json!({
        "name": "Ann", "teams": ["support"], "tiers": ["L1"], "status": "online",
        "endpoints": { "webhook": { "url": desk.url, "secret": SECRET } }
    });
    let deadline = Instant::now() + WAIT;
    loop {
        let put = http.put(format!("{adapter}/v1/agents/ann")).bearer_auth(ADMIN_TOKEN).json(&agent).send().await;
        if put.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "agent ann could not be defined");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let body =
        r#"{"message_id":"m-1","customer":{"id":"c-1","name":"Ada"},"thread_id":"t-1","text":"Where is my parcel?"}"#;
    let ts = chrono::Utc::now().timestamp();
    let key = decode_secret(SECRET).unwrap();
    let posted = http
        .post(format!("{adapter}/v1/webhooks/shop"))
        .header("content-type", "application/json")
        .header(signature::ID, "evt-1")
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(&key, "evt-1", ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);

    let offer = desk.wait_for("the offer at the helpdesk", WAIT, |v| v["type"] == "offer").await;
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    let (headers, _) = desk.received().into_iter().next().unwrap();
    let delivered_in = headers.get("traceparent").map(|v| v.to_str().unwrap().to_string());
    assert!(delivered_in.is_some(), "the helpdesk's POST carries the trace context");
    // The helpdesk answers without sending the context back: the router joins its conversation's trace.
    for action in [json!({ "type": "accept" }), json!({ "type": "reply", "text": "It ships today." })] {
        let command = json!({ "agent_id": "ann", "conversation_id": conversation, "action": action });
        let resp =
            http.post(format!("{adapter}/v1/agent/commands")).bearer_auth(DESK_TOKEN).json(&command).send().await;
        assert_eq!(resp.unwrap().status(), 200);
    }
    shop.wait_for("the reply at the shop", WAIT, |v| v["text"] == "It ships today.").await;

    // The customer's trace: the one the helpdesk was told, with every step, from both processes.
    let trace = delivered_in.unwrap().split('-').nth(1).unwrap().to_string();
    let wanted = ["provider in", "router input", "router decision", "agent delivery", "customer out"];
    let deadline = Instant::now() + WAIT;
    let (names, instances) = loop {
        let of_trace: Vec<Span> = spans.lock().unwrap().iter().filter(|s| s.trace == trace).cloned().collect();
        let names: BTreeMap<String, usize> = of_trace.iter().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.name.clone()).or_default() += 1;
            m
        });
        let instances: BTreeSet<String> = of_trace.iter().map(|s| s.instance.clone()).collect();
        if wanted.iter().all(|w| names.contains_key(*w)) && names["router decision"] >= 3 {
            break (names, instances);
        }
        let all: BTreeSet<(String, String)> =
            spans.lock().unwrap().iter().map(|s| (s.trace.clone(), s.name.clone())).collect();
        assert!(Instant::now() < deadline, "trace {trace} has {names:?}; every span: {all:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("TRACE {trace}: {names:?} from {} processes", instances.len());
    assert_eq!(instances.len(), 2, "spans from the adapter and the router: {instances:?}");
}
