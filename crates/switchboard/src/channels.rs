//! The one place channels are registered: each channel's config section, validation and
//! construction live here, behind its Cargo feature. Adding a channel touches this file and the
//! feature in `Cargo.toml`, nothing else in the daemon (`docs/adapters.md`, "Register it").

use std::collections::BTreeMap;

#[allow(unused_imports)]
use anyhow::Context;
use switchboard_adapter::{AdapterError, Health};

use futures::future::BoxFuture;
use switchboard_bus::{Bus, BusSlot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use serde::Deserialize;

/// Every channel the binary was built with: one `[channels.<name>]` section per Cargo feature.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// The generic webhook channel.
    #[cfg(feature = "channel-webhook")]
    pub webhook: switchboard_channel_webhook::WebhookConfig,
    /// The email channel.
    #[cfg(feature = "channel-email")]
    pub email: switchboard_channel_email::EmailConfig,
    /// The Telegram channel.
    #[cfg(feature = "channel-telegram")]
    pub telegram: switchboard_channel_telegram::TelegramConfig,
    /// The web chat.
    #[cfg(feature = "channel-webchat")]
    pub webchat: switchboard_channel_webchat::WebchatConfig,
    /// Agents on Matrix.
    #[cfg(feature = "channel-matrix")]
    pub matrix: switchboard_channel_matrix::MatrixConfig,
    /// Agents on Slack.
    #[cfg(feature = "channel-slack")]
    pub slack: switchboard_channel_slack::SlackConfig,
    /// WhatsApp Business (Cloud API) customers.
    #[cfg(feature = "channel-whatsapp")]
    pub whatsapp: switchboard_channel_whatsapp::WhatsAppConfig,
    /// A VK community's messages.
    #[cfg(feature = "channel-vk")]
    pub vk: switchboard_channel_vk::VkConfig,
    /// The example SMS channel (`examples/rust-adapter`).
    #[cfg(feature = "example-sms")]
    pub sms: switchboard_example_sms::SmsConfig,
}

/// Checks each channel's section (and what it must agree with elsewhere in the file), as
/// `(dotted key, reason)` for the configuration error.
pub fn validate(
    channels: &ChannelsConfig,
    nats: &switchboard_bus::BusConfig,
    routing: &switchboard_routing::RoutingConfig,
) -> Result<(), (String, String)> {
    #[cfg(feature = "channel-webhook")]
    {
        let webhook = &channels.webhook;
        for (agent, endpoint) in &webhook.agents {
            endpoint.validate(agent).map_err(|e| (format!("channels.webhook.{}", e.key), e.reason))?;
        }
        for (name, source) in &webhook.sources {
            source.validate(name).map_err(|e| (format!("channels.webhook.{}", e.key), e.reason))?;
        }
        switchboard_channel_webhook::guard::AddressGuard::new(&webhook.allowed_networks)
            .map_err(|e| ("channels.webhook.allowed_networks".to_string(), e))?;
        if webhook.max_body_bytes == 0 {
            return Err(("channels.webhook.max_body_bytes".into(), "must be greater than 0".into()));
        }
        // A signed request is accepted while its timestamp is within the tolerance on either
        // side of now, so for up to twice the tolerance after it was first stored; only the
        // duplicate window stops a replay in that time, so it must cover all of it.
        let exposed = webhook.timestamp_tolerance_secs.saturating_mul(2);
        if webhook.enabled && !webhook.sources.is_empty() && nats.duplicate_window_secs < exposed {
            return Err((
                "nats.duplicate_window_secs".into(),
                format!(
                    "must be at least twice channels.webhook.timestamp_tolerance_secs ({exposed} s): a captured \
                     webhook request could otherwise be replayed after JetStream forgot its message id"
                ),
            ));
        }
    }
    #[cfg(feature = "channel-email")]
    {
        let email = &channels.email;
        email.validate().map_err(|e| (format!("channels.email.{}", e.key), e.reason))?;
        if email.enabled {
            for agent in email.agents.keys() {
                if !routing.agents.iter().any(|a| &a.id == agent) {
                    return Err((format!("channels.email.agents.{agent}"), format!("unknown agent `{agent}`")));
                }
            }
        }
    }
    #[cfg(feature = "channel-telegram")]
    channels.telegram.validate().map_err(|e| (format!("channels.telegram.{}", e.key), e.reason))?;
    #[cfg(feature = "channel-webchat")]
    channels.webchat.validate().map_err(|e| (format!("channels.webchat.{}", e.key), e.reason))?;
    #[cfg(feature = "channel-webchat")]
    {
        let store = nats.max_bytes_of(
            switchboard_bus::limits::StoreKind::ObjectStore,
            switchboard_core::contract::ATTACHMENTS_STORE,
        );
        if channels.webchat.max_upload_bytes as u64 > store {
            return Err((
                "channels.webchat.max_upload_bytes".into(),
                format!(
                    "must not exceed nats.store_max_bytes.sb_attachments ({store}): no file that large could be stored"
                ),
            ));
        }
    }
    #[cfg(feature = "channel-matrix")]
    {
        let matrix = &channels.matrix;
        matrix.validate().map_err(|e| (format!("channels.matrix.{}", e.key), e.reason))?;
        if matrix.enabled {
            for agent in matrix.agents.keys() {
                if !routing.agents.iter().any(|a| &a.id == agent) {
                    return Err((format!("channels.matrix.agents.{agent}"), format!("unknown agent `{agent}`")));
                }
            }
            for team in matrix.team_rooms.keys() {
                if !routing.teams.contains_key(team) {
                    return Err((format!("channels.matrix.team_rooms.{team}"), format!("unknown team `{team}`")));
                }
            }
        }
    }
    #[cfg(feature = "channel-slack")]
    {
        let slack = &channels.slack;
        slack.validate().map_err(|e| (format!("channels.slack.{}", e.key), e.reason))?;
        if slack.enabled {
            for agent in slack.agents.keys() {
                if !routing.agents.iter().any(|a| &a.id == agent) {
                    return Err((format!("channels.slack.agents.{agent}"), format!("unknown agent `{agent}`")));
                }
            }
            for team in slack.team_channels.keys() {
                if !routing.teams.contains_key(team) {
                    return Err((format!("channels.slack.team_channels.{team}"), format!("unknown team `{team}`")));
                }
            }
        }
    }
    #[cfg(feature = "channel-whatsapp")]
    channels.whatsapp.validate().map_err(|e| (format!("channels.whatsapp.{}", e.key), e.reason))?;
    #[cfg(feature = "channel-vk")]
    channels.vk.validate().map_err(|e| (format!("channels.vk.{}", e.key), e.reason))?;
    #[cfg(feature = "example-sms")]
    channels.sms.validate().map_err(|e| (format!("channels.sms.{}", e.key), e.reason))?;
    let _ = (channels, nats, routing);
    Ok(())
}

