//! Socket Mode (<https://api.slack.com/apis/socket-mode>), for deployments without a public URL:
//! `apps.connections.open` with the app-level token gives a WebSocket URL; Slack sends `hello`,
//! then envelopes (`events_api`, `interactive`, `slash_commands`) that the app acks with
//! `{"envelope_id": ...}` (and a slash command's answer as the ack's `payload`) once the command is
//! stored on the bus: an envelope not acked is sent again, and its command id makes it act once.
//! On `disconnect` or a closed socket the client connects again, backing off while it fails.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_adapter::{Health, HealthStatus};
use switchboard_bus::Bus;
use switchboard_bus::outcomes::{self, InboundOutcome};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::handler::Answer;
use crate::payload::{self, Incoming};
use crate::{CHANNEL, Slack};

/// The first wait after a failed connection; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The largest frame accepted from Slack (its envelopes carry one event each).
const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Why one connection ended.
enum Ended {
    /// Slack asked to reconnect (`disconnect`) or closed the socket: connect again at once.
    Reconnect,
    /// The token fired.
    Stopped,
}

impl Slack {
    /// Runs Socket Mode until `stop`, connecting again whenever the socket ends.
    pub async fn run_socket(self, bus: Bus, stop: CancellationToken, health: Health) -> Result<(), String> {
        let Some(app_token) = self.inner.app_token.clone() else {
            return Err("Socket Mode needs app_token_env or app_token_file".into());
        };
        let api = self.inner.api.with_token(&app_token);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let attempt = async {
                let opened = api.call("apps.connections.open", &json!({})).await.map_err(|e| e.reason)?;
                let url = opened["url"].as_str().ok_or("apps.connections.open: no url")?.to_string();
                self.connection(&bus, &url, &stop, &health).await
            };
            let result = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = attempt => r,
            };
            match result {
                Ok(Ended::Stopped) => return Ok(()),
                Ok(Ended::Reconnect) => backoff = FIRST_BACKOFF,
                Err(e) => {
                    warn!(error = %e, wait_ms = backoff.as_millis() as u64, "slack socket mode: connection failed; trying again");
                    health.set(HealthStatus::Degraded(format!("Socket Mode: {e}")));
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One WebSocket connection, until Slack ends it or `stop` fires.
    async fn connection(
        &self,
        bus: &Bus,
        url: &str,
        stop: &CancellationToken,
        health: &Health,
    ) -> Result<Ended, String> {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .map_err(|e| format!("connect the socket: {e}"))?;
        loop {
            let frame = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = ws.close(None).await;
                    return Ok(Ended::Stopped);
                }
                frame = ws.next() => frame,
            };
            let text = match frame {
                None => return Ok(Ended::Reconnect),
                Some(Err(e)) => return Err(format!("socket: {e}")),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) => {
                    info!("slack socket mode: closed by Slack; connecting again");
                    return Ok(Ended::Reconnect);
                }
                // Pings are answered by the library.
                Some(Ok(_)) => continue,
            };
            let Ok(envelope) = serde_json::from_str::<Value>(text.as_str()) else {
                warn!("slack socket mode: unreadable frame skipped");
                continue;
            };
            match envelope["type"].as_str().unwrap_or_default() {
                "hello" => {
                    info!("slack socket mode connected");
                    health.set(HealthStatus::Ready);
                }
                "disconnect" => {
                    info!(
                        reason = envelope["reason"].as_str().unwrap_or_default(),
                        "slack socket mode: asked to reconnect"
                    );
                    let _ = ws.close(None).await;
                    return Ok(Ended::Reconnect);
                }
                kind => {
                    let Some(id) = envelope["envelope_id"].as_str().map(str::to_string) else { continue };
                    let Some(answer) = self.envelope(bus, kind, &envelope["payload"]).await else {
                        // Not stored: no ack, so Slack sends it again.
                        continue;
                    };
                    let mut ack = json!({ "envelope_id": id });
                    if let Answer::Json(payload) = answer {
                        ack["payload"] = payload;
                    }
                    ws.send(Message::Text(ack.to_string().into())).await.map_err(|e| format!("ack: {e}"))?;
                }
            }
        }
    }

    /// One envelope's payload handled; `None` when it was not stored (to be sent again).
    async fn envelope(&self, bus: &Bus, kind: &str, payload: &Value) -> Option<Answer> {
        let incoming = match kind {
            "events_api" if payload["type"] == "event_callback" => payload::event(payload),
            "interactive" => payload::interaction(payload),
            "slash_commands" => {
                let fields = payload
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                    .unwrap_or_default();
                payload::command(&fields)
            }
            other => Ok(Incoming::Ignored(format!("envelope {other}"))),
        };
        let incoming = match incoming {
            Ok(i) => i,
            Err(e) => {
                debug!(error = %e, "unreadable slack envelope acked and skipped");
                outcomes::record(CHANNEL, InboundOutcome::Rejected);
                return Some(Answer::Empty);
            }
        };
        match self.handle(bus, incoming).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                warn!(error = %e, "slack envelope not stored; not acked, Slack will send it again");
                None
            }
        }
    }
}
