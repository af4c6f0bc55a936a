//! Team rooms: each team's live queue as one message, edited in place (`m.replace`) whenever
//! its text changes (driven by `agent_chat::QueueBoard`). The board message's event id is kept
//! in KV (`matrix.board.<team>`), so a restart edits the same message. An encrypted team room
//! gets no board: the bot does not take part in encrypted rooms.

use switchboard_adapter::agent_chat::{self, QueueBoard, QueueSnapshot};
use switchboard_bus::Bus;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::agents::MatrixAgents;
use crate::format::{self, Html, Text};

impl MatrixAgents {
    /// Keeps the configured teams' boards until `stop` (run by the sync lease's holder only, so
    /// two processes never edit the same board).
    pub(crate) async fn run_boards(&self, bus: Bus, stop: CancellationToken) -> Result<(), String> {
        let teams: Vec<String> = self.inner.team_rooms.keys().cloned().collect();
        if teams.is_empty() {
            return Ok(());
        }
        let board = QueueBoard::new(self.inner.groups.clone(), teams);
        let this = self.clone();
        let inner_bus = bus.clone();
        board
            .run(bus, stop, move |snapshot| {
                let (this, bus) = (this.clone(), inner_bus.clone());
                async move { this.show_board(&bus, snapshot).await }
            })
            .await
    }

    /// Shows one team's board: edits its message, or posts it the first time.
    async fn show_board(&self, bus: &Bus, snapshot: QueueSnapshot) -> Result<(), String> {
        let Some(room) = self.inner.team_rooms.get(&snapshot.team) else { return Ok(()) };
        let client = &self.inner.client;
        if client.state(room, "m.room.encryption", "").await.map_err(|e| e.to_string())?.is_some() {
            warn!(team = %snapshot.team, "the team room is encrypted; no queue board there (end-to-end encryption is not supported)");
            return Ok(());
        }
        let state = self.state(bus).await?;
        let content = format::message(
            "m.notice",
            &agent_chat::render_board(&Text, &snapshot),
            &agent_chat::render_board(&Html, &snapshot),
        );
        let txn = format!("sb.board.{}", uuid::Uuid::now_v7());
        match state.board(&snapshot.team).await? {
            Some(event) => {
                client
                    .send(room, "m.room.message", &txn, &format::replacement(&event, content))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            None => {
                let event = client.send(room, "m.room.message", &txn, &content).await.map_err(|e| e.to_string())?;
                state.set_board(&snapshot.team, &event).await?;
            }
        }
        Ok(())
    }
}
