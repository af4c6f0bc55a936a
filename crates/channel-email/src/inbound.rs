//! One watched mailbox: fetch what is new since the cursor, turn each message into an envelope (or
//! a bounce record, an agent command, a dead letter), mark it handled only after that is stored,
//! then advance the cursor. IDLE waits for new mail; polling when the server has no IDLE.
//!
//! The cursor (`email.cursor.<mailbox>` in `sb_channels`) holds UIDVALIDITY and the last UID
//! handled. The order publish → mark → cursor means a crash can only repeat the last message, and
//! JetStream's de-duplication (the message's dedupe id) drops the repeat.

use std::collections::HashMap;
use std::time::Duration;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use switchboard_adapter::{HealthStatus, Inbound};
use switchboard_core::contract::buckets;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::EmailError;
use crate::handle::{Handler, Outcome};
use crate::imap::{Connector, ImapSession};

/// Messages fetched per round trip while catching up.
const BATCH: usize = 64;
/// Bytes fetched per round trip at most (a single bigger message is fetched alone).
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Where a mailbox stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The folder's UIDVALIDITY when `last_uid` was handled; a new value voids the UIDs.
    pub uid_validity: u32,
    /// The highest UID handled.
    pub last_uid: u32,
}

/// The `sb_channels` key of a mailbox's cursor.
pub fn cursor_key(mailbox: &str) -> String {
    format!("email.cursor.{mailbox}")
}

/// Watches one mailbox until shutdown, reconnecting with back-off.
pub struct MailboxWatcher {
    connector: Connector,
    handler: Handler,
}

impl MailboxWatcher {
    /// A watcher for the mailbox `connector` reaches, handing messages to `handler`.
    pub fn new(connector: Connector, handler: Handler) -> MailboxWatcher {
        MailboxWatcher { connector, handler }
    }

