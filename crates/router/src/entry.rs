//! What the router journals: every input it acts on, with the time it acts on it.

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentCommand, Envelope};
use switchboard_routing::Ms;
use uuid::Uuid;

/// One journal entry. The leader fills in everything that is not a pure function of the state
/// (the time, a fresh conversation id), so that replay is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A customer message arrived.
    Inbound {
        /// When the router took it, in ms since the epoch.
        at: Ms,
        /// The message.
        envelope: Box<Envelope>,
        /// The id a new conversation gets if the message opens one.
        new_conversation: Uuid,
    },
    /// An agent (or an integration on its behalf) issued a command.
    Command {
        /// When the router took it.
        at: Ms,
        /// The command.
        command: Box<AgentCommand>,
    },
    /// Time passed: timers due by then fire.
    Tick {
        /// The time.
        at: Ms,
    },
}

impl Entry {
    /// The entry's time.
    pub fn at(&self) -> Ms {
        match self {
            Entry::Inbound { at, .. } | Entry::Command { at, .. } | Entry::Tick { at } => *at,
        }
    }
}
