//! `switchboard dlq list|replay|drop`: the dead letters in `SB_DLQ`, put back where they can
//! succeed, or deleted.
//!
//! Where a replay goes depends on what the dead letter holds (its kind, see
//! [`switchboard_core::contract::dlq_replay_to`]): a payload a consumer gave up (an envelope, an
//! outbound message, an agent delivery, a command) goes back to the subject in `Sb-Dlq-Subject`,
//! which that consumer reads; a raw provider item (a raw mail, a Telegram update) goes to
//! `sb.replay.<component>`, where its adapter handles it again from the start (the parser), since
//! on the original subject it would be read as an envelope. An event goes to
//! `sb.replay.<component>` too, read only by the reader that gave it up (it is in the audit log
//! already; a second copy there would count twice).
//!
//! A replay republishes the stored payload and headers (without the `Sb-Dlq-*` ones, except the
//! kind on `sb.replay.*`) to that subject, waits for JetStream's ack, and only then deletes the
//! dead letter.
//! Its `Nats-Msg-Id` is `replay:<dead letter's sequence>:<its store time in ns>`:
//! - not the original id: the original was stored under it, so within the target stream's
//!   de-duplication window JetStream would acknowledge the replay as a duplicate and drop it;
//! - derived from the dead letter, not random: a replay interrupted between the publish and the
//!   delete is run again with the same id, and the target stream drops the second copy (the ack
//!   says `duplicate`) before the dead letter is deleted, so nothing is delivered twice;
//! - sequence and store time together, so that the same original failing again (a new dead
//!   letter, a new sequence) replays again, and a recreated `SB_DLQ`, whose sequences restart,
//!   does not collide with replays made before.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use switchboard_bus::Bus;
use switchboard_core::contract::{dlq_kinds, dlq_replay_to, headers, streams, subjects};

use super::{EXIT_PROBLEM, Format, Output, Table, human_age, secs_since};

/// How long to wait for the next dead letter before giving up on a stalled read.
const STALL: Duration = Duration::from_secs(10);

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its sequence in `SB_DLQ`: what `replay` and `drop` take.
    pub seq: u64,
    /// The component that gave it up.
    pub component: String,
    /// What it holds: a schema id (`envelope/1`, `outbound/1`, `agent-delivery/1`, `command/1`,
    /// `event/1`), a raw provider item (`raw-mail`, `telegram-update`), or `unknown`.
    pub kind: String,
    /// The subject it was published on originally (or was meant for).
    pub subject: String,
    /// Where a replay puts it; `None` when it cannot be replayed (`not_replayable` says why).
    pub replay_to: Option<String>,
    /// Why it cannot be replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_replayable: Option<String>,
    /// Why it was given up.
    pub reason: String,
    /// Deliveries attempted.
    pub attempts: Option<u64>,
    /// Its sequence in the stream it came from.
    pub original_seq: Option<u64>,
    /// When it was dead-lettered (RFC 3339).
    pub dead_lettered_at: String,
    /// Seconds since then.
    pub age_secs: f64,
    /// Payload size in bytes.
    pub size: usize,
    /// The payload (lossy UTF-8), only with `--show-body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What `dlq list` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// Dead letters matching the filter, in total.
    pub total: u64,
    /// The oldest of them, up to the limit.
    pub dead_letters: Vec<DeadLetter>,
}

/// What happened to one dead letter in `replay` or `drop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Its sequence in `SB_DLQ`.
    pub seq: u64,
    /// `replayed`, `dropped`, `not_found` (no such sequence, or already replayed or dropped),
    /// `skipped` (another component's) or `failed`.
    pub outcome: String,
    /// The component that gave it up, when found.
    pub component: Option<String>,
    /// What it holds (see [`DeadLetter::kind`]), for a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The subject it was replayed to.
    pub subject: Option<String>,
    /// Where the replay was stored.
    pub replayed_to: Option<Stored>,
    /// The target stream already had this replay (an earlier, interrupted run).
    pub duplicate: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// Where JetStream stored a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The stream.
    pub stream: String,
    /// Its sequence there.
    pub sequence: u64,
}

/// Which dead letters `replay` and `drop` act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These sequences.
    Seqs(Vec<u64>),
    /// Every one stored when the command starts (of the component, when given).
    All,
}