/// A channel built from configuration, ready to start once the bus is up.
pub struct BuiltChannel {
    /// Channel name.
    pub name: &'static str,
    /// Its HTTP routes, merged into the daemon's listener.
    pub routes: Option<axum::Router>,
    /// Its health, reported by `/readyz`.
    pub health: Health,
    /// Starts it; called once the bus is connected.
    pub start: Box<dyn FnOnce() -> JoinHandle<Result<(), AdapterError>> + Send>,
    /// How a configuration reload reaches it while it runs; `None`: a change needs a restart.
    pub reconfigure: Option<Reconfigure>,
}

/// What applying a reloaded channel section did: the keys applied (relative to the section),
/// and the changed keys that apply only after a restart.
pub type Reconfigured = (Vec<String>, Vec<String>);

/// Reads a reloaded `[channels]` for one channel (its secrets too) and returns how to apply it,
/// or why it cannot apply: nothing changes until the returned step runs, so a reload refused
/// for any reason leaves every channel as it was.
pub type Reconfigure =
    Box<dyn Fn(&ChannelsConfig) -> Result<Box<dyn FnOnce() -> Reconfigured + Send>, String> + Send + Sync>;

/// A component that runs on the bus until its token fires.
pub type Component = Box<dyn FnOnce(Bus, CancellationToken) -> BoxFuture<'static, Result<(), String>> + Send>;

/// Endpoint kinds by agent id: which `sb.agent.out.<kind>` subjects the router delivers to.
pub fn endpoint_kinds(config: &ChannelsConfig) -> BTreeMap<String, Vec<String>> {
    #[allow(unused_mut)]
    let mut kinds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    #[cfg(feature = "channel-webhook")]
    if config.webhook.enabled {
        for agent in config.webhook.agents.keys() {
            kinds.entry(agent.clone()).or_default().push(switchboard_channel_webhook::ENDPOINT_KIND.into());
        }
    }
    #[cfg(feature = "channel-telegram")]
    if config.telegram.enabled {
        for agent in &config.telegram.agents {
            kinds.entry(agent.clone()).or_default().push(switchboard_channel_telegram::ENDPOINT_KIND.into());
        }
    }
    #[cfg(feature = "channel-email")]
    if config.email.enabled {
        for agent in config.email.agents.keys() {
            kinds.entry(agent.clone()).or_default().push(switchboard_channel_email::ENDPOINT_KIND.into());
        }
    }
    #[cfg(feature = "channel-matrix")]
    if config.matrix.enabled {
        for agent in config.matrix.agents.keys() {
            kinds.entry(agent.clone()).or_default().push(switchboard_channel_matrix::ENDPOINT_KIND.into());
        }
    }
    #[cfg(feature = "channel-slack")]
    if config.slack.enabled {
        for agent in config.slack.agents.keys() {
            kinds.entry(agent.clone()).or_default().push(switchboard_channel_slack::ENDPOINT_KIND.into());
        }
    }
    let _ = config;
    kinds
}

