//! Agent commands from a channel (an agent's email reply, a Telegram button): published on
//! `sb.agent.in` like any integration's, with the router's verdict awaited so the agent can be told.

use std::time::Duration;

use futures::StreamExt;
use switchboard_bus::{Bus, BusError};
use switchboard_core::AgentCommand;
use switchboard_core::contract::subjects;

/// What the router said about a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Applied.
    Done,
    /// Refused, with the reason (e.g. `unknown conversation`, `not offered to you`).
    Rejected(String),
    /// No answer in time: the command is stored and applies when a router leads again.
    Pending,
}

/// Publishes `command` (its id is the de-duplication id: the same command twice acts once) and
/// waits up to `wait` for the router's verdict.
pub async fn send_command(bus: &Bus, command: &AgentCommand, wait: Duration) -> Result<Verdict, BusError> {
    let id = command.id.to_string();
    // Listen before publishing, so the verdict cannot slip past.
    let verdict = bus.client().subscribe(subjects::router_result(&id)).await;
    bus.publish(subjects::AGENT_IN, command, &id).await?;
    let Ok(mut verdict) = verdict else { return Ok(Verdict::Pending) };
    match tokio::time::timeout(wait, verdict.next()).await {
        Ok(Some(m)) => {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            Ok(match v.get("rejected").and_then(|r| r.as_str()) {
                Some(reason) => Verdict::Rejected(reason.to_string()),
                None => Verdict::Done,
            })
        }
        _ => Ok(Verdict::Pending),
    }
}
