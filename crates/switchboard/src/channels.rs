//! The one place channels are registered: each behind its Cargo feature, built from its config.

use switchboard_adapter::{AdapterError, Health};
use switchboard_bus::BusSlot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ChannelsConfig;

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
}

/// Builds every enabled channel. Problems that only disable part of a channel (a source without
/// its secret) are logged with the reason; hard configuration errors are returned.
pub fn build(
    config: &ChannelsConfig,
    bus: &BusSlot,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<BuiltChannel>> {
    #[allow(unused_mut)]
    let mut built = Vec::new();
    #[cfg(feature = "channel-webhook")]
    if config.webhook.enabled {
        built.push(webhook::build(&config.webhook, bus, shutdown)?);
    }
    let _ = (config, bus, shutdown);
    Ok(built)
}

#[cfg(feature = "channel-webhook")]
mod webhook {
    use std::sync::Arc;

    use anyhow::Context;
    use switchboard_adapter::ChannelRuntime;
    use switchboard_bus::BusSlot;
    use switchboard_channel_webhook::{SecretLookup, Source, WebhookChannel, WebhookConfig};
    use tokio_util::sync::CancellationToken;
    use tracing::{info, warn};

    use super::BuiltChannel;

    pub fn build(config: &WebhookConfig, bus: &BusSlot, shutdown: &CancellationToken) -> anyhow::Result<BuiltChannel> {
        let mut sources = Vec::new();
        for (name, source) in &config.sources {
            match source.resolve_secret(name).with_context(|| format!("channels.webhook.sources.{name}"))? {
                SecretLookup::Found(key) => {
                    info!(source = %name, outbound = source.outbound_url.is_some(), "webhook source enabled");
                    sources.push(Source {
                        name: name.clone(),
                        key: Arc::from(key),
                        outbound_url: source.outbound_url.clone(),
                    });
                }
                SecretLookup::Missing(reason) => {
                    warn!(source = %name, %reason, "webhook source disabled: no signing secret");
                }
            }
        }
        let channel = WebhookChannel::new(config.clone(), sources).context("channels.webhook")?;
        let runtime = ChannelRuntime::new(Arc::new(channel), config.runtime.clone(), bus.clone(), shutdown.clone());
        Ok(BuiltChannel {
            name: switchboard_channel_webhook::CHANNEL,
            routes: runtime.routes(),
            health: runtime.health(),
            start: Box::new(move || runtime.spawn()),
        })
    }
}
