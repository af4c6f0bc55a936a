//! Export and erasure of one person's data.
//!
//! Both start the same way: find who the person is (their customer keys, identity links, thread
//! keys, conversations and attachments, from the conversation records and their inbound
//! messages), then read every stream, bucket and object store for what mentions them. Export
//! prints what was found; erasure first has every routing group's leading router forget them
//! (journaled, then a snapshot), then deletes exactly what export would print, and leaves one
//! `customer_forgotten` event that says how much was erased, not whose.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use switchboard_bus::Bus;
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, headers, streams, subjects};
use switchboard_core::{Contract, Envelope, Event, EventBatch, EventKind};
use tracing::{info, warn};
use uuid::Uuid;

use super::scan::{Scanned, Stored, scan};
use super::{CustomerRef, Needles};

/// The KV buckets that hold customer data (the others hold agents, leases and presence).
const CUSTOMER_BUCKETS: &[&str] = &[buckets::CONVERSATIONS, buckets::CHANNELS, buckets::UPLOADS];

/// How long erasure waits for each routing group's router.
const ROUTER_WAIT: Duration = Duration::from_secs(30);

/// The stream behind a KV bucket.
fn kv_stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The stream behind an object store.
fn object_stream(store: &str) -> String {
    format!("OBJ_{store}")
}

/// Who the person is, as far as the stored data says.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Identity {
    /// Customer keys (`<channel>:<id>`) and person keys (`email:<address>`) that are theirs:
    /// the one asked for plus those linked to it (the same e-mail address on another channel).
    pub keys: BTreeSet<String>,
    /// Their threads (`<channel>:<thread key>`).
    pub threads: BTreeSet<String>,
    /// Their conversations.
    pub conversations: BTreeSet<Uuid>,
    /// Object names of the attachments they sent.
    pub attachments: BTreeSet<String>,
    #[serde(skip)]
    needles: Needles,
}

/// One stored message that mentions the person.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The stream.
    pub stream: String,
    /// Its sequence there.
    pub seq: u64,
    /// Its subject.
    pub subject: String,
    /// When it was stored.
    pub stored_at: chrono::DateTime<chrono::Utc>,
    /// The payload: JSON as JSON, anything else as text.
    pub payload: serde_json::Value,
    /// It also holds what is not theirs (an `events/1` batch with others' events): exported
    /// with only their part, and not deleted by an erasure.
    #[serde(skip)]
    pub shared: bool,
}

/// A key of a bucket that mentions the person, with its latest value.
#[derive(Debug, Clone, Serialize)]
pub struct FoundKey {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// When it was last written.
    pub written_at: chrono::DateTime<chrono::Utc>,
    /// Its latest value (null when deleted, with older revisions still stored).
    pub value: serde_json::Value,
}

/// Everything held about a person.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// Who was asked for.
    pub customer: String,
    /// When this export was made.
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// Who the person is in the data.
    pub identity: Identity,
    /// Conversation records (`sb_conversations`).
    pub conversations: Vec<serde_json::Value>,
    /// Channel mappings, thread tokens, web-chat profiles (`sb_channels`).
    pub mappings: Vec<FoundKey>,
    /// Attachments they sent (`sb_attachments`): name, size, time; fetch bytes by name.
    pub attachments: Vec<serde_json::Value>,
    /// Messages of every stream that mention them: their messages, replies, agent deliveries,
    /// events, transcripts, dead letters, the router's journal.
    pub messages: Vec<Found>,
    /// Messages read per stream (and whether a stream was read only up to the limit).
    pub scanned: BTreeMap<String, Scanned>,
}