fn header(m: &StreamMessage, name: &str) -> Option<String> {
    m.headers.get(name).map(|v| v.as_str().to_string())
}

/// The component that gave a dead letter up.
fn component_of(m: &StreamMessage) -> String {
    let prefix = subjects::dlq("");
    header(m, headers::DLQ_COMPONENT)
        .unwrap_or_else(|| m.subject.strip_prefix(&prefix).unwrap_or(&m.subject).to_string())
}

/// What a dead letter holds: its `Sb-Dlq-Kind`, else (stored before that header existed) its
/// `Sb-Schema`, else what its component dead-lettered then: the email channel raw mails (only
/// the header block of a big one), the Telegram channel envelopes without a schema header.
fn kind_of(stored: &HeaderMap, payload: &[u8], component: &str) -> Option<String> {
    let named = stored.get(headers::DLQ_KIND).or_else(|| stored.get(headers::SCHEMA));
    if let Some(kind) = named {
        return Some(kind.as_str().to_string());
    }
    match component {
        "email-in" if has_body(payload) => Some(dlq_kinds::RAW_MAIL.into()),
        "email-in" => Some(dlq_kinds::RAW_MAIL_HEADERS.into()),
        "telegram-in" => Some("envelope/1".into()),
        _ => None,
    }
}

/// Whether a raw mail has a body after its header block (a blank line).
fn has_body(raw: &[u8]) -> bool {
    raw.windows(4).any(|w| w == b"\r\n\r\n") || raw.windows(2).any(|w| w == b"\n\n")
}

/// The kind and where a replay of `m` goes (or why it cannot be replayed).
fn target(m: &StreamMessage) -> (Option<String>, Result<String, String>) {
    let component = component_of(m);
    let kind = kind_of(&m.headers, &m.payload, &component);
    let subject = header(m, headers::DLQ_SUBJECT).unwrap_or_default();
    let to = dlq_replay_to(kind.as_deref(), &component, &subject);
    (kind, to)
}

/// A stored dead letter as listed.
fn describe(m: &StreamMessage, show_body: bool) -> DeadLetter {
    let (kind, to) = target(m);
    DeadLetter {
        seq: m.sequence,
        component: component_of(m),
        kind: kind.unwrap_or_else(|| "unknown".into()),
        subject: header(m, headers::DLQ_SUBJECT).unwrap_or_default(),
        not_replayable: to.as_ref().err().cloned(),
        replay_to: to.ok(),
        reason: header(m, headers::DLQ_REASON).unwrap_or_default(),
        attempts: header(m, headers::DLQ_ATTEMPTS).and_then(|a| a.parse().ok()),
        original_seq: header(m, headers::DLQ_STREAM_SEQ).and_then(|a| a.parse().ok()),
        dead_lettered_at: {
            let nanos = m.time.unix_timestamp_nanos();
            chrono::DateTime::from_timestamp_nanos(nanos as i64).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        },
        age_secs: secs_since(m.time),
        size: m.payload.len(),
        body: show_body.then(|| String::from_utf8_lossy(&m.payload).into_owned()),
    }
}

async fn dlq_stream(bus: &Bus) -> anyhow::Result<Stream> {
    bus.jetstream()
        .get_stream(streams::DLQ)
        .await
        .with_context(|| format!("no stream {}: has `switchboard run` set up this NATS?", streams::DLQ))
}

/// The filter subject: one component's dead letters or all.
fn filter(component: Option<&str>) -> String {
    subjects::dlq(component.unwrap_or(">"))
}

