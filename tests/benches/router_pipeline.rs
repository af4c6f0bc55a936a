//! The whole inbound pipeline through the real daemon: a signed webhook in, the router's offer
//! POSTed to the agent's helpdesk endpoint. Against raw JetStream on the same server in the run:
//! 1. raw publish and consume concurrently (the bus alone carrying messages end to end);
//! 2. steady load: `BENCH_STEADY_RATE` messages per second (500) for `BENCH_STEADY_SECS` (6 s),
//!    latency from sending the webhook to the offer arriving at the helpdesk, p50/p90/p99/max;
//! 3. maximum sustained rate: `BENCH_MAX_MESSAGES` (3000) sent `BENCH_CONCURRENCY` (32) at a time,
//!    from the first send to the last offer received.
//!
//! Every message opens a conversation (a new customer) and is offered at once (agents with room),
//! so each one costs: webhook verify + store, router journal append, routing, events, the offer
//! and the record, and the agent endpoint's signed POST. Run: `make bench` (or `cargo bench -p
//! switchboard-e2e --bench router_pipeline`). Writes `bench-results/router_pipeline.json`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use async_nats::jetstream;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::json;
use switchboard_channel_webhook::{AgentEndpointConfig, signature};
use switchboard_testkit::NatsServer;
use tokio_util::sync::CancellationToken;

mod common;
use common::*;

const AGENTS: usize = 20;

/// When each message's offer reached the helpdesk, by message index.
type Arrivals = Arc<Mutex<BTreeMap<usize, Instant>>>;

fn var(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().ok().filter(|n| *n > 0).with_context(|| format!("{name}={v:?}: not a count")),
        Err(_) => Ok(default),
    }
}

