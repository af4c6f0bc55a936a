//! What the endpoint remembers, in KV `sb_channels` (so any process delivers and a restart
//! re-uses everything): each agent's direct room, which conversation a message belongs to, each
//! conversation's thread and offer, the team boards' messages and the sync position.
//!
//! Keys: `matrix.since` (the sync token), `matrix.room.<agent>` (the agent's room id),
//! `matrix.roomof.<h(room)>` (the agent of a room), `matrix.event.<h(event)>` (a conversation by
//! one of its messages), `matrix.conv.<agent>.<conversation>` ([`Thread`]), `matrix.board.<team>`
//! (the board message's event id), `matrix.refused.<h(room)>` (a room refused, and why). Matrix
//! ids hold characters KV keys cannot, so they are hashed (`h`: 128 bits of SHA-256, hex).

use async_nats::jetstream::kv::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_bus::Bus;
use switchboard_core::contract::buckets;
use uuid::Uuid;

/// A conversation's place in an agent's room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// The room.
    pub room: String,
    /// The thread's root: the offer (or first message) of the conversation.
    pub root: String,
    /// The latest offer's event, to edit when it is used.
    #[serde(default)]
    pub offer: Option<String>,
    /// The offer's text as sent (plain, HTML), so an edit can keep it and add what became of it.
    #[serde(default)]
    pub offer_text: Option<(String, String)>,
    /// The bot's ✅/❌ reactions under the offer, taken away once it is used.
    #[serde(default)]
    pub reactions: Vec<String>,
    /// What the offer was marked with last ("✓ Accepted", ...).
    #[serde(default)]
    pub settled: Option<String>,
}

/// A Matrix id as a KV key part.
pub fn h(id: &str) -> String {
    hex::encode(&Sha256::digest(id.as_bytes())[..16])
}

/// An agent id as a KV key part: as written when KV allows it, else hashed.
fn agent_part(agent: &str) -> String {
    match !agent.is_empty() && agent.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        true => agent.to_string(),
        false => h(agent),
    }
}

/// The endpoint's keys in `sb_channels`.
#[derive(Clone)]
pub struct State {
    kv: Store,
}

impl State {
    /// The bucket, looked up once.
    pub async fn open(bus: &Bus) -> Result<State, String> {
        let kv =
            bus.jetstream().get_key_value(buckets::CHANNELS).await.map_err(|e| format!("channel state bucket: {e}"))?;
        Ok(State { kv })
    }

    async fn get(&self, key: String) -> Result<Option<String>, String> {
        let value = self.kv.get(key).await.map_err(|e| format!("read channel state: {e}"))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    async fn put(&self, key: String, value: String) -> Result<(), String> {
        self.kv.put(key, value.into()).await.map(drop).map_err(|e| format!("write channel state: {e}"))
    }

    async fn purge(&self, key: String) -> Result<(), String> {
        self.kv.purge(key).await.map_err(|e| format!("write channel state: {e}"))
    }

    /// The sync position (`next_batch` of the last sync handled).
    pub async fn since(&self) -> Result<Option<String>, String> {
        self.get("matrix.since".into()).await
    }

    /// Stores the sync position, after every event before it was handled.
    pub async fn set_since(&self, token: &str) -> Result<(), String> {
        self.put("matrix.since".into(), token.into()).await
    }

    /// The agent's direct room.
    pub async fn room(&self, agent: &str) -> Result<Option<String>, String> {
        self.get(format!("matrix.room.{}", agent_part(agent))).await
    }

    /// Links `room` to `agent` unless another process linked one first; the room in use after.
    pub async fn link(&self, agent: &str, room: &str) -> Result<String, String> {
        let key = format!("matrix.room.{}", agent_part(agent));
        let linked = match self.kv.create(key.as_str(), room.to_string().into()).await {
            Ok(_) => room.to_string(),
            Err(_) => match self.get(key.clone()).await? {
                Some(other) => other,
                None => {
                    self.put(key, room.into()).await?;
                    room.to_string()
                }
            },
        };
        self.put(format!("matrix.roomof.{}", h(&linked)), agent.into()).await?;
        Ok(linked)
    }

    /// Forgets the agent's room (it was refused or the agent left): the next delivery opens another.
    pub async fn unlink(&self, agent: &str, room: &str) -> Result<(), String> {
        if self.room(agent).await?.as_deref() == Some(room) {
            self.purge(format!("matrix.room.{}", agent_part(agent))).await?;
        }
        self.purge(format!("matrix.roomof.{}", h(room))).await
    }

    /// The agent whose direct room `room` is.
    pub async fn agent_of(&self, room: &str) -> Result<Option<String>, String> {
        let Some(agent) = self.get(format!("matrix.roomof.{}", h(room))).await? else { return Ok(None) };
        // Only while the agent's link names this room too (a refused room acts for nobody).
        Ok((self.room(&agent).await?.as_deref() == Some(room)).then_some(agent))
    }

    /// Marks `room` refused (encrypted), with why.
    pub async fn refuse(&self, room: &str, why: &str) -> Result<(), String> {
        self.put(format!("matrix.refused.{}", h(room)), why.into()).await
    }

    /// Why `room` was refused, if it was.
    pub async fn refused(&self, room: &str) -> Result<Option<String>, String> {
        self.get(format!("matrix.refused.{}", h(room))).await
    }

    /// Remembers that `event` belongs to `conversation`.
    pub async fn remember(&self, event: &str, conversation: Uuid) -> Result<(), String> {
        self.put(format!("matrix.event.{}", h(event)), conversation.to_string()).await
    }

    /// The conversation `event` belongs to.
    pub async fn conversation_of(&self, event: &str) -> Result<Option<Uuid>, String> {
        Ok(self.get(format!("matrix.event.{}", h(event))).await?.and_then(|c| c.parse().ok()))
    }

    /// The conversation's thread in the agent's room.
    pub async fn thread(&self, agent: &str, conversation: Uuid) -> Result<Option<Thread>, String> {
        let raw = self.get(format!("matrix.conv.{}.{conversation}", agent_part(agent))).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Stores the conversation's thread.
    pub async fn set_thread(&self, agent: &str, conversation: Uuid, thread: &Thread) -> Result<(), String> {
        let value = serde_json::to_string(thread).map_err(|e| e.to_string())?;
        self.put(format!("matrix.conv.{}.{conversation}", agent_part(agent)), value).await
    }

    /// The team board's message.
    pub async fn board(&self, team: &str) -> Result<Option<String>, String> {
        self.get(format!("matrix.board.{}", agent_part(team))).await
    }

    /// Stores the team board's message.
    pub async fn set_board(&self, team: &str, event: &str) -> Result<(), String> {
        self.put(format!("matrix.board.{}", agent_part(team)), event.into()).await
    }
}
