//! What the router's service tests share: a router process of its own on the test's NATS, the
//! configuration it runs with, and the deliveries it stored.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_adapter::testkit::TestBus;
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::AgentDelivery;
use switchboard_core::contract::{streams, subjects};
use switchboard_router::{RouterConfig, RouterService, ServiceConfig};
use switchboard_routing::RoutingConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for anything.
pub const WAIT: Duration = Duration::from_secs(20);

/// A router configuration from a `[routing]` TOML text, each of `agents` delivered by webhook.
pub fn config(routing: &str, agents: &[&str]) -> RouterConfig {
    RouterConfig {
        routing: toml::from_str(routing).expect("routing toml"),
        endpoints: agents.iter().map(|a| (a.to_string(), vec!["webhook".to_string()])).collect::<BTreeMap<_, _>>(),
        offer_history: 10,
        group: None,
        kb: None,
    }
}

/// A router process of its own (own NATS connection), stopped by its token or aborted.
pub struct Proc {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Starts the router `name` of group `default` (lease of 1 s, a snapshot every 3 entries, so
/// restarts load snapshots too).
pub async fn start(t: &TestBus, name: &str, config: RouterConfig) -> Proc {
    spawn(t, name, config, |svc| svc.snapshot_every = 3, None).await
}

/// Starts the router `name` of group `default` (lease of 1 s) following the routing sections
/// `reload` hands it, as the daemon's reloads do.
pub async fn start_following(
    t: &TestBus,
    name: &str,
    config: RouterConfig,
    reload: watch::Receiver<Arc<RoutingConfig>>,
) -> Proc {
    spawn(t, name, config, |_| {}, Some(reload)).await
}

async fn spawn(
    t: &TestBus,
    name: &str,
    config: RouterConfig,
    tune: impl FnOnce(&mut ServiceConfig),
    reload: Option<watch::Receiver<Arc<RoutingConfig>>>,
) -> Proc {
    let bus = Bus::connect(&BusConfig::for_url(t.server.url()), &CancellationToken::new()).await.unwrap();
    let mut svc = ServiceConfig::new("default");
    svc.holder = name.into();
    svc.lease_ttl = Duration::from_secs(1);
    tune(&mut svc);
    let mut service = RouterService::new(bus, config, svc);
    if let Some(updates) = reload {
        service = service.with_reload(updates);
    }
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move { service.run(token).await.expect("router service") });
    Proc { stop, task }
}

impl Proc {
    /// Stops it as a shutdown does (lease released, final snapshot).
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task).await.expect("router stops").unwrap();
    }

    /// Like kill -9: no release, no final snapshot, in-flight work abandoned.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Every delivery stored for webhook agents, in order.
pub async fn deliveries(t: &TestBus) -> Vec<AgentDelivery> {
    let stored = t.stored(streams::AGENT, &subjects::agent_out_filter("webhook")).await;
    stored.iter().map(|(_, p)| serde_json::from_slice(p).unwrap()).collect()
}