    /// Runs until `inbound.shutdown()`; connection trouble is retried with back-off and reported
    /// in the channel's health.
    pub async fn run(&self, inbound: Inbound) {
        let backoff = switchboard_bus::Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(60) };
        let mut failures = 0;
        let shutdown = inbound.shutdown().clone();
        while !shutdown.is_cancelled() {
            let started = std::time::Instant::now();
            match self.session(&inbound, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    // A session that ran a while was healthy: start the back-off over.
                    failures = if started.elapsed() > Duration::from_secs(60) { 1 } else { failures + 1 };
                    let wait = backoff.delay(failures);
                    warn!(mailbox = %self.connector.name(), error = %e, retry_in_ms = wait.as_millis() as u64, "mailbox session failed");
                    inbound.health().set(HealthStatus::Degraded(format!("mailbox {}: {e}", self.connector.name())));
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn err(&self, reason: impl std::fmt::Display) -> EmailError {
        EmailError::imap(self.connector.name(), reason)
    }

    /// One connected session: catch up, then wait for more, until shutdown or an error.
    async fn session(&self, inbound: &Inbound, shutdown: &CancellationToken) -> Result<(), EmailError> {
        let cfg = self.connector.config().clone();
        let mut session = self.connector.connect().await?;
        let selected =
            session.select(&cfg.folder).await.map_err(|e| self.err(format!("select {}: {e}", cfg.folder)))?;
        let uid_validity = selected.uid_validity.unwrap_or(0);
        let idle = cfg.idle
            && session.capabilities().await.map_err(|e| self.err(format!("capabilities: {e}")))?.has_str("IDLE");
        let kv = self
            .handler
            .bus()?
            .jetstream()
            .get_key_value(buckets::CHANNELS)
            .await
            .map_err(|e| self.err(format!("cursor bucket: {e}")))?;
        let key = cursor_key(self.connector.name());
        let mut cursor = match kv.get(&key).await.map_err(|e| self.err(format!("read cursor: {e}")))? {
            Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
            None => Cursor::default(),
        };
        if cursor.uid_validity != uid_validity {
            if cursor.uid_validity != 0 {
                // The server renumbered the folder: UIDs mean nothing now. Unseen mail is what is
                // left to do; de-duplication drops what was published before.
                warn!(mailbox = %self.connector.name(), old = cursor.uid_validity, new = uid_validity, "UIDVALIDITY changed; rescanning unseen mail");
            }
            cursor = Cursor { uid_validity, last_uid: 0 };
        }
        info!(mailbox = %self.connector.name(), folder = %cfg.folder, idle, last_uid = cursor.last_uid, "watching mailbox");
        inbound.health().set(HealthStatus::Ready);
        loop {
            self.catch_up(&mut session, &mut cursor, inbound, &kv, &key).await?;
            if shutdown.is_cancelled() {
                let _ = session.logout().await;
                return Ok(());
            }
            let wait = Duration::from_secs(cfg.poll_secs);
            if idle {
                let mut handle = session.idle();
                handle.init().await.map_err(|e| self.err(format!("IDLE: {e}")))?;
                let (changed, stop) = handle.wait_with_timeout(wait);
                let stopped = tokio::select! {
                    r = changed => { r.map_err(|e| self.err(format!("IDLE: {e}")))?; false }
                    _ = shutdown.cancelled() => true,
                };
                drop(stop);
                session = handle.done().await.map_err(|e| self.err(format!("IDLE done: {e}")))?;
                if stopped {
                    let _ = session.logout().await;
                    return Ok(());
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {
                        let _ = session.logout().await;
                        return Ok(());
                    }
                }
                session.noop().await.map_err(|e| self.err(format!("NOOP: {e}")))?;
            }
        }
    }

    /// Handles every message after the cursor, in UID order.
    async fn catch_up(
        &self,
        session: &mut ImapSession,
        cursor: &mut Cursor,
        inbound: &Inbound,
        kv: &async_nats::jetstream::kv::Store,
        key: &str,
    ) -> Result<(), EmailError> {
        let query = if cursor.last_uid == 0 { "UNSEEN".to_string() } else { format!("UID {}:*", cursor.last_uid + 1) };
        let found = session.uid_search(&query).await.map_err(|e| self.err(format!("search: {e}")))?;
        // `n:*` always matches the highest UID, even one at or below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > cursor.last_uid).collect();
        uids.sort_unstable();
        if !uids.is_empty() {
            debug!(mailbox = %self.connector.name(), count = uids.len(), "new mail");
        }
        // Sizes first, so a batch stays small in memory.
        for chunk in uids.chunks(BATCH) {
            let sizes = self.sizes(session, chunk).await?;
            let mut batch: Vec<u32> = Vec::new();
            let mut bytes = 0u64;
            for &uid in chunk {
                let size = sizes.get(&uid).copied().unwrap_or(0);
                if !batch.is_empty() && bytes + size > BATCH_BYTES {
                    self.handle_batch(session, &batch, cursor, inbound, kv, key).await?;
                    (batch, bytes) = (Vec::new(), 0);
                }
                batch.push(uid);
                bytes += size;
            }
            if !batch.is_empty() {
                self.handle_batch(session, &batch, cursor, inbound, kv, key).await?;
            }
            if inbound.shutdown().is_cancelled() {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn sizes(&self, session: &mut ImapSession, uids: &[u32]) -> Result<HashMap<u32, u64>, EmailError> {
        let fetches = session
            .uid_fetch(uid_set(uids), "(UID RFC822.SIZE)")
            .await
            .map_err(|e| self.err(format!("fetch sizes: {e}")))?;
        let fetched: Vec<_> = fetches.try_collect().await.map_err(|e| self.err(format!("fetch sizes: {e}")))?;
        Ok(fetched.into_iter().filter_map(|f| Some((f.uid?, u64::from(f.size?)))).collect())
    }

    /// Fetches a batch in one round trip, handles each message in UID order, then marks the ones
    /// handled and moves the cursor once. A message that could not be stored stops the batch:
    /// what came before it is marked, it and what follows are tried again.
    async fn handle_batch(
        &self,
        session: &mut ImapSession,
        uids: &[u32],
        cursor: &mut Cursor,
        inbound: &Inbound,
        kv: &async_nats::jetstream::kv::Store,
        key: &str,
    ) -> Result<(), EmailError> {
        let fetches =
            session.uid_fetch(uid_set(uids), "(UID BODY.PEEK[])").await.map_err(|e| self.err(format!("fetch: {e}")))?;
        let fetched: Vec<_> = fetches.try_collect().await.map_err(|e| self.err(format!("fetch: {e}")))?;
        let mut bodies: HashMap<u32, Vec<u8>> =
            fetched.into_iter().filter_map(|f| Some((f.uid?, f.body()?.to_vec()))).collect();
        let mut done = Vec::new();
        let mut failure = None;
        for &uid in uids {
            // Expunged between the search and the fetch: nothing to do.
            let Some(raw) = bodies.remove(&uid) else { continue };
            let raw_ref = format!("imap:{}:{}:{uid}", self.connector.name(), cursor.uid_validity);
            let outcome = self.handler.handle(&raw, &raw_ref, inbound).await?;
            debug!(mailbox = %self.connector.name(), uid, raw_ref, outcome = outcome.name(), "message handled");
            if let Outcome::Retry(reason) = outcome {
                failure = Some(format!("uid {uid}: {reason}"));
                break;
            }
            done.push(uid);
        }
        if let Some(&last) = done.last() {
            self.mark_handled(session, &done).await?;
            cursor.last_uid = last;
            let value = serde_json::to_vec(cursor).unwrap_or_default();
            kv.put(key, value.into()).await.map_err(|e| self.err(format!("store cursor: {e}")))?;
        }
        match failure {
            // Not stored anywhere: left unmarked, tried again on the next session.
            Some(reason) => Err(self.err(reason)),
            None => Ok(()),
        }
    }

    async fn mark_handled(&self, session: &mut ImapSession, uids: &[u32]) -> Result<(), EmailError> {
        let set = uid_set(uids);
        match &self.connector.config().move_to {
            Some(folder) => {
                session.uid_mv(&set, folder).await.map_err(|e| self.err(format!("move to {folder}: {e}")))?
            }
            None => {
                let updates = session
                    .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                    .await
                    .map_err(|e| self.err(format!("mark seen: {e}")))?;
                let _: Vec<_> = updates.try_collect().await.map_err(|e| self.err(format!("mark seen: {e}")))?;
            }
        }
        Ok(())
    }
}

/// `1,2,5`: an IMAP UID set.
fn uid_set(uids: &[u32]) -> String {
    uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}
