//! A real three-node NATS JetStream cluster on loopback ports (`sync_interval: always`, every
//! stream and bucket with three replicas, as `deploy/nats/` sets it up), under steady traffic
//! through three Switchboard processes (`all`, a standby router, an adapter). The node leading
//! JetStream's meta group is killed with SIGKILL mid-traffic and started again later: clients
//! reconnect to the other nodes, the streams keep a quorum, and nothing acknowledged is lost or
//! delivered twice.

use std::time::{Duration, Instant};

use switchboard_bus::async_nats;
use switchboard_core::contract::streams;
use switchboard_e2e::faults::cluster::{Cluster, Role, Settings, connect};
use switchboard_e2e::faults::desk::DeskBehaviour;
use switchboard_e2e::faults::workload::{Traffic, Workload, budget};
use switchboard_testkit::NatsCluster;

/// The node leading JetStream's meta group, other than `not`, once one does (within 30 s).
async fn meta_leader(cluster: &mut Cluster, not: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(i) = cluster.nats.nodes().meta_leader().filter(|i| Some(*i) != not) {
            return i;
        }
        assert!(Instant::now() < deadline, "no node leads the JetStream meta group (other than {not:?}) within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_node_cluster_loses_a_node_under_traffic_and_nothing_is_lost() {
    let traffic = Traffic { webhook: 16, webchat: 8, dead: 0, messages: 4, spread: Duration::from_secs(10) };
    let mut work = Workload::new(DeskBehaviour { answer: true, ..Default::default() }, budget(&traffic)).await;
    let nats = NatsCluster::start(3);
    let settings = Settings { replicas: 3, ..work.settings() };
    let roles = vec![
        Role::new("all", true, true, true),
        Role::new("router-b", true, false, false),
        Role::new("adapter", false, true, true),
    ];
    let mut cluster = Cluster::configure(nats, roles, &settings);
    for d in &mut cluster.daemons {
        d.spawn();
    }
    cluster.wait_ready().await;

    // Every stream is kept on all three nodes.
    let client = connect(&cluster.nats.url()).await.expect("connect to the cluster");
    let js = async_nats::jetstream::new(client);
    for (name, _) in streams::ALL {
        let info = js.get_stream(*name).await.expect("stream").info().await.expect("stream info").clone();
        assert_eq!(info.config.num_replicas, 3, "{name} has three replicas");
    }

    work.attach(&cluster);
    work.define_agents(&cluster, &["ann", "bob"]).await;
    work.start(&traffic, 7);
    let total = traffic.total();
    work.wait_acknowledged(total / 3, Duration::from_secs(120)).await;
    let leader = meta_leader(&mut cluster, None).await;
    let nodes = cluster.nats.nodes();
    println!("NATS-CLUSTER: kill -9 node {} (meta leader) after {} messages", nodes.name(leader), work.acknowledged());
    nodes.kill(leader);
    work.wait_acknowledged(total * 2 / 3, Duration::from_secs(120)).await;
    // The election may still be running (traffic flows on as long as the streams keep a quorum).
    let next = meta_leader(&mut cluster, Some(leader)).await;
    let nodes = cluster.nats.nodes();
    println!(
        "NATS-CLUSTER: {} leads; node {} back after {} messages",
        nodes.name(next),
        nodes.name(leader),
        work.acknowledged()
    );
    nodes.restart(leader);

    let reports = work.finish(&cluster, "nats-cluster").await;
    cluster.assert_running();
    for r in &reports[..2] {
        r.assert_clean("nats-cluster");
        assert_eq!(r.sent, total, "every customer message and its answer was sent");
    }
}
