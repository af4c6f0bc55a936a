//! What the end-to-end benchmarks share: raw JetStream baselines, the signing key, and the
//! table and JSON output (`target/bench-results/<bench>.json`).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use serde_json::json;

/// Async publish acks kept outstanding in the raw baseline.
pub const ACK_WINDOW: usize = 256;
/// Raw message payload: about the size of a serialized webhook envelope.
pub const RAW_PAYLOAD: &[u8] = &[b'x'; 500];
/// Longest wait for one consumed message before the run is declared stuck.
pub const STALL: Duration = Duration::from_secs(15);

/// One reported figure: a table row and an object of the JSON file.
pub struct Metric {
    /// Stable name, for tools that compare runs.
    pub name: &'static str,
    /// The measured value.
    pub value: f64,
    /// `msgs/s`, `ms`, `ratio` or `count`.
    pub unit: &'static str,
    /// The baseline value it is compared with (for a ratio, the rate it was divided by).
    pub baseline: Option<f64>,
}

/// A durable explicit-ack pull consumer `name` on `bench.<name>`.
pub async fn pull_consumer(bench: &stream::Stream, name: &str) -> anyhow::Result<consumer::PullConsumer> {
    let config = consumer::pull::Config {
        durable_name: Some(name.into()),
        filter_subject: format!("bench.{name}"),
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    Ok(bench.create_consumer(config).await?)
}

/// Publishes `n` messages with up to [`ACK_WINDOW`] acks outstanding, awaiting the oldest when the
/// window is full; returns the time until the last ack.
pub async fn publish_async(js: &jetstream::Context, subject: &'static str, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut window = VecDeque::with_capacity(ACK_WINDOW);
    for _ in 0..n {
        if window.len() == ACK_WINDOW
            && let Some(ack) = window.pop_front()
        {
            ack.await?;
        }
        window.push_back(js.publish(subject, RAW_PAYLOAD.into()).await?);
    }
    for ack in window {
        ack.await?;
    }
    Ok(start.elapsed())
}

/// Pulls and acks `n` messages; returns the time until the acks were flushed to the server.
pub async fn consume(
    consumer: &consumer::PullConsumer,
    client: &async_nats::Client,
    n: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut messages = consumer.messages().await?;
    for got in 0..n {
        let message = tokio::time::timeout(STALL, messages.next())
            .await
            .with_context(|| format!("no message for {STALL:?} after {got} of {n}"))?
            .context("consumer stream ended")??;
        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
    }
    // `ack` only queues the ack; without the flush the last ones would leave after the clock stops.
    client.flush().await?;
    Ok(start.elapsed())
}

/// 32 bytes for the signing secret. `RandomState` is seeded from the OS, which is plenty for a
/// throwaway benchmark key and spares a dependency on `rand`.
pub fn random_key() -> Vec<u8> {
    (0..4u64).flat_map(|i| RandomState::new().hash_one(i).to_le_bytes()).collect()
}

/// Prints the metrics as an aligned table.
pub fn print_table(metrics: &[Metric]) {
    println!("\n{:<34} {:>14} {:<7} {:>14}", "metric", "value", "unit", "baseline");
    println!("{}", "-".repeat(72));
    for m in metrics {
        let baseline = m.baseline.map(|b| format!("{b:.1}")).unwrap_or_default();
        let decimals = if m.unit == "ratio" {
            3
        } else if m.unit == "count" {
            0
        } else {
            1
        };
        let value = format!("{:.decimals$}", m.value);
        println!("{:<34} {value:>14} {:<7} {baseline:>14}", m.name, m.unit);
    }
}

/// Writes the metrics to `bench-results/<bench>.json` in the target directory.
pub fn write_json(bench: &str, metrics: &[Metric]) -> anyhow::Result<PathBuf> {
    let workspace = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    // A relative CARGO_TARGET_DIR is taken as relative to the workspace, where `make bench` runs.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), |d| workspace.join(d));
    let dir = target.join("bench-results");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let rows: Vec<_> = metrics
        .iter()
        .map(|m| {
            let mut row = json!({ "metric": m.name, "value": m.value, "unit": m.unit });
            if let Some(baseline) = m.baseline {
                row["baseline"] = json!(baseline);
            }
            row
        })
        .collect();
    let path = dir.join(format!("{bench}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Creates the raw baselines' `BENCH` stream (file storage, `bench.>`); delete it after use.
pub async fn bench_stream(js: &jetstream::Context) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    };
    Ok(js.create_stream(config).await?)
}

/// A daemon configuration on NATS `url` with webhook source `bench` whose secret is written to
/// `dir`, and no per-sender limit in the way; returns it with the secret's file and HMAC key.
pub fn daemon_config(url: &str, dir: &Path) -> anyhow::Result<(switchboard::Config, PathBuf, Vec<u8>)> {
    use base64::Engine;
    let secret_file = dir.join("bench.secret");
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(random_key()));
    std::fs::write(&secret_file, &secret)?;
    let key = switchboard_channel_webhook::decode_secret(&secret).map_err(anyhow::Error::msg)?;
    let mut config = switchboard::Config::default();
    config.nats.url = url.into();
    let source = switchboard_channel_webhook::SourceConfig {
        secret_file: Some(secret_file.clone()),
        ..switchboard_channel_webhook::SourceConfig::default()
    };
    config.channels.webhook.sources.insert("bench".into(), source);
    // Inbound alone unless a benchmark gives the router a routing configuration and turns it on.
    config.router.enabled = false;
    // Benchmarks repeat senders; the default per-sender limit would answer 429.
    config.channels.webhook.runtime.rate_limit.per_minute = 10_000_000;
    config.channels.webhook.runtime.rate_limit.burst = 1_000_000;
    Ok((config, secret_file, key))
}
