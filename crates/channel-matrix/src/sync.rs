//! The one process that holds the lease `agent.matrix` syncs: it opens the agents' rooms, joins
//! the team rooms (accepting their invites), reads events from the stored sync position and
//! stores the next one only after every event before it was handled, so a restart neither skips
//! nor repeats (a repeated event's command id is the same). It also keeps the team boards.

use std::time::Duration;

use serde_json::Value;
use switchboard_bus::Bus;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::agents::MatrixAgents;

/// The lease (in `sb_router`) only its holder syncs under.
pub const LEASE: &str = "agent.matrix";

/// The most events of one room read back after a sync left a gap (the daemon was down while
/// much happened); older ones are skipped with a warning.
const MAX_GAP_EVENTS: usize = 1000;

/// How long the lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(15);

/// The sync filter: room timelines (up to 100 events per sync) and state; nothing the bot does
/// not read (presence, typing, receipts, account data).
const FILTER: &str = r#"{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},"room":{"timeline":{"limit":100},"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]},"state":{"lazy_load_members":true}}}"#;

impl MatrixAgents {
    /// Contends for the lease and syncs while holding it, until `stop`.
    pub(crate) async fn run_exclusive(&self, bus: Bus, stop: CancellationToken) -> Result<(), String> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let holder = format!("{host}:{}:{}", std::process::id(), uuid::Uuid::now_v7());
        loop {
            let mut lease = match bus.acquire_lease(LEASE, &holder, LEASE_TTL, &stop).await {
                Ok(Some(lease)) => lease,
                Ok(None) => return Ok(()),
                Err(e) => {
                    warn!(lease = LEASE, error = %e, "cannot contend for the Matrix sync lease; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            info!(lease = LEASE, "syncing with the Matrix homeserver here");
            let held = stop.child_token();
            let work = {
                let (this, bus, held) = (self.clone(), bus.clone(), held.clone());
                async move {
                    let boards = tokio::spawn({
                        let (this, bus, held) = (this.clone(), bus.clone(), held.clone());
                        async move { this.run_boards(bus, held).await }
                    });
                    let synced = this.sync_loop(&bus, &held).await;
                    held.cancel();
                    if let Ok(Err(e)) = boards.await {
                        warn!(error = %e, "team boards stopped");
                    }
                    synced
                }
            };
            tokio::pin!(work);
            let mut renew = tokio::time::interval(lease.renew_every());
            let lost = loop {
                tokio::select! {
                    outcome = &mut work => {
                        lease.release().await;
                        return outcome;
                    }
                    _ = renew.tick() => {
                        if let Err(lost) = lease.renew().await {
                            break lost;
                        }
                    }
                }
            };
            warn!(lease = LEASE, error = %lost, "Matrix sync lease lost; stopping and contending again");
            held.cancel();
            if let Err(e) = work.await {
                warn!(error = %e, "Matrix sync stopped with an error after losing its lease");
            }
        }
    }

    /// Checks (retrying while the homeserver cannot be reached) that the access token is the
    /// configured bot's; `Ok(false)` when `stop` fired first.
    pub(crate) async fn check_token(&self, stop: &CancellationToken) -> Result<bool, String> {
        let mut attempt = 0u32;
        let me = loop {
            match self.inner.client.whoami().await {
                Ok(me) => break me,
                Err(e) if e.retryable() => {
                    attempt += 1;
                    warn!(error = %e, attempt, "cannot reach the Matrix homeserver; retrying");
                    if pause(stop, attempt).await {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(format!("the Matrix access token was refused: {e}")),
            }
        };
        if me != self.inner.bot {
            return Err(format!("the Matrix access token is {me}'s, not channels.matrix.user_id {}'s", self.inner.bot));
        }
        Ok(true)
    }

    /// Opens missing agent rooms and joins team rooms, then syncs until `stop`.
    async fn sync_loop(&self, bus: &Bus, stop: &CancellationToken) -> Result<(), String> {
        let client = &self.inner.client;
        let state = self.state(bus).await?.clone();
        for agent in self.inner.agents.keys() {
            if let Err(e) = self.room_for(&state, agent).await {
                warn!(agent = %agent, error = %e.reason, "cannot open the agent's Matrix room yet");
            }
        }
        for (team, room) in &self.inner.team_rooms {
            if let Err(e) = client.join(room).await {
                warn!(team = %team, error = %e, "cannot join the team room yet (invite the bot to it)");
            }
        }
        let mut attempt = 0u32;
        loop {
            let since = state.since().await?;
            let synced = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                synced = client.sync(since.as_deref(), self.inner.sync_timeout, FILTER) => synced,
            };
            let batch = match synced {
                Ok(batch) => batch,
                Err(e) => {
                    attempt += 1;
                    warn!(error = %e, attempt, "Matrix sync failed; retrying");
                    if pause(stop, attempt).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            let Some(next) = batch["next_batch"].as_str() else { continue };
            if let Err(e) = self.handle_batch(bus, &batch, since.as_deref()).await {
                attempt += 1;
                warn!(error = %e, attempt, "cannot handle a Matrix sync batch; it is read again");
                if pause(stop, attempt).await {
                    return Ok(());
                }
                continue;
            }
            attempt = 0;
            state.set_since(next).await?;
        }
    }

    /// One sync batch: team-room invites accepted, then every joined room's new events in order.
    /// The first sync (no stored position) only takes the position: what happened before the
    /// endpoint ever ran is not acted on. A room whose new events did not all fit (`limited`)
    /// has the missing ones read back first, so a long downtime loses nothing (within a bound).
    async fn handle_batch(&self, bus: &Bus, batch: &Value, since: Option<&str>) -> Result<(), String> {
        if let Some(invites) = batch["rooms"]["invite"].as_object() {
            for room in invites.keys() {
                if let Some((team, _)) = self.inner.team_rooms.iter().find(|(_, r)| *r == room) {
                    match self.inner.client.join(room).await {
                        Ok(()) => info!(team = %team, "joined the team room"),
                        Err(e) => warn!(team = %team, error = %e, "cannot join the team room"),
                    }
                }
            }
        }
        let Some(since) = since else { return Ok(()) };
        // Rooms the bot left or was removed from: an agent's is forgotten (the next delivery
        // opens a new one).
        if let Some(left) = batch["rooms"]["leave"].as_object() {
            let state = self.state(bus).await?;
            for room in left.keys() {
                if let Some(agent) = state.agent_of(room).await? {
                    info!(agent = %agent, "the bot is no longer in the agent's Matrix room; the next delivery opens a new one");
                    state.unlink(&agent, room).await?;
                } else if let Some((team, _)) = self.inner.team_rooms.iter().find(|(_, r)| *r == room) {
                    warn!(team = %team, "the bot was removed from the team room; invite it again for the queue board");
                }
            }
        }
        let Some(joined) = batch["rooms"]["join"].as_object() else { return Ok(()) };
        for (room, r) in joined {
            if r["timeline"]["limited"] == true
                && let Some(gap_end) = r["timeline"]["prev_batch"].as_str()
            {
                for event in self.gap(room, gap_end, since).await? {
                    self.handle_event(bus, room, &event).await?;
                }
            }
            for event in r["timeline"]["events"].as_array().into_iter().flatten() {
                self.handle_event(bus, room, event).await?;
            }
        }
        Ok(())
    }
}

impl MatrixAgents {
    /// The events of `room` between the stored position `since` and `gap_end` (a limited
    /// timeline's `prev_batch`), oldest first, at most [`MAX_GAP_EVENTS`].
    async fn gap(&self, room: &str, gap_end: &str, since: &str) -> Result<Vec<Value>, String> {
        let mut events = Vec::new();
        let mut from = gap_end.to_string();
        loop {
            let (chunk, next) = self
                .inner
                .client
                .messages_back(room, &from, since, 100)
                .await
                .map_err(|e| format!("read a gap: {e}"))?;
            events.extend(chunk);
            match next {
                Some(next) if events.len() < MAX_GAP_EVENTS => from = next,
                Some(_) => {
                    warn!(
                        skipped_after = MAX_GAP_EVENTS,
                        "a Matrix room had too many events while nobody synced; the oldest were skipped"
                    );
                    break;
                }
                None => break,
            }
        }
        events.truncate(MAX_GAP_EVENTS);
        events.reverse();
        info!(events = events.len(), "read back the events a sync left out");
        Ok(events)
    }
}

/// Waits before the next attempt (1, 2, 4 ... up to 30 s); `true` when `stop` fired meanwhile.
async fn pause(stop: &CancellationToken, attempt: u32) -> bool {
    let wait = Duration::from_secs(1u64 << attempt.min(5)).min(Duration::from_secs(30));
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}
