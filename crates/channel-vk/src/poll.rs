//! Events by the Bots Long Poll API: `groups.getLongPollServer` gives a server, key and `ts`,
//! then `a_check` is asked again and again. The `ts` that confirms a batch is stored (KV
//! `sb_channels`, `vk.ts.<group>`) only after every event of the batch was handled (stored and
//! counted), so a restart neither skips nor repeats one (a batch cut short comes again, and what
//! was stored of it is a duplicate). `failed: 1` (the `ts` is too old: events were lost) takes
//! the new `ts`, logged and counted; `failed: 2` (the key expired) asks for a new key, keeping
//! `ts`; `failed: 3` (information lost) asks for a new key and `ts`. The channel runs the poller
//! in one process at a time (the runtime's lease `channel.vk`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use switchboard_adapter::{HealthStatus, Inbound};
use switchboard_core::contract::buckets;
use tracing::{info, warn};

use crate::api::{Api, ApiError, LongPollServer};
use crate::handle::Handler;

/// The `sb_channels` key of a community's long-poll position.
pub fn ts_key(group_id: u64) -> String {
    format!("vk.ts.{group_id}")
}

/// Polls one community's events.
pub struct Poller {
    /// The community's API.
    pub api: Api,
    /// What handles each event.
    pub handler: Handler,
    /// The community.
    pub group_id: u64,
    /// Longest `a_check`, in seconds.
    pub wait: u32,
    /// Times VK said events were lost (`failed` 1 or 3).
    pub lost: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    server: Option<LongPollServer>,
    ts: Option<String>,
    kv: Option<async_nats::jetstream::kv::Store>,
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Poller {
    /// Polls until shutdown; errors are retried with back-off and shown in the health.
    pub async fn run(&self, inbound: Inbound) {
        let shutdown = inbound.shutdown().clone();
        let backoff = switchboard_bus::Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(30) };
        let mut failures = 0;
        let mut state = State::default();
        while !shutdown.is_cancelled() {
            let round = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.round(&inbound, &mut state) => r,
            };
            match round {
                Ok(()) => {
                    failures = 0;
                    inbound.health().set(HealthStatus::Ready);
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff.delay(failures);
                    warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "vk long polling failed");
                    inbound.health().set(HealthStatus::Degraded(format!("vk long polling: {e}")));
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn server(&self) -> Result<LongPollServer, String> {
        self.api.long_poll_server(self.group_id).await.map_err(|e| match e {
            ApiError::Vk { code: 5, message } => format!("VK refused the community token (error 5): {message}"),
            e => format!("groups.getLongPollServer: {e}"),
        })
    }

    async fn store(&self, state: &mut State, ts: String) -> Result<(), String> {
        let kv = state.kv.as_ref().ok_or("no position bucket")?;
        kv.put(ts_key(self.group_id), ts.clone().into()).await.map_err(|e| format!("store ts: {e}"))?;
        state.ts = Some(ts);
        Ok(())
    }

    /// One `a_check` and what it brought.
    async fn round(&self, inbound: &Inbound, state: &mut State) -> Result<(), String> {
        if state.kv.is_none() {
            let bus = inbound.bus().map_err(|e| e.to_string())?;
            let kv = bus.jetstream().get_key_value(buckets::CHANNELS).await.map_err(|e| format!("ts bucket: {e}"))?;
            state.kv = Some(kv);
        }
        if state.ts.is_none()
            && let Some(kv) = &state.kv
        {
            let stored = kv.get(ts_key(self.group_id)).await.map_err(|e| format!("read ts: {e}"))?;
            state.ts = stored.map(|v| String::from_utf8_lossy(&v).into_owned());
            info!(group_id = self.group_id, ts = ?state.ts, "vk long polling starts");
        }
        let server = match &state.server {
            Some(s) => s.clone(),
            None => {
                let server = self.server().await?;
                state.server = Some(server.clone());
                if state.ts.is_none() {
                    // Never polled: from now on.
                    self.store(state, server.ts.clone()).await?;
                }
                server
            }
        };
        let ts = state.ts.clone().unwrap_or_else(|| server.ts.clone());
        let answer = self.api.check(&server, &ts, self.wait).await?;
        match answer["failed"].as_i64() {
            None => {}
            Some(1) => {
                let new = string_of(&answer["ts"]).ok_or("failed: 1 without a ts")?;
                self.lost.fetch_add(1, Ordering::Relaxed);
                warn!(group_id = self.group_id, old_ts = %ts, new_ts = %new, "VK says events were lost (failed: 1); going on from its ts");
                return self.store(state, new).await;
            }
            Some(2) => {
                info!(group_id = self.group_id, "VK long-poll key expired (failed: 2); asking for a new one");
                state.server = None;
                return Ok(());
            }
            Some(3) => {
                let server = self.server().await?;
                self.lost.fetch_add(1, Ordering::Relaxed);
                warn!(group_id = self.group_id, old_ts = %ts, new_ts = %server.ts, "VK lost the long-poll information (failed: 3); new key and ts");
                let new = server.ts.clone();
                state.server = Some(server);
                return self.store(state, new).await;
            }
            Some(other) => return Err(format!("a_check: failed: {other}")),
        }
        let updates = answer["updates"].as_array().ok_or("a_check: no updates")?;
        let next = string_of(&answer["ts"]).ok_or("a_check: no ts")?;
        for update in updates {
            // An error leaves ts where it was: the batch comes again, what was stored of it is a duplicate.
            self.handler.handle(inbound, update).await?;
        }
        if next != ts {
            self.store(state, next).await?;
        }
        Ok(())
    }
}
