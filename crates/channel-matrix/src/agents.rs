//! Deliveries to agents (`sb.agent.out.matrix`): each agent's direct room (opened by the bot,
//! re-used after restarts, refused when encrypted), offers with the bot's ✅/❌ reactions, a
//! thread per conversation, customer files uploaded into it, and used offers edited to say what
//! became of them. Every send carries a transaction id derived from the delivery, so a retry (or
//! a redelivery after a crash) gets the homeserver's first answer back instead of a second message.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchboard_adapter::agent_chat::{self, Buttons, Markup, Verdicts};
use switchboard_adapter::{PublishedCommand, SendError};
use switchboard_bus::Bus;
use switchboard_core::{AgentDelivery, CommandAction};
use tokio::sync::OnceCell;
use tracing::{info, warn};
use uuid::Uuid;

use crate::client::MatrixClient;
use crate::format::{self, ACCEPT, DECLINE, Html, MAX_HTML_BYTES, MAX_TEXT_BYTES, PREFIX, Text};
use crate::state::{State, Thread, h};

/// What the bot says in a room it refuses because it is encrypted.
pub const ENCRYPTED_NOTICE: &str = "This room is end-to-end encrypted. Switchboard does not take part in encrypted \
     rooms: it would have to hold the room's keys for every agent's device, and customers' messages must stay \
     readable to the routing and its audit trail. It no longer uses this room; your next conversation opens in a \
     new, unencrypted room.";

/// How long a command waits for the router's verdict before it is left as received.
pub(crate) const VERDICT_WAIT: Duration = Duration::from_secs(3);

/// How many commands' verdicts are awaited at once.
const VERDICTS_AT_ONCE: usize = 64;

/// The Matrix agent endpoint: the bot, its agents and team rooms.
#[derive(Clone)]
pub struct MatrixAgents {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub client: MatrixClient,
    /// The bot's user id.
    pub bot: String,
    /// Agent id → Matrix user id.
    pub agents: BTreeMap<String, String>,
    /// Matrix user id → agent id.
    pub users: BTreeMap<String, String>,
    /// Team → room id.
    pub team_rooms: BTreeMap<String, String>,
    /// Routing groups, whose queues the team boards show.
    pub groups: Vec<String>,
    pub max_file_bytes: u64,
    pub sync_timeout: Duration,
    state: OnceCell<State>,
    /// Rooms this process found unencrypted (checked once each).
    checked: Mutex<HashSet<String>>,
    pub verdicts: Verdicts,
}

impl MatrixAgents {
    /// The endpoint for `cfg`; `groups` are the routing groups whose queues the team rooms show.
    pub fn new(cfg: &crate::MatrixConfig, groups: Vec<String>) -> Result<MatrixAgents, crate::MatrixConfigError> {
        cfg.validate()?;
        let token = cfg.access_token()?;
        let client = MatrixClient::new(&cfg.homeserver, &token)
            .map_err(|reason| crate::MatrixConfigError { key: "homeserver".into(), reason })?;
        let users = cfg.agents.iter().map(|(a, u)| (u.clone(), a.clone())).collect();
        let inner = Inner {
            client,
            bot: cfg.user_id.clone(),
            agents: cfg.agents.clone(),
            users,
            team_rooms: cfg.team_rooms.clone(),
            groups,
            max_file_bytes: cfg.max_file_bytes,
            sync_timeout: Duration::from_secs(cfg.sync_timeout_secs),
            state: OnceCell::new(),
            checked: Mutex::default(),
            verdicts: Verdicts::new(VERDICTS_AT_ONCE),
        };
        Ok(MatrixAgents { inner: Arc::new(inner) })
    }

    pub(crate) async fn state(&self, bus: &Bus) -> Result<&State, String> {
        self.inner.state.get_or_try_init(|| State::open(bus)).await
    }

    /// The agent's direct room: the linked one while it is usable, else a new one the bot opens
    /// (private, direct, the agent invited, not encrypted).
    pub async fn room_for(&self, state: &State, agent: &str) -> Result<String, SendError> {
        if let Some(room) = state.room(agent).await.map_err(SendError::retryable)?
            && self.usable(state, agent, &room).await?
        {
            return Ok(room);
        }
        let user = self.inner.agents.get(agent).ok_or_else(|| no_matrix_user(agent))?;
        let body = json!({
            "preset": "trusted_private_chat",
            "is_direct": true,
            "invite": [user],
            "name": "Switchboard",
            "topic": "Conversations Switchboard offers you. React ✅/❌ to offers; answer in each conversation's thread.",
        });
        let room = self.inner.client.create_room(&body).await?;
        let linked = state.link(agent, &room).await.map_err(SendError::retryable)?;
        if linked != room {
            // Another process linked a room first: use that one.
            let _ = self.inner.client.leave(&room).await;
        } else {
            info!(agent = %agent, "opened a direct Matrix room for the agent");
        }
        self.inner.checked.lock().unwrap_or_else(|p| p.into_inner()).insert(linked.clone());
        Ok(linked)
    }

