//! Webhook inbound throughput and latency through the real daemon, against raw JetStream
//! baselines measured on the same NATS server (file storage) in the same run:
//! 1. raw async-nats: publish `BENCH_RAW_MESSAGES` 500-byte messages with async acks (256
//!    outstanding), *then* pull-consume them with explicit acks, so that each rate is measured
//!    alone; then publish and consume as many again *concurrently* for the end-to-end rate;
//! 2. raw publish with a synchronous ack each, `BENCH_CONCURRENCY` at a time: the fairer baseline,
//!    since the daemon answers a webhook only once JetStream stored its envelope;
//! 3. `BENCH_WEBHOOK_REQUESTS` signed `POST /v1/webhooks/bench` to the daemon run in-process,
//!    `BENCH_CONCURRENCY` in flight, each of which must be answered `202`.
//!
//! Run: `make bench` (= `cargo bench -p switchboard-e2e --bench webhook_inbound`); the defaults are
//! 50000, 10000 and 32. Client, daemon and NATS share the cores: compare runs on one machine, do
//! not read capacity into it. Prints a table and writes `bench-results/webhook_inbound.json` under
//! `$CARGO_TARGET_DIR`, else the workspace's `target`.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use async_nats::jetstream;
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use switchboard_channel_webhook::signature;
use switchboard_testkit::NatsServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod common;
use common::*;

/// The in-process daemon's task.
type Daemon = JoinHandle<anyhow::Result<()>>;

/// Sizes of one run.
struct Sizes {
    /// Messages per raw async phase.
    raw: usize,
    /// Webhook requests, also the message count of the synchronous-ack baseline.
    webhook: usize,
    /// Requests (or synchronous publishes) in flight.
    concurrency: usize,
}

impl Sizes {
    /// Reads `BENCH_*` overrides; the defaults finish in well under a minute on 2 cores.
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str, default: usize| match std::env::var(name) {
            Ok(v) => v.trim().parse().ok().filter(|n| *n > 0).with_context(|| format!("{name}={v:?}: not a count")),
            Err(_) => Ok(default),
        };
        Ok(Self {
            raw: var("BENCH_RAW_MESSAGES", 50_000)?,
            webhook: var("BENCH_WEBHOOK_REQUESTS", 10_000)?,
            concurrency: var("BENCH_CONCURRENCY", 32)?,
        })
    }
}

/// Raw JetStream rates, in messages per second.
struct RawRates {
    /// Async-ack publish alone.
    publish: f64,
    /// Pull consume with explicit acks alone.
    consume: f64,
    /// Publish and consume running concurrently, first publish to last ack.
    end_to_end: f64,
    /// Synchronous-ack publish, `concurrency` publishers.
    sync_publish: f64,
}

/// Runs every phase on one NATS server, prints the table and writes the JSON file.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let wall = Instant::now();
    let sizes = Sizes::from_env()?;
    let server = NatsServer::start();
    let raw = raw_baselines(&server.url(), &sizes).await.context("raw JetStream baselines")?;
    let (elapsed, latency_us) = webhook_inbound(&server.url(), &sizes).await.context("webhook inbound")?;

    let rate = sizes.webhook as f64 / elapsed.as_secs_f64();
    let ms = |q: f64| latency_us.value_at_quantile(q) as f64 / 1000.0;
    let metric = |name, value, unit, baseline| Metric { name, value, unit, baseline };
    let metrics = [
        metric("raw_messages", sizes.raw as f64, "count", None),
        metric("webhook_requests", sizes.webhook as f64, "count", None),
        metric("concurrency", sizes.concurrency as f64, "count", None),
        metric("raw_js_publish_async_rate", raw.publish, "msgs/s", None),
        metric("raw_js_consume_rate", raw.consume, "msgs/s", None),
        metric("raw_js_end_to_end_rate", raw.end_to_end, "msgs/s", None),
        metric("raw_js_publish_sync_rate", raw.sync_publish, "msgs/s", None),
        metric("webhook_inbound_rate", rate, "msgs/s", Some(raw.publish)),
        metric("webhook_inbound_vs_async_publish", rate / raw.publish, "ratio", Some(raw.publish)),
        metric("webhook_inbound_vs_sync_publish", rate / raw.sync_publish, "ratio", Some(raw.sync_publish)),
        metric("webhook_latency_p50", ms(0.50), "ms", None),
        metric("webhook_latency_p90", ms(0.90), "ms", None),
        metric("webhook_latency_p99", ms(0.99), "ms", None),
        metric("webhook_latency_max", latency_us.max() as f64 / 1000.0, "ms", None),
    ];
    print_table(&metrics);
    let path = write_json("webhook_inbound", &metrics)?;
    println!("\nwrote {} (wall time {:.1} s)", path.display(), wall.elapsed().as_secs_f64());
    Ok(())
}

