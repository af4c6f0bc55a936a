//! The bus side every agent chat endpoint shares: its deliveries consumed from
//! `sb.agent.out.<kind>`, and an agent's action published as a `command/1`.

use std::future::Future;

use switchboard_bus::{Bus, BusError, Delivery, HandlerError};
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{AgentCommand, AgentDelivery, CommandAction, Contract};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{PublishedCommand, RuntimeConfig, SendError, publish_command};

/// Consumes `sb.agent.out.<kind>` (durable and dead-letter component `agent-<kind>`) until
/// `shutdown`, handing each delivery to `deliver`: acked once it returns `Ok`, retried after the
/// wait a platform asked for, retried or dead-lettered by `runtime`'s rules otherwise.
pub async fn run_deliveries<F, Fut>(
    bus: Bus,
    kind: &str,
    runtime: &RuntimeConfig,
    shutdown: CancellationToken,
    deliver: F,
) -> Result<(), BusError>
where
    F: Fn(Bus, AgentDelivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), SendError>> + Send + 'static,
{
    let component = format!("agent-{kind}");
    let spec = runtime
        .consumer_spec(&component, streams::AGENT, &component, &subjects::agent_out(kind))
        .also(&subjects::agent_out_filter(kind));
    let inner = bus.clone();
    bus.run_consumer(spec, shutdown, move |d: Delivery| {
        let sent = d.decode::<AgentDelivery>().map(|delivery| deliver(inner.clone(), delivery));
        async move { sent?.await.map_err(HandlerError::from) }
    })
    .await
}

/// Publishes `action` as `agent`'s command `id` (derived from the platform's event, so a
/// redelivered event is the same command); its verdict can be awaited on the result.
pub async fn publish_action(
    bus: &Bus,
    agent: &str,
    conversation: Option<Uuid>,
    id: Uuid,
    action: CommandAction,
) -> Result<PublishedCommand, String> {
    let command = AgentCommand {
        id,
        agent_id: agent.into(),
        conversation_id: conversation,
        issued_at: chrono::Utc::now(),
        action,
    };
    command.validate().map_err(|e| e.to_string())?;
    publish_command(bus, &command).await.map_err(|e| e.to_string())
}
