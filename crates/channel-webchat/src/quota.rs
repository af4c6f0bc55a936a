//! What a session may upload, and what happens to files no message attached.
//!
//! Each session's uploads are counted in KV `sb_uploads` under `webchat.<session>`: bytes and
//! files stored so far, the current minute's uploads, and the files a sent message attached.
//! Every change is a compare-and-set on that one key, so several daemon processes serving the
//! same visitor share one count, and it survives restarts. The bucket's max age is the
//! attachments', and every upload or attachment rewrites the key, so a record outlives its files.

use std::collections::{BTreeSet, HashSet};

use async_nats::jetstream::kv;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, streams, subjects};
use tracing::{debug, info, warn};

use crate::server::Shared;
use crate::upload::object_prefix;

/// Chunks without an object are purged only when their last one is at least this old, so that a
/// file being stored is never cut short (chunks of one file follow each other within seconds).
const ORPHAN_MIN_AGE_SECS: u64 = 10;

/// Attempts of one compare-and-set before giving up (another process wrote the key meanwhile).
const CAS_ATTEMPTS: usize = 8;

/// Room a stored file needs beyond its bytes: per-chunk headers and its metadata message.
fn stored_size(bytes: u64) -> u64 {
    bytes + (bytes / (128 * 1024) + 1) * 128 + 1024
}

/// One session's upload accounting, the value of `webchat.<session>` in `sb_uploads`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    /// Bytes of every file the session stored (deleted ones still count: the budget is spent).
    pub bytes: u64,
    /// Files the session stored.
    pub files: u32,
    /// Start of the current one-minute window (Unix seconds).
    pub window_start: i64,
    /// Uploads in that window.
    pub window_files: u32,
    /// Object ids (the part after `webchat/<session>/`) that a sent message attached.
    #[serde(default)]
    pub attached: BTreeSet<String>,
}

/// Why an upload is refused; each maps to one HTTP status and message for the widget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Too many uploads this minute (from the session or the address): 429.
    RateLimited { retry_after_secs: u64 },
    /// The session has not sent a message and already used its uploads before one: 403.
    SendFirst,
    /// The session's byte budget is spent: 403.
    SessionBudget,
    /// The attachments store (or the upload records) reached its budget: 507.
    StorageFull,
    /// NATS did not answer as expected: 503, try again.
    Unavailable(String),
}

/// Whether a JetStream error says a stream is at its byte budget.
pub(crate) fn is_full(error: &str) -> bool {
    error.contains("maximum bytes") || error.contains("insufficient resources")
}

fn key(session: &str) -> String {
    format!("webchat.{session}")
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn bucket(shared: &Shared) -> Result<kv::Store, Refusal> {
    let bus = shared.bus().map_err(|e| Refusal::Unavailable(e.to_string()))?;
    bus.jetstream().get_key_value(buckets::UPLOADS).await.map_err(|e| Refusal::Unavailable(e.to_string()))
}

/// The session's record and its revision (0: none yet).
async fn read(store: &kv::Store, session: &str) -> Result<(UploadRecord, u64), String> {
    match store.entry(key(session)).await.map_err(|e| e.to_string())? {
        Some(entry) if entry.operation == kv::Operation::Put => {
            let record = serde_json::from_slice(&entry.value).map_err(|e| format!("upload record: {e}"))?;
            Ok((record, entry.revision))
        }
        // A deleted key is recreated by updating its tombstone's revision.
        Some(entry) => Ok((UploadRecord::default(), entry.revision)),
        None => Ok((UploadRecord::default(), 0)),
    }
}

/// Writes `record` if the key is still at `revision`; `Ok(false)` when another writer won.
async fn write(store: &kv::Store, session: &str, record: &UploadRecord, revision: u64) -> Result<bool, String> {
    let value = serde_json::to_vec(record).expect("upload records serialise");
    let written = if revision == 0 {
        store
            .create(key(session), value.into())
            .await
            .map(|_| ())
            .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, e.to_string()))
    } else {
        store
            .update(key(session), value.into(), revision)
            .await
            .map(|_| ())
            .map_err(|e| (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.to_string()))
    };
    match written {
        Ok(()) => Ok(true),
        Err((true, _)) => Ok(false),
        Err((false, e)) => Err(e),
    }
}

