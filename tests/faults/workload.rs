//! One run's traffic: the desk and shops, the agents defined through the admin API, the customers
//! writing, and the end of the run (everything answered, the bus quiet, the histories checked).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use switchboard_bus::async_nats;
use switchboard_bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use tokio::task::JoinSet;

use super::checker::{Checker, Report};
use super::cluster::{ADMIN_TOKEN, Cluster, Settings};
use super::customers::{Env, Shop, ShopMode, webchat_customer, webchat_sweep, webhook_customer};
use super::desk::{Desk, DeskBehaviour, tagged};
use crate::SECRET;

/// How much traffic a run sends.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// Customers writing through webhook source `shop`.
    pub webhook: usize,
    /// Web chat visitors.
    pub webchat: usize,
    /// Customers of the failing sources `dead-fail` (500) and `dead-gone` (410), one message each.
    pub dead: usize,
    /// Messages per customer, each written after the answer to the previous one.
    pub messages: usize,
    /// Customers start spread over this long, so traffic is steady rather than one burst.
    pub spread: Duration,
}

impl Traffic {
    /// Messages this traffic sends (customers' messages; as many answers come back).
    pub fn total(&self) -> usize {
        (self.webhook + self.webchat) * self.messages + self.dead
    }
}

/// How long a run with `traffic` may take to be answered in full, faults included.
pub fn budget(traffic: &Traffic) -> Duration {
    traffic.spread + Duration::from_secs(90 + traffic.total() as u64 / 10)
}

/// One run.
pub struct Workload {
    /// Customer messages reaching agents.
    pub inbound: Arc<Checker>,
    /// Agents' answers reaching customers.
    pub replies: Arc<Checker>,
    /// Answers to customers of failing sources, "delivered" when they are in the dead letters.
    pub dead: Arc<Checker>,
    /// The helpdesk.
    pub desk: Desk,
    /// The shops' reply receivers.
    pub shop: Shop,
    env: Env,
    customers: JoinSet<Option<(Option<String>, u64)>>,
}

impl Workload {
    /// Starts the receivers; `timeout` bounds the whole run's waiting.
    pub async fn new(behaviour: DeskBehaviour, timeout: Duration) -> Workload {
        let inbound = Arc::new(Checker::new("customer->agent"));
        let replies = Arc::new(Checker::new("agent->customer"));
        let dead = Arc::new(Checker::new("dead letters"));
        let desk = Desk::start(behaviour, inbound.clone(), replies.clone(), dead.clone()).await;
        let modes = BTreeMap::from([
            ("shop".to_string(), ShopMode::Ok),
            ("dead-fail".to_string(), ShopMode::Fail),
            ("dead-gone".to_string(), ShopMode::Gone),
        ]);
        let shop = Shop::start(modes, replies.clone()).await;
        let deadline = Instant::now() + timeout;
        desk.set_deadline(deadline);
        let env = Env {
            entry_points: Arc::new(Mutex::new(Vec::new())),
            inbound: inbound.clone(),
            replies: replies.clone(),
            deadline,
            clock_offset_secs: Arc::new(Mutex::new(0)),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client"),
        };
        Workload { inbound, replies, dead, desk, shop, env, customers: JoinSet::new() }
    }

    /// Cluster settings with this run's webhook sources.
    pub fn settings(&self) -> Settings {
        Settings { sources: self.shop.sources(), ..Settings::default() }
    }

    /// Seconds to add to webhook signing timestamps (when the daemon's clock is faked).
    pub fn set_clock_offset(&self, secs: i64) {
        *self.env.clock_offset_secs.lock().expect("env lock") = secs;
    }

    /// Points customers and the desk at the cluster's processes.
    pub fn attach(&self, cluster: &Cluster) {
        *self.env.entry_points.lock().expect("env lock") = cluster.entry_points();
        self.desk.use_api(cluster.daemons.iter().map(|d| d.base.clone()).collect());
    }

    /// Defines online agents of team `support` with the desk as their webhook endpoint, through
    /// the admin API.
    pub async fn define_agents(&self, cluster: &Cluster, agents: &[&str]) {
        self.define_agents_of(cluster, "support", agents).await;
    }