/// The agent endpoint deliverers of the enabled channels; `groups` are the routing groups whose
/// leading routers answer for the queue (the team rooms' live boards).
pub fn agent_endpoints(config: &ChannelsConfig, groups: &[String]) -> anyhow::Result<Vec<(&'static str, Component)>> {
    #[allow(unused_mut)]
    let mut components: Vec<(&'static str, Component)> = Vec::new();
    #[cfg(feature = "channel-webhook")]
    // Runs with no agents in the file too: agents defined at runtime register their endpoints.
    if config.webhook.enabled {
        components.push(("agent-webhook", webhook::agent_endpoints(&config.webhook)?));
    }
    #[cfg(feature = "channel-email")]
    if config.email.enabled
        && let Some(agents) = switchboard_channel_email::agent_mail(&config.email).context("channels.email")?
    {
        components.push((
            "agent-email",
            Box::new(move |bus, stop| Box::pin(async move { agents.run(bus, stop).await.map_err(|e| e.to_string()) })),
        ));
    }
    #[cfg(feature = "channel-telegram")]
    if config.telegram.enabled && !config.telegram.agents.is_empty() {
        let agents = switchboard_channel_telegram::agent_chats(&config.telegram).context("channels.telegram")?;
        components.push((
            "agent-telegram",
            Box::new(move |bus, stop| Box::pin(async move { agents.run(bus, stop).await.map_err(|e| e.to_string()) })),
        ));
    }
    #[cfg(feature = "channel-matrix")]
    if config.matrix.enabled {
        let agents = switchboard_channel_matrix::MatrixAgents::new(&config.matrix, groups.to_vec())
            .context("channels.matrix")?;
        components.push(("agent-matrix", Box::new(move |bus, stop| Box::pin(agents.run(bus, stop)))));
    }
    #[cfg(feature = "channel-slack")]
    if config.slack.enabled {
        let slack = switchboard_channel_slack::Slack::new(&config.slack).context("channels.slack")?;
        components.push((
            "agent-slack",
            Box::new(move |bus, stop| {
                Box::pin(async move { slack.run_deliveries(bus, stop).await.map_err(|e| e.to_string()) })
            }),
        ));
        if !config.slack.team_channels.is_empty() {
            let slack = switchboard_channel_slack::Slack::new(&config.slack).context("channels.slack")?;
            let groups = groups.to_vec();
            components.push(("slack-board", Box::new(move |bus, stop| Box::pin(slack.run_board(bus, groups, stop)))));
        }
    }
    let _ = (config, groups);
    Ok(components)
}

/// Builds every enabled channel. Problems that only disable part of a channel (a source without
/// its secret) are logged with the reason; hard configuration errors are returned.
pub fn build(
    config: &ChannelsConfig,
    group: &str,
    bus: &BusSlot,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<BuiltChannel>> {
    #[allow(unused_mut)]
    let mut built = Vec::new();
    #[cfg(feature = "channel-webhook")]
    if config.webhook.enabled {
        built.push(webhook::build(&config.webhook, bus, shutdown)?);
    }
    #[cfg(feature = "channel-email")]
    if config.email.enabled {
        let channel =
            switchboard_channel_email::EmailChannel::new(&config.email, bus.clone()).context("channels.email")?;
        let runtime = switchboard_adapter::ChannelRuntime::new(
            std::sync::Arc::new(channel),
            config.email.runtime.clone(),
            bus.clone(),
            shutdown.clone(),
        );
        built.push(BuiltChannel {
            name: switchboard_channel_email::CHANNEL,
            routes: None,
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
            reconfigure: None,
        });
    }
    #[cfg(feature = "channel-telegram")]
    if config.telegram.enabled {
        let channel = switchboard_channel_telegram::TelegramChannel::new(&config.telegram, bus.clone())
            .context("channels.telegram")?;
        let runtime = switchboard_adapter::ChannelRuntime::new(
            std::sync::Arc::new(channel),
            config.telegram.runtime.clone(),
            bus.clone(),
            shutdown.clone(),
        );
        built.push(BuiltChannel {
            name: switchboard_channel_telegram::CHANNEL,
            routes: runtime.routes(),
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
            reconfigure: None,
        });
    }
    #[cfg(feature = "channel-webchat")]
    if config.webchat.enabled {
        let channel = switchboard_channel_webchat::WebchatChannel::new(&config.webchat, group, bus.clone())
            .context("channels.webchat")?;
        let runtime = switchboard_adapter::ChannelRuntime::new(
            std::sync::Arc::new(channel),
            config.webchat.runtime.clone(),
            bus.clone(),
            shutdown.clone(),
        );
        built.push(BuiltChannel {
            name: switchboard_channel_webchat::CHANNEL,
            routes: runtime.routes(),
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
            reconfigure: None,
        });
    }
    #[cfg(feature = "channel-slack")]
    if config.slack.enabled {
        built.push(slack::build(&config.slack, bus, shutdown)?);
    }
    #[cfg(feature = "channel-whatsapp")]
    if config.whatsapp.enabled {
        let channel = switchboard_channel_whatsapp::WhatsAppChannel::new(&config.whatsapp, bus.clone())
            .context("channels.whatsapp")?;
        let runtime = switchboard_adapter::ChannelRuntime::new(
            std::sync::Arc::new(channel),
            config.whatsapp.runtime.clone(),
            bus.clone(),
            shutdown.clone(),
        );
        built.push(BuiltChannel {
            name: switchboard_channel_whatsapp::CHANNEL,
            routes: runtime.routes(),
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
            reconfigure: None,
        });
    }
    #[cfg(feature = "channel-vk")]
    if config.vk.enabled {
        let channel = switchboard_channel_vk::VkChannel::new(&config.vk, bus.clone()).context("channels.vk")?;
        let runtime = switchboard_adapter::ChannelRuntime::new(
            std::sync::Arc::new(channel),
            config.vk.runtime.clone(),
            bus.clone(),
            shutdown.clone(),
        );
        built.push(BuiltChannel {
            name: switchboard_channel_vk::CHANNEL,
            routes: runtime.routes(),
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
            reconfigure: None,
        });
    }
    #[cfg(feature = "example-sms")]
    if config.sms.enabled {
        let token = config.sms.token().context("channels.sms")?;
        let channel = switchboard_example_sms::SmsChannel::new(&config.sms, token).context("channels.sms")?;
        let runtime = switchboard_adapter::ChannelRuntime::new(
            std::sync::Arc::new(channel),
            config.sms.runtime.clone(),
            bus.clone(),
            shutdown.clone(),
        );
        built.push(BuiltChannel {
            name: switchboard_example_sms::CHANNEL,
            routes: runtime.routes(),
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
            reconfigure: None,
        });
    }
    let _ = (config, group, bus, shutdown);
    Ok(built)
}

#[cfg(feature = "channel-webhook")]
mod webhook {
    use std::sync::Arc;

    use anyhow::Context;
    use switchboard_adapter::ChannelRuntime;
    use switchboard_bus::BusSlot;
    use switchboard_channel_webhook::{
        AgentEndpoint, AgentEndpoints, SecretLookup, Source, WebhookChannel, WebhookConfig,
    };
    use tokio_util::sync::CancellationToken;
    use tracing::{info, warn};

    use super::{BuiltChannel, Component, Reconfigure};

    pub fn agent_endpoints(config: &WebhookConfig) -> anyhow::Result<Component> {
        let mut endpoints = std::collections::BTreeMap::new();
        for (agent, endpoint) in &config.agents {
            match endpoint.resolve_secret(agent).with_context(|| format!("channels.webhook.agents.{agent}"))? {
                SecretLookup::Found(key) => {
                    endpoints.insert(agent.clone(), AgentEndpoint { url: endpoint.url.clone(), key: Arc::from(key) });
                }
                SecretLookup::Missing(reason) => {
                    warn!(agent = %agent, %reason, "agent webhook endpoint disabled: no signing secret");
                }
            }
        }
        let timeout = std::time::Duration::from_millis(config.request_timeout_ms);
        let guard = switchboard_channel_webhook::guard::AddressGuard::new(&config.allowed_networks)
            .map_err(|e| anyhow::anyhow!("channels.webhook.allowed_networks: {e}"))?;
        let deliverer =
            AgentEndpoints::new(endpoints, timeout, config.runtime.clone(), guard).map_err(anyhow::Error::msg)?;
        Ok(Box::new(move |bus, stop| {
            Box::pin(async move { deliverer.run(bus, stop).await.map_err(|e| e.to_string()) })
        }))
    }

    /// The configured sources whose secrets can be read; one without its secret is disabled
    /// (logged), one whose secret is invalid is an error.
    fn resolve_sources(config: &WebhookConfig) -> anyhow::Result<Vec<Source>> {
        let mut sources = Vec::new();
        for (name, source) in &config.sources {
            match source.resolve_secret(name).with_context(|| format!("channels.webhook.sources.{name}"))? {
                SecretLookup::Found(key) => {
                    let previous = source
                        .resolve_previous_secret(name)
                        .with_context(|| format!("channels.webhook.sources.{name}"))?;
                    info!(source = %name, outbound = source.outbound_url.is_some(), rotating = previous.is_some(), "webhook source enabled");
                    sources.push(Source {
                        name: name.clone(),
                        key: Arc::from(key),
                        previous_key: previous.map(Arc::from),
                        outbound_url: source.outbound_url.clone(),
                    });
                }
                SecretLookup::Missing(reason) => {
                    warn!(source = %name, %reason, "webhook source disabled: no signing secret");
                }
            }
        }
        Ok(sources)
    }

    pub fn build(config: &WebhookConfig, bus: &BusSlot, shutdown: &CancellationToken) -> anyhow::Result<BuiltChannel> {
        let channel = WebhookChannel::new(config.clone(), resolve_sources(config)?).context("channels.webhook")?;
        let live = channel.clone();
        // Secrets are read again on every reload: a rotated secret file applies even when the
        // configuration file itself did not change.
        let reconfigure: Reconfigure = Box::new(move |next| {
            let next = next.webhook.clone();
            let sources = resolve_sources(&next).map_err(|e| format!("{e:#}"))?;
            let live = live.clone();
            Ok(Box::new(move || live.reconfigure(&next, sources)))
        });
        let runtime = ChannelRuntime::new(Arc::new(channel), config.runtime.clone(), bus.clone(), shutdown.clone());
        Ok(BuiltChannel {
            name: switchboard_channel_webhook::CHANNEL,
            routes: runtime.routes(),
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
            reconfigure: Some(reconfigure),
        })
    }
}

#[cfg(feature = "channel-slack")]
mod slack {
    use anyhow::Context;
    use switchboard_adapter::{AdapterError, Health, HealthStatus};
    use switchboard_bus::BusSlot;
    use switchboard_channel_slack::{Slack, SlackConfig, SlackMode};
    use tokio_util::sync::CancellationToken;

    use super::BuiltChannel;

    /// Slack's inbound side: the Events API routes, or the Socket Mode connection (started once
    /// the bus is up). Deliveries and boards are agent endpoints ([`super::agent_endpoints`]).
    pub fn build(config: &SlackConfig, bus: &BusSlot, shutdown: &CancellationToken) -> anyhow::Result<BuiltChannel> {
        let slack = Slack::new(config).context("channels.slack")?;
        let health = Health::default();
        let routes = slack.routes(bus.clone());
        let (bus, stop, h) = (bus.clone(), shutdown.clone(), health.clone());
        let start: Box<dyn FnOnce() -> tokio::task::JoinHandle<Result<(), AdapterError>> + Send> =
            Box::new(move || {
                tokio::spawn(async move {
                    let bus = bus.get().map_err(AdapterError::Bus)?.clone();
                    // A wrong or revoked token shows on /readyz at once, not at the first offer.
                    let refused = match slack.check_token().await {
                        Ok(_) => false,
                        Err(e) if e.retryable => {
                            tracing::warn!(error = %e, "cannot check the Slack bot token now (auth.test)");
                            false
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the Slack bot token is refused (auth.test)");
                            h.set(HealthStatus::Degraded(format!("Slack bot token refused: {}", e.reason)));
                            true
                        }
                    };
                    match slack.mode() {
                        SlackMode::Socket => slack.run_socket(bus, stop, h).await.map_err(AdapterError::Other),
                        SlackMode::Events => {
                            if !refused {
                                h.set(HealthStatus::Ready);
                            }
                            stop.cancelled().await;
                            Ok(())
                        }
                    }
                })
            });
        Ok(BuiltChannel { name: switchboard_channel_slack::CHANNEL, routes, health, start, reconfigure: None })
    }
}
