//! The whole pipeline through the real daemon, both ways, against raw JetStream on the same
//! server in the same run:
//! 1. raw publish and consume concurrently (the bus alone carrying messages end to end);
//! 2. steady load: `BENCH_STEADY_RATE` messages per second (500) for `BENCH_STEADY_SECS` (6 s),
//!    latency from sending the webhook to the offer arriving at the helpdesk, p50/p90/p99/p99.9;
//! 3. maximum sustained rate: `BENCH_MAX_MESSAGES` (3000) sent `BENCH_CONCURRENCY` (32) at a time,
//!    from the first send to the last offer received, with the CPU time it took per message in
//!    this process (the daemon plus the bench's client and receivers) and in nats-server;
//! 4. the reply path on those conversations: the agent accepts and replies through the agent API
//!    and the reply is POSTed to the customer's webhook. First `BENCH_REPLY_RATE` (100) answers a
//!    second for `BENCH_REPLY_SECS` (3 s): latency from sending the reply command to the customer
//!    receiving it, with its stages (the accept's and the reply's round trips through the agent
//!    API and the router, then the reply's delivery to the customer's webhook); then
//!    `BENCH_REPLIES` (1000) more `BENCH_CONCURRENCY` at a time: replies per second, and the
//!    latency at that rate;
//! 5. the bus's work: stream writes and consumer deliveries per customer message on the offer
//!    path (read before any answer), and per answer on the reply path;
//! 6. the maximum rate again (`BENCH_SYNCED_MESSAGES`, 1000) with a daemon on a second
//!    nats-server that fsyncs every write (`sync_interval: always`, production durability),
//!    against raw JetStream on that server.
//!
//! The steady run's latencies are printed with the machine's 1-minute load average at its end:
//! on a busy machine they measure the machine, not the pipeline.
//!
//! Every message opens a conversation (a new customer) and is offered at once (agents with room),
//! so each one costs: webhook verify + store, the router's journal append (shared by the inputs
//! the leader takes in one step), routing, events, the offer and the record, and the agent
//! endpoint's signed POST. A reply costs two agent commands (accept, reply) each answered with
//! the router's verdict, their journal appends, events, the outbound message and the customer
//! webhook's signed POST. Run: `make bench` (or `cargo bench -p switchboard-e2e --bench
//! router_pipeline`). Writes `bench-results/router_pipeline.json`.

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

/// Who was offered message `i`'s conversation, and which conversation it is.
type Offered = Arc<Mutex<BTreeMap<usize, (String, String)>>>;

fn var(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().ok().filter(|n| *n > 0).with_context(|| format!("{name}={v:?}: not a count")),
        Err(_) => Ok(default),
    }
}

