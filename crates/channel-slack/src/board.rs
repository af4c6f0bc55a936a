//! A team channel's live queue: one message per team (`chat.postMessage` once, its `ts` in KV
//! `slack.board.<team>`, then `chat.update`), rewritten whenever the team's board changed
//! ([`QueueBoard`]). A board message someone deleted is posted anew.

use serde_json::json;
use switchboard_adapter::agent_chat::{QueueBoard, QueueSnapshot, render_board};
use switchboard_bus::Bus;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::markup::{MAX_SECTION_CHARS, Mrkdwn};
use crate::{Slack, blocks, state};

impl Slack {
    /// Keeps each `team_channels` team's board up to date until `stop`; `groups` are the routing
    /// groups whose routers hold the queues.
    pub async fn run_board(self, bus: Bus, groups: Vec<String>, stop: CancellationToken) -> Result<(), String> {
        let teams: Vec<String> = self.inner.teams.keys().cloned().collect();
        if teams.is_empty() {
            return Ok(());
        }
        let board = QueueBoard::new(groups, teams);
        let inner_bus = bus.clone();
        board
            .run(bus, stop, move |snapshot| {
                let (this, bus) = (self.clone(), inner_bus.clone());
                async move { this.show(&bus, &snapshot).await }
            })
            .await
    }

    /// Writes one team's board into its channel.
    async fn show(&self, bus: &Bus, snapshot: &QueueSnapshot) -> Result<(), String> {
        let Some(channel) = self.inner.teams.get(&snapshot.team) else { return Ok(()) };
        let mut text = render_board(&Mrkdwn, snapshot);
        if text.chars().count() > MAX_SECTION_CHARS {
            text = text.chars().take(MAX_SECTION_CHARS - 1).collect::<String>() + "…";
        }
        let kv = self.kv(bus).await?.clone();
        let key = state::key_board(&snapshot.team);
        let body = |ts: Option<&str>| {
            let mut b =
                json!({ "channel": channel, "text": blocks::fallback(&text), "blocks": [blocks::section(&text)] });
            if let Some(ts) = ts {
                b["ts"] = json!(ts);
            }
            b
        };
        if let Some(ts) = state::get(&kv, key.clone()).await? {
            match self.inner.api.call("chat.update", &body(Some(&ts))).await {
                Ok(_) => return Ok(()),
                Err(e) if e.reason.ends_with("message_not_found") => {}
                Err(e) => return Err(e.reason),
            }
        }
        let posted = self.inner.api.call("chat.postMessage", &body(None)).await.map_err(|e| e.reason)?;
        let ts = posted["ts"].as_str().ok_or("chat.postMessage: no ts")?.to_string();
        state::put(&kv, key, ts).await.map_err(|e| e.reason)?;
        info!(team = %snapshot.team, "posted the team's queue board in Slack");
        Ok(())
    }
}