    /// Whether `room` may be used: not refused before, and not encrypted (asked once per process).
    async fn usable(&self, state: &State, agent: &str, room: &str) -> Result<bool, SendError> {
        if self.inner.checked.lock().unwrap_or_else(|p| p.into_inner()).contains(room) {
            return Ok(true);
        }
        if state.refused(room).await.map_err(SendError::retryable)?.is_some() {
            return Ok(false);
        }
        if self.inner.client.state(room, "m.room.encryption", "").await?.is_some() {
            self.refuse_room(state, agent, room).await.map_err(SendError::retryable)?;
            return Ok(false);
        }
        self.inner.checked.lock().unwrap_or_else(|p| p.into_inner()).insert(room.to_string());
        Ok(true)
    }

    /// An agent's room turned out encrypted: the agent is told there (in plain text, which every
    /// client shows), the room is forgotten and left; the next delivery opens a new one.
    pub(crate) async fn refuse_room(&self, state: &State, agent: &str, room: &str) -> Result<(), String> {
        warn!(agent = %agent, "the agent's Matrix room is encrypted; refusing it (end-to-end encryption is not supported)");
        state.refuse(room, "encrypted").await?;
        state.unlink(agent, room).await?;
        self.inner.checked.lock().unwrap_or_else(|p| p.into_inner()).remove(room);
        let notice = format::message("m.notice", ENCRYPTED_NOTICE, &Html.italic(ENCRYPTED_NOTICE));
        if let Err(e) =
            self.inner.client.send(room, "m.room.message", &format!("sb.refused.{}", h(room)), &notice).await
        {
            warn!(error = %e, "cannot tell the agent why their room is refused");
        }
        if let Err(e) = self.inner.client.leave(room).await {
            warn!(error = %e, "cannot leave a refused room");
        }
        Ok(())
    }