/// The helpdesk: records when the offer for message `i` (its history says `bench {i}:`) arrived.
async fn helpdesk(arrivals: Arrivals) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/agent",
        axum::routing::post(move |body: String| {
            let arrivals = arrivals.clone();
            async move {
                let now = Instant::now();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let text = v["history"][0]["text"].as_str().unwrap_or_default();
                if v["type"] == "offer"
                    && let Some(i) = text.strip_prefix("bench ").and_then(|t| t.split(':').next()?.parse().ok())
                {
                    arrivals.lock().expect("lock").entry(i).or_insert(now);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/agent", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

struct Pipeline {
    http: reqwest::Client,
    endpoint: String,
    key: Vec<u8>,
}

impl Pipeline {
    /// Sends message `i` (a new customer); returns when it was sent. Panics unless answered 202.
    async fn send(&self, i: usize) -> anyhow::Result<Instant> {
        let body = serde_json::to_vec(&json!({
            "message_id": format!("m-{i}"),
            "customer": { "id": format!("c-{i}") },
            "text": format!("bench {i}: where is my order? it should have arrived yesterday"),
        }))?;
        let id = format!("msg_{i}");
        let ts = chrono::Utc::now().timestamp();
        let sent = Instant::now();
        let r = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signature::ID, &id)
            .header(signature::TIMESTAMP, ts.to_string())
            .header(signature::SIGNATURE, signature::sign(&self.key, &id, ts, &body))
            .body(body)
            .send()
            .await?;
        ensure!(r.status() == reqwest::StatusCode::ACCEPTED, "message {i}: {}", r.status());
        Ok(sent)
    }
}

async fn wait_all(arrivals: &Arrivals, range: std::ops::Range<usize>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = arrivals.lock().expect("lock").range(range.clone()).count();
        if done == range.len() {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "only {done} of {} offers arrived within 120 s", range.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let wall = Instant::now();
    let rate = var("BENCH_STEADY_RATE", 500)?;
    let secs = var("BENCH_STEADY_SECS", 6)?;
    let max_n = var("BENCH_MAX_MESSAGES", 3000)?;
    let concurrency = var("BENCH_CONCURRENCY", 32)?;
    let server = NatsServer::start();

    // 1. Raw JetStream end to end on the same server.
    let client = async_nats::connect(server.url()).await?;
    let js = jetstream::new(client.clone());
    let bench = bench_stream(&js).await?;
    let consumer = pull_consumer(&bench, "e2e").await?;
    let start = Instant::now();
    let (p, c) = tokio::join!(publish_async(&js, "bench.e2e", max_n * 4), consume(&consumer, &client, max_n * 4));
    p?;
    c?;
    let raw_rate = (max_n * 4) as f64 / start.elapsed().as_secs_f64();
    js.delete_stream("BENCH").await?;

    // The daemon with the router and one helpdesk for all agents.
    let arrivals: Arrivals = Arc::default();
    let helpdesk_url = helpdesk(arrivals.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (mut config, secret_file, key) = daemon_config(&server.url(), dir.path())?;
    let agents: Vec<_> = (0..AGENTS)
        .map(|a| {
            json!({ "id": format!("a{a}"), "teams": ["support"], "tiers": ["L1"], "status": "online",
                         "default_capacity": 100_000, "max_total": 100_000 })
        })
        .collect();
    config.router.enabled = true;
    config.routing = serde_json::from_value(json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 3600 } },
        "agents": agents,
    }))?;
    for a in 0..AGENTS {
        let endpoint =
            AgentEndpointConfig { url: helpdesk_url.clone(), secret_env: None, secret_file: Some(secret_file.clone()) };
        config.channels.webhook.agents.insert(format!("a{a}"), endpoint);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(switchboard::daemon::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
        ensure!(Instant::now() < deadline, "daemon not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pipeline = Arc::new(Pipeline { http, endpoint: format!("{base}/v1/webhooks/bench"), key });

    // 2. Steady load.
    let steady = rate * secs;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = Vec::with_capacity(steady);
    for i in 0..steady {
        tick.tick().await;
        let p = pipeline.clone();
        sends.push(tokio::spawn(async move { p.send(i).await }));
    }
    let mut sent_at = Vec::with_capacity(steady);
    for s in sends {
        sent_at.push(s.await??);
    }
    wait_all(&arrivals, 0..steady).await?;
    let mut latency = Histogram::<u64>::new(3)?;
    {
        let arrived = arrivals.lock().expect("lock");
        for (i, sent) in sent_at.iter().enumerate() {
            latency.record(arrived[&i].duration_since(*sent).as_micros() as u64)?;
        }
    }

    // 3. Maximum sustained rate.
    let start = Instant::now();
    let p = pipeline.clone();
    futures::stream::iter(steady..steady + max_n)
        .map(|i| {
            let p = p.clone();
            async move { p.send(i).await }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_all(&arrivals, steady..steady + max_n).await?;
    let max_rate = max_n as f64 / start.elapsed().as_secs_f64();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), daemon).await.context("daemon did not stop")???;

    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let metric = |name, value, unit, baseline| Metric { name, value, unit, baseline };
    let metrics = [
        metric("steady_rate", rate as f64, "msgs/s", None),
        metric("steady_messages", steady as f64, "count", None),
        metric("offer_latency_p50", ms(0.50), "ms", None),
        metric("offer_latency_p90", ms(0.90), "ms", None),
        metric("offer_latency_p99", ms(0.99), "ms", None),
        metric("offer_latency_max", latency.max() as f64 / 1000.0, "ms", None),
        metric("raw_js_end_to_end_rate", raw_rate, "msgs/s", None),
        metric("pipeline_max_rate", max_rate, "msgs/s", Some(raw_rate)),
        metric("pipeline_vs_raw_end_to_end", max_rate / raw_rate, "ratio", Some(raw_rate)),
    ];
    print_table(&metrics);
    let path = write_json("router_pipeline", &metrics)?;
    println!("\nwrote {} (wall time {:.1} s)", path.display(), wall.elapsed().as_secs_f64());
    Ok(())
}