/// Measures the raw JetStream baselines on a `BENCH` stream, deleted afterwards so that the
/// webhook phase does not share the store with it.
async fn raw_baselines(url: &str, sizes: &Sizes) -> anyhow::Result<RawRates> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client.clone());
    let bench = bench_stream(&js).await?;
    let n = sizes.raw;

    let published = publish_async(&js, "bench.split", n).await?;
    let consumed = consume(&pull_consumer(&bench, "split").await?, &client, n).await?;

    let both = pull_consumer(&bench, "e2e").await?;
    let start = Instant::now();
    let (published_e2e, consumed_e2e) = tokio::join!(publish_async(&js, "bench.e2e", n), consume(&both, &client, n));
    published_e2e?;
    consumed_e2e?;
    let end_to_end = start.elapsed();

    let sync = publish_sync(&js, sizes).await?;
    js.delete_stream("BENCH").await?;
    let per_sec = |count: usize, d: Duration| count as f64 / d.as_secs_f64();
    Ok(RawRates {
        publish: per_sec(n, published),
        consume: per_sec(n, consumed),
        end_to_end: per_sec(n, end_to_end),
        sync_publish: per_sec(sizes.webhook, sync),
    })
}

/// Publishes as many messages as there are webhook requests, from as many publishers as requests
/// in flight, each awaiting its ack before its next publish.
async fn publish_sync(js: &jetstream::Context, sizes: &Sizes) -> anyhow::Result<Duration> {
    let start = Instant::now();
    futures::stream::iter(0..sizes.webhook)
        .map(|_| async {
            js.publish("bench.sync", RAW_PAYLOAD.into()).await?.await?;
            anyhow::Ok(())
        })
        .buffer_unordered(sizes.concurrency)
        .try_collect::<()>()
        .await?;
    Ok(start.elapsed())
}

/// Runs the daemon in-process with webhook source `bench`, POSTs the signed requests, checks that
/// SB_INBOUND stored each one, and stops the daemon. Returns the time from the first request to the
/// last response and the per-request latencies in µs.
async fn webhook_inbound(url: &str, sizes: &Sizes) -> anyhow::Result<(Duration, Histogram<u64>)> {
    let dir = tempfile::tempdir()?;
    let (config, _, key) = daemon_config(url, dir.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let mut daemon = tokio::spawn(switchboard::daemon::run(config, listener, shutdown.clone()));

    // A timeout, so that a daemon that stopped accepting fails the run instead of hanging it.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    wait_ready(&http, &base, &mut daemon).await?;

    let endpoint = format!("{base}/v1/webhooks/bench");
    let text = "Benchmark message body, roughly the length of a real customer question. ".repeat(4);
    let start = Instant::now();
    let (latency_us, rejected) = futures::stream::iter(0..sizes.webhook)
        .map(|i| post_signed(&http, &endpoint, &key, i, &text))
        .buffer_unordered(sizes.concurrency)
        .try_fold((Histogram::<u64>::new(3)?, Vec::new()), |(mut hist, mut rejected), (us, refusal)| async move {
            hist.record(us)?;
            rejected.extend(refusal);
            Ok((hist, rejected))
        })
        .await?;
    let elapsed = start.elapsed();
    if let Some(first) = rejected.first() {
        panic!("{} of {} requests were not answered 202; the first: {first}", rejected.len(), sizes.webhook);
    }

    let js = jetstream::new(async_nats::connect(url).await?);
    let stored = js.get_stream("SB_INBOUND").await?.info().await?.state.messages;
    ensure!(stored == sizes.webhook as u64, "SB_INBOUND holds {stored} messages, expected {}", sizes.webhook);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), daemon).await.context("daemon did not stop within 30 s")???;
    Ok((elapsed, latency_us))
}

/// Polls `/readyz` until it answers 200, failing fast if the daemon exits and after 30 s.
async fn wait_ready(http: &reqwest::Client, base: &str, daemon: &mut Daemon) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if daemon.is_finished() {
            daemon.await?.context("daemon failed to start")?;
            anyhow::bail!("daemon stopped before it was ready");
        }
        let status = http.get(format!("{base}/readyz")).send().await.map(|r| r.status());
        if matches!(status, Ok(reqwest::StatusCode::OK)) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "daemon not ready within 30 s: last answer {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// POSTs message `i`, signed; returns its latency in µs and, unless answered 202, the status and body.
async fn post_signed(
    http: &reqwest::Client,
    endpoint: &str,
    key: &[u8],
    i: usize,
    text: &str,
) -> anyhow::Result<(u64, Option<String>)> {
    let body = json!({
        "message_id": format!("m-{i}"),
        "customer": { "id": format!("c-{}", i % 1000), "name": "Bench" },
        "text": text,
    });
    let body = serde_json::to_vec(&body)?;
    let id = format!("msg_bench_{i}");
    let ts = chrono::Utc::now().timestamp();
    let start = Instant::now();
    let response = http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::ID, &id)
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(key, &id, ts, &body))
        .body(body)
        .send()
        .await?;
    let status = response.status();
    // Reading the body to its end is part of the request and hands the connection back to the pool.
    let answer = response.text().await?;
    let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let refusal = (status != reqwest::StatusCode::ACCEPTED).then(|| format!("request {i}: {status}: {answer}"));
    Ok((us, refusal))
}
