//! Hand-built event streams for the metrics tests.

#![allow(dead_code)]

use switchboard_core::{Event, EventKind};
use uuid::Uuid;

/// Builds events with increasing ids; times are in seconds from the epoch.
#[derive(Default)]
pub struct Stream {
    pub events: Vec<Event>,
    n: u64,
}

pub fn conv(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn push(&mut self, secs: i64, kind: EventKind, c: Option<u128>, agent: Option<&str>, data: serde_json::Value) {
        self.n += 1;
        let mut bits = [0u8; 10];
        bits[..8].copy_from_slice(&self.n.to_be_bytes());
        let id = uuid::Builder::from_unix_timestamp_millis((secs * 1000) as u64, &bits).into_uuid();
        let data = match data {
            serde_json::Value::Object(m) => m,
            _ => Default::default(),
        };
        self.events.push(Event {
            id,
            at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            kind,
            conversation_id: c.map(conv),
            agent_id: agent.map(str::to_string),
            channel: c.map(|_| self.channel_of(c)),
            data,
        });
    }

    fn channel_of(&self, c: Option<u128>) -> String {
        // Odd conversations are chats, even ones emails: enough to cut by channel.
        if c.unwrap_or(1) % 2 == 1 { "webchat".into() } else { "email".into() }
    }

    /// Opened at L1 in team `support` with priority 50 (P3), unless `routing` says otherwise.
    pub fn opened(&mut self, secs: i64, c: u128) {
        self.opened_with(secs, c, "support", "L1", 50);
    }

    pub fn opened_with(&mut self, secs: i64, c: u128, team: &str, tier: &str, priority: u8) {
        let data = serde_json::json!({ "repeat": false, "team": team, "tier": tier, "priority": priority });
        self.push(secs, EventKind::ConversationOpened, Some(c), None, data);
    }

    pub fn offered(&mut self, secs: i64, c: u128, agent: &str) {
        self.push(secs, EventKind::Offered, Some(c), Some(agent), serde_json::json!({}));
    }

    pub fn assigned(&mut self, secs: i64, c: u128, agent: &str) {
        self.push(secs, EventKind::Assigned, Some(c), Some(agent), serde_json::json!({}));
    }

    pub fn replied(&mut self, secs: i64, c: u128, agent: &str, within_sla: Option<bool>) {
        let data = match within_sla {
            Some(w) => serde_json::json!({ "first_response": true, "within_sla": w }),
            None => serde_json::json!({ "first_response": false }),
        };
        self.push(secs, EventKind::AgentReplied, Some(c), Some(agent), data);
    }

    pub fn resolved(&mut self, secs: i64, c: u128, agent: Option<&str>) {
        self.push(secs, EventKind::Resolved, Some(c), agent, serde_json::json!({}));
    }

    pub fn reopened(&mut self, secs: i64, c: u128) {
        self.push(secs, EventKind::ConversationReopened, Some(c), None, serde_json::json!({}));
    }

    pub fn transferred(&mut self, secs: i64, c: u128, from: &str, team: &str) {
        let data = serde_json::json!({ "to_agent": null, "team": team });
        self.push(secs, EventKind::Transferred, Some(c), Some(from), data);
    }

    pub fn escalated(&mut self, secs: i64, c: u128, cause: &str, tier: &str) {
        let data = serde_json::json!({ "cause": cause, "tier": tier, "team": "support" });
        self.push(secs, EventKind::Escalated, Some(c), None, data);
    }

    pub fn breached(&mut self, secs: i64, c: u128) {
        self.push(secs, EventKind::SlaBreached, Some(c), None, serde_json::json!({}));
    }

    pub fn csat(&mut self, secs: i64, c: u128, score: u8) {
        self.push(secs, EventKind::CsatReceived, Some(c), None, serde_json::json!({ "score": score }));
    }

    pub fn nps(&mut self, secs: i64, c: u128, score: serde_json::Value) {
        self.push(secs, EventKind::NpsReceived, Some(c), None, serde_json::json!({ "score": score }));
    }

    pub fn ces(&mut self, secs: i64, c: u128, score: serde_json::Value) {
        self.push(secs, EventKind::CesReceived, Some(c), None, serde_json::json!({ "score": score }));
    }

    pub fn status(&mut self, secs: i64, agent: &str, status: &str) {
        self.push(secs, EventKind::AgentStatusChanged, None, Some(agent), serde_json::json!({ "status": status }));
    }
}