/// The helpdesk: records when the offer for message `i` (its history says `bench {i}:`) arrived,
/// to whom and for which conversation.
async fn helpdesk(arrivals: Arrivals, offered: Offered) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/agent",
        axum::routing::post(move |body: String| {
            let (arrivals, offered) = (arrivals.clone(), offered.clone());
            async move {
                let now = Instant::now();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let text = v["history"][0]["text"].as_str().unwrap_or_default();
                if v["type"] == "offer"
                    && let Some(i) = text.strip_prefix("bench ").and_then(|t| t.split(':').next()?.parse().ok())
                {
                    arrivals.lock().expect("lock").entry(i).or_insert(now);
                    let who =
                        (v["agent_id"].as_str().unwrap_or_default(), v["conversation_id"].as_str().unwrap_or_default());
                    offered.lock().expect("lock").insert(i, (who.0.to_string(), who.1.to_string()));
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    serve(app, "/agent").await
}

/// The customer's webhook receiver: records when the reply to message `i` (`reply {i}`) arrived.
async fn customer(arrivals: Arrivals) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/customer",
        axum::routing::post(move |body: String| {
            let arrivals = arrivals.clone();
            async move {
                let now = Instant::now();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let text = v["text"].as_str().unwrap_or_default();
                if let Some(i) = text.strip_prefix("reply ").and_then(|t| t.split(':').next()?.parse().ok()) {
                    arrivals.lock().expect("lock").entry(i).or_insert(now);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    serve(app, "/customer").await
}

async fn serve(app: axum::Router, path: &str) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{path}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

struct Pipeline {
    http: reqwest::Client,
    endpoint: String,
    key: Vec<u8>,
    /// The agent API's commands endpoint.
    commands: String,
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

    /// Sends an agent command with the agent's token; fails unless the router carried it out.
    async fn command(&self, agent: &str, conversation: &str, action: serde_json::Value) -> anyhow::Result<()> {
        let body = json!({ "conversation_id": conversation, "action": action });
        let r = self.http.post(&self.commands).bearer_auth(token(agent)).json(&body).send().await?;
        let status = r.status();
        ensure!(status.is_success(), "{agent} {action}: {status} {}", r.text().await.unwrap_or_default());
        Ok(())
    }

    /// Accepts message `i`'s conversation as its agent, then replies: when the accept was sent,
    /// when the reply was sent, and when the agent API answered that the router took the reply.
    async fn answer(&self, i: usize, agent: &str, conversation: &str) -> anyhow::Result<Answered> {
        let accept = Instant::now();
        self.command(agent, conversation, json!({ "type": "accept" })).await?;
        let sent = Instant::now();
        let text = format!("reply {i}: it left our warehouse this morning");
        self.command(agent, conversation, json!({ "type": "reply", "text": text })).await?;
        Ok(Answered { accept, sent, taken: Instant::now() })
    }
}

/// The stages of one answer on the reply path.
struct Answered {
    /// The accept command sent to the agent API.
    accept: Instant,
    /// The reply command sent (the accept was answered).
    sent: Instant,
    /// The agent API answered the reply: the router journaled it and published its effects.
    taken: Instant,
}

/// The machine's load average over the last minute (`/proc/loadavg`), to read latencies by.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

impl Pipeline {}

/// CPU time used so far, in ms: this process (the daemon, the bench's client, helpdesk and
/// customer receiver) and its nats-server children, from `/proc` (Linux; zero elsewhere).
fn cpu_ms() -> (f64, f64) {
    // `/proc/<pid>/stat`: after the command's `)`, field 2 (from 0) is the parent, 11 and 12
    // are user and system time in clock ticks (USER_HZ, 100 on Linux).
    let read = |stat: &str| -> Option<(String, u32, f64)> {
        let (head, tail) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let f: Vec<&str> = tail.split_whitespace().collect();
        let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((comm, f.get(1)?.parse().ok()?, ticks * 10.0))
    };
    let me = std::process::id();
    let own = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| read(&s)).map_or(0.0, |r| r.2);
    let nats = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read(&std::fs::read_to_string(e.path().join("stat")).ok()?))
        .filter(|(comm, parent, _)| *parent == me && comm == "nats-server")
        .map(|r| r.2)
        .sum();
    (own, nats)
}

/// Agent `agent`'s API token.
fn token(agent: &str) -> String {
    format!("bench-token-{agent}-of-the-router-pipeline")
}

/// A second nats-server that fsyncs every write before acking it (`sync_interval: always`), to
/// show what that setting costs the raw bus; killed when dropped.
struct SyncedServer {
    child: std::process::Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl SyncedServer {
    fn start() -> anyhow::Result<SyncedServer> {
        let store = tempfile::tempdir()?;
        let port = switchboard_testkit::free_port();
        let conf = store.path().join("nats.conf");
        let dir = store.path().join("js");
        std::fs::write(&conf, format!("jetstream {{\n  store_dir: {dir:?}\n  sync_interval: always\n}}\n"))?;
        let child = std::process::Command::new(NatsServer::binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let server = SyncedServer { child, port, _store: store };
        switchboard_testkit::wait_until("the synced nats-server", Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", server.port)).is_ok()
        });
        Ok(server)
    }
}

impl SyncedServer {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for SyncedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raw JetStream end to end: `n` messages published and consumed concurrently; messages/s.
async fn raw_end_to_end(url: &str, n: usize) -> anyhow::Result<f64> {
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client.clone());
    let bench = bench_stream(&js).await?;
    let consumer = pull_consumer(&bench, "e2e").await?;
    let start = Instant::now();
    let (p, c) = tokio::join!(publish_async(&js, "bench.e2e", n), consume(&consumer, &client, n));
    p?;
    c?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    js.delete_stream("BENCH").await?;
    Ok(rate)
}

/// What the bus did for the daemon: every stream's writes (its last sequence: KV keeps only the
/// latest value, but each put was a write) and every consumer's deliveries, by stream.
async fn bus_work(url: &str) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let js = jetstream::new(async_nats::connect(url).await?);
    let mut out = Vec::new();
    let mut streams = js.streams();
    while let Some(info) = streams.next().await {
        let info = info?;
        let stream = js.get_stream(&info.config.name).await?;
        let mut delivered = 0;
        let mut consumers = stream.consumers();
        while let Some(c) = consumers.next().await {
            delivered += c?.delivered.consumer_sequence;
        }
        out.push((info.config.name.clone(), info.state.last_sequence, delivered));
    }
    out.sort();
    Ok(out)
}

async fn wait_all(arrivals: &Arrivals, range: std::ops::Range<usize>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = arrivals.lock().expect("lock").range(range.clone()).count();
        if done == range.len() {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "only {done} of {} arrived within 120 s", range.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The daemon with the router, its agents on one helpdesk and the bench's customer webhook.
struct Daemon {
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon on the NATS server at `url` and waits until it is ready.
    async fn start(url: &str, helpdesk_url: &str, customer_url: &str) -> anyhow::Result<Daemon> {
        let dir = tempfile::tempdir()?;
        let (mut config, secret_file, key) = daemon_config(url, dir.path())?;
        config.channels.webhook.sources.get_mut("bench").context("the bench source")?.outbound_url =
            Some(customer_url.to_string());
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
            let endpoint = AgentEndpointConfig {
                url: helpdesk_url.to_string(),
                secret_env: None,
                secret_file: Some(secret_file.clone()),
            };
            config.channels.webhook.agents.insert(format!("a{a}"), endpoint);
            let token_file = dir.path().join(format!("a{a}.token"));
            std::fs::write(&token_file, token(&format!("a{a}")))?;
            let api = switchboard::config::ApiTokenConfig {
                token_file: Some(token_file),
                agent: Some(format!("a{a}")),
                ..Default::default()
            };
            config.api.tokens.insert(format!("a{a}"), api);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchboard::daemon::run(config, listener, shutdown.clone()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            if task.is_finished() {
                anyhow::bail!("the daemon stopped at start: {:?}", task.await);
            }
            if Instant::now() >= deadline {
                let why = match http.get(format!("{base}/readyz")).send().await {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                anyhow::bail!("daemon not ready within 30 s: {why}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pipeline = Arc::new(Pipeline {
            http,
            endpoint: format!("{base}/v1/webhooks/bench"),
            key,
            commands: format!("{base}/v1/agent/commands"),
        });
        Ok(Daemon { pipeline, shutdown, task, _dir: dir })
    }

    /// Stops the daemon and waits for it.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task).await.context("daemon did not stop")???;
        Ok(())
    }
}

/// Sends messages `range` `concurrency` at a time and waits for every offer: messages/s.
async fn measure_max_rate(
    pipeline: &Arc<Pipeline>,
    arrivals: &Arrivals,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    futures::stream::iter(range.clone())
        .map(|i| {
            let p = pipeline.clone();
            async move { p.send(i).await }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_all(arrivals, range.clone()).await?;
    Ok(range.len() as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let wall = Instant::now();
    let rate = var("BENCH_STEADY_RATE", 500)?;
    let secs = var("BENCH_STEADY_SECS", 6)?;
    let max_n = var("BENCH_MAX_MESSAGES", 3000)?;
    let concurrency = var("BENCH_CONCURRENCY", 32)?;
    let replies = var("BENCH_REPLIES", 1000)?.min(max_n);
    let server = NatsServer::start();

    // 1. Raw JetStream end to end on the same server, and on one that fsyncs every write.
    let raw_rate = raw_end_to_end(&server.url(), max_n * 4).await?;
    let synced = SyncedServer::start()?;
    let synced_rate = raw_end_to_end(&synced.url(), max_n).await?;

    // The daemon with the router and one helpdesk for all agents.
    let (arrivals, offered, answered): (Arrivals, Offered, Arrivals) = Default::default();
    let helpdesk_url = helpdesk(arrivals.clone(), offered.clone()).await?;
    let customer_url = customer(answered.clone()).await?;
    let daemon = Daemon::start(&server.url(), &helpdesk_url, &customer_url).await?;
    let pipeline = daemon.pipeline.clone();

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
    // Read at the end of the steady run: how busy the machine was while the latencies were taken.
    let steady_load = load_average();
    let mut latency = Histogram::<u64>::new(3)?;
    {
        let arrived = arrivals.lock().expect("lock");
        for (i, sent) in sent_at.iter().enumerate() {
            latency.record(arrived[&i].duration_since(*sent).as_micros() as u64)?;
        }
    }

    // 3. Maximum sustained rate, and the CPU it took per message (this process and nats-server).
    let cpu_before = cpu_ms();
    let max_rate = measure_max_rate(&pipeline, &arrivals, steady..steady + max_n, concurrency).await?;
    let cpu_after = cpu_ms();
    let cpu_per_message = |f: fn((f64, f64)) -> f64| (f(cpu_after) - f(cpu_before)) * 1000.0 / max_n as f64;
    let p = pipeline.clone();

    // What the offer path alone wrote: every message above was offered, none answered yet.
    let offer_work = bus_work(&server.url()).await?;

    // 4. The reply path, on conversations of the maximum-rate run: first paced at
    //    `BENCH_REPLY_RATE` answers a second (its latencies, like the offer path's, at a steady
    //    load), then `BENCH_CONCURRENCY` at a time (its maximum rate).
    let to_answer: Vec<(usize, (String, String))> =
        offered.lock().expect("lock").range(steady..steady + max_n).map(|(i, who)| (*i, who.clone())).collect();
    let reply_rate_paced = var("BENCH_REPLY_RATE", 100)?;
    let paced_n = (reply_rate_paced * var("BENCH_REPLY_SECS", 3)?).min(max_n.saturating_sub(replies));
    let (paced, at_max) = to_answer.split_at(paced_n);
    let at_max = &at_max[..replies.min(at_max.len())];
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / reply_rate_paced as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut answers = Vec::with_capacity(paced.len());
    for (i, (agent, conversation)) in paced.iter().cloned() {
        tick.tick().await;
        let p = pipeline.clone();
        answers.push(tokio::spawn(async move { p.answer(i, &agent, &conversation).await.map(|sent| (i, sent)) }));
    }
    let mut paced_sent = Vec::with_capacity(answers.len());
    for a in answers {
        paced_sent.push(a.await??);
    }
    let paced_range = paced.first().map_or(0, |f| f.0)..paced.last().map_or(0, |l| l.0 + 1);
    wait_all(&answered, paced_range).await?;
    let start = Instant::now();
    let reply_sent = futures::stream::iter(at_max.to_vec())
        .map(|(i, (agent, conversation))| {
            let p = p.clone();
            async move { p.answer(i, &agent, &conversation).await.map(|sent| (i, sent)) }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let max_range = at_max.first().map_or(0, |f| f.0)..at_max.last().map_or(0, |l| l.0 + 1);
    wait_all(&answered, max_range).await?;
    let reply_rate = at_max.len() as f64 / start.elapsed().as_secs_f64();
    // The reply path's stages at the paced rate: the accept's round trip through the agent API
    // and the router, the reply's, and from the router taking the reply to the customer's
    // webhook receiving it.
    let mut reply_latency = Histogram::<u64>::new(3)?;
    let mut accept_stage = Histogram::<u64>::new(3)?;
    let mut reply_stage = Histogram::<u64>::new(3)?;
    let mut delivery_stage = Histogram::<u64>::new(3)?;
    let mut reply_latency_at_max = Histogram::<u64>::new(3)?;
    {
        let arrived = answered.lock().expect("lock");
        for (i, a) in &paced_sent {
            reply_latency.record(arrived[i].duration_since(a.sent).as_micros() as u64)?;
            accept_stage.record(a.sent.duration_since(a.accept).as_micros() as u64)?;
            reply_stage.record(a.taken.duration_since(a.sent).as_micros() as u64)?;
            delivery_stage.record(arrived[i].saturating_duration_since(a.taken).as_micros() as u64)?;
        }
        for (i, a) in &reply_sent {
            reply_latency_at_max.record(arrived[i].duration_since(a.sent).as_micros() as u64)?;
        }
    }
    let replies = paced_sent.len() + reply_sent.len();
    let work = bus_work(&server.url()).await?;
    daemon.stop().await?;

    // 6. The maximum rate again on the server that fsyncs every write, against its own raw rate.
    let synced_n = var("BENCH_SYNCED_MESSAGES", 1000)?;
    let synced_daemon = Daemon::start(&synced.url(), &helpdesk_url, &customer_url).await?;
    let first = 10_000_000;
    let synced_max_rate =
        measure_max_rate(&synced_daemon.pipeline, &arrivals, first..first + synced_n, concurrency).await?;
    synced_daemon.stop().await?;
    drop(synced);

    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let reply_ms = |q: f64| reply_latency.value_at_quantile(q) as f64 / 1000.0;
    let reply_max_ms = |q: f64| reply_latency_at_max.value_at_quantile(q) as f64 / 1000.0;
    let stage_ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let metric = |name, value, unit, baseline| Metric { name, value, unit, baseline };
    let metrics = [
        metric("steady_rate", rate as f64, "msgs/s", None),
        metric("steady_messages", steady as f64, "count", None),
        metric("offer_latency_p50", ms(0.50), "ms", None),
        metric("offer_latency_p90", ms(0.90), "ms", None),
        metric("offer_latency_p99", ms(0.99), "ms", None),
        metric("offer_latency_p99_9", ms(0.999), "ms", None),
        metric("offer_latency_max", latency.max() as f64 / 1000.0, "ms", None),
        metric("steady_load_average_1m", steady_load, "load", None),
        metric("raw_js_end_to_end_rate", raw_rate, "msgs/s", None),
        metric("raw_js_sync_always_rate", synced_rate, "msgs/s", Some(raw_rate)),
        metric("pipeline_max_rate", max_rate, "msgs/s", Some(raw_rate)),
        metric("pipeline_vs_raw_end_to_end", max_rate / raw_rate, "ratio", Some(raw_rate)),
        metric("max_rate_cpu_per_message_bench_process", cpu_per_message(|c| c.0), "us", None),
        metric("max_rate_cpu_per_message_nats_server", cpu_per_message(|c| c.1), "us", None),
        metric("pipeline_sync_always_max_rate", synced_max_rate, "msgs/s", Some(synced_rate)),
        metric("pipeline_vs_raw_sync_always", synced_max_rate / synced_rate, "ratio", Some(synced_rate)),
        metric("replies", replies as f64, "count", None),
        metric("reply_steady_rate", reply_rate_paced as f64, "msgs/s", None),
        metric("reply_latency_p50", reply_ms(0.50), "ms", None),
        metric("reply_latency_p99", reply_ms(0.99), "ms", None),
        metric("reply_latency_p99_9", reply_ms(0.999), "ms", None),
        metric("reply_latency_at_max_rate_p50", reply_max_ms(0.50), "ms", None),
        metric("reply_latency_at_max_rate_p99", reply_max_ms(0.99), "ms", None),
        metric("reply_stage_accept_p50", stage_ms(&accept_stage, 0.50), "ms", None),
        metric("reply_stage_accept_p99", stage_ms(&accept_stage, 0.99), "ms", None),
        metric("reply_stage_command_p50", stage_ms(&reply_stage, 0.50), "ms", None),
        metric("reply_stage_command_p99", stage_ms(&reply_stage, 0.99), "ms", None),
        metric("reply_stage_delivery_p50", stage_ms(&delivery_stage, 0.50), "ms", None),
        metric("reply_stage_delivery_p99", stage_ms(&delivery_stage, 0.99), "ms", None),
        metric("reply_path_rate", reply_rate, "msgs/s", Some(raw_rate)),
        metric("reply_path_vs_raw_end_to_end", reply_rate / raw_rate, "ratio", Some(raw_rate)),
        metric("reply_path_vs_offer_path", reply_rate / max_rate, "ratio", Some(max_rate)),
    ];
    // Where the bus's share of the time goes: how many stored writes and consumer deliveries each
    // customer message cost on the offer path (its offer), and each answer on the reply path,
    // against 1 + 1 for the raw run.
    let messages = (steady + max_n) as f64;
    let sum = |work: &[(String, u64, u64)]| -> (u64, u64) {
        work.iter().fold((0, 0), |(w, d), (_, sw, sd)| (w + sw, d + sd))
    };
    let (offer_writes, offer_deliveries) = sum(&offer_work);
    let (all_writes, all_deliveries) = sum(&work);
    let per_reply = |all: u64, offer: u64| all.saturating_sub(offer) as f64 / replies.max(1) as f64;
    let mut metrics: Vec<Metric> = metrics.into();
    metrics.push(metric("bus_writes_per_message", offer_writes as f64 / messages, "writes", Some(1.0)));
    metrics.push(metric("bus_deliveries_per_message", offer_deliveries as f64 / messages, "deliveries", Some(1.0)));
    metrics.push(metric("bus_writes_per_reply", per_reply(all_writes, offer_writes), "writes", Some(1.0)));
    metrics.push(metric(
        "bus_deliveries_per_reply",
        per_reply(all_deliveries, offer_deliveries),
        "deliveries",
        Some(1.0),
    ));
    print_table(&metrics);
    println!("\nbus work per customer message on the offer path ({messages} messages), and per answer ({replies}):");
    println!("{:<28} {:>8} {:>10} {:>12} {:>12}", "stream", "writes", "deliveries", "reply writes", "reply deliv.");
    for (name, w, d) in &work {
        let (ow, od) = offer_work.iter().find(|(n, _, _)| n == name).map_or((0, 0), |(_, w, d)| (*w, *d));
        println!(
            "{name:<28} {:>8.2} {:>10.2} {:>12.2} {:>12.2}",
            ow as f64 / messages,
            od as f64 / messages,
            per_reply(*w, ow),
            per_reply(*d, od)
        );
    }
    println!(
        "{:<28} {:>8.2} {:>10.2} {:>12.2} {:>12.2}",
        "all",
        offer_writes as f64 / messages,
        offer_deliveries as f64 / messages,
        per_reply(all_writes, offer_writes),
        per_reply(all_deliveries, offer_deliveries)
    );
    let path = write_json("router_pipeline", &metrics)?;
    println!("\nwrote {} (wall time {:.1} s)", path.display(), wall.elapsed().as_secs_f64());
    Ok(())
}