    /// Defines online agents of `team` with the desk as their webhook endpoint.
    pub async fn define_agents_of(&self, cluster: &Cluster, team: &str, agents: &[&str]) {
        let http = reqwest::Client::new();
        let base = &cluster.daemons[0].base;
        for agent in agents {
            let body = json!({
                "name": agent, "teams": [team], "tiers": ["L1"], "status": "online",
                "default_capacity": 1000, "max_total": 1000,
                "endpoints": { "webhook": { "url": format!("{}/{agent}", self.desk.url), "secret": SECRET } }
            });
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let resp = http
                    .put(format!("{base}/v1/agents/{agent}"))
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                if matches!(resp, Ok(200)) {
                    break;
                }
                assert!(Instant::now() < deadline, "agent {agent} could not be defined: {resp:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Starts the customers, spread over `traffic.spread`.
    pub fn start(&mut self, traffic: &Traffic, seed: u64) {
        let n = traffic.webhook + traffic.webchat + traffic.dead;
        for i in 0..n {
            let env = self.env.clone();
            let delay = traffic.spread.mul_f64(i as f64 / n.max(1) as f64);
            let (messages, t) = (traffic.messages, traffic.clone());
            self.customers.spawn(async move {
                tokio::time::sleep(delay).await;
                if i < t.webhook {
                    webhook_customer(env, "shop".into(), format!("c{seed}x{i}"), messages, true).await;
                    None
                } else if i < t.webhook + t.webchat {
                    Some(webchat_customer(env, format!("v{seed}x{i}"), messages).await)
                } else {
                    let source = if i % 2 == 0 { "dead-fail" } else { "dead-gone" };
                    webhook_customer(env, source.into(), format!("dead-{seed}x{i}"), 1, false).await;
                    None
                }
            });
        }
    }

    /// Customer `customer` of source `shop` writes messages `0..count` now (a message written
    /// before is sent again with the same id, which stores nothing new), without waiting for
    /// answers.
    pub async fn write(&self, customer: &str, count: usize) {
        webhook_customer(self.env.clone(), "shop".into(), customer.into(), count, false).await;
    }

    /// Customer messages acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.inbound.acked()
    }

    /// Waits until at least `n` customer messages were acknowledged (to time a fault).
    pub async fn wait_acknowledged(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acknowledged() < n {
            assert!(Instant::now() < deadline, "only {} of {n} messages acknowledged", self.acknowledged());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for every customer to finish, for the bus to go quiet, sweeps the web chat
    /// transcripts and reads the dead letters; prints one line per stream and returns the reports
    /// (customer->agent, agent->customer, dead letters).
    pub async fn finish(&mut self, cluster: &Cluster, run: &str) -> [Report; 3] {
        let wait = self.env.deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
        let mut visitors = Vec::new();
        let all = async {
            while let Some(done) = self.customers.join_next().await {
                if let Some(v) = done.expect("a customer task panicked") {
                    visitors.push(v);
                }
            }
        };
        tokio::time::timeout(wait, all).await.expect("customers finish by the deadline");
        cluster.wait_quiescent(Duration::from_secs(90)).await;
        for (token, after) in visitors {
            webchat_sweep(self.env.clone(), token, after).await;
        }
        read_dead_letters(&cluster.nats.url(), &self.dead).await;
        let reports = [self.inbound.report(), self.replies.report(), self.dead.report()];
        for r in &reports {
            println!("FAULTS {run}: {r}");
        }
        reports
    }
}

/// Every message of `stream` (subject, headers, payload), oldest first.
pub async fn read_stream(url: &str, stream: &str) -> Vec<async_nats::jetstream::Message> {
    let client = super::cluster::connect(url).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let last = stream.info().await.expect("stream info").state.last_sequence;
    if last == 0 {
        return Vec::new();
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig { deliver_policy: DeliverPolicy::All, ..Default::default() })
        .await
        .expect("an ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
        let seq = m.info().expect("message info").stream_sequence;
        out.push(m);
        if seq >= last {
            break;
        }
    }
    out
}

/// Records each dead-lettered answer in `dead` (delivery id: its outbound id), and checks that a
/// `delivery_failed` event was published for each.
async fn read_dead_letters(url: &str, dead: &Checker) {
    let failed_events: Vec<String> = read_stream(url, switchboard_core::contract::streams::EVENTS)
        .await
        .iter()
        .filter(|m| m.subject.as_str() == "sb.events.delivery_failed")
        .filter_map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).ok())
        .filter_map(|e| e["data"]["outbound_id"].as_str().map(str::to_string))
        .collect();
    for m in read_stream(url, switchboard_core::contract::streams::DLQ).await {
        let Ok(outbound) = serde_json::from_slice::<serde_json::Value>(&m.payload) else { continue };
        let (Some(id), Some(outbound_id)) = (outbound["text"].as_str().and_then(tagged), outbound["id"].as_str())
        else {
            continue;
        };
        assert_eq!(m.subject.as_str(), "sb.dlq.webhook", "answer {id} dead-lettered by the webhook channel");
        assert!(
            failed_events.iter().any(|e| e == outbound_id),
            "a delivery_failed event names dead-lettered answer {outbound_id}"
        );
        dead.delivered(id, outbound_id);
    }
}
