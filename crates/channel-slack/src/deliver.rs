//! Deliveries to agents (`sb.agent.out.slack`): an offer is a new message in the agent's DM with
//! the bot (Accept/Decline buttons) and roots the conversation's thread; what follows (customer
//! messages, assignment, failed deliveries, edits) is posted in that thread; an update that settles
//! the conversation replaces the root's buttons with what became of it. A delivery is acked once
//! Slack accepted it; Slack's rate limits are waited out, other failures retried or dead-lettered.

use switchboard_adapter::agent_chat;
use switchboard_adapter::{SendError, read_attachment};
use switchboard_bus::{Bus, BusError};
use switchboard_core::AgentDelivery;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::markup::{MAX_SECTION_CHARS, Mrkdwn};
use crate::state::{self, Root, Sent};
use crate::{ENDPOINT_KIND, Slack, blocks};

/// The prefix of commands typed in a conversation's thread (`!note`, `!resolve`).
pub const THREAD_PREFIX: &str = "!";

impl Slack {
    /// Consumes `sb.agent.out.slack` until `shutdown`: acked once Slack took the message, tried
    /// again after the wait Slack asked for (never dead-lettered for that), retried or
    /// dead-lettered (`sb.dlq.agent-slack`) otherwise.
    pub async fn run_deliveries(self, bus: Bus, shutdown: CancellationToken) -> Result<(), BusError> {
        let runtime = self.inner.runtime.clone();
        agent_chat::run_deliveries(bus, ENDPOINT_KIND, &runtime, shutdown, move |bus, delivery| {
            let this = self.clone();
            async move { this.deliver(&bus, &delivery).await }
        })
        .await
    }

    /// The agent's DM channel with the bot: from KV, or opened with `conversations.open`.
    pub(crate) async fn dm(&self, bus: &Bus, agent: &str) -> Result<String, SendError> {
        let kv = self.kv(bus).await.map_err(SendError::retryable)?;
        if let Some(channel) = state::get(kv, state::key_dm(agent)).await.map_err(SendError::retryable)? {
            return Ok(channel);
        }
        let user =
            self.inner.agents.get(agent).ok_or_else(|| {
                SendError::permanent(format!("agent {agent} has no Slack user in channels.slack.agents"))
            })?;
        let opened = self.inner.api.call("conversations.open", &serde_json::json!({ "users": user })).await?;
        let channel = opened["channel"]["id"]
            .as_str()
            .ok_or_else(|| SendError::permanent("conversations.open: no channel id"))?
            .to_string();
        state::put(kv, state::key_dm(agent), channel.clone()).await?;
        info!(agent, "opened the agent's Slack DM");
        Ok(channel)
    }