/// What an erasure did, without saying whom: this is also what the audit event holds.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Erasure {
    /// A random reference of this erasure, in the audit event and in the answer to the caller.
    pub reference: Uuid,
    /// Conversations erased.
    pub conversations: usize,
    /// Stream messages deleted.
    pub messages: usize,
    /// Bucket keys purged (every revision).
    pub keys: usize,
    /// Objects (attachments) deleted.
    pub objects: usize,
    /// Journal entries that name the person but were written after the router's snapshot
    /// (the person wrote again meanwhile), kept so that the router's replay stays whole.
    pub kept_journal_entries: usize,
    /// Event batches that also held others' events: those were published again (a batch with
    /// `Sb-Rewrite-Of`) before the batch was deleted (its deletion is counted in `messages`).
    pub rewritten_batches: usize,
    /// Streams read only up to `privacy.max_scan_messages`: older data there may remain.
    pub truncated_streams: Vec<String>,
}

impl Identity {
    fn add_key(&mut self, key: String) -> bool {
        self.keys.insert(key)
    }

    fn about(&self, channel: &str, customer_id: &str, email: Option<&str>) -> bool {
        self.keys.contains(&format!("{channel}:{customer_id}"))
            || email.is_some_and(|e| self.keys.contains(&person_key(channel, customer_id, Some(e))))
    }

    /// Learns what a matched record or envelope tells about the person.
    fn learn(&mut self, channel: &str, customer: &serde_json::Value, thread: &str) {
        let id = customer.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        let email = customer.get("email").and_then(|v| v.as_str());
        self.add_key(format!("{channel}:{id}"));
        self.add_key(person_key(channel, id, email));
        self.threads.insert(format!("{channel}:{thread}"));
        for s in [Some(id), email, customer.get("phone").and_then(|v| v.as_str()), Some(thread)].into_iter().flatten() {
            self.needles.add(s);
        }
    }
}

/// The router's person key: the e-mail address when known, else `<channel>:<id>`.
fn person_key(channel: &str, id: &str, email: Option<&str>) -> String {
    match email.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => format!("email:{}", e.to_lowercase()),
        None => format!("{channel}:{id}"),
    }
}

/// The latest stored value of every key of a bucket (by subject), deleted ones as `None`.
async fn latest(bus: &Bus, bucket: &str, limit: u64) -> anyhow::Result<(BTreeMap<String, Stored>, Scanned)> {
    let mut keys = BTreeMap::new();
    let scanned = scan(bus, &kv_stream(bucket), limit, |m| {
        keys.insert(m.subject.clone(), m);
        Ok(())
    })
    .await?;
    Ok((keys, scanned))
}

fn is_deleted(m: &Stored) -> bool {
    m.operation.as_deref().is_some_and(|o| o == "DEL" || o == "PURGE")
}

/// Finds who `who` is: records of `sb_conversations` and envelopes of `SB_INBOUND` about them,
/// following identity links (an e-mail address the customer gave on another channel) up to two
/// links away: two passes, each adding the keys of what matched.
async fn identify(bus: &Bus, who: &CustomerRef, limit: u64) -> anyhow::Result<Identity> {
    let mut id = Identity::default();
    id.add_key(who.key());
    id.needles.add(&who.id);
    let (records, _) = latest(bus, buckets::CONVERSATIONS, limit).await?;
    let records: Vec<serde_json::Value> =
        records.values().filter(|m| !is_deleted(m)).filter_map(|m| serde_json::from_slice(&m.payload).ok()).collect();
    // Twice: a link found in one record can make another record theirs.
    for _ in 0..2 {
        for r in &records {
            let (channel, customer) = (r["channel"].as_str().unwrap_or_default(), &r["customer"]);
            let cid = customer["id"].as_str().unwrap_or_default();
            let person = r["person"].as_str().unwrap_or_default();
            // A record without a person key (hand-written, or older) links nobody else.
            if id.keys.contains(&format!("{channel}:{cid}")) || (!person.is_empty() && id.keys.contains(person)) {
                id.learn(channel, customer, r["thread_key"].as_str().unwrap_or_default());
                if !person.is_empty() {
                    id.add_key(person.to_string());
                }
                if let Some(conversation) = r["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()) {
                    id.conversations.insert(conversation);
                }
            }
        }
    }
    let mut envelopes = Vec::new();
    scan(bus, streams::INBOUND, limit, |m| {
        if let Ok(e) = serde_json::from_slice::<Envelope>(&m.payload) {
            envelopes.push(e);
        }
        Ok(())
    })
    .await?;
    for _ in 0..2 {
        for e in &envelopes {
            if id.about(&e.channel, &e.customer.id, e.customer.email.as_deref()) {
                let customer = serde_json::to_value(&e.customer).unwrap_or_default();
                id.learn(&e.channel, &customer, &e.thread_key);
                id.attachments.extend(e.attachments.iter().map(|a| a.object.clone()));
            }
        }
    }
    for c in &id.conversations {
        id.needles.add(&c.to_string());
    }
    for a in &id.attachments {
        id.needles.add(a);
    }
    for t in id.threads.clone() {
        id.needles.add(&t);
    }
    Ok(id)
}

