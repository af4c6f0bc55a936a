//! kill -9 of each component at random points under steady traffic: the router leader, an
//! adapter process (webhook + web chat + agent endpoints), or a whole daemon running everything.
//! Three processes share one NATS: `all` (router, channels), `router-b` (a standby router) and
//! `adapter` (channels only). Customers write through the webhook and over web chat WebSockets,
//! agents answer through the agent API, and the checker counts every message both ways.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_e2e::faults::checker::Report;
use switchboard_e2e::faults::cluster::{Cluster, Role};
use switchboard_e2e::faults::desk::DeskBehaviour;
use switchboard_e2e::faults::workload::{Traffic, Workload, budget};
use switchboard_e2e::faults::{env_or, repeat};

async fn run(name: &str, seed: u64, traffic: &Traffic, kills: usize) -> [Report; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut work = Workload::new(DeskBehaviour { answer: true, ..Default::default() }, budget(traffic)).await;
    let roles = vec![
        Role::new("all", true, true, true),
        Role::new("router-b", true, false, false),
        Role::new("adapter", false, true, true),
    ];
    let mut cluster = Cluster::start(roles, &work.settings()).await;
    work.attach(&cluster);
    work.define_agents(&cluster, &["ann", "bob", "cat"]).await;
    work.start(traffic, seed);
    let total = traffic.total();
    for k in 0..kills {
        // A random point within the k-th slice of the traffic.
        let slice = (total * 8 / 10) / kills;
        let at = k * slice + rng.random_range(1..=slice.max(1));
        work.wait_acknowledged(at, Duration::from_secs(120)).await;
        let leader = cluster.leader().await;
        let (target, what) = match rng.random_range(0..3) {
            0 => match leader {
                Some(i) => (i, "router leader"),
                None => (1, "a router; no leader right now"),
            },
            1 => (2, "adapter"),
            _ => (0, "whole daemon"),
        };
        let down = Duration::from_millis(rng.random_range(100..3000));
        println!(
            "FAULTS {name}: kill -9 {} ({what}) after {} acknowledged messages, down for {down:?}",
            cluster.daemons[target].role.name,
            work.acknowledged()
        );
        cluster.daemons[target].kill9();
        // The outage itself: how long the process stays dead is part of the fault.
        tokio::time::sleep(down).await;
        cluster.daemons[target].spawn();
        let http = cluster.http.clone();
        cluster.daemons[target].wait_ready(&http, Duration::from_secs(60)).await;
    }
    let reports = work.finish(&cluster, name).await;
    cluster.assert_running();
    assert_eq!(cluster.daemons.iter().map(|d| d.kills as usize).sum::<usize>(), kills, "every kill happened");
    for r in &reports[..2] {
        r.assert_clean(name);
        assert_eq!(r.sent, total, "{name}: every customer message and its answer was sent");
    }
    reports
}

async fn runs(test: &str, runs: usize, traffic: Traffic, kills: usize) {
    repeat(test, runs, |name, seed| {
        let traffic = &traffic;
        async move { run(&name, seed, traffic, kills).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_each_component_under_traffic() {
    let traffic = Traffic { webhook: 24, webchat: 12, dead: 0, messages: 5, spread: Duration::from_secs(10) };
    runs("kill-9 short", 1, traffic, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: make test-faults"]
async fn kill_9_of_each_component_under_traffic_long() {
    let scale = env_or("FAULT_SCALE", 1);
    let traffic =
        Traffic { webhook: 30 * scale, webchat: 15 * scale, dead: 0, messages: 5, spread: Duration::from_secs(15) };
    runs("kill-9 long", env_or("FAULT_RUNS", 20), traffic, env_or("FAULT_KILLS", 4)).await;
}