/// Reads the dead letters matching `component` stored when called, oldest first, at most `limit`
/// of them (all when `None`); `total` counts every match.
pub async fn list(
    bus: &Bus,
    component: Option<&str>,
    limit: Option<usize>,
    show_body: bool,
) -> anyhow::Result<Listing> {
    let stream = dlq_stream(bus).await?;
    let last = stream.get_info().await.context("reading SB_DLQ")?.state.last_sequence;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter(component),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .context("creating a consumer on SB_DLQ")?;
    let total = consumer.cached_info().num_pending;
    let mut listing = Listing { total, dead_letters: Vec::new() };
    if total == 0 || limit == Some(0) {
        return Ok(listing);
    }
    let mut messages = consumer.messages().await.context("reading SB_DLQ")?;
    loop {
        let next = tokio::time::timeout(STALL, messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("reading SB_DLQ stalled for {} s", STALL.as_secs()))?;
        let Some(next) = next else { break };
        let message = next.context("reading SB_DLQ")?;
        let info = message.info().map_err(|e| anyhow::anyhow!("a dead letter without metadata: {e}"))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        // Dead-lettered after the command started (a replay failing again): not this listing's.
        if sequence > last {
            break;
        }
        let stored = StreamMessage {
            subject: message.subject.clone(),
            sequence,
            headers: message.headers.clone().unwrap_or_default(),
            payload: message.payload.clone(),
            time: info.published,
        };
        listing.dead_letters.push(describe(&stored, show_body));
        if pending == 0 || sequence >= last || limit.is_some_and(|l| listing.dead_letters.len() >= l) {
            break;
        }
    }
    Ok(listing)
}

/// The sequences selected, in order; `All` is every match stored when called, so that a replay
/// that fails again (and is dead-lettered anew) is not picked up by the same run.
async fn sequences(bus: &Bus, selection: &Selection, component: Option<&str>) -> anyhow::Result<Vec<u64>> {
    Ok(match selection {
        Selection::Seqs(seqs) => seqs.clone(),
        Selection::All => list(bus, component, None, false).await?.dead_letters.iter().map(|d| d.seq).collect(),
    })
}

/// One dead letter by sequence: `Ok(None)` when there is none (any more).
async fn fetch(stream: &Stream, seq: u64) -> anyhow::Result<Option<StreamMessage>> {
    match stream.get_raw_message(seq).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading dead letter {seq}: {e}")),
    }
}

fn outcome(seq: u64, what: &str) -> Outcome {
    Outcome {
        seq,
        outcome: what.into(),
        component: None,
        kind: None,
        subject: None,
        replayed_to: None,
        duplicate: false,
        error: None,
    }
}

/// The de-duplication id of a replay of the dead letter `m` (see the module docs for why).
pub fn replay_msg_id(m: &StreamMessage) -> String {
    format!("replay:{}:{}", m.sequence, m.time.unix_timestamp_nanos())
}

/// The headers a replay carries: the original ones, without the dead-letter headers and the
/// dead letter's own `Nats-Msg-Id` (the replay's is set when publishing). An item replayed to
/// `sb.replay.<component>` (`kind` given) keeps its kind, for the component to check and for a
/// dead letter it gives up again.
fn replay_headers(stored: &HeaderMap, raw_kind: Option<&str>) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, values) in stored.iter() {
        let n: &str = name.as_ref();
        if n.to_ascii_lowercase().starts_with("sb-dlq-") || n.eq_ignore_ascii_case(headers::MSG_ID) {
            continue;
        }
        for v in values {
            out.append(name.clone(), v.clone());
        }
    }
    if let Some(kind) = raw_kind {
        out.insert(headers::DLQ_KIND, kind);
    }
    out
}

/// Whether a dead letter belongs to the component asked for (any, when none was).
fn matches(m: &StreamMessage, component: Option<&str>) -> bool {
    component.is_none_or(|c| m.subject.as_str() == subjects::dlq(c))
}

/// Replays the selected dead letters to where each can succeed (see the module docs) and deletes
/// each once stored.
pub async fn replay(bus: &Bus, selection: &Selection, component: Option<&str>) -> anyhow::Result<Vec<Outcome>> {
    let stream = dlq_stream(bus).await?;
    let mut out = Vec::new();
    for seq in sequences(bus, selection, component).await? {
        let Some(m) = fetch(&stream, seq).await? else {
            out.push(outcome(seq, "not_found"));
            continue;
        };
        let mut o = outcome(seq, "replayed");
        o.component = Some(component_of(&m));
        if !matches(&m, component) {
            o.outcome = "skipped".into();
            out.push(o);
            continue;
        }
        let (kind, to) = target(&m);
        o.kind = kind.clone();
        let subject = match to {
            Ok(subject) => subject,
            Err(why) => {
                o.outcome = "failed".into();
                o.error = Some(format!("not replayable ({}): {why}", kind.as_deref().unwrap_or("unknown")));
                out.push(o);
                continue;
            }
        };
        o.subject = Some(subject.clone());
        let raw_kind = kind.as_deref().filter(|_| subject.starts_with(&subjects::replay("")));
        let headers = replay_headers(&m.headers, raw_kind);
        let published = bus.publish_raw(&subject, headers, m.payload.clone(), &replay_msg_id(&m)).await;
        match published {
            Ok(p) => {
                o.replayed_to = Some(Stored { stream: p.stream, sequence: p.sequence });
                o.duplicate = p.duplicate;
                if let Err(e) = stream.delete_message(seq).await {
                    o.outcome = "failed".into();
                    o.error = Some(format!("replayed, but the dead letter was not deleted ({e}); run it again"));
                }
            }
            Err(e) => {
                o.outcome = "failed".into();
                o.error = Some(e.to_string());
            }
        }
        out.push(o);
    }
    Ok(out)
}