/// Where the person's data is: what export prints and erasure deletes.
struct Holdings {
    messages: Vec<Found>,
    keys: Vec<(String, Stored, bool)>,
    objects: Vec<(String, Stored)>,
    scanned: BTreeMap<String, Scanned>,
}

/// The part of a payload that is about the person, and whether there was more: a router journal
/// batch holds several people's entries, and only theirs belong in their export. An `events/1`
/// batch holds one router step's events, often several people's: only theirs are exported, and
/// a batch with others' (`shared`) is rewritten before it is deleted ([`rewrite`]).
fn theirs(payload: &[u8], n: &Needles) -> (serde_json::Value, bool) {
    let mut v = payload_value(payload);
    let mut shared = false;
    if v["type"] == "batch"
        && let Some(entries) = v.get_mut("entries").and_then(|e| e.as_array_mut())
    {
        entries.retain(|e| n.in_json(e));
    }
    if v.as_object().is_some_and(|o| o.len() == 1)
        && let Some(events) = v.get_mut("events").and_then(|e| e.as_array_mut())
    {
        let before = events.len();
        events.retain(|e| n.in_json(e));
        shared = events.len() < before;
    }
    (v, shared)
}

fn payload_value(payload: &[u8]) -> serde_json::Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(payload).into()))
}

async fn holdings(bus: &Bus, id: &Identity, limit: u64) -> anyhow::Result<Holdings> {
    let n = &id.needles;
    let mut h = Holdings { messages: Vec::new(), keys: Vec::new(), objects: Vec::new(), scanned: BTreeMap::new() };
    for (stream, _) in streams::ALL {
        let scanned = scan(bus, stream, limit, |m| {
            if n.in_subject(&m.subject) || n.in_bytes(&m.payload) {
                let (payload, shared) = theirs(&m.payload, n);
                h.messages.push(Found {
                    stream: m.stream,
                    seq: m.seq,
                    subject: m.subject,
                    stored_at: m.time,
                    payload,
                    shared,
                });
            }
            Ok(())
        })
        .await?;
        h.scanned.insert(stream.to_string(), scanned);
    }
    for bucket in CUSTOMER_BUCKETS {
        // Every revision is checked: a key whose older value named them is theirs too.
        let mut theirs: BTreeMap<String, Stored> = BTreeMap::new();
        let mut last: BTreeMap<String, Stored> = BTreeMap::new();
        let scanned = scan(bus, &kv_stream(bucket), limit, |m| {
            if n.in_subject(&m.subject) || n.in_bytes(&m.payload) {
                theirs.insert(m.subject.clone(), m.clone());
            }
            last.insert(m.subject.clone(), m);
            Ok(())
        })
        .await?;
        h.scanned.insert(kv_stream(bucket), scanned);
        for subject in theirs.into_keys() {
            if let Some(m) = last.remove(&subject) {
                let deleted = is_deleted(&m);
                h.keys.push((bucket.to_string(), m, deleted));
            }
        }
    }
    let mut metas: BTreeMap<String, Stored> = BTreeMap::new();
    let prefix = format!("$O.{ATTACHMENTS_STORE}.M.");
    let scanned = scan(bus, &object_stream(ATTACHMENTS_STORE), limit, |m| {
        if m.subject.starts_with(&prefix) {
            metas.insert(m.subject.clone(), m);
        }
        Ok(())
    })
    .await?;
    h.scanned.insert(object_stream(ATTACHMENTS_STORE), scanned);
    for m in metas.into_values() {
        let info = payload_value(&m.payload);
        let name = info["name"].as_str().unwrap_or_default().to_string();
        if id.attachments.contains(&name) || n.in_json(&info) {
            h.objects.push((name, m));
        }
    }
    Ok(h)
}