    /// Sends one delivery to its agent's room: an offer as a new message (the root of the
    /// conversation's thread) with ✅/❌ reactions; messages and updates into the thread; the
    /// customer's files after the text. A retry sends only what the homeserver has not got.
    pub async fn deliver(&self, bus: &Bus, delivery: &AgentDelivery) -> Result<(), SendError> {
        let (id, agent, conversation) = match delivery {
            AgentDelivery::Offer(o) => (o.id, &o.agent_id, o.conversation_id),
            AgentDelivery::Message(m) => (m.id, &m.agent_id, m.conversation_id),
            AgentDelivery::Update(u) => (u.id, &u.agent_id, u.conversation_id),
        };
        if !self.inner.agents.contains_key(agent) {
            return Err(no_matrix_user(agent));
        }
        let client = &self.inner.client;
        let state = self.state(bus).await.map_err(SendError::retryable)?;
        let room = self.room_for(state, agent).await?;
        let mut thread =
            state.thread(agent, conversation).await.map_err(SendError::retryable)?.filter(|t| t.room == room);
        // What became of the conversation shows on its offer before anything new is sent.
        if let (AgentDelivery::Update(u), Some(t)) = (delivery, thread.as_mut())
            && let Some(label) = agent_chat::settled_label(&u.change)
        {
            self.settle(state, agent, conversation, t, label).await?;
        }
        let (html, buttons) = agent_chat::compose(&Html, delivery, MAX_HTML_BYTES, PREFIX);
        let (plain, _) = agent_chat::compose(&Text, delivery, MAX_TEXT_BYTES, PREFIX);
        let txn = |step: &str| format!("sb.{id}.{step}");
        let text = format::message("m.text", &plain, &html);
        let root = match (delivery, thread) {
            (AgentDelivery::Message(_) | AgentDelivery::Update(_), Some(t)) => {
                let sent = client.send(&room, "m.room.message", &txn("text"), &format::in_thread(text, &t.root)).await;
                let event = self.gone(state, agent, &room, sent).await?;
                state.remember(&event, conversation).await.map_err(SendError::retryable)?;
                t.root
            }
            // An offer, or the first message of a conversation this room has no thread for: a
            // new thread's root.
            _ => {
                let sent = client.send(&room, "m.room.message", &txn("text"), &text).await;
                let event = self.gone(state, agent, &room, sent).await?;
                state.remember(&event, conversation).await.map_err(SendError::retryable)?;
                let mut t = Thread {
                    room: room.clone(),
                    root: event.clone(),
                    offer: None,
                    offer_text: None,
                    reactions: Vec::new(),
                    settled: None,
                };
                if matches!(delivery, AgentDelivery::Offer(_)) {
                    t.offer = Some(event.clone());
                    t.offer_text = Some((plain.clone(), html.clone()));
                }
                if buttons == Buttons::AcceptDecline {
                    for (step, key) in [("accept", ACCEPT), ("decline", DECLINE)] {
                        let r = client.send(&room, "m.reaction", &txn(step), &format::reaction(&event, key)).await?;
                        t.reactions.push(r);
                    }
                }
                state.set_thread(agent, conversation, &t).await.map_err(SendError::retryable)?;
                event
            }
        };
        for (i, a) in agent_chat::files_of(delivery).into_iter().enumerate() {
            let bytes = match switchboard_adapter::read_attachment(bus, &a.object, self.inner.max_file_bytes).await {
                Ok(bytes) => bytes,
                Err(e) if !e.retryable => {
                    // Gone from the store (its retention ended) or over the limit: the text names it.
                    warn!(error = %e.reason, "a customer's file cannot be shown to the agent");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let size = bytes.len();
            let mxc = client.upload(bytes, &a.content_type, &a.filename).await?;
            let content = json!({
                "msgtype": format::file_msgtype(&a.content_type),
                "body": a.filename,
                "filename": a.filename,
                "url": mxc,
                "info": { "mimetype": a.content_type, "size": size },
            });
            let event = client
                .send(&room, "m.room.message", &txn(&format!("file.{i}")), &format::in_thread(content, &root))
                .await?;
            state.remember(&event, conversation).await.map_err(SendError::retryable)?;
        }
        Ok(())
    }

    /// A send to the agent's room refused because the bot is not in it any more (the agent kicked
    /// it, or the room is gone): the room is forgotten and the delivery tried again, which opens a
    /// new room, instead of being dead-lettered.
    async fn gone(
        &self,
        state: &State,
        agent: &str,
        room: &str,
        sent: Result<String, crate::MatrixError>,
    ) -> Result<String, SendError> {
        match sent {
            Err(e) if e.errcode == "M_FORBIDDEN" || e.errcode == "M_NOT_FOUND" => {
                warn!(agent = %agent, error = %e, "the bot cannot write to the agent's Matrix room; opening a new one");
                state.unlink(agent, room).await.map_err(SendError::retryable)?;
                self.inner.checked.lock().unwrap_or_else(|p| p.into_inner()).remove(room);
                Err(SendError::retryable(format!(
                    "the agent's room refused the bot ({}); a new one is opened",
                    e.errcode
                )))
            }
            other => other.map_err(SendError::from),
        }
    }

    /// Edits the conversation's offer to say what became of it (`label`) and takes the bot's
    /// reactions off it; done once per label.
    pub(crate) async fn settle(
        &self,
        state: &State,
        agent: &str,
        conversation: Uuid,
        t: &mut Thread,
        label: &str,
    ) -> Result<(), SendError> {
        let (Some(offer), Some((plain, html))) = (&t.offer, &t.offer_text) else { return Ok(()) };
        if t.settled.as_deref() == Some(label) {
            return Ok(());
        }
        let client = &self.inner.client;
        let content =
            format::message("m.text", &format!("{plain}\n\n{label}"), &format!("{html}\n\n{}", Html.bold(label)));
        let txn = format!("sb.settle.{}.{}", h(offer), h(label));
        client.send(&t.room, "m.room.message", &txn, &format::replacement(offer, content)).await?;
        for r in &t.reactions {
            if let Err(e) = client.redact(&t.room, r, &format!("sb.unreact.{}", h(r))).await
                && !e.not_found()
            {
                return Err(e.into());
            }
        }
        t.settled = Some(label.to_string());
        t.reactions.clear();
        state.set_thread(agent, conversation, t).await.map_err(SendError::retryable)
    }

    /// A short notice from the bot in `room` (in the thread of `root` when given); best effort.
    pub(crate) async fn notice(&self, room: &str, root: Option<&str>, txn: &str, text: &str) {
        let mut content = format::message("m.notice", text, &Html.escape(text));
        if let Some(root) = root {
            content = format::in_thread(content, root);
        }
        if let Err(e) = self.inner.client.send(room, "m.room.message", txn, &content).await {
            warn!(error = %e, "cannot send a notice to an agent's room");
        }
    }

    /// Publishes an agent's command; its verdict is awaited apart.
    pub(crate) async fn command(
        &self,
        bus: &Bus,
        agent: &str,
        conversation: Option<Uuid>,
        id: Uuid,
        action: CommandAction,
    ) -> Result<PublishedCommand, String> {
        agent_chat::publish_action(bus, agent, conversation, id, action).await
    }
}

fn no_matrix_user(agent: &str) -> SendError {
    SendError::permanent(format!("agent {agent} has no Matrix user id in channels.matrix.agents"))
}