/// Deletes the selected dead letters.
pub async fn drop(bus: &Bus, selection: &Selection, component: Option<&str>) -> anyhow::Result<Vec<Outcome>> {
    let stream = dlq_stream(bus).await?;
    let mut out = Vec::new();
    for seq in sequences(bus, selection, component).await? {
        let Some(m) = fetch(&stream, seq).await? else {
            out.push(outcome(seq, "not_found"));
            continue;
        };
        let mut o = outcome(seq, "dropped");
        o.component = Some(component_of(&m));
        if !matches(&m, component) {
            o.outcome = "skipped".into();
        } else if let Err(e) = stream.delete_message(seq).await {
            o.outcome = "failed".into();
            o.error = Some(e.to_string());
        }
        out.push(o);
    }
    Ok(out)
}

/// The listing as text.
pub fn render_listing(l: &Listing) -> String {
    if l.dead_letters.is_empty() {
        return "no dead letters\n".into();
    }
    let mut t = Table::new(&["seq", "component", "kind", "replay to", "attempts", "age", "size", "reason"]);
    for d in &l.dead_letters {
        t.row(vec![
            d.seq.to_string(),
            d.component.clone(),
            d.kind.clone(),
            d.replay_to.clone().unwrap_or_else(|| "- (not replayable)".into()),
            d.attempts.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
            human_age(d.age_secs),
            d.size.to_string(),
            d.reason.clone(),
        ]);
    }
    let mut out = t.render();
    for d in l.dead_letters.iter().filter(|d| d.body.is_some()) {
        out += &format!("\n--- {} body ---\n{}\n", d.seq, d.body.as_deref().unwrap_or_default());
    }
    let shown = l.dead_letters.len() as u64;
    if l.total > shown {
        out += &format!("({shown} of {}; raise --limit for more)\n", l.total);
    }
    out
}