/// Publishes again the events of the `events/1` batch at `seq` that are not about the person
/// (`needles`), unchanged, on `sb.events.rewritten` with `Sb-Rewrite-Of: <seq>` and id
/// `events:rewrite:<seq>` (so a second erasure of the same batch stores it once), so that the
/// batch can be deleted without losing anyone else's events. `false` when the batch is gone
/// meanwhile (its age limit): nothing to delete.
async fn rewrite(
    bus: &Bus,
    stream: &async_nats::jetstream::stream::Stream,
    seq: u64,
    needles: &Needles,
) -> anyhow::Result<bool> {
    let raw = match stream.get_raw_message(seq).await {
        Ok(raw) => raw,
        Err(e) if e.to_string().contains("no message found") => return Ok(false),
        Err(e) => return Err(anyhow::anyhow!("reading {} message {seq}: {e}", streams::EVENTS)),
    };
    let batch = EventBatch::from_json(&raw.payload)
        .with_context(|| format!("{} message {seq} is no readable events/1 batch", streams::EVENTS))?;
    let others: Vec<Event> =
        batch.events.into_iter().filter(|e| !serde_json::to_value(e).is_ok_and(|v| needles.in_json(&v))).collect();
    if !others.is_empty() {
        let rest = EventBatch { events: others };
        rest.validate().context("what is left of an event batch")?;
        let mut extra = async_nats::HeaderMap::new();
        extra.insert(headers::SCHEMA, EventBatch::SCHEMA);
        extra.insert(headers::REWRITE_OF, seq.to_string().as_str());
        let payload = serde_json::to_vec(&rest).context("encoding what is left of an event batch")?;
        bus.publish_raw(subjects::EVENT_REWRITE, extra, payload.into(), &format!("events:rewrite:{seq}"))
            .await
            .with_context(|| format!("publishing what is not theirs of {} message {seq}", streams::EVENTS))?;
    }
    Ok(true)
}

/// Everything held about `who`, as JSON for them (`switchboard customers export`).
pub async fn export(bus: &Bus, who: &CustomerRef, limit: u64) -> anyhow::Result<Export> {
    let identity = identify(bus, who, limit).await?;
    let h = holdings(bus, &identity, limit).await?;
    let mut conversations = Vec::new();
    let mut mappings = Vec::new();
    for (bucket, m, deleted) in &h.keys {
        let key = m.subject.strip_prefix(&format!("$KV.{bucket}.")).unwrap_or(&m.subject).to_string();
        let value = if *deleted { serde_json::Value::Null } else { payload_value(&m.payload) };
        if bucket == buckets::CONVERSATIONS {
            if !value.is_null() {
                conversations.push(value);
            }
        } else {
            mappings.push(FoundKey { bucket: bucket.clone(), key, written_at: m.time, value });
        }
    }
    let attachments = h
        .objects
        .iter()
        .map(|(name, m)| {
            let info = payload_value(&m.payload);
            serde_json::json!({ "object": name, "size": info["size"], "stored_at": m.time, "deleted": info["deleted"] })
        })
        .collect();
    Ok(Export {
        customer: who.key(),
        exported_at: chrono::Utc::now(),
        identity,
        conversations,
        mappings,
        attachments,
        messages: h.messages,
        scanned: h.scanned,
    })
}

/// What a router answered to a forget request.
#[derive(serde::Deserialize)]
struct ForgetReply {
    #[serde(default)]
    conversations: Vec<Uuid>,
    #[serde(default)]
    snapshot_sequence: u64,
    #[serde(default)]
    error: Option<String>,
}