/// Whether the session has a transcript, i.e. sent a message (agents' entries only follow one).
async fn has_sent(shared: &Shared, session: &str) -> Result<bool, Refusal> {
    let bus = shared.bus().map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let stream = bus.jetstream().get_stream(streams::WEBCHAT).await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
    match stream.direct_get_last_for_subject(subjects::webchat_session(session)).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => Ok(false),
        Err(e) => Err(Refusal::Unavailable(e.to_string())),
    }
}

/// Refuses an upload of `size` bytes when the attachments store cannot take it, before anything
/// is stored (JetStream would refuse it part-way, leaving the chunks already written).
pub(crate) async fn check_store_room(shared: &Shared, size: u64) -> Result<(), Refusal> {
    let bus = shared.bus().map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let mut stream = bus
        .jetstream()
        .get_stream(format!("OBJ_{ATTACHMENTS_STORE}"))
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let info = stream.info().await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let budget = u64::try_from(info.config.max_bytes).unwrap_or(u64::MAX);
    if info.state.bytes.saturating_add(stored_size(size)) > budget {
        return Err(Refusal::StorageFull);
    }
    Ok(())
}

/// Counts an upload of `size` bytes against the session's rate, its quota before its first
/// message and its byte budget, or says why not; nothing is counted when it is refused.
pub(crate) async fn reserve(shared: &Shared, session: &str, size: u64) -> Result<(), Refusal> {
    let cfg = &shared.cfg;
    let store = bucket(shared).await?;
    let mut sent = None;
    for _ in 0..CAS_ATTEMPTS {
        let (mut record, revision) = read(&store, session).await.map_err(Refusal::Unavailable)?;
        let now = now_secs();
        if now - record.window_start >= 60 {
            record.window_start = now;
            record.window_files = 0;
        }
        if record.window_files >= cfg.uploads_per_minute {
            return Err(Refusal::RateLimited { retry_after_secs: (record.window_start + 60 - now).max(1) as u64 });
        }
        if record.files >= cfg.uploads_before_message {
            if sent.is_none() {
                sent = Some(has_sent(shared, session).await?);
            }
            if sent == Some(false) {
                return Err(Refusal::SendFirst);
            }
        }
        if record.bytes.saturating_add(size) > cfg.session_upload_bytes {
            return Err(Refusal::SessionBudget);
        }
        record.bytes += size;
        record.files += 1;
        record.window_files += 1;
        match write(&store, session, &record, revision).await {
            Ok(true) => return Ok(()),
            Ok(false) => continue,
            Err(e) if is_full(&e) => return Err(Refusal::StorageFull),
            Err(e) => return Err(Refusal::Unavailable(e)),
        }
    }
    Err(Refusal::Unavailable("the upload record kept changing".into()))
}

/// Gives back what [`reserve`] counted, when the file could not be stored after all.
pub(crate) async fn release(shared: &Shared, session: &str, size: u64) {
    let released = async {
        let store = bucket(shared).await.map_err(|e| format!("{e:?}"))?;
        for _ in 0..CAS_ATTEMPTS {
            let (mut record, revision) = read(&store, session).await?;
            record.bytes = record.bytes.saturating_sub(size);
            record.files = record.files.saturating_sub(1);
            record.window_files = record.window_files.saturating_sub(1);
            if write(&store, session, &record, revision).await? {
                return Ok(());
            }
        }
        Err("the upload record kept changing".to_string())
    };
    if let Err(e) = released.await {
        warn!(error = %e, "an upload not stored stays counted against its session");
    }
}

/// Records that a message of the session attaches `objects`, so the sweep keeps them.
pub(crate) async fn mark_attached(shared: &Shared, session: &str, objects: &[&str]) -> Result<(), String> {
    let prefix = object_prefix(session);
    let ids: Vec<String> = objects.iter().filter_map(|o| o.strip_prefix(&prefix)).map(str::to_string).collect();
    let store = bucket(shared).await.map_err(|e| format!("{e:?}"))?;
    for _ in 0..CAS_ATTEMPTS {
        let (mut record, revision) = read(&store, session).await?;
        if ids.iter().all(|id| record.attached.contains(id)) {
            return Ok(());
        }
        record.attached.extend(ids.iter().cloned());
        if write(&store, session, &record, revision).await? {
            return Ok(());
        }
    }
    Err("the upload record kept changing".into())
}

