//! NATS faults: the server killed and restarted on the same store under traffic (every component
//! reconnects, in-flight work resumes, nothing is lost or doubled), and NATS unavailable when the
//! daemon starts (it answers `/healthz`, reports not ready, then proceeds once NATS is up).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_channel_webhook::{decode_secret, signature};
use switchboard_e2e::SECRET;
use switchboard_e2e::faults::checker::Report;
use switchboard_e2e::faults::cluster::{Cluster, Role};
use switchboard_e2e::faults::desk::DeskBehaviour;
use switchboard_e2e::faults::workload::{Traffic, Workload, budget};
use switchboard_e2e::faults::{env_or, repeat, seed};
use switchboard_testkit::NatsServer;

fn roles() -> Vec<Role> {
    vec![
        Role::new("all", true, true, true),
        Role::new("router-b", true, false, false),
        Role::new("adapter", false, true, true),
    ]
}

fn check(name: &str, reports: &[Report; 3], traffic: &Traffic) {
    for r in &reports[..2] {
        r.assert_clean(name);
        assert_eq!(r.sent, traffic.total(), "{name}: every customer message and its answer was sent");
    }
}

async fn restart_run(name: &str, seed: u64, traffic: &Traffic, outages: usize) -> [Report; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut work = Workload::new(DeskBehaviour { answer: true, ..Default::default() }, budget(traffic)).await;
    let mut cluster = Cluster::start(roles(), &work.settings()).await;
    work.attach(&cluster);
    work.define_agents(&cluster, &["ann", "bob"]).await;
    work.start(traffic, seed);
    let total = traffic.total();
    for k in 0..outages {
        let slice = (total * 8 / 10) / outages;
        let at = k * slice + rng.random_range(1..=slice.max(1));
        work.wait_acknowledged(at, Duration::from_secs(120)).await;
        let down = Duration::from_millis(rng.random_range(500..4000));
        // `FAULT_NATS_KILL=1` kills it (SIGKILL) instead of stopping it: a crash of NATS itself,
        // where a single server may lose writes it acknowledged last (see the report).
        let kill = std::env::var("FAULT_NATS_KILL").is_ok_and(|v| v == "1");
        let how = if kill { "killed (SIGKILL)" } else { "stopped (SIGTERM)" };
        println!("FAULTS {name}: NATS {how} after {} acknowledged messages, down for {down:?}", work.acknowledged());
        if kill {
            cluster.nats.stop();
        } else {
            cluster.nats.terminate();
        }
        // The outage: clients keep trying (and get 503s or resets) while it lasts.
        tokio::time::sleep(down).await;
        cluster.nats.restart();
        cluster.wait_ready().await;
    }
    let reports = work.finish(&cluster, name).await;
    cluster.assert_running();
    check(name, &reports, traffic);
    reports
}

async fn restart_runs(test: &str, runs: usize, traffic: Traffic, outages: usize) {
    repeat(test, runs, |name, seed| {
        let traffic = &traffic;
        async move { restart_run(&name, seed, traffic, outages).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_restart_under_traffic() {
    let traffic = Traffic { webhook: 16, webchat: 8, dead: 0, messages: 5, spread: Duration::from_secs(8) };
    restart_runs("nats-restart short", 1, traffic, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: make test-faults"]
async fn nats_restart_under_traffic_long() {
    let scale = env_or("FAULT_SCALE", 1);
    let traffic =
        Traffic { webhook: 30 * scale, webchat: 15 * scale, dead: 0, messages: 5, spread: Duration::from_secs(15) };
    restart_runs("nats-restart long", env_or("FAULT_RUNS", 20), traffic, 2).await;
}

async fn start_up_run(name: &str, seed: u64, traffic: &Traffic) -> [Report; 3] {
    let mut work = Workload::new(DeskBehaviour { answer: true, ..Default::default() }, Duration::from_secs(180)).await;
    // A port and store chosen, nothing listening on it.
    let mut nats = NatsServer::start();
    nats.stop();
    let mut cluster = Cluster::configure(nats, vec![Role::new("all", true, true, true)], &work.settings());
    cluster.daemons[0].spawn();
    let (http, daemon) = (cluster.http.clone(), &cluster.daemons[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while daemon.status(&http, "/healthz").await != Some(200) {
        assert!(std::time::Instant::now() < deadline, "/healthz never answered while NATS was down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(daemon.status(&http, "/readyz").await, Some(503), "{name}: not ready without NATS");
    // A customer's message cannot be stored yet: 503 (retry later), never a 202.
    let key = decode_secret(SECRET).unwrap();
    let body = r#"{"message_id":"early","customer":{"id":"early"},"text":"anyone?"}"#;
    let ts = chrono::Utc::now().timestamp();
    let early = http
        .post(format!("{}/v1/webhooks/shop", daemon.base))
        .header("content-type", "application/json")
        .header(signature::ID, "evt-early")
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(&key, "evt-early", ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(early.status().as_u16(), 503, "{name}: a message while NATS is down");
    assert_eq!(daemon.status(&http, "/readyz").await, Some(503), "{name}: still not ready, still running");
    cluster.assert_running();
    println!("FAULTS {name}: /healthz 200 and /readyz 503 while NATS is down; starting NATS");
    cluster.nats.restart();
    cluster.wait_ready().await;
    work.attach(&cluster);
    work.define_agents(&cluster, &["ann"]).await;
    work.start(traffic, seed);
    let reports = work.finish(&cluster, name).await;
    check(name, &reports, traffic);
    reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_unavailable_at_start_up() {
    let seed = seed("nats-at-start-up");
    let traffic = Traffic { webhook: 6, webchat: 4, dead: 0, messages: 3, spread: Duration::from_secs(2) };
    start_up_run("nats-at-start-up", seed, &traffic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: make test-faults"]
async fn nats_unavailable_at_start_up_long() {
    let traffic = Traffic { webhook: 20, webchat: 10, dead: 0, messages: 5, spread: Duration::from_secs(5) };
    let traffic = &traffic;
    repeat("nats-at-start-up long", env_or("FAULT_RUNS", 20).div_ceil(4), |name, seed| async move {
        start_up_run(&name, seed, traffic).await
    })
    .await;
}
