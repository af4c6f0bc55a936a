//! Slow and failing receivers: the agents' helpdesk answers slowly and refuses each delivery with
//! `503` a few times before taking it (retries, nothing dropped, nothing doubled), while two
//! customer webhooks fail for good (`500` always, `410`): their answers end as dead letters in
//! `sb.dlq.webhook` with a `delivery_failed` event each, and nobody else's message suffers.

use std::time::Duration;

use switchboard_e2e::faults::checker::Report;
use switchboard_e2e::faults::cluster::{Cluster, Role};
use switchboard_e2e::faults::desk::DeskBehaviour;
use switchboard_e2e::faults::workload::{Traffic, Workload, budget};
use switchboard_e2e::faults::{env_or, repeat, seed};

const MAX_ATTEMPTS: u64 = 4;
const REFUSALS: u32 = 2;

async fn run(name: &str, seed: u64, traffic: &Traffic) -> [Report; 3] {
    let behaviour = DeskBehaviour { answer: true, delay: Duration::from_millis(300), fail_first: REFUSALS };
    let mut work = Workload::new(behaviour, budget(traffic) * 2).await;
    let mut settings = work.settings();
    settings.max_attempts = MAX_ATTEMPTS;
    let roles = vec![Role::new("all", true, true, true), Role::new("adapter", false, true, true)];
    let mut cluster = Cluster::start(roles, &settings).await;
    work.attach(&cluster);
    work.define_agents(&cluster, &["ann", "bob"]).await;
    work.start(traffic, seed);
    let reports = work.finish(&cluster, name).await;
    cluster.assert_running();
    for r in &reports {
        r.assert_clean(name);
    }
    assert_eq!(reports[0].sent, traffic.total(), "{name}: every customer message was sent");
    assert_eq!(reports[1].sent, traffic.total() - traffic.dead, "{name}: every answer to a working shop was sent");
    assert_eq!(reports[2].sent, traffic.dead, "{name}: every answer to a failing shop was sent");
    let (received, refused) = (work.desk.received(), work.desk.refused());
    assert!(received.len() >= traffic.total(), "{name}: the helpdesk got every offer and message");
    for r in &received {
        assert_eq!(refused.get(&r.webhook_id), Some(&REFUSALS), "{name}: delivery {} was retried", r.webhook_id);
    }
    let attempts = work.shop.attempts();
    let (fails, gones) = (traffic.dead.div_ceil(2) as u32, (traffic.dead / 2) as u32);
    assert!(
        attempts.get("dead-fail").copied().unwrap_or(0) >= fails * MAX_ATTEMPTS as u32,
        "{name}: a 500 is retried {MAX_ATTEMPTS} times before the dead letter: {attempts:?}"
    );
    assert_eq!(attempts.get("dead-gone").copied().unwrap_or(0), gones, "{name}: a 410 is not retried");
    println!(
        "FAULTS {name}: helpdesk took {} deliveries after {} refusals (503); failing shops got {attempts:?}",
        received.len(),
        refused.values().sum::<u32>(),
    );
    reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_and_failing_receivers() {
    let seed = seed("receivers short");
    let traffic = Traffic { webhook: 8, webchat: 4, dead: 6, messages: 3, spread: Duration::from_secs(3) };
    run("receivers short", seed, &traffic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: make test-faults"]
async fn slow_and_failing_receivers_long() {
    let traffic = Traffic { webhook: 30, webchat: 15, dead: 20, messages: 4, spread: Duration::from_secs(10) };
    let traffic = &traffic;
    repeat("receivers long", env_or("FAULT_RUNS", 20).div_ceil(4), |name, seed| async move {
        run(&name, seed, traffic).await
    })
    .await;
}
