//! Agent commands from a channel (an agent's email reply, a Telegram button): published on
//! `sb.agent.in` like any integration's, with the router's verdict awaited so the agent can be told.

use std::time::Duration;

use futures::StreamExt;
use switchboard_bus::{Bus, BusError};
use switchboard_core::contract::{buckets, subjects};
use switchboard_core::{AgentCommand, CommandVerdict};

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
    Ok(publish_command(bus, command).await?.verdict(wait).await)
}

/// A published command whose verdict can be awaited, and awaited again after a `Pending`.
pub struct PublishedCommand {
    verdicts: Option<async_nats::Subscriber>,
    /// The verdict already known: the command id was used before and the router kept its verdict.
    known: Option<Verdict>,
}

/// Publishes `command`, listening for its verdict first so the verdict cannot slip past.
///
/// A command id used before (a retry) is not stored again: JetStream de-duplicates it. Its
/// verdict then comes from the `sb_commands` bucket, where the router keeps it before it
/// announces it, so it is either there already or announced to the subscription made here.
pub async fn publish_command(bus: &Bus, command: &AgentCommand) -> Result<PublishedCommand, BusError> {
    let id = command.id.to_string();
    let verdicts = bus.client().subscribe(subjects::router_result(&id)).await.ok();
    let published = bus.publish(subjects::AGENT_IN, command, &id).await?;
    let known = if published.duplicate { kept_verdict(bus, &command.id).await } else { None };
    Ok(PublishedCommand { verdicts, known })
}

/// The verdict the router kept for command `id`, if any.
async fn kept_verdict(bus: &Bus, id: &uuid::Uuid) -> Option<Verdict> {
    let kv = bus.jetstream().get_key_value(buckets::COMMANDS).await.ok()?;
    let value = kv.get(CommandVerdict::key(id)).await.ok()??;
    serde_json::from_slice::<CommandVerdict>(&value).ok().map(Verdict::from)
}

impl From<CommandVerdict> for Verdict {
    fn from(v: CommandVerdict) -> Verdict {
        match v.rejected {
            Some(reason) => Verdict::Rejected(reason),
            None => Verdict::Done,
        }
    }
}

impl PublishedCommand {
    /// The router's verdict, or `Pending` when none came within `wait`.
    pub async fn verdict(&mut self, wait: Duration) -> Verdict {
        if let Some(known) = &self.known {
            return known.clone();
        }
        let Some(verdicts) = self.verdicts.as_mut() else { return Verdict::Pending };
        match tokio::time::timeout(wait, verdicts.next()).await {
            Ok(Some(m)) => match serde_json::from_slice::<CommandVerdict>(&m.payload) {
                Ok(v) => {
                    let verdict = Verdict::from(v);
                    self.known = Some(verdict.clone());
                    verdict
                }
                Err(_) => Verdict::Pending,
            },
            _ => Verdict::Pending,
        }
    }
}

/// A command id derived from what caused it (`"email:<message id>:0"`, `"telegram:btn:..."`):
/// the same agent mail or button press gives the same id, so fetched or pressed twice it acts once.
pub fn derived_command_id(source: &str) -> uuid::Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("switchboard-command:{source}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_source_gives_the_same_id() {
        use super::derived_command_id as id;
        assert_eq!(id("email:m1@x:0"), id("email:m1@x:0"));
        assert_ne!(id("email:m1@x:0"), id("email:m1@x:1"));
    }
}
