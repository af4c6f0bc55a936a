//! Support KPIs live: the daemon folds the event stream as conversations happen and serves it at
//! `/metrics`; the numbers equal a recomputation from the stored events, and a restart resumes
//! from the snapshot without counting anything twice.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_core::Event;
use switchboard_core::contract::streams;
use switchboard_e2e::{Receiver, SECRET, TestDaemon};
use switchboard_testkit::NatsServer;

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "alice-token-for-metrics";

/// Counter and histogram-count sums by family, plus the fold's position.
async fn scrape(daemon: &TestDaemon) -> (BTreeMap<String, f64>, String) {
    let text = daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    (sums(&text), text)
}

fn sums(text: &str) -> BTreeMap<String, f64> {
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("the exposition parses");
    let mut sums = BTreeMap::new();
    for s in scrape.samples {
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => continue,
        };
        *sums.entry(s.metric).or_insert(0.0) += v;
    }
    sums
}

async fn stored_events(daemon: &TestDaemon) -> Vec<Event> {
    let client = switchboard_bus::async_nats::connect(daemon.nats.url()).await.unwrap();
    let js = switchboard_bus::async_nats::jetstream::new(client);
    let stream = js.get_stream(streams::EVENTS).await.unwrap();
    let last = stream.cached_info().state.last_sequence;
    let consumer = stream
        .create_consumer(pull::OrderedConfig { deliver_policy: DeliverPolicy::All, ..Default::default() })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut events = Vec::new();
    while let Some(Ok(m)) = messages.next().await {
        let seq = m.info().unwrap().stream_sequence;
        events.extend(switchboard_e2e::events_in(&m));
        if seq >= last {
            break;
        }
    }
    events
}

/// Waits until `/metrics` has folded every stored event and `family` reached `value`.
async fn wait_metric(daemon: &TestDaemon, family: &str, value: f64) -> BTreeMap<String, f64> {
    let deadline = std::time::Instant::now() + WAIT;
    let client = switchboard_bus::async_nats::connect(daemon.nats.url()).await.unwrap();
    let mut stream = switchboard_bus::async_nats::jetstream::new(client).get_stream(streams::EVENTS).await.unwrap();
    loop {
        let (sums, text) = scrape(daemon).await;
        let last = stream.info().await.unwrap().state.last_sequence as f64;
        if sums.get(family) == Some(&value) && sums.get("switchboard_metrics_events_sequence") == Some(&last) {
            return sums;
        }
        assert!(std::time::Instant::now() < deadline, "{family} never reached {value}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn handle(daemon: &TestDaemon, helpdesk: &Receiver, n: usize) {
    let body =
        json!({ "message_id": format!("m-{n}"), "customer": { "id": format!("u-{n}") }, "text": "Where is my order?" });
    assert_eq!(daemon.post_signed(&format!("evt_{n}"), &body.to_string()).await.0, 202);
    let offer =
        helpdesk.wait_for("the offer", WAIT, |v| v["type"] == "offer" && v["customer"]["id"] == format!("u-{n}")).await;
    let conversation = offer["conversation_id"].as_str().unwrap().to_string();
    for action in
        [json!({ "type": "accept" }), json!({ "type": "reply", "text": "On its way" }), json!({ "type": "resolve" })]
    {
        let command = json!({ "conversation_id": conversation, "action": action }).to_string();
        let (code, why) = daemon.api(TOKEN, "POST", "/v1/agent/commands", Some(&command)).await;
        assert_eq!(code, 200, "{action}: {why}");
    }
}

#[tokio::test]
async fn kpis_are_served_live_equal_a_recomputation_and_survive_a_restart() {
    let helpdesk = Receiver::start("/alice").await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, secret_file) = (dir.path().join("alice.token"), dir.path().join("alice.secret"));
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::write(&secret_file, SECRET).unwrap();
    let url = helpdesk.url.clone();
    let edit = move |c: &mut switchboard::Config| {
        c.router.enabled = true;
        c.metrics.snapshot_secs = 1;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 120 } },
            "agents": [ { "id": "alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
        }))
        .unwrap();
        c.channels.webhook.agents.insert(
            "alice".into(),
            AgentEndpointConfig { url: url.clone(), secret_env: None, secret_file: Some(secret_file.clone()) },
        );
        c.api.tokens.insert(
            "alice".into(),
            ApiTokenConfig { token_file: Some(token_file.clone()), agent: Some("alice".into()), ..Default::default() },
        );
    };
    let daemon = TestDaemon::start(None, edit.clone()).await;
    handle(&daemon, &helpdesk, 1).await;
    let live = wait_metric(&daemon, "switchboard_conversations_resolved_total", 1.0).await;
    assert_eq!(live["switchboard_first_response_seconds"], 1.0, "one first response: {live:?}");
    assert_eq!(live["switchboard_conversations_opened_total"], 1.0);

    // The live fold equals a fold of the stored events from scratch.
    let events = stored_events(&daemon).await;
    let recomputed = switchboard_metrics::Metrics::from_events(&events);
    let text = switchboard_metrics::exposition(&recomputed, Some(chrono::Utc::now().timestamp_millis())).unwrap();
    let expected = sums(&text);
    for (family, value) in &expected {
        if family.ends_with("_total") || family.ends_with("_seconds") {
            assert_eq!(live.get(family), Some(value), "{family}");
        }
    }

    // Restart on the same NATS state: nothing counted twice, and counting goes on.
    let last = live["switchboard_metrics_events_sequence"];
    let nats: NatsServer = daemon.stop_keeping_nats().await;
    // The shutdown saved the fold with its position: the restart resumes there.
    let client = switchboard_bus::async_nats::connect(nats.url()).await.unwrap();
    let store = switchboard_bus::async_nats::jetstream::new(client)
        .get_object_store(switchboard_core::contract::METRICS_STORE)
        .await
        .unwrap();
    let mut snapshot = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut store.get("kpis").await.unwrap(), &mut snapshot).await.unwrap();
    let snapshot: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    assert_eq!(snapshot["last_seq"].as_f64(), Some(last));
    let daemon = TestDaemon::start_on(nats, None, edit).await;
    let after = wait_metric(&daemon, "switchboard_conversations_resolved_total", 1.0).await;
    assert_eq!(after["switchboard_conversations_opened_total"], 1.0, "{after:?}");
    handle(&daemon, &helpdesk, 2).await;
    let after = wait_metric(&daemon, "switchboard_conversations_resolved_total", 2.0).await;
    assert_eq!(after["switchboard_conversations_opened_total"], 2.0);
    assert_eq!(after["switchboard_first_response_seconds"], 2.0);
    daemon.stop().await;
}