/// Deletes web-chat files older than `upload_grace_secs` that no sent message attached; returns
/// how many. Files without a record (stored by an older version) are left to the store's age.
pub(crate) async fn sweep(shared: &Shared) -> Result<usize, String> {
    let bus = shared.bus().map_err(|e| e.to_string())?;
    let files = bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.map_err(|e| e.to_string())?;
    let records = bus.jetstream().get_key_value(buckets::UPLOADS).await.map_err(|e| e.to_string())?;
    let cutoff = now_secs() - shared.cfg.upload_grace_secs as i64;
    let mut candidates = Vec::new();
    let mut live_chunks = HashSet::new();
    let mut list = files.list().await.map_err(|e| e.to_string())?;
    while let Some(info) = list.next().await {
        let info = info.map_err(|e| e.to_string())?;
        live_chunks.insert(format!("$O.{ATTACHMENTS_STORE}.C.{}", info.nuid));
        let Some((session, id)) = info.name.strip_prefix("webchat/").and_then(|rest| rest.split_once('/')) else {
            continue;
        };
        if !info.deleted && info.modified.is_some_and(|m| m.unix_timestamp() < cutoff) {
            candidates.push((session.to_string(), id.to_string(), info.name.clone(), info.size));
        }
    }
    let mut deleted = 0;
    for (session, id, name, size) in candidates {
        // Read now, not before the listing: a message may have attached it meanwhile.
        let (record, revision) = match read(&records, &session).await {
            Ok(read) => read,
            Err(e) => {
                warn!(error = %e, "upload record unreadable; its files are left to the store's age limit");
                continue;
            }
        };
        if revision == 0 || record.attached.contains(&id) {
            continue;
        }
        files.delete(&name).await.map_err(|e| e.to_string())?;
        debug!(size, "unattached upload deleted");
        deleted += 1;
    }
    let orphans = purge_orphan_chunks(shared, &live_chunks).await?;
    if deleted > 0 || orphans > 0 {
        info!(deleted, orphans, "web-chat uploads no message attached were deleted");
    }
    Ok(deleted)
}

/// Purges chunks no object names: a store that filled up part-way through a file (or a process
/// that died while storing one) leaves them, and nothing else would reclaim their bytes before
/// the store's max age. A file still being written is left alone: its chunks are recent.
async fn purge_orphan_chunks(shared: &Shared, live: &HashSet<String>) -> Result<usize, String> {
    let bus = shared.bus().map_err(|e| e.to_string())?;
    let stream = bus.jetstream().get_stream(format!("OBJ_{ATTACHMENTS_STORE}")).await.map_err(|e| e.to_string())?;
    let min_age = shared.cfg.upload_grace_secs.max(ORPHAN_MIN_AGE_SECS) as i64;
    let mut orphans = Vec::new();
    let mut subjects =
        stream.info_with_subjects(format!("$O.{ATTACHMENTS_STORE}.C.>")).await.map_err(|e| e.to_string())?;
    while let Some(entry) = subjects.next().await {
        let (subject, _) = entry.map_err(|e| e.to_string())?;
        if !live.contains(&subject) {
            orphans.push(subject);
        }
    }
    let mut purged = 0;
    for subject in orphans {
        let last = match stream.direct_get_last_for_subject(subject.clone()).await {
            Ok(message) => message.time.unix_timestamp(),
            Err(_) => continue,
        };
        // Listed before the chunk check, an object finished since then is live: check again.
        if now_secs() - last < min_age || object_finished(shared, &subject).await {
            continue;
        }
        stream.purge().filter(subject).await.map_err(|e| e.to_string())?;
        purged += 1;
    }
    Ok(purged)
}

/// Whether an object now names the chunks of `subject` (stored after the sweep listed them).
async fn object_finished(shared: &Shared, subject: &str) -> bool {
    let Some(nuid) = subject.rsplit('.').next() else { return false };
    let Ok(bus) = shared.bus() else { return true };
    let Ok(files) = bus.jetstream().get_object_store(ATTACHMENTS_STORE).await else { return true };
    let Ok(mut list) = files.list().await else { return true };
    while let Some(info) = list.next().await {
        match info {
            Ok(info) if info.nuid == nuid => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    false
}
