//! Running the daemon: listener first, then the bus, then the components; ordered shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_bus::{Bus, BusSlot};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tracing::{error, info, warn};

use switchboard_adapter::{Health, HealthStatus};
use switchboard_router::{Role, RouterService, ServiceConfig};
use switchboard_routing::MessageInfo;

use crate::config::Config;
use crate::http::{Readiness, health_routes};

/// Runs every enabled component until `shutdown` is cancelled, then stops them in order within
/// `shutdown.grace_secs`: the listener stops taking requests and finishes those in flight, the
/// consumers finish or leave unacked what they hold, and the NATS connection is flushed.
///
/// The listener is bound by the caller so that tests can use `127.0.0.1:0`.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut config = config;
    config.privacy.cap_streams(&mut config.nats);
    let layout = Arc::new(config.layout().context("routing groups")?);
    let groups = if config.router.enabled { config.router_groups(&layout) } else { Vec::new() };
    let kb = crate::kb::load_for_daemon(&config.kb)?;
    // Refuse a routing configuration the router cannot run before anything starts.
    for group in &groups {
        switchboard_router::Router::new(config.router_config(&layout, group)).context("routing configuration")?;
    }
    let slot = BusSlot::new();
    // Components get their own token: it fires only after the listener drained, so a request
    // that is being stored still finds its publisher.
    let components_stop = CancellationToken::new();
    // The web chat asks the group that owns its messages whether anyone is available.
    let webchat_group = layout.owner_of_message(&MessageInfo { channel: "webchat".into(), ..Default::default() }, "");
    let mut channels = crate::channels::build(&config.channels, webchat_group, &slot, &components_stop)?;

    let mut components: Vec<(&'static str, Health)> = channels.iter().map(|c| (c.name, c.health.clone())).collect();
    let router_health: Vec<Health> = groups.iter().map(|_| Health::default()).collect();
    components.extend(router_health.iter().map(|h| ("router", h.clone())));
    let last_reload = crate::reload::LastReload::default();
    let readiness = Readiness { bus: slot.clone(), components: Arc::new(components), last_reload: last_reload.clone() };
    // A daemon started from a file re-reads it on SIGHUP; routing changes reach the routers.
    let tokens = crate::api::Tokens::load(&config.api).map_err(anyhow::Error::msg)?;
    let (mut reloader, routing_updates) = crate::reload::Reloader::new(config.clone(), last_reload);
    reloader = reloader.with_tokens(tokens.clone());
    for channel in &mut channels {
        if let Some(reconfigure) = channel.reconfigure.take() {
            reloader = reloader.with_channel(channel.name, reconfigure);
        }
    }
    let routing_updates = config.source.is_some().then_some(routing_updates);
    if routing_updates.is_some() {
        tokio::spawn(reloader.run(shutdown.clone()));
    }
    let presence_readiness = readiness.clone();
    tokio::spawn(crate::notify::run(readiness.clone(), shutdown.clone()));
    let all_groups: Vec<String> = layout.names().map(str::to_string).collect();
    let console_tokens = tokens.clone();
    let customers = crate::customers::Customers::new(tokens.clone(), &config.privacy, slot.clone(), all_groups.clone());
    let api = crate::api::Api::new(&config.api, tokens, slot.clone(), all_groups.clone())
        .with_event_streams(shutdown.clone(), Duration::from_millis(config.http.idle_timeout_ms));
    #[cfg(feature = "channel-webhook")]
    let api = api.with_endpoint_guard(
        switchboard_channel_webhook::guard::AddressGuard::new(&config.channels.webhook.allowed_networks)
            .map_err(|e| anyhow::anyhow!("channels.webhook.allowed_networks: {e}"))?,
    );
    if config.metrics.enabled {
        crate::metrics::check_token(&config.metrics).map_err(anyhow::Error::msg)?;
    }
    let mut app = health_routes(readiness).merge(api.routes()).merge(customers.routes());
    let metrics = crate::metrics::LiveMetrics::default();
    if config.console.enabled {
        let parts = crate::console::ConsoleParts {
            bus: slot.clone(),
            tokens: console_tokens,
            layout: layout.clone(),
            teams: config.routing.teams.keys().cloned().collect(),
            live: metrics.clone(),
            folding: config.metrics.enabled,
            shutdown: shutdown.clone(),
            idle_timeout: Duration::from_millis(config.http.idle_timeout_ms),
        };
        app = app.merge(crate::console::Console::new(&config.console, parts).routes());
    }
    if config.metrics.enabled {
        app = app.merge(metrics.routes(&config.metrics));
    }
    for channel in &channels {
        if let Some(routes) = &channel.routes {
            app = app.merge(routes.clone());
        }
    }
    let app = app.layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_millis(config.http.request_timeout_ms),
    ));

    let addr = listener.local_addr().context("listener address")?;
    info!(%addr, channels = channels.len(), "HTTP listener up");
    let http_stop = shutdown.clone();
    let limits = crate::serve::Limits::from_config(&config.http);
    let mut http = tokio::spawn(crate::serve::serve(listener, app, limits, http_stop));

    // The bus may be down at start-up: keep answering /healthz (and 503 on /readyz) meanwhile.
    let bus = tokio::select! {
        bus = Bus::connect(&config.nats, &shutdown) => bus,
        served = &mut http => {
            served.context("HTTP task")?.context("HTTP listener")?;
            anyhow::bail!("HTTP listener stopped before the bus connected");
        }
    };
    let bus = match bus {
        Ok(bus) => bus,
        Err(e) if shutdown.is_cancelled() => {
            info!(error = %e, "shut down before NATS was reached");
            let _ = http.await;
            return Ok(());
        }
        Err(e) => {
            shutdown.cancel();
            let _ = http.await;
            return Err(e).context("connecting to NATS");
        }
    };
    bus.ensure_contract().await.context("setting up streams and buckets")?;
    slot.fill(bus.clone());
    tokio::spawn({
        let (bus, stop) = (bus.clone(), components_stop.clone());
        async move { bus.watch_fill(stop).await }
    });

    let mut running: JoinSet<(&'static str, Result<(), String>)> = JoinSet::new();
    let holder = crate::presence::new_holder();
    let mut enabled: Vec<String> = Vec::new();
    for channel in channels {
        let name = channel.name;
        enabled.push(name.to_string());
        let handle = (channel.start)();
        running.spawn(async move {
            (name, handle.await.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())))
        });
    }
    for (name, component) in crate::channels::agent_endpoints(&config.channels, &all_groups)? {
        let (bus, stop) = (bus.clone(), components_stop.clone());
        enabled.push(name.to_string());
        running.spawn(async move { (name, component(bus, stop).await) });
    }
    if config.metrics.enabled {
        let (bus, stop, cfg) = (bus.clone(), components_stop.clone(), config.metrics.clone());
        enabled.push("metrics".into());
        running.spawn(async move { ("metrics", metrics.run(bus, cfg, stop).await) });
    }
    if let Some(kb) = &kb {
        tokio::spawn(crate::kb::watch(kb.clone(), config.kb.clone(), components_stop.clone()));
    }
    if !groups.is_empty() {
        enabled.push("router".into());
        // The retention sweep runs beside the routers (one process sweeps, by lease).
        let (bus, stop, cfg) = (bus.clone(), components_stop.clone(), config.privacy.clone());
        let (sweep_groups, sweep_holder) = (all_groups.clone(), holder.clone());
        running.spawn(async move {
            ("retention", crate::privacy::retention::run(bus, cfg, sweep_groups, sweep_holder, stop).await)
        });
    }
    for (group, health) in groups.iter().zip(router_health) {
        let mut svc = service_config(&config, group);
        // The lease names this process as its presence entry does, so status can tell who leads.
        svc.holder = holder.clone();
        let mut router_cfg = config.router_config(&layout, group);
        router_cfg.kb = kb.clone();
        let mut service = RouterService::new(bus.clone(), router_cfg, svc);
        if let Some(updates) = &routing_updates {
            service = service.with_reload(updates.clone());
        }
        tokio::spawn(report_role(service.role(), health));
        let stop = components_stop.clone();
        running.spawn(async move { ("router", service.run(stop).await.map_err(|e| e.to_string())) });
    }
    let presence = crate::presence::PresenceRecord {
        holder,
        host: crate::presence::host_name(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        components: enabled,
        router_groups: groups.clone(),
        ready: false,
        not_ready: Default::default(),
        started_at: chrono::Utc::now(),
    };
    let (bus_p, stop) = (bus.clone(), components_stop.clone());
    running
        .spawn(async move { ("presence", crate::presence::announce(bus_p, presence, presence_readiness, stop).await) });
    info!("switchboard ready");

    shutdown.cancelled().await;
    info!(grace_secs = config.shutdown.grace_secs, "shutting down");
    let grace = Duration::from_secs(config.shutdown.grace_secs);
    let stopped = tokio::time::timeout(grace, async {
        match http.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "HTTP listener stopped with an error"),
            Err(e) => warn!(error = %e, "HTTP task failed"),
        }
        components_stop.cancel();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((name, Ok(()))) => info!(component = name, "stopped"),
                Ok((name, Err(e))) => error!(component = name, error = %e, "stopped with an error"),
                Err(e) => error!(error = %e, "component task failed"),
            }
        }
    })
    .await;
    components_stop.cancel();
    if stopped.is_err() {
        // Whatever is still unacked is redelivered by JetStream: late, not lost.
        warn!(stragglers = running.len(), "grace period over, abandoning in-flight work");
        running.abort_all();
    }
    if let Err(e) = bus.client().flush().await {
        warn!(error = %e, "could not flush the NATS connection");
    }
    info!("switchboard stopped");
    Ok(())
}

fn service_config(config: &Config, group: &str) -> ServiceConfig {
    let mut svc = ServiceConfig::new(group);
    svc.lease_ttl = Duration::from_secs(config.router.lease_ttl_secs);
    svc.snapshot_every = config.router.snapshot_every;
    svc
}

/// Mirrors the router's role into its health: standing by and leading are both ready (a standby
/// is what makes failover work); a router that stopped for good is not.
async fn report_role(mut role: tokio::sync::watch::Receiver<Role>, health: Health) {
    loop {
        let status = match &*role.borrow_and_update() {
            Role::Starting => HealthStatus::Starting,
            Role::Standby | Role::Leading => HealthStatus::Ready,
            Role::Failed(why) => HealthStatus::Stopped(why.clone()),
        };
        health.set(status);
        if role.changed().await.is_err() {
            return;
        }
    }
}