    /// Sends one delivery; a retry resumes after what an earlier try got through.
    pub async fn deliver(&self, bus: &Bus, delivery: &AgentDelivery) -> Result<(), SendError> {
        let (id, agent, conversation) = match delivery {
            AgentDelivery::Offer(o) => (o.id, &o.agent_id, o.conversation_id),
            AgentDelivery::Message(m) => (m.id, &m.agent_id, m.conversation_id),
            AgentDelivery::Update(u) => (u.id, &u.agent_id, u.conversation_id),
        };
        if !self.inner.agents.contains_key(agent.as_str()) {
            return Err(SendError::permanent(format!("agent {agent} has no Slack user in channels.slack.agents")));
        }
        let kv = self.kv(bus).await.map_err(SendError::retryable)?.clone();
        let channel = self.dm(bus, agent).await?;
        let root: Option<Root> =
            state::get_json(&kv, state::key_root(agent, conversation)).await.map_err(SendError::retryable)?;
        // What became of the conversation shows on the offer's buttons before anything new is posted.
        if let (AgentDelivery::Update(u), Some(root)) = (delivery, &root)
            && let Some(label) = agent_chat::settled_label(&u.change)
        {
            self.settle(root, label).await?;
            let live: Option<Root> =
                state::get_json(&kv, state::key_live(agent, conversation)).await.map_err(SendError::retryable)?;
            if let Some(live) = live {
                self.settle(&live, label).await?;
                if let Err(e) = kv.purge(state::key_live(agent, conversation)).await {
                    warn!(error = %e, "cannot drop a settled button's record");
                }
            }
        }
        let mut sent: Sent =
            state::get_json(&kv, state::key_sent(id)).await.map_err(SendError::retryable)?.unwrap_or_default();
        let (text, buttons) = agent_chat::compose(&Mrkdwn, delivery, MAX_SECTION_CHARS, THREAD_PREFIX);
        // An offer roots a new thread; the rest goes into the conversation's thread (or, with
        // none known, starts one).
        let thread_ts = match delivery {
            AgentDelivery::Offer(_) => None,
            _ => root.as_ref().filter(|r| r.channel == channel).map(|r| r.ts.clone()),
        };
        let ts = match &sent.ts {
            Some(ts) => ts.clone(),
            None => {
                let mut body = serde_json::json!({
                    "channel": channel,
                    "text": blocks::fallback(&text),
                    "blocks": blocks::message(&text, buttons, conversation),
                    "unfurl_links": false,
                    "unfurl_media": false,
                });
                if let Some(t) = &thread_ts {
                    body["thread_ts"] = serde_json::json!(t);
                }
                let posted = self.inner.api.call("chat.postMessage", &body).await?;
                let ts =
                    posted["ts"].as_str().ok_or_else(|| SendError::permanent("chat.postMessage: no ts"))?.to_string();
                sent.ts = Some(ts.clone());
                state::put_json(&kv, state::key_sent(id), &sent).await?;
                ts
            }
        };
        if thread_ts.is_some() && buttons != agent_chat::Buttons::None {
            // A Resolve button in the thread: replaced too once the conversation is settled.
            let live = Root { channel: channel.clone(), ts: ts.clone(), text: text.clone() };
            state::put_json(&kv, state::key_live(agent, conversation), &live).await?;
        }
        if thread_ts.is_none() {
            // This message roots the conversation's thread: replies under it answer the customer.
            let new_root = Root { channel: channel.clone(), ts: ts.clone(), text: text.clone() };
            state::put_json(&kv, state::key_root(agent, conversation), &new_root).await?;
            state::put(&kv, state::key_thread(&channel, &ts), conversation.to_string()).await?;
        }
        let code = delivery.label().tag;
        state::put(&kv, state::key_code(agent, &code), conversation.to_string()).await?;
        let thread = thread_ts.unwrap_or(ts);
        self.send_files(bus, delivery, &channel, &thread, id, &mut sent).await?;
        if let Err(e) = kv.purge(state::key_sent(id)).await {
            warn!(error = %e, "cannot drop a finished delivery's progress");
        }
        Ok(())
    }

    /// The customer's files a delivery brings, uploaded into the thread after its text.
    async fn send_files(
        &self,
        bus: &Bus,
        delivery: &AgentDelivery,
        channel: &str,
        thread: &str,
        id: Uuid,
        sent: &mut Sent,
    ) -> Result<(), SendError> {
        let files = agent_chat::files_of(delivery);
        if files.is_empty() {
            return Ok(());
        }
        let kv = self.kv(bus).await.map_err(SendError::retryable)?.clone();
        let caption = agent_chat::caption(&Mrkdwn, delivery, 1000);
        for (i, a) in files.iter().enumerate() {
            if i < sent.files {
                continue;
            }
            match read_attachment(bus, &a.object, self.inner.max_file_bytes).await {
                Ok(bytes) => self.inner.api.upload(channel, Some(thread), &a.filename, bytes, Some(&caption)).await?,
                // Gone from the store or over the limit: the text already names it.
                Err(e) if !e.retryable => warn!(error = %e.reason, "a customer's file cannot be shown to the agent"),
                Err(e) => return Err(e),
            }
            sent.files = i + 1;
            state::put_json(&kv, state::key_sent(id), sent).await?;
        }
        Ok(())
    }

    /// Replaces the buttons under a thread's root with `label`.
    pub(crate) async fn settle(&self, root: &Root, label: &str) -> Result<(), SendError> {
        self.settle_message(&root.channel, &root.ts, &root.text, label).await
    }

    /// Replaces the buttons under message `ts` (whose section reads `text`) with `label`.
    pub(crate) async fn settle_message(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        label: &str,
    ) -> Result<(), SendError> {
        let body = serde_json::json!({
            "channel": channel,
            "ts": ts,
            "text": blocks::fallback(text),
            "blocks": blocks::settled(text, label),
        });
        match self.inner.api.call("chat.update", &body).await {
            // Deleted by the agent: nothing left to mark.
            Err(e) if e.reason.ends_with("message_not_found") => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