/// Erases everything held about `who`; `requested_by` (an operator or token name, never the
/// person) goes into the audit event. Every routing group's leading router must answer first:
/// without one nothing is deleted.
pub async fn forget(
    bus: &Bus,
    groups: &[String],
    who: &CustomerRef,
    requested_by: &str,
    limit: u64,
) -> anyhow::Result<Erasure> {
    let identity = identify(bus, who, limit).await?;
    let request = serde_json::json!({ "customers": identity.keys, "threads": identity.threads }).to_string();
    let mut conversations: BTreeSet<Uuid> = identity.conversations.clone();
    let mut snapshots = BTreeMap::new();
    for group in groups {
        let ask = bus.client().request(subjects::router_forget(group), request.clone().into());
        let answer = tokio::time::timeout(ROUTER_WAIT, ask)
            .await
            .map_err(|_| anyhow::anyhow!("no router of group `{group}` answered within {} s", ROUTER_WAIT.as_secs()))?
            .with_context(|| format!("no router of group `{group}` is leading: nothing was erased"))?;
        let reply: ForgetReply = serde_json::from_slice(&answer.payload)
            .with_context(|| format!("the router of group `{group}` answered garbage"))?;
        if let Some(e) = reply.error {
            anyhow::bail!("the router of group `{group}` could not forget: {e}");
        }
        conversations.extend(reply.conversations);
        snapshots.insert(subjects::router_journal(group), reply.snapshot_sequence);
    }
    let mut identity = identity;
    for c in &conversations {
        if identity.conversations.insert(*c) {
            identity.needles.add(&c.to_string());
        }
    }
    let h = holdings(bus, &identity, limit).await?;
    let mut erasure = Erasure { reference: Uuid::now_v7(), conversations: conversations.len(), ..Default::default() };
    erasure.truncated_streams = h.scanned.iter().filter(|(_, s)| s.truncated).map(|(n, _)| n.clone()).collect();
    let js = bus.jetstream();
    let mut opened: BTreeMap<String, async_nats::jetstream::stream::Stream> = BTreeMap::new();
    for m in &h.messages {
        // The journal up to the routers' new snapshots is never replayed again; after it, it is.
        if m.stream == streams::ROUTER && snapshots.get(&m.subject).is_none_or(|snap| m.seq > *snap) {
            erasure.kept_journal_entries += 1;
            continue;
        }
        if !opened.contains_key(&m.stream) {
            opened.insert(m.stream.clone(), js.get_stream(&m.stream).await.with_context(|| m.stream.clone())?);
        }
        let stream = &opened[&m.stream];
        if m.shared {
            if !rewrite(bus, stream, m.seq, &identity.needles).await? {
                continue;
            }
            erasure.rewritten_batches += 1;
        }
        match stream.delete_message(m.seq).await {
            Ok(_) => erasure.messages += 1,
            // Gone meanwhile (its age limit, a consumer): nothing left to delete.
            Err(e) if e.to_string().contains("no message found") => {}
            Err(e) => return Err(anyhow::anyhow!("deleting {} message {}: {e}", m.stream, m.seq)),
        }
    }
    for (bucket, m, _) in &h.keys {
        let stream = js.get_stream(kv_stream(bucket)).await.with_context(|| kv_stream(bucket))?;
        stream.purge().filter(m.subject.clone()).await.with_context(|| format!("purging a key of {bucket}"))?;
        erasure.keys += 1;
    }
    if !h.objects.is_empty() {
        let store = js.get_object_store(ATTACHMENTS_STORE).await.context("the attachments store")?;
        let meta = js.get_stream(object_stream(ATTACHMENTS_STORE)).await.context("the attachments stream")?;
        for (name, m) in &h.objects {
            if let Err(e) = store.delete(name.as_str()).await {
                // Already deleted (its meta kept the name): only the meta is left to purge.
                warn!(error = %e, "attachment not deleted; purging what is left of it");
            }
            meta.purge().filter(m.subject.clone()).await.context("purging an attachment's metadata")?;
            erasure.objects += 1;
        }
    }
    // The web chat writes a notice into a session's transcript when it hears that the session's
    // conversation was resolved (the router did that above): one written since the scan is
    // caught here, the transcript being one subject per session.
    let transcripts = js.get_stream(streams::WEBCHAT).await.context("the transcripts stream")?;
    for session in identity.threads.iter().filter_map(|t| t.strip_prefix("webchat:")) {
        let purged = transcripts
            .purge()
            .filter(subjects::webchat_session(session))
            .await
            .context("purging a web-chat transcript")?;
        erasure.messages += purged.purged as usize;
    }
    let event = Event {
        id: Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind: EventKind::CustomerForgotten,
        conversation_id: None,
        agent_id: None,
        channel: None,
        data: serde_json::json!({
            "reference": erasure.reference,
            "requested_by": requested_by,
            "conversations": erasure.conversations,
            "messages": erasure.messages,
            "keys": erasure.keys,
            "objects": erasure.objects,
            "kept_journal_entries": erasure.kept_journal_entries,
            "rewritten_batches": erasure.rewritten_batches,
            "truncated_streams": erasure.truncated_streams,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    };
    bus.publish(&subjects::event(EventKind::CustomerForgotten.as_str()), &event, &event.id.to_string())
        .await
        .context("publishing the audit event")?;
    info!(
        reference = %erasure.reference,
        requested_by,
        conversations = erasure.conversations,
        messages = erasure.messages,
        keys = erasure.keys,
        objects = erasure.objects,
        rewritten_batches = erasure.rewritten_batches,
        "customer data erased"
    );
    Ok(erasure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(conversation: Option<Uuid>, agent: &str) -> Event {
        Event {
            id: Uuid::now_v7(),
            at: chrono::Utc::now(),
            kind: EventKind::AgentStatusChanged,
            conversation_id: conversation,
            agent_id: Some(agent.into()),
            channel: None,
            data: serde_json::Map::new(),
        }
    }

    /// The router's events name a person only by their conversation's id (and the ids of their
    /// messages), never by customer id, address or thread. A batch of only theirs is theirs
    /// whole; one that also holds others' (a step with several customers) is shared: exported in
    /// part, and rewritten before it is deleted.
    #[test]
    fn a_batch_of_only_their_conversation_is_theirs_whole_and_a_mixed_one_is_shared() {
        let (theirs_c, other_c) = (Uuid::now_v7(), Uuid::now_v7());
        let mut n = Needles::default();
        n.add(&theirs_c.to_string());
        let batch =
            switchboard_core::EventBatch { events: vec![event(Some(theirs_c), "ann"), event(Some(theirs_c), "bob")] };
        let bytes = serde_json::to_vec(&batch).unwrap();
        assert!(n.in_bytes(&bytes));
        let (value, shared) = theirs(&bytes, &n);
        assert!(!shared, "a batch of only their conversation is theirs whole");
        assert_eq!(value["events"].as_array().unwrap().len(), 2);

        let step =
            switchboard_core::EventBatch { events: vec![event(Some(other_c), "ann"), event(Some(theirs_c), "ann")] };
        let (value, shared) = theirs(&serde_json::to_vec(&step).unwrap(), &n);
        assert!(shared, "a step with someone else's events is shared");
        assert_eq!(value["events"].as_array().unwrap().len(), 1, "only theirs exported: {value}");

        let other = switchboard_core::EventBatch { events: vec![event(Some(other_c), "ann")] };
        assert!(!n.in_bytes(&serde_json::to_vec(&other).unwrap()), "another customer's batch is not found at all");

        // A batch without a conversation that happens to name them (an agent id equal to one of
        // their ids): only their part is exported, and the rest is kept.
        let mut n = Needles::default();
        n.add("bob-the-customer");
        let agents = switchboard_core::EventBatch { events: vec![event(None, "ann"), event(None, "bob-the-customer")] };
        let (value, shared) = theirs(&serde_json::to_vec(&agents).unwrap(), &n);
        assert!(shared);
        assert_eq!(value["events"].as_array().unwrap().len(), 1);
    }
}