/// Replay or drop outcomes as text.
pub fn render_outcomes(outcomes: &[Outcome]) -> String {
    if outcomes.is_empty() {
        return "no dead letters selected\n".into();
    }
    let mut out = String::new();
    for o in outcomes {
        let detail = match (&o.replayed_to, &o.error) {
            (_, Some(e)) => format!(": {e}"),
            (Some(at), None) => format!(
                " to {} ({} #{}{})",
                o.subject.as_deref().unwrap_or("?"),
                at.stream,
                at.sequence,
                if o.duplicate { ", already stored by an earlier run" } else { "" }
            ),
            (None, None) => String::new(),
        };
        let component = match (&o.component, &o.kind) {
            (Some(c), Some(k)) => format!(" [{c}, {k}]"),
            (Some(c), None) => format!(" [{c}]"),
            _ => String::new(),
        };
        out += &format!("  {}{component} {}{detail}\n", o.seq, o.outcome);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outcomes {
        *counts.entry(o.outcome.as_str()).or_default() += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out += &format!("{}\n", summary.join(", "));
    out
}

/// Prints `outcomes`; non-zero unless every one was replayed or dropped.
pub fn outcomes_output(outcomes: &[Outcome], format: Format) -> Output {
    let ok = outcomes.iter().all(|o| o.outcome == "replayed" || o.outcome == "dropped");
    let stdout = match format {
        Format::Text => render_outcomes(outcomes),
        Format::Json => format!("{:#}\n", serde_json::json!({ "results": outcomes })),
    };
    Output { stdout, code: if ok { 0 } else { EXIT_PROBLEM } }
}

/// Prints a listing.
pub fn listing_output(listing: &Listing, format: Format) -> Output {
    let stdout = match format {
        Format::Text => render_listing(listing),
        Format::Json => format!("{:#}\n", serde_json::to_value(listing).expect("a listing serialises")),
    };
    Output { stdout, code: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_lose_the_dead_letter_headers_and_keep_the_rest() {
        let mut stored = HeaderMap::new();
        stored.insert(headers::SCHEMA, "outbound/1");
        stored.insert(headers::MSG_ID, "dlq:out-webhook:SB_OUTBOUND:7");
        stored.insert(headers::DLQ_REASON, "400");
        stored.insert(headers::DLQ_SUBJECT, "sb.out.webhook");
        stored.insert("Sb-Dlq-Stream-Seq", "7");
        let h = replay_headers(&stored, None);
        assert_eq!(h.get(headers::SCHEMA).map(|v| v.as_str()), Some("outbound/1"));
        assert!(h.get(headers::MSG_ID).is_none());
        assert!(h.get(headers::DLQ_REASON).is_none());
        assert!(h.get(headers::DLQ_SUBJECT).is_none());
        assert!(h.get("Sb-Dlq-Stream-Seq").is_none());
        let raw = replay_headers(&stored, Some(dlq_kinds::RAW_MAIL));
        assert_eq!(
            raw.get(headers::DLQ_KIND).map(|v| v.as_str()),
            Some(dlq_kinds::RAW_MAIL),
            "a raw item keeps its kind"
        );
    }

    /// Dead letters stored before `Sb-Dlq-Kind` existed are still listed and replayed sensibly.
    #[test]
    fn the_kind_of_an_old_dead_letter_comes_from_its_schema_or_component() {
        let mut schema = HeaderMap::new();
        schema.insert(headers::SCHEMA, "outbound/1");
        assert_eq!(kind_of(&schema, b"{}", "webhook").as_deref(), Some("outbound/1"));
        let none = HeaderMap::new();
        let mail = b"From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n";
        assert_eq!(kind_of(&none, mail, "email-in").as_deref(), Some(dlq_kinds::RAW_MAIL));
        let cut = b"From: a@b.test\r\nSubject: x";
        assert_eq!(kind_of(&none, cut, "email-in").as_deref(), Some(dlq_kinds::RAW_MAIL_HEADERS));
        assert_eq!(kind_of(&none, b"{}", "telegram-in").as_deref(), Some("envelope/1"));
        assert_eq!(kind_of(&none, b"{}", "somebody"), None);
        let mut new = HeaderMap::new();
        new.insert(headers::DLQ_KIND, dlq_kinds::TELEGRAM_UPDATE);
        assert_eq!(kind_of(&new, b"{}", "telegram-in").as_deref(), Some(dlq_kinds::TELEGRAM_UPDATE));
    }

    #[test]
    fn raw_items_and_events_replay_to_their_component_the_rest_to_their_subject() {
        let to = |kind: Option<&str>, component, subject| dlq_replay_to(kind, component, subject);
        assert_eq!(to(Some(dlq_kinds::RAW_MAIL), "email-in", "sb.in.email"), Ok("sb.replay.email-in".into()));
        assert_eq!(to(Some("telegram-update"), "telegram-in", "sb.in.telegram"), Ok("sb.replay.telegram-in".into()));
        assert_eq!(to(Some("envelope/1"), "router-default", "sb.in.webhook"), Ok("sb.in.webhook".into()));
        assert_eq!(to(None, "x", "sb.out.x"), Ok("sb.out.x".into()));
        let event = to(Some("event/1"), "webchat-events", "sb.events.assigned");
        assert_eq!(event, Ok("sb.replay.webchat-events".into()), "to its reader only, not the audit log again");
        assert!(to(Some("event/1"), "another-reader", "sb.events.assigned").is_err());
        let batch = to(Some(dlq_kinds::EVENTS), "webchat-events", "sb.events.batch");
        assert_eq!(batch, Ok("sb.replay.webchat-events".into()), "a batch of the router's events alike");
        assert!(to(Some("events/1"), "another-reader", "sb.events.batch").is_err());
        assert!(to(Some(dlq_kinds::RAW_MAIL_HEADERS), "email-in", "sb.in.email").is_err());
        assert!(to(Some("outbound/1"), "webhook", "").is_err());
    }
}
